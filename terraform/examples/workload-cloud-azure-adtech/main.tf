# One root per ad tech and coordinator: copy this directory, then
#   keyferry onboard terraform --adtech ID > adtech.json
#   jq .azure adtech.json > azure.auto.tfvars.json
#   terraform init && terraform apply
# The variables below are exactly those of the export's "azure" object; they
# are passed through unchanged. The provider must use the subscription of the
# split key's vault (ARM_SUBSCRIPTION_ID).

terraform {
  required_version = "~> 1.5"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.20"
    }
  }
}

provider "azurerm" {
  features {}
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

variable "key_vault_key_id" {
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
  source = "../../workload-cloud/azure/adtech"

  coordinator         = var.coordinator
  adtech_id           = var.adtech_id
  adtech_name         = var.adtech_name
  use_cases           = var.use_cases
  key_vault_key_id    = var.key_vault_key_id
  workload_identities = var.workload_identities
}

output "granted_principals" {
  value = module.adtech.granted_principals
}

output "skipped_identities" {
  value = module.adtech.skipped_identities
}
