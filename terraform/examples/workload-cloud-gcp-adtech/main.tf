# One root per ad tech and coordinator: copy this directory, then
#   keyferry onboard terraform --adtech ID > adtech.json
#   jq .gcp adtech.json > gcp.auto.tfvars.json
#   terraform init && terraform apply
# The variables below are exactly those of the export's "gcp" object; they
# are passed through unchanged. The provider works in the split key's project,
# read from kms_crypto_key_id.

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
  project = split("/", var.kms_crypto_key_id)[1]
}

variable "coordinator" {
  type = string
}

variable "adtech_id" {
  type = string
}

variable "adtech_name" {
  type = string
}

variable "use_cases" {
  type = list(string)
}

variable "kms_crypto_key_id" {
  type = string
}

variable "workload_identities" {
  type = list(object({
    issuer     = string
    subject    = string
    conditions = optional(map(string), {})
  }))
}

module "adtech" {
  source = "../../workload-cloud/gcp/adtech"

  coordinator         = var.coordinator
  adtech_id           = var.adtech_id
  adtech_name         = var.adtech_name
  use_cases           = var.use_cases
  kms_crypto_key_id   = var.kms_crypto_key_id
  workload_identities = var.workload_identities
}

output "direct_members" {
  value = module.adtech.direct_members
}

output "providers" {
  description = "Give this to the ad tech: the STS audience and token audience per issuer, for identities admitted through the pool."
  value       = module.adtech.providers
}
