output "key_scope" {
  description = "The ARM scope of the role assignments: the split key."
  value       = "${data.azurerm_resources.vault.resources[0].id}/keys/${local.key_name}"
}

output "role_name" {
  description = "The custom role assigned (unwrap only)."
  value       = local.unwrap_role_name
}

output "granted_principals" {
  description = "Object ids that may unwrap with the split key."
  value       = sort(tolist(local.principals))
}

output "skipped_identities" {
  description = "Identities granted nothing here because their issuer names another tenant than the vault's."
  value       = local.skipped
}

output "broker_enforced_conditions" {
  description = "The claim conditions of each granted identity. Azure RBAC cannot evaluate token claims, so they are enforced only by the broker when it releases the wrapped split."
  value       = { for identity in local.granted : identity.subject => identity.conditions... }
}
