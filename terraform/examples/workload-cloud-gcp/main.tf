# Party A's GCP project that holds Coordinator A's split key for GCP
# workloads. Party B applies the same module in its own project, with its
# own state, for Coordinator B's issuer.

terraform {
  required_version = "~> 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.20"
    }
  }
}

provider "google" {
  project = "party-a-splits"
}

module "workload_cloud" {
  source = "../../workload-cloud/gcp"

  project_id       = "party-a-splits"
  coordinator_name = "a"
  issuer_url       = "https://coordinator-a.example.com"
}

output "clouds_config" {
  description = "The coordinator module's clouds.gcp."
  value       = module.workload_cloud.clouds_config
}

output "kms_crypto_key_id" {
  value = module.workload_cloud.kms_crypto_key_id
}
