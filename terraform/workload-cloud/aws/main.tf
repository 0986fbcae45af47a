data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  prefix  = "keyferry-${var.coordinator_name}"
  subject = "coordinator:${var.coordinator_name}"
  # IAM's condition keys for the provider: <host/path of the issuer>:sub, :aud.
  issuer_key = trimprefix(var.issuer_url, "https://")
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  # Ad-tech roles made by the adtech submodule live under this IAM path; the
  # key policy lets only roles under it decrypt (see adtech/main.tf).
  adtech_role_path = "/keyferry/${var.coordinator_name}/"

  tags = merge(var.tags, { "keyferry:coordinator" = var.coordinator_name })
}

# Trust in the broker's issuer. No thumbprint is pinned: IAM uses its library
# of trusted CAs for the issuer's certificate, or takes the thumbprint itself
# when the provider is created (the issuer must then be reachable).
resource "aws_iam_openid_connect_provider" "broker" {
  url            = var.issuer_url
  client_id_list = [var.audience]
  tags           = local.tags
}

# The role the broker assumes with its own token
# (AssumeRoleWithWebIdentity): only tokens of this coordinator, for this
# audience.
data "aws_iam_policy_document" "coordinator_trust" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.broker.arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.issuer_key}:sub"
      values   = [local.subject]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.issuer_key}:aud"
      values   = [var.audience]
    }
  }
}

resource "aws_iam_role" "coordinator" {
  name                 = "${local.prefix}-coordinator"
  description          = "Keyferry coordinator ${var.coordinator_name}: wraps splits with the split key"
  assume_role_policy   = data.aws_iam_policy_document.coordinator_trust.json
  max_session_duration = 3600
  tags                 = local.tags
}

# Encrypt only, on the split key only: the coordinator wraps splits, and
# only ad-tech workloads may unwrap them.
data "aws_iam_policy_document" "coordinator_encrypt" {
  statement {
    sid       = "WrapSplits"
    actions   = ["kms:Encrypt"]
    resources = [aws_kms_key.splits.arn]
  }
}

resource "aws_iam_policy" "coordinator_encrypt" {
  name        = "${local.prefix}-wrap-splits"
  description = "kms:Encrypt on the Keyferry ${var.coordinator_name} split key, nothing else"
  policy      = data.aws_iam_policy_document.coordinator_encrypt.json
  tags        = local.tags
}

resource "aws_iam_role_policy_attachment" "coordinator_encrypt" {
  role       = aws_iam_role.coordinator.name
  policy_arn = aws_iam_policy.coordinator_encrypt.arn
}
