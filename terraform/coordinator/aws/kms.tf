# The storage KEK: wraps every split, signing key and secret the broker
# stores in its database. Only the broker's task role may use it; the key
# policy lists administration actions one by one (no kms:*), so neither
# administrators nor any other principal of the account can encrypt or
# decrypt with it through IAM.
data "aws_iam_policy_document" "storage_kek" {
  #checkov:skip=CKV_AWS_109:A key policy, not an IAM policy: its Resource "*" is this one key (the only form KMS documents; the key's ARN does not exist before the key), and administration is limited to the listed principals.
  #checkov:skip=CKV_AWS_111:A key policy, not an IAM policy: its Resource "*" is this one key, and every statement names its principals (and conditions) explicitly.
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

# The at-rest key: encrypts what AWS services keep for this coordinator
# outside the database's storage: the broker's log group, the database URL
# secret and the database's Performance Insights. The broker itself never
# calls KMS with it. CloudWatch Logs uses it as a service, for this one log
# group (encryption context); Secrets Manager and RDS use it on behalf of this
# account's principals (kms:ViaService), as far as their IAM policies allow
# (the execution role's allows decrypting the secret).
data "aws_iam_policy_document" "at_rest" {
  #checkov:skip=CKV_AWS_109:A key policy, not an IAM policy: its Resource "*" is this one key (the only form KMS documents; the key's ARN does not exist before the key), and administration is limited to the listed principals.
  #checkov:skip=CKV_AWS_111:A key policy, not an IAM policy: its Resource "*" is this one key, and every statement names its principals (and conditions) explicitly.
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
    sid    = "CloudWatchLogsForTheBrokerLogGroup"
    effect = "Allow"

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    actions = [
      "kms:Decrypt",
      "kms:DescribeKey",
      "kms:Encrypt",
      "kms:GenerateDataKey",
      "kms:GenerateDataKeyWithoutPlaintext",
      "kms:ReEncryptFrom",
      "kms:ReEncryptTo",
    ]
    resources = ["*"]

    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = [local.log_group_arn]
    }
  }

  statement {
    sid    = "SecretsManagerAndRdsForThisAccount"
    effect = "Allow"

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }

    actions = [
      "kms:CreateGrant",
      "kms:Decrypt",
      "kms:DescribeKey",
      "kms:Encrypt",
      "kms:GenerateDataKey",
      "kms:GenerateDataKeyWithoutPlaintext",
      "kms:ReEncryptFrom",
      "kms:ReEncryptTo",
    ]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values = [
        "secretsmanager.${local.region}.amazonaws.com",
        "rds.${local.region}.amazonaws.com",
      ]
    }
  }
}

resource "aws_kms_key" "at_rest" {
  description             = "Keyferry coordinator ${var.name}: log group, database URL secret and Performance Insights at rest"
  key_usage               = "ENCRYPT_DECRYPT"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.at_rest.json
  tags                    = local.tags

  lifecycle {
    # Destroying this key makes the broker's logs and the database URL
    # secret unreadable.
    prevent_destroy = true
  }
}

resource "aws_kms_alias" "at_rest" {
  name          = "alias/${local.prefix}-at-rest"
  target_key_id = aws_kms_key.at_rest.key_id
}
