resource "random_password" "database" {
  length = 40
  # Letters and digits only: the password is embedded in a postgres:// URL.
  special = false
}

resource "google_sql_database_instance" "main" {
  #checkov:skip=CKV_GCP_79:The major version is var.db_version, the operator's choice; its default POSTGRES_16 matches the AWS module's RDS. Moving the default to checkov's newest major would start in-place major upgrades (with downtime) of existing instances on the next apply.
  #checkov:skip=CKV2_GCP_13:log_duration would write a log line for every statement of the broker's connection pool; Query Insights (enabled below) already records per-query latency.
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
      # A private IP only, in the coordinator's network (network.tf). The
      # broker connects through Cloud Run's built-in Cloud SQL connection
      # (the /cloudsql socket, authorized by IAM); with no public IP, the
      # connector reaches the private one over Direct VPC egress, and only
      # with its client certificate.
      ipv4_enabled    = false
      private_network = google_compute_network.main.id
      ssl_mode        = "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"
    }

    # Connections, lock waits, checkpoints, DDL and errors go to Cloud
    # Logging; pgAudit writes role and DDL statements to Cloud Audit Logs.
    # The broker binds every value as a parameter, and log_statement = ddl
    # logs no data statement, so no split or secret reaches a log.
    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }

    database_flags {
      name  = "log_connections"
      value = "on"
    }

    database_flags {
      name  = "log_disconnections"
      value = "on"
    }

    database_flags {
      name  = "log_hostname"
      value = "on"
    }

    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }

    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }

    database_flags {
      name  = "log_statement"
      value = "ddl"
    }

    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }

    database_flags {
      name  = "pgaudit.log"
      value = "ddl,role"
    }

    insights_config {
      query_insights_enabled = true
    }

    maintenance_window {
      day  = 7
      hour = 3
    }
  }

  depends_on = [google_project_service.required, google_service_networking_connection.private_services]
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
