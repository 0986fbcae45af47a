# Party A operates Coordinator A, the Type-1, on GCP: its own project, its
# own state. Party B applies examples/coordinator-gcp/type2 (or
# coordinator-aws/type2) in its own project with its own state. The two
# roots share nothing but each other's public URLs.

terraform {
  required_version = "~> 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.20"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  backend "gcs" {
    bucket = "party-a-terraform-state"
    prefix = "keyferry/coordinator-a"
  }
}

provider "google" {
  project = "party-a-keyferry"
  region  = "us-central1"
}

module "coordinator" {
  source = "../../../coordinator/gcp"

  project_id  = "party-a-keyferry"
  region      = "us-central1"
  name        = "a"
  role        = "type1"
  image       = "us-central1-docker.pkg.dev/party-a-keyferry/keyferry/keyferry@sha256:0000000000000000000000000000000000000000000000000000000000000000"
  domain_name = "coordinator-a.example.com"

  # The Type-2's public URL, agreed with party B.
  peer_url = "https://coordinator-b.example.net"

  admin_oidc_issuer   = "https://login.party-a.example.com/realms/operators"
  admin_oidc_audience = "keyferry-admin"

  use_cases = [{ name = "aggregation-service" }]

  # The clouds_config outputs of party A's workload-cloud roots
  # (examples/workload-cloud-*), applied after this coordinator's issuer URL
  # was known. Leave clouds empty on the first apply.
  clouds = {
    aws = {
      kek      = "aws-kms://arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
      role_arn = "arn:aws:iam::111122223333:role/keyferry-a-coordinator"
    }
    gcp = {
      kek                        = "gcp-kms://projects/party-a-splits/locations/global/keyRings/keyferry-a-splits/cryptoKeys/splits"
      workload_identity_provider = "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/kf-a-broker/providers/broker"
      service_account            = "kf-a-wrap@party-a-splits.iam.gserviceaccount.com"
    }
    azure = {
      kek       = "azure-kv://kf-a-splits.vault.azure.net/keys/splits/0123456789abcdef0123456789abcdef"
      tenant_id = "00000000-0000-0000-0000-000000000000"
      client_id = "11111111-1111-1111-1111-111111111111"
    }
  }

  issuers = [
    {
      name     = "google"
      kind     = "gcp"
      issuer   = "https://accounts.google.com"
      audience = "https://coordinator-a.example.com"
    },
  ]
}

output "issuer_url" {
  value = module.coordinator.issuer_url
}

output "endpoints" {
  value = module.coordinator.endpoints
}

output "load_balancer_ip" {
  description = "Point coordinator-a.example.com's A record here."
  value       = module.coordinator.load_balancer_ip
}
