output "kek_uri" {
  description = "clouds.gcp.kek of the coordinator's configuration."
  value       = "gcp-kms://${google_kms_crypto_key.splits.id}"
}

output "kms_crypto_key_id" {
  description = "The split key (projects/…/cryptoKeys/…): the kms_crypto_key_id of this coordinator's ad-tech exports."
  value       = google_kms_crypto_key.splits.id
}

output "workload_identity_provider" {
  description = "clouds.gcp.workload_identity_provider: the provider's full resource name, which is also the aud of the broker's tokens for GCP."
  value       = "//iam.googleapis.com/${google_iam_workload_identity_pool_provider.broker.name}"
}

output "service_account_email" {
  description = "clouds.gcp.service_account: the service account the broker impersonates."
  value       = google_service_account.coordinator.email
}

output "coordinator_principal" {
  description = "The pool principal of the broker's tokens (granted roles/iam.workloadIdentityUser on the service account)."
  value       = local.coordinator_principal
}

output "clouds_config" {
  description = "The [clouds.gcp] section for the coordinator module's clouds.gcp input."
  value = {
    kek                        = "gcp-kms://${google_kms_crypto_key.splits.id}"
    workload_identity_provider = "//iam.googleapis.com/${google_iam_workload_identity_pool_provider.broker.name}"
    service_account            = google_service_account.coordinator.email
  }
}
