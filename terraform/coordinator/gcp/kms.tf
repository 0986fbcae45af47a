# The storage KEK: wraps every split, signing key and secret the broker
# stores in its database.
resource "google_kms_key_ring" "storage" {
  project  = var.project_id
  name     = "keyferry-${var.name}-storage"
  location = var.region

  depends_on = [google_project_service.required]
}

resource "google_kms_crypto_key" "storage" {
  name            = "storage-kek"
  key_ring        = google_kms_key_ring.storage.id
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
    # Destroying this key makes every stored split unreadable.
    prevent_destroy = true
  }
}

# Encrypt and decrypt on this one key: the broker wraps what it stores and
# unwraps it again (splits for release, signing keys at start).
resource "google_kms_crypto_key_iam_member" "broker_storage_kek" {
  crypto_key_id = google_kms_crypto_key.storage.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:${google_service_account.broker.email}"
}
