resource "google_cloud_run_v2_service" "broker" {
  project             = var.project_id
  name                = local.service_name
  location            = var.region
  deletion_protection = true
  labels              = var.labels

  # With a custom domain only the load balancer may reach the service; the
  # run.app URL then answers 404.
  ingress = var.domain_name == null ? "INGRESS_TRAFFIC_ALL" : "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"

  template {
    service_account                  = google_service_account.broker.email
    execution_environment            = "EXECUTION_ENVIRONMENT_GEN2"
    max_instance_request_concurrency = 80
    timeout                          = "60s"
    labels                           = var.labels

    # Direct VPC egress for private ranges only: the Cloud SQL connector
    # reaches the instance's private IP; the internet is reached directly.
    vpc_access {
      egress = "PRIVATE_RANGES_ONLY"

      network_interfaces {
        network    = google_compute_network.main.id
        subnetwork = google_compute_subnetwork.run.id
      }
    }

    scaling {
      min_instance_count = var.min_instances
      max_instance_count = var.max_instances
    }

    volumes {
      name = "config"

      secret {
        secret = google_secret_manager_secret.config.secret_id

        items {
          # Pinning the version rolls a new revision whenever the rendered
          # configuration changes.
          version = google_secret_manager_secret_version.config.version
          path    = "keyferry.toml"
        }
      }
    }

    volumes {
      name = "cloudsql"

      cloud_sql_instance {
        instances = [google_sql_database_instance.main.connection_name]
      }
    }

    containers {
      image   = var.image
      command = var.container_command
      args    = ["serve", "--config", local.config_path]

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.memory
        }
        # Background work (key generation, signing-key rotation) runs between
        # requests.
        cpu_idle = false
      }

      env {
        name = "KEYFERRY_STORAGE__URL"

        value_source {
          secret_key_ref {
            secret  = google_secret_manager_secret.database_url.secret_id
            version = google_secret_manager_secret_version.database_url.version
          }
        }
      }

      env {
        name  = "RUST_LOG"
        value = var.log_filter
      }

      volume_mounts {
        name       = "config"
        mount_path = local.config_mount_dir
      }

      volume_mounts {
        name       = "cloudsql"
        mount_path = "/cloudsql"
      }

      # /healthz, not /readyz: readiness also calls every workload cloud's
      # KMS, and one cloud's outage must not take the whole coordinator (token
      # exchange, public keys, the other clouds) out of service. Alert on
      # /readyz instead.
      startup_probe {
        period_seconds    = 5
        failure_threshold = 24

        http_get {
          path = "/healthz"
        }
      }

      liveness_probe {
        period_seconds = 15

        http_get {
          path = "/healthz"
        }
      }
    }
  }

  depends_on = [
    google_project_service.required,
    google_kms_crypto_key_iam_member.broker_storage_kek,
    google_secret_manager_secret_iam_member.broker,
    google_project_iam_member.broker_sql_client,
  ]
}

# The issuer, token and key endpoints are public by design (clouds' STS fetch
# the JWKS, workloads call the token endpoint); the broker authenticates
# every request itself.
resource "google_cloud_run_v2_service_iam_member" "public" {
  project  = var.project_id
  location = google_cloud_run_v2_service.broker.location
  name     = google_cloud_run_v2_service.broker.name
  role     = "roles/run.invoker"
  member   = "allUsers"
}
