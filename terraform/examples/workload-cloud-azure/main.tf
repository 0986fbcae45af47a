# Party A's Azure subscription that holds Coordinator A's split key for Azure
# workloads. Party B applies the same module in its own subscription, with
# its own state, for Coordinator B's issuer. The subscription comes from
# ARM_SUBSCRIPTION_ID.

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

module "workload_cloud" {
  source = "../../workload-cloud/azure"

  coordinator_name    = "a"
  issuer_url          = "https://coordinator-a.example.com"
  resource_group_name = "keyferry-a"
  location            = "eastus"
  key_vault_name      = "kf-a-splits"

  # Rotate the split key before this date (README of the module, "Rotation").
  key_expiration_date = "2028-12-31T00:00:00Z"

  # The vault's firewall denies everything else: the Terraform runner, the
  # coordinator's egress and the ad techs' workloads outside Azure.
  allowed_ip_ranges = ["198.51.100.10", "203.0.113.0/28"]
}

output "clouds_config" {
  description = "The coordinator module's clouds.azure."
  value       = module.workload_cloud.clouds_config
}

output "key_vault_key_id" {
  value = module.workload_cloud.key_vault_key_id
}
