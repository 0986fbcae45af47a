output "role_arn" {
  description = "The role the ad tech's workloads assume (sts:AssumeRole) before calling kms:Decrypt on the split key. The ad tech must also allow its workload roles sts:AssumeRole on this ARN in its own account."
  value       = aws_iam_role.adtech.arn
}

output "kms_key_arn" {
  description = "The split key the role may decrypt with."
  value       = var.kms_key_arn
}

output "granted_principals" {
  description = "The workload role (or role session) ARNs trusted to assume the role."
  value       = local.principals
}

output "skipped_identities" {
  description = "Identities granted nothing here because their subject is not an IAM principal (e.g. EKS service accounts)."
  value       = local.skipped
}

output "broker_enforced_conditions" {
  description = "The claim conditions of each granted identity. IAM cannot evaluate claims of the workload's identity token on sts:AssumeRole, so they are enforced only by the broker when it releases the wrapped split."
  value       = { for identity in local.granted : "${identity.issuer} ${identity.subject}" => identity.conditions... }
}
