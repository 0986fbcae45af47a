# The storage KEK: wraps every split, signing key and secret the broker
# stores in its database. Only the broker's task role may use it; the key
# policy lists administration actions one by one (no kms:*), so neither
# administrators nor any other principal of the account can encrypt or
# decrypt with it through IAM.
data "aws_iam_policy_document" "storage_kek" {
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
    sid    = "BrokerWrapsAndUnwrapsItsStorage"
    effect = "Allow"

    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.task.arn]
    }

    actions   = ["kms:Encrypt", "kms:Decrypt"]
    resources = ["*"]
  }
}

resource "aws_kms_key" "storage" {
  description             = "Keyferry coordinator ${var.name}: storage KEK"
  key_usage               = "ENCRYPT_DECRYPT"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.storage_kek.json
  tags                    = local.tags

  lifecycle {
    # Destroying this key makes every stored split unreadable.
    prevent_destroy = true
  }
}

resource "aws_kms_alias" "storage" {
  name          = "alias/${local.prefix}-storage"
  target_key_id = aws_kms_key.storage.key_id
}
