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
  value       = "gcp-kms://${google_kms_crypto_key.storage.id}"
}

output "service_account_email" {
  description = "The broker's service identity (Cloud Run service account)."
  value       = google_service_account.broker.email
}

output "cloud_run_service" {
  description = "The Cloud Run service name and its run.app URL."
  value = {
    name = google_cloud_run_v2_service.broker.name
    uri  = google_cloud_run_v2_service.broker.uri
  }
}

output "database_instance" {
  description = "The Cloud SQL instance connection name."
  value       = google_sql_database_instance.main.connection_name
}

output "network_id" {
  description = "The coordinator's VPC network, where the Cloud SQL instance has its only (private) address."
  value       = google_compute_network.main.id
}

output "load_balancer_ip" {
  description = "With domain_name: the address to point the domain's A record at (the managed certificate is issued only after DNS resolves to it). Null otherwise."
  value       = var.domain_name == null ? null : google_compute_global_address.broker["main"].address
}

output "config_toml" {
  description = "The rendered keyferry.toml (no secrets), for review and `keyferry config check`."
  value       = module.config.toml
}
