# The split-wrapping KEK. Its policy:
# - lets administrators administer it, action by action (no kms:*), without
#   any use of the key;
# - lets IAM policies grant kms:Encrypt only to the coordinator role;
# - lets IAM policies grant kms:Decrypt only to roles under the ad-tech path
#   /keyferry/<coordinator>/, which the adtech submodule creates.
# Both use statements delegate to IAM (principal = this account) with an
# aws:PrincipalArn condition, so the adtech submodule can grant Decrypt with
# a role policy without editing this key policy.
data "aws_iam_policy_document" "splits" {
  #checkov:skip=CKV_AWS_109:A key policy, not an IAM policy: its Resource "*" is this one key (the only form KMS documents; the key's ARN does not exist before the key), and administration is limited to the listed principals.
  #checkov:skip=CKV_AWS_111:A key policy, not an IAM policy: its Resource "*" is this one key, and the use statements are bound by aws:PrincipalArn to the coordinator role and the ad-tech role path.
  #checkov:skip=CKV_AWS_356:A key policy, not an IAM policy: its Resource "*" means this one key, never other resources.
  statement {
    sid    = "KeyAdministration"
    effect = "Allow"

    principals {
      type        = "AWS"
      identifiers = length(var.kms_admin_principal_arns) > 0 ? var.kms_admin_principal_arns : ["arn:${local.partition}:iam::${local.account_id}:root"]
    }

    actions = [
      "kms:CancelKeyDeletion",
      "kms:CreateAlias",
      "kms:DeleteAlias",
      "kms:DescribeKey",
      "kms:DisableKey",
      "kms:EnableKey",
      "kms:EnableKeyRotation",
      "kms:GetKeyPolicy",
      "kms:GetKeyRotationStatus",
      "kms:ListKeyPolicies",
      "kms:ListKeyRotations",
      "kms:ListResourceTags",
      "kms:PutKeyPolicy",
      "kms:RotateKeyOnDemand",
      "kms:ScheduleKeyDeletion",
      "kms:TagResource",
      "kms:UntagResource",
      "kms:UpdateAlias",
      "kms:UpdateKeyDescription",
    ]
    resources = ["*"]
  }

  statement {
    sid    = "CoordinatorMayOnlyWrap"
    effect = "Allow"

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }

    actions   = ["kms:Encrypt"]
    resources = ["*"]

    condition {
      test     = "ArnEquals"
      variable = "aws:PrincipalArn"
      values   = [aws_iam_role.coordinator.arn]
    }
  }

  statement {
    sid    = "AdTechRolesMayOnlyUnwrap"
    effect = "Allow"

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }

    actions   = ["kms:Decrypt"]
    resources = ["*"]

    condition {
      test     = "ArnLike"
      variable = "aws:PrincipalArn"
      values   = ["arn:${local.partition}:iam::${local.account_id}:role${local.adtech_role_path}*"]
    }
  }
}

resource "aws_kms_key" "splits" {
  description              = "Keyferry coordinator ${var.coordinator_name}: wraps key splits for workloads"
  key_usage                = "ENCRYPT_DECRYPT"
  customer_master_key_spec = "SYMMETRIC_DEFAULT"
  enable_key_rotation      = true
  rotation_period_in_days  = 365
  deletion_window_in_days  = 30
  policy                   = data.aws_iam_policy_document.splits.json
  tags                     = local.tags

  lifecycle {
    # Destroying this key makes every split wrapped for AWS workloads
    # unreadable.
    prevent_destroy = true
  }
}

resource "aws_kms_alias" "splits" {
  name          = "alias/${local.prefix}-splits"
  target_key_id = aws_kms_key.splits.key_id
}
