data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  prefix     = "keyferry-${var.name}"
  public_url = "https://${var.domain_name}"
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  log_group_name = "/keyferry/${var.name}"
  # Known before the group exists: the at-rest key's policy names it.
  log_group_arn = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.log_group_name}"

  container_port   = 8080
  config_mount_dir = "/etc/keyferry"
  data_dir         = "/var/lib/keyferry"

  tags = merge(var.tags, { "keyferry:coordinator" = var.name })
}

module "config" {
  source = "../config"

  name                = var.name
  role                = var.role
  public_url          = local.public_url
  peer_url            = var.peer_url
  peer_issuer         = var.peer_issuer
  storage_kek         = "aws-kms://${aws_kms_key.storage.arn}"
  listen              = "0.0.0.0:${local.container_port}"
  data_dir            = local.data_dir
  admin_oidc_issuer   = var.admin_oidc_issuer
  admin_oidc_audience = var.admin_oidc_audience
  admin_role_claim    = var.admin_role_claim
  use_cases           = var.use_cases
  clouds              = var.clouds
  issuers             = var.issuers
}
