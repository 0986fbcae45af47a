# Party A operates Coordinator A, the Type-1, on AWS: its own account, its
# own state. Party B applies examples/coordinator-aws/type2 (or
# coordinator-gcp/type2) in its own account with its own state. The two
# roots share nothing but each other's public URLs.

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
    bucket       = "party-a-terraform-state"
    key          = "keyferry/coordinator-a.tfstate"
    region       = "us-east-1"
    encrypt      = true
    use_lockfile = true
  }
}

provider "aws" {
  region = "us-east-1"
}

module "coordinator" {
  source = "../../../coordinator/aws"

  name              = "a"
  role              = "type1"
  image             = "111122223333.dkr.ecr.us-east-1.amazonaws.com/keyferry@sha256:0000000000000000000000000000000000000000000000000000000000000000"
  config_init_image = "111122223333.dkr.ecr.us-east-1.amazonaws.com/busybox@sha256:1111111111111111111111111111111111111111111111111111111111111111"

  domain_name     = "coordinator-a.example.com"
  route53_zone_id = "Z0123456789ABCDEFGHIJ"

  # An existing bucket (SSE-S3) whose policy lets ELB log delivery write.
  access_logs_bucket = "party-a-alb-access-logs-us-east-1"

  vpc_id             = "vpc-0123456789abcdef0"
  public_subnet_ids  = ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"]
  private_subnet_ids = ["subnet-0bbbbbbbbbbbbbbb1", "subnet-0bbbbbbbbbbbbbbb2"]

  # The Type-2's public URL, agreed with party B.
  peer_url = "https://coordinator-b.example.net"

  admin_oidc_issuer   = "https://login.party-a.example.com/realms/operators"
  admin_oidc_audience = "keyferry-admin"

  use_cases = [{ name = "aggregation-service" }]

  # The clouds_config outputs of party A's workload-cloud roots. Leave clouds
  # empty on the first apply: the workload clouds need this coordinator's
  # issuer URL first.
  clouds = {
    aws = {
      kek      = "aws-kms://arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
      role_arn = "arn:aws:iam::111122223333:role/keyferry-a-coordinator"
    }
  }
}

output "issuer_url" {
  value = module.coordinator.issuer_url
}

output "endpoints" {
  value = module.coordinator.endpoints
}
