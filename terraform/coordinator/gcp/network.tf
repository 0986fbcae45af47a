# The coordinator's own VPC network. Cloud SQL has only a private IP in it
# (private services access), and Cloud Run sends traffic for private ranges
# into it (Direct VPC egress); everything else (the peer coordinator, the
# workload clouds, issuers' JWKS, Google APIs) leaves Cloud Run directly.

resource "google_compute_network" "main" {
  project                 = var.project_id
  name                    = local.service_name
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"

  depends_on = [google_project_service.required]
}

# Nothing in this network accepts connections: Cloud Run's requests arrive
# through Google's front end, not the network, and Cloud SQL sits in the
# peered service producer network. The implied rule already denies ingress;
# this one states it and logs what it drops.
resource "google_compute_firewall" "deny_ingress" {
  project       = var.project_id
  name          = "${local.service_name}-deny-ingress"
  network       = google_compute_network.main.id
  direction     = "INGRESS"
  priority      = 65534
  source_ranges = ["0.0.0.0/0"]

  deny {
    protocol = "all"
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

# Cloud Run's Direct VPC egress takes its addresses from this subnet.
resource "google_compute_subnetwork" "run" {
  project                  = var.project_id
  name                     = "${local.service_name}-run"
  region                   = var.region
  network                  = google_compute_network.main.id
  ip_cidr_range            = var.vpc_subnet_cidr
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_5_SEC"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

# The range Google's service producers (Cloud SQL) take their private
# addresses from, peered into the network.
resource "google_compute_global_address" "private_services" {
  project       = var.project_id
  name          = "${local.service_name}-private-services"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = 20
  network       = google_compute_network.main.id
}

resource "google_service_networking_connection" "private_services" {
  network                 = google_compute_network.main.id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.private_services.name]
  # Removing the peering fails while Cloud SQL still uses it; on destroy it
  # is left to go with the network.
  deletion_policy = "ABANDON"
}
