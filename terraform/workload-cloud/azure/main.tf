data "azurerm_client_config" "current" {}

data "azurerm_resource_group" "this" {
  name = var.resource_group_name
}

locals {
  prefix  = "keyferry-${var.coordinator_name}"
  subject = "coordinator:${var.coordinator_name}"

  # The custom roles are named after the vault (globally unique, so unique
  # in the tenant); the adtech submodule derives the unwrap role's name from
  # the key's URL.
  wrap_role_name   = "Keyferry split wrap ${var.key_vault_name}"
  unwrap_role_name = "Keyferry split unwrap ${var.key_vault_name}"

  tags = merge(var.tags, { "keyferry-coordinator" = var.coordinator_name })
}

resource "azurerm_key_vault" "splits" {
  #checkov:skip=CKV_AZURE_189:The coordinator wraps from its own cloud (GCP or AWS) and ad-tech workloads unwrap from theirs, over the internet: public network access stays on, limited by the firewall below (default deny, allowed_ip_ranges and allowed_subnet_ids) and by Entra ID authentication and RBAC on every request.
  #checkov:skip=CKV2_AZURE_32:A private endpoint serves only callers inside Azure virtual networks; the coordinator and most ad-tech workloads run in other clouds. Azure workloads can be admitted by subnet (allowed_subnet_ids, service endpoints) instead.
  name                          = var.key_vault_name
  location                      = var.location
  resource_group_name           = var.resource_group_name
  tenant_id                     = data.azurerm_client_config.current.tenant_id
  sku_name                      = var.key_type == "RSA-HSM" ? "premium" : "standard"
  enable_rbac_authorization     = true
  purge_protection_enabled      = true
  soft_delete_retention_days    = 90
  public_network_access_enabled = true
  tags                          = local.tags

  # Only the listed networks reach the vault at all; no trusted-service
  # bypass.
  network_acls {
    bypass                     = "None"
    default_action             = "Deny"
    ip_rules                   = var.allowed_ip_ranges
    virtual_network_subnet_ids = var.allowed_subnet_ids
  }

  lifecycle {
    prevent_destroy = true

    precondition {
      condition     = length(var.allowed_ip_ranges) + length(var.allowed_subnet_ids) > 0
      error_message = "The vault's firewall denies every network not in allowed_ip_ranges or allowed_subnet_ids: list at least the Terraform runner, the coordinator's egress and the ad techs' workloads."
    }
  }
}

# Terraform itself creates the key through the data plane, which RBAC
# governs: the principal running Terraform gets Key Vault Crypto Officer on
# this vault (see README: this is the one broad grant; it is the deployer,
# who as owner could grant itself anything on the vault anyway).
resource "azurerm_role_assignment" "deployer" {
  scope                = azurerm_key_vault.splits.id
  role_definition_name = "Key Vault Crypto Officer"
  principal_id         = data.azurerm_client_config.current.object_id
  description          = "Terraform deployer of the Keyferry ${var.coordinator_name} split key"
}

resource "azurerm_key_vault_key" "splits" {
  name         = var.key_name
  key_vault_id = azurerm_key_vault.splits.id
  key_type     = var.key_type
  key_size     = var.key_size
  # Wrap and unwrap only: no encrypt, decrypt, sign or verify.
  key_opts = ["wrapKey", "unwrapKey"]
  # After this date Key Vault refuses wrap with this version (unwrap still
  # works): rotate before it (README, "Rotation"), or extend it in place.
  expiration_date = var.key_expiration_date
  tags            = local.tags

  depends_on = [azurerm_role_assignment.deployer]

  lifecycle {
    # Destroying this key makes every split wrapped for Azure workloads
    # unreadable.
    prevent_destroy = true
  }
}

# The coordinator's identity in Entra ID, trusted for the broker's own
# tokens of this coordinator only.
resource "azurerm_user_assigned_identity" "coordinator" {
  name                = "${local.prefix}-coordinator"
  location            = var.location
  resource_group_name = var.resource_group_name
  tags                = local.tags
}

resource "azurerm_federated_identity_credential" "broker" {
  name                = "keyferry-broker"
  resource_group_name = var.resource_group_name
  parent_id           = azurerm_user_assigned_identity.coordinator.id
  issuer              = var.issuer_url
  subject             = local.subject
  audience            = ["api://AzureADTokenExchange"]
}

# No built-in role grants wrap alone: the closest, Key Vault Crypto Service
# Encryption User, also grants unwrap and read. Two custom roles, each with
# one data action. Custom roles can be made assignable at a resource group at
# the narrowest, so they are defined on the vault's resource group; every
# assignment is then made on the split key alone.
resource "azurerm_role_definition" "wrap" {
  name        = local.wrap_role_name
  scope       = data.azurerm_resource_group.this.id
  description = "Wrap (RSA-OAEP-256) with Keyferry split keys of vault ${var.key_vault_name}; nothing else."

  permissions {
    data_actions = ["Microsoft.KeyVault/vaults/keys/wrap/action"]
  }

  assignable_scopes = [data.azurerm_resource_group.this.id]
}

resource "azurerm_role_definition" "unwrap" {
  name        = local.unwrap_role_name
  scope       = data.azurerm_resource_group.this.id
  description = "Unwrap with Keyferry split keys of vault ${var.key_vault_name}; nothing else. Assigned to ad-tech workloads by the adtech submodule."

  permissions {
    data_actions = ["Microsoft.KeyVault/vaults/keys/unwrap/action"]
  }

  assignable_scopes = [data.azurerm_resource_group.this.id]
}

resource "azurerm_role_assignment" "coordinator_wrap" {
  scope              = azurerm_key_vault_key.splits.resource_versionless_id
  role_definition_id = azurerm_role_definition.wrap.role_definition_resource_id
  principal_id       = azurerm_user_assigned_identity.coordinator.principal_id
  principal_type     = "ServicePrincipal"
  description        = "Keyferry coordinator ${var.coordinator_name} wraps splits"
}

# Warn at every plan in the last 30 days before the split key expires: after
# it the coordinator can no longer wrap new splits for Azure workloads.
check "split_key_not_about_to_expire" {
  assert {
    condition     = timecmp(var.key_expiration_date, timeadd(plantimestamp(), "720h")) > 0
    error_message = "The split key expires on ${var.key_expiration_date}, in less than 30 days: rotate it (README, \"Rotation\") or set a later key_expiration_date."
  }
}
