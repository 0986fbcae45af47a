data "google_project" "this" {
  project_id = var.project_id
}

locals {
  service_name = "keyferry-${var.name}"
  # Cloud Run's deterministic URL, known before the service exists, so the
  # broker's own configuration can name it as its issuer.
  run_app_url = "https://${local.service_name}-${data.google_project.this.number}.${var.region}.run.app"
  public_url  = var.domain_name == null ? local.run_app_url : "https://${var.domain_name}"

  config_mount_dir = "/etc/keyferry"
  config_path      = "${local.config_mount_dir}/keyferry.toml"

  apis = [
    "run.googleapis.com",
    "sqladmin.googleapis.com",
    "secretmanager.googleapis.com",
    "cloudkms.googleapis.com",
    "compute.googleapis.com",
    "servicenetworking.googleapis.com",
  ]
}

resource "google_project_service" "required" {
  for_each = toset(local.apis)

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

# The broker's own service identity. Its ambient credentials (the Cloud Run
# metadata server) open the storage KEK; it holds no other cloud permission:
# workload-cloud KEKs are reached by federation with the broker's own issuer.
resource "google_service_account" "broker" {
  project      = var.project_id
  account_id   = local.service_name
  display_name = "Keyferry coordinator ${var.name} (${var.role})"
}

module "config" {
  source = "../config"

  name                = var.name
  role                = var.role
  public_url          = local.public_url
  peer_url            = var.peer_url
  peer_issuer         = var.peer_issuer
  storage_kek         = "gcp-kms://${google_kms_crypto_key.storage.id}"
  admin_oidc_issuer   = var.admin_oidc_issuer
  admin_oidc_audience = var.admin_oidc_audience
  admin_role_claim    = var.admin_role_claim
  use_cases           = var.use_cases
  clouds              = var.clouds
  issuers             = var.issuers
}
