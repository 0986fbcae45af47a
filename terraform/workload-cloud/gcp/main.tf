data "google_project" "this" {
  project_id = var.project_id
}

locals {
  prefix  = "keyferry-${var.coordinator_name}"
  subject = "coordinator:${var.coordinator_name}"

  # Pool ids have at most 32 characters and service account ids 30.
  pool_id     = "kf-${var.coordinator_name}-broker"
  provider_id = "broker"

  # The principal of the broker's own tokens in the pool.
  coordinator_principal = "principal://iam.googleapis.com/projects/${data.google_project.this.number}/locations/global/workloadIdentityPools/${local.pool_id}/subject/${local.subject}"
}

resource "google_project_service" "required" {
  for_each = toset([
    "cloudkms.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "sts.googleapis.com",
  ])

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

# Trust in the broker's issuer: a pool with one OIDC provider that admits
# only this coordinator's own tokens.
resource "google_iam_workload_identity_pool" "broker" {
  project                   = var.project_id
  workload_identity_pool_id = local.pool_id
  display_name              = "Keyferry ${var.coordinator_name}"
  description               = "Tokens of the Keyferry coordinator ${var.coordinator_name} (${var.issuer_url})"

  depends_on = [google_project_service.required]
}

resource "google_iam_workload_identity_pool_provider" "broker" {
  project                            = var.project_id
  workload_identity_pool_id          = google_iam_workload_identity_pool.broker.workload_identity_pool_id
  workload_identity_pool_provider_id = local.provider_id
  display_name                       = "Keyferry issuer"
  description                        = "The broker's own OIDC issuer"

  attribute_mapping = {
    "google.subject" = "assertion.sub"
  }
  attribute_condition = "assertion.sub == ${jsonencode(local.subject)}"

  # No allowed_audiences: Google then accepts only the provider's own full
  # resource name as aud, which is what the broker sends (the
  # workload_identity_provider value).
  oidc {
    issuer_uri = var.issuer_url
  }
}

# The service account the broker impersonates. It holds one role: encrypt
# with the split key.
resource "google_service_account" "coordinator" {
  project      = var.project_id
  account_id   = "kf-${var.coordinator_name}-wrap"
  display_name = "Keyferry coordinator ${var.coordinator_name}: wraps key splits"
}

resource "google_service_account_iam_member" "coordinator_workload_identity" {
  service_account_id = google_service_account.coordinator.name
  role               = "roles/iam.workloadIdentityUser"
  member             = local.coordinator_principal
}
