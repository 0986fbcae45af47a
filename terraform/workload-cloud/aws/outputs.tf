output "kek_uri" {
  description = "clouds.aws.kek of the coordinator's configuration."
  value       = "aws-kms://${aws_kms_key.splits.arn}"
}

output "kms_key_arn" {
  description = "The split key's ARN: the kms_key_arn of this coordinator's ad-tech exports."
  value       = aws_kms_key.splits.arn
}

output "coordinator_role_arn" {
  description = "clouds.aws.role_arn: the role the broker assumes with its own token."
  value       = aws_iam_role.coordinator.arn
}

output "oidc_provider_arn" {
  description = "The IAM OIDC provider trusting the broker's issuer."
  value       = aws_iam_openid_connect_provider.broker.arn
}

output "adtech_role_path" {
  description = "The IAM path of the ad-tech roles the adtech submodule creates (the only roles the key policy lets decrypt)."
  value       = local.adtech_role_path
}

output "clouds_config" {
  description = "The [clouds.aws] section for the coordinator module's clouds.aws input."
  value = {
    kek      = "aws-kms://${aws_kms_key.splits.arn}"
    role_arn = aws_iam_role.coordinator.arn
  }
}
