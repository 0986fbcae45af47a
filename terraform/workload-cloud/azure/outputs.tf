output "kek_uri" {
  description = "clouds.azure.kek of the coordinator's configuration, pinned to the key's current version (so the broker needs no keys/read)."
  value       = "azure-kv://${trimsuffix(trimprefix(azurerm_key_vault.splits.vault_uri, "https://"), "/")}/keys/${azurerm_key_vault_key.splits.name}/${azurerm_key_vault_key.splits.version}"
}

output "key_vault_key_id" {
  description = "The split key's versionless URL: the key_vault_key_id of this coordinator's ad-tech exports."
  value       = azurerm_key_vault_key.splits.versionless_id
}

output "tenant_id" {
  description = "clouds.azure.tenant_id."
  value       = data.azurerm_client_config.current.tenant_id
}

output "client_id" {
  description = "clouds.azure.client_id: the coordinator managed identity's client id."
  value       = azurerm_user_assigned_identity.coordinator.client_id
}

output "unwrap_role_name" {
  description = "The custom role the adtech submodule assigns to ad-tech workloads."
  value       = azurerm_role_definition.unwrap.name
}

output "clouds_config" {
  description = "The [clouds.azure] section for the coordinator module's clouds.azure input."
  value = {
    kek       = "azure-kv://${trimsuffix(trimprefix(azurerm_key_vault.splits.vault_uri, "https://"), "/")}/keys/${azurerm_key_vault_key.splits.name}/${azurerm_key_vault_key.splits.version}"
    tenant_id = data.azurerm_client_config.current.tenant_id
    client_id = azurerm_user_assigned_identity.coordinator.client_id
  }
}
