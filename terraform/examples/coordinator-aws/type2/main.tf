# Party B operates Coordinator B, the Type-2, on AWS: its own account, its
# own state, no reference to party A's state. It needs only the Type-1's
# issuer URL.

terraform {
  required_version = "~> 1.10" # the S3 backend's use_lockfile

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.90"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  backend "s3" {
    bucket       = "party-b-terraform-state"
    key          = "keyferry/coordinator-b.tfstate"
    region       = "eu-west-1"
    encrypt      = true
    use_lockfile = true
  }
}

provider "aws" {
  region = "eu-west-1"
}

module "coordinator" {
  source = "../../../coordinator/aws"

  name              = "b"
  role              = "type2"
  image             = "444455556666.dkr.ecr.eu-west-1.amazonaws.com/keyferry@sha256:0000000000000000000000000000000000000000000000000000000000000000"
  config_init_image = "444455556666.dkr.ecr.eu-west-1.amazonaws.com/busybox@sha256:1111111111111111111111111111111111111111111111111111111111111111"

  domain_name     = "coordinator-b.example.net"
  route53_zone_id = "Z9876543210ZYXWVUTSRQ"

  # An existing bucket (SSE-S3) whose policy lets ELB log delivery write.
  access_logs_bucket = "party-b-alb-access-logs-eu-west-1"

  vpc_id             = "vpc-0fedcba9876543210"
  public_subnet_ids  = ["subnet-0ccccccccccccccc1", "subnet-0ccccccccccccccc2"]
  private_subnet_ids = ["subnet-0ddddddddddddddd1", "subnet-0ddddddddddddddd2"]

  # The Type-1's issuer, whose tokens authenticate its handovers.
  peer_issuer = "https://coordinator-a.example.com"

  admin_oidc_issuer   = "https://login.party-b.example.net/oauth2/default"
  admin_oidc_audience = "api://keyferry-b"

  use_cases = [{ name = "aggregation-service" }]

  clouds = {
    aws = {
      kek      = "aws-kms://arn:aws:kms:eu-west-1:444455556666:key/abcd1234-ab12-cd34-ef56-abcdef123456"
      role_arn = "arn:aws:iam::444455556666:role/keyferry-b-coordinator"
    }
  }
}

output "issuer_url" {
  value = module.coordinator.issuer_url
}

output "endpoints" {
  value = module.coordinator.endpoints
}
