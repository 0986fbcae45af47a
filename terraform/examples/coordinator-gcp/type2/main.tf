# Party B operates Coordinator B, the Type-2, on GCP: its own project, its
# own state, no reference to party A's state. It needs only the Type-1's
# issuer URL.

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
    bucket = "party-b-terraform-state"
    prefix = "keyferry/coordinator-b"
  }
}

provider "google" {
  project = "party-b-keyferry"
  region  = "europe-west1"
}

module "coordinator" {
  source = "../../../coordinator/gcp"

  project_id = "party-b-keyferry"
  region     = "europe-west1"
  name       = "b"
  role       = "type2"
  image      = "europe-west1-docker.pkg.dev/party-b-keyferry/keyferry/keyferry@sha256:0000000000000000000000000000000000000000000000000000000000000000"

  # Party A's peer_url. Without domain_name the public URL would be the
  # service's deterministic https://keyferry-b-<project number>.europe-west1.run.app.
  domain_name = "coordinator-b.example.net"

  # The Type-1's issuer, whose tokens authenticate its handovers.
  peer_issuer = "https://coordinator-a.example.com"

  admin_oidc_issuer   = "https://login.party-b.example.net/oauth2/default"
  admin_oidc_audience = "api://keyferry-b"

  use_cases = [{ name = "aggregation-service" }]

  clouds = {
    gcp = {
      kek                        = "gcp-kms://projects/party-b-splits/locations/global/keyRings/keyferry-b-splits/cryptoKeys/splits"
      workload_identity_provider = "//iam.googleapis.com/projects/210987654321/locations/global/workloadIdentityPools/kf-b-broker/providers/broker"
      service_account            = "kf-b-wrap@party-b-splits.iam.gserviceaccount.com"
    }
  }
}

output "issuer_url" {
  value = module.coordinator.issuer_url
}

output "endpoints" {
  value = module.coordinator.endpoints
}

output "load_balancer_ip" {
  description = "Point coordinator-b.example.net's A record here."
  value       = module.coordinator.load_balancer_ip
}
