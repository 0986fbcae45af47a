# Party A's AWS account that holds Coordinator A's split key for AWS
# workloads. Party B applies the same module in its own account, with its own
# state, for Coordinator B's issuer.

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
  region = "us-east-1"
}

module "workload_cloud" {
  source = "../../workload-cloud/aws"

  coordinator_name = "a"
  issuer_url       = "https://coordinator-a.example.com"
}

output "clouds_config" {
  description = "The coordinator module's clouds.aws."
  value       = module.workload_cloud.clouds_config
}

output "kms_key_arn" {
  value = module.workload_cloud.kms_key_arn
}
