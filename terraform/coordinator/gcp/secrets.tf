# storage.url with the database password. The broker reads it from
# KEYFERRY_STORAGE__URL, which overrides the configuration file. It connects
# through the Cloud SQL connector's unix socket (sqlx's host= parameter).
resource "google_secret_manager_secret" "database_url" {
  project   = var.project_id
  secret_id = "keyferry-${var.name}-database-url"
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.required]
}

resource "google_secret_manager_secret_version" "database_url" {
  secret      = google_secret_manager_secret.database_url.id
  secret_data = "postgres://${google_sql_user.keyferry.name}:${random_password.database.result}@localhost/${google_sql_database.keyferry.name}?host=/cloudsql/${google_sql_database_instance.main.connection_name}"
}

# keyferry.toml. It holds no secret; Secret Manager is how Cloud Run mounts a
# file into a container.
resource "google_secret_manager_secret" "config" {
  project   = var.project_id
  secret_id = "keyferry-${var.name}-config"
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.required]
}

resource "google_secret_manager_secret_version" "config" {
  secret      = google_secret_manager_secret.config.id
  secret_data = module.config.toml
}

resource "google_secret_manager_secret_iam_member" "broker" {
  for_each = {
    database_url = google_secret_manager_secret.database_url.id
    config       = google_secret_manager_secret.config.id
  }

  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.broker.email}"
}
