output "issuer_url" {
  description = "The broker's OIDC issuer URL (= server.public_url). Workload clouds trust this exact string."
  value       = local.public_url
}

output "public_url" {
  description = "The base URL of every endpoint (same as issuer_url)."
  value       = local.public_url
}

output "endpoints" {
  description = "The broker's endpoints: token exchange, OIDC discovery, JWKS, public keys per use case, the Privacy Sandbox public keys path, the admin API, and health."
  value = {
    token                = "${local.public_url}/v1/token"
    openid_configuration = "${local.public_url}/.well-known/openid-configuration"
    jwks                 = "${local.public_url}/.well-known/jwks.json"
    public_keys          = { for uc in var.use_cases : uc.name => "${local.public_url}/.well-known/${uc.name}/v1/public-keys" }
    public_keys_v1alpha  = "${local.public_url}/v1alpha/publicKeys"
    admin                = "${local.public_url}/v1/admin"
    peer_encryption_keys = "${local.public_url}/v1alpha/encryptionKeys"
    health               = "${local.public_url}/healthz"
    readiness            = "${local.public_url}/readyz"
  }
}

output "coordinator_subject" {
  description = "The sub of the broker's own tokens, which every workload cloud must trust: coordinator:<name>."
  value       = "coordinator:${var.name}"
}

output "storage_kek_uri" {
  description = "coordinator.storage_kek."
  value       = "aws-kms://${aws_kms_key.storage.arn}"
}

output "task_role_arn" {
  description = "The broker's service identity (ECS task role)."
  value       = aws_iam_role.task.arn
}

output "load_balancer_arn" {
  description = "The load balancer's ARN, e.g. to associate a WAF web ACL with it (aws_wafv2_web_acl_association)."
  value       = aws_lb.broker.arn
}

output "load_balancer_dns_name" {
  description = "The load balancer's DNS name (domain_name is an alias of it)."
  value       = aws_lb.broker.dns_name
}

output "database_endpoint" {
  description = "The RDS endpoint (host:port)."
  value       = aws_db_instance.main.endpoint
}

output "database_url_secret_arn" {
  description = "The Secrets Manager secret holding storage.url."
  value       = aws_secretsmanager_secret.database_url.arn
}

output "log_group" {
  description = "The CloudWatch Logs group of the broker."
  value       = aws_cloudwatch_log_group.broker.name
}

output "config_toml" {
  description = "The rendered keyferry.toml (no secrets), for review and `keyferry config check`."
  value       = module.config.toml
}
