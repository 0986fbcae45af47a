# One role per ad tech in the coordinator's KMS account. The ad tech's
# workload roles (the subjects of its AWS identities at the broker) may
# sts:AssumeRole into it, and it may kms:Decrypt with the coordinator's split
# key and nothing else. The key policy (workload-cloud/aws) allows Decrypt
# only to roles under the path /keyferry/<coordinator>/, which is where this
# role is created.

locals {
  account_id = split(":", var.kms_key_arn)[4]

  role_name = "keyferry-${var.coordinator}-${var.adtech_id}"
  role_path = "/keyferry/${var.coordinator}/"

  # IAM can name a role or a role session as a principal. Other AWS subjects
  # the broker accepts (EKS service accounts, system:serviceaccount:…) are
  # not IAM principals: they are skipped and reported.
  principal_pattern = "^arn:aws(-cn|-us-gov)?:(iam::[0-9]{12}:role/.+|sts::[0-9]{12}:assumed-role/[^/]+/.+)$"
  granted = [
    for identity in var.workload_identities : identity
    if can(regex(local.principal_pattern, identity.subject))
  ]
  skipped = [
    for identity in var.workload_identities : identity
    if !can(regex(local.principal_pattern, identity.subject))
  ]
  principals = sort(distinct([for identity in local.granted : identity.subject]))
}

data "aws_iam_policy_document" "trust" {
  statement {
    sid     = "AdTechWorkloads"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = local.principals
    }
  }

  lifecycle {
    precondition {
      condition     = length(local.principals) > 0
      error_message = "None of workload_identities has an IAM role or assumed-role ARN as subject; there is nobody to grant."
    }
  }
}

resource "aws_iam_role" "adtech" {
  name                 = local.role_name
  path                 = local.role_path
  description          = "Keyferry ${var.coordinator}: workloads of ${var.adtech_name} (${var.adtech_id}) unwrap key splits"
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = 3600

  tags = {
    "keyferry:coordinator" = var.coordinator
    "keyferry:adtech"      = var.adtech_id
    "keyferry:use-cases"   = join(" ", var.use_cases)
  }

  lifecycle {
    precondition {
      condition     = length(local.role_name) <= 64
      error_message = "The role name keyferry-<coordinator>-<adtech_id> is longer than IAM's 64 characters."
    }

    precondition {
      condition     = data.aws_caller_identity.current.account_id == local.account_id
      error_message = "The role must be created in the split key's account (the key policy lets only that account's roles under /keyferry/<coordinator>/ decrypt): point the AWS provider at the account of kms_key_arn."
    }
  }
}

data "aws_iam_policy_document" "decrypt" {
  statement {
    sid       = "UnwrapSplits"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "decrypt" {
  name   = "unwrap-splits"
  role   = aws_iam_role.adtech.id
  policy = data.aws_iam_policy_document.decrypt.json
}

data "aws_caller_identity" "current" {}

# Identities whose subject IAM cannot name get no access here; warn at plan.
check "every_identity_granted" {
  assert {
    condition     = length(local.skipped) == 0
    error_message = "Not granted (subject is not an IAM role or assumed-role ARN): ${join(", ", [for identity in local.skipped : identity.subject])}. Map the workload's IAM role ARN at the broker instead."
  }
}

