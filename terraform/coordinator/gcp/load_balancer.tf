# Only with var.domain_name: a global external Application Load Balancer with
# a Google-managed certificate, TLS 1.2+ (MODERN profile), port 443 only.

locals {
  lb = var.domain_name == null ? toset([]) : toset(["main"])
}

resource "google_compute_global_address" "broker" {
  for_each = local.lb

  project = var.project_id
  name    = "${local.service_name}-ip"
}

resource "google_compute_region_network_endpoint_group" "broker" {
  for_each = local.lb

  project               = var.project_id
  name                  = "${local.service_name}-neg"
  region                = var.region
  network_endpoint_type = "SERVERLESS"

  cloud_run {
    service = google_cloud_run_v2_service.broker.name
  }
}

resource "google_compute_backend_service" "broker" {
  for_each = local.lb

  project               = var.project_id
  name                  = "${local.service_name}-backend"
  load_balancing_scheme = "EXTERNAL_MANAGED"

  backend {
    group = google_compute_region_network_endpoint_group.broker[each.key].id
  }

  log_config {
    enable = true
  }
}

resource "google_compute_url_map" "broker" {
  for_each = local.lb

  project         = var.project_id
  name            = "${local.service_name}-urlmap"
  default_service = google_compute_backend_service.broker[each.key].id
}

resource "google_compute_managed_ssl_certificate" "broker" {
  for_each = local.lb

  project = var.project_id
  name    = "${local.service_name}-cert"

  managed {
    domains = [var.domain_name]
  }
}

resource "google_compute_ssl_policy" "broker" {
  for_each = local.lb

  project         = var.project_id
  name            = "${local.service_name}-tls"
  profile         = "MODERN"
  min_tls_version = "TLS_1_2"
}

resource "google_compute_target_https_proxy" "broker" {
  for_each = local.lb

  project          = var.project_id
  name             = "${local.service_name}-https"
  url_map          = google_compute_url_map.broker[each.key].id
  ssl_certificates = [google_compute_managed_ssl_certificate.broker[each.key].id]
  ssl_policy       = google_compute_ssl_policy.broker[each.key].id
}

resource "google_compute_global_forwarding_rule" "broker" {
  for_each = local.lb

  project               = var.project_id
  name                  = "${local.service_name}-https"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.broker[each.key].address
  port_range            = "443"
  target                = google_compute_target_https_proxy.broker[each.key].id
}
