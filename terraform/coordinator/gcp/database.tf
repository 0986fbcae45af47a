resource "random_password" "database" {
  length = 40
  # Letters and digits only: the password is embedded in a postgres:// URL.
  special = false
}

resource "google_sql_database_instance" "main" {
  project             = var.project_id
  name                = "keyferry-${var.name}"
  region              = var.region
  database_version    = var.db_version
  deletion_protection = true

  settings {
    tier                        = var.db_tier
    edition                     = "ENTERPRISE"
    availability_type           = var.db_availability_type
    disk_type                   = "PD_SSD"
    disk_autoresize             = true
    deletion_protection_enabled = true
    user_labels                 = var.labels

    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
      start_time                     = "02:00"

      backup_retention_settings {
        retained_backups = 14
      }
    }

    ip_configuration {
      # A public IP without authorized networks: only the Cloud SQL connector
      # (Cloud Run's built-in /cloudsql socket, authorized by IAM) can
      # connect, and only with its client certificate.
      ipv4_enabled = true
      ssl_mode     = "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"
    }

    insights_config {
      query_insights_enabled = true
    }

    maintenance_window {
      day  = 7
      hour = 3
    }
  }

  depends_on = [google_project_service.required]
}

resource "google_sql_database" "keyferry" {
  project  = var.project_id
  instance = google_sql_database_instance.main.name
  name     = "keyferry"
}

resource "google_sql_user" "keyferry" {
  project  = var.project_id
  instance = google_sql_database_instance.main.name
  name     = "keyferry"
  password = random_password.database.result
}

# cloudsql.client only on this instance.
resource "google_project_iam_member" "broker_sql_client" {
  project = var.project_id
  role    = "roles/cloudsql.client"
  member  = "serviceAccount:${google_service_account.broker.email}"

  condition {
    title       = "keyferry-${var.name}-instance-only"
    description = "Only the Keyferry coordinator's own Cloud SQL instance."
    expression  = "resource.name == \"projects/${var.project_id}/instances/${google_sql_database_instance.main.name}\""
  }
}
