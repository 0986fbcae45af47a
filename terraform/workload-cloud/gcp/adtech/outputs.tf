output "kms_crypto_key_id" {
  description = "The split key the ad tech's workloads may decrypt with."
  value       = var.kms_crypto_key_id
}

output "direct_members" {
  description = "Service accounts (without conditions) granted roles/cloudkms.cryptoKeyDecrypter directly."
  value       = sort(tolist(local.direct_members))
}

output "federated_principal_set" {
  description = "The principalSet granted roles/cloudkms.cryptoKeyDecrypter for identities admitted through the ad tech's workload identity pool; null without such identities."
  value       = length(local.federated) > 0 ? google_kms_crypto_key_iam_member.federated["pool"].member : null
}

output "providers" {
  description = "Per issuer: the provider's full resource name (the audience parameter of the STS token exchange), the aud the workload's identity token must carry, and the provider's attribute condition."
  value = {
    for issuer, provider in google_iam_workload_identity_pool_provider.adtech : issuer => {
      name                = "//iam.googleapis.com/${provider.name}"
      token_audience      = issuer == local.confidential_space ? "https://sts.googleapis.com" : "https://iam.googleapis.com/${provider.name}"
      attribute_condition = provider.attribute_condition
    }
  }
}
