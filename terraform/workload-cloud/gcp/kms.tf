resource "google_kms_key_ring" "splits" {
  project  = var.project_id
  name     = "${local.prefix}-splits"
  location = var.key_location

  depends_on = [google_project_service.required]
}

resource "google_kms_crypto_key" "splits" {
  name            = "splits"
  key_ring        = google_kms_key_ring.splits.id
  purpose         = "ENCRYPT_DECRYPT"
  rotation_period = var.key_rotation_period

  # Versions scheduled for destruction stay restorable for 30 days.
  destroy_scheduled_duration = "2592000s"

  version_template {
    algorithm        = "GOOGLE_SYMMETRIC_ENCRYPTION"
    protection_level = var.kms_protection_level
  }

  labels = var.labels

  lifecycle {
    # Destroying this key makes every split wrapped for GCP workloads
    # unreadable.
    prevent_destroy = true
  }
}

# Encrypter only: the coordinator wraps splits; only ad-tech workloads may
# unwrap (adtech submodule).
resource "google_kms_crypto_key_iam_member" "coordinator_encrypter" {
  crypto_key_id = google_kms_crypto_key.splits.id
  role          = "roles/cloudkms.cryptoKeyEncrypter"
  member        = "serviceAccount:${google_service_account.coordinator.email}"
}
