# One root per ad tech and coordinator: copy this directory, then
#   keyferry onboard terraform --adtech ID > adtech.json
#   jq .aws adtech.json > aws.auto.tfvars.json
#   terraform init && terraform apply
# The variables below are exactly those of the export's "aws" object; they
# are passed through unchanged. The provider runs in the split key's account
# and region, both read from kms_key_arn.

terraform {
  required_version = "~> 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.90"
    }
  }
}

provider "aws" {
  region = split(":", var.kms_key_arn)[3]
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

variable "kms_key_arn" {
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
  source = "../../workload-cloud/aws/adtech"

  coordinator         = var.coordinator
  adtech_id           = var.adtech_id
  adtech_name         = var.adtech_name
  use_cases           = var.use_cases
  kms_key_arn         = var.kms_key_arn
  workload_identities = var.workload_identities
}

output "role_arn" {
  description = "Give this to the ad tech: its workload roles assume it to decrypt."
  value       = module.adtech.role_arn
}

output "skipped_identities" {
  value = module.adtech.skipped_identities
}
