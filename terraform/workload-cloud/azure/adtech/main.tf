# Assigns the vault's custom unwrap role (one data action,
# Microsoft.KeyVault/vaults/keys/unwrap/action), at the scope of the split
# key only, to each workload principal of the ad tech.
#
# RBAC can only name principals of the vault's own tenant. An identity whose
# issuer names another tenant (the ad tech's) is skipped and reported: its
# object id means nothing here. Such a workload reaches the vault through a
# multi-tenant app of the ad tech provisioned in this tenant, and the
# identity to map at the broker (and assign here) is that app's service
# principal object id in this tenant.

data "azurerm_client_config" "current" {}

locals {
  url_parts  = regex("^https://([^./]+)\\.([^/]+)/keys/([^/]+)", var.key_vault_key_id)
  vault_name = local.url_parts[0]
  key_name   = local.url_parts[2]

  unwrap_role_name = "Keyferry split unwrap ${local.vault_name}"

  # Each identity with the tenant its issuer names ("none" if it names none).
  identities = [
    for identity in var.workload_identities : merge(identity, {
      tenant = lower(try(
        regex("^https://login\\.microsoftonline\\.com/([0-9a-fA-F-]{36})/v2\\.0$", identity.issuer)[0],
        regex("^https://sts\\.windows\\.net/([0-9a-fA-F-]{36})/$", identity.issuer)[0],
        "none",
      ))
    })
  ]
  tenant_id = lower(data.azurerm_client_config.current.tenant_id)

  granted    = [for identity in local.identities : identity if identity.tenant == local.tenant_id]
  skipped    = [for identity in local.identities : identity if identity.tenant != local.tenant_id]
  principals = toset([for identity in local.granted : lower(identity.subject)])
}

# The vault's ARM id, found by its (globally unique) name in the provider's
# subscription.
data "azurerm_resources" "vault" {
  type = "Microsoft.KeyVault/vaults"
  name = local.vault_name

  lifecycle {
    postcondition {
      condition     = length(self.resources) == 1
      error_message = "Vault ${local.vault_name} is not in the provider's subscription: point the azurerm provider at the subscription of the split key's vault."
    }
  }
}

resource "azurerm_role_assignment" "unwrap" {
  for_each = local.principals

  scope                = "${data.azurerm_resources.vault.resources[0].id}/keys/${local.key_name}"
  role_definition_name = local.unwrap_role_name
  principal_id         = each.value
  description          = substr("Keyferry ${var.coordinator}: ${var.adtech_name} (${var.adtech_id}) unwraps splits; use cases: ${join(", ", var.use_cases)}", 0, 1024)
}

check "every_identity_granted" {
  assert {
    condition     = length(local.skipped) == 0
    error_message = "Not granted (issuer's tenant is not the vault's tenant ${local.tenant_id}): ${join(", ", [for identity in local.skipped : "${identity.subject} from ${identity.issuer}"])}. Map the ad tech app's service principal in this tenant instead."
  }
}
