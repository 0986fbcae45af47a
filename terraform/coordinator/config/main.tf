# Renders keyferry.toml for the production profile. The file holds no secret:
# storage.url (which carries the database password) is supplied by the
# calling module through KEYFERRY_STORAGE__URL, read from a secret store.
locals {
  toml = templatefile("${path.module}/keyferry.toml.tftpl", {
    name                = var.name
    role                = var.role
    public_url          = var.public_url
    peer_url            = var.role == "type1" ? var.peer_url : null
    peer_issuer         = var.role == "type2" ? var.peer_issuer : null
    storage_kek         = var.storage_kek
    listen              = var.listen
    data_dir            = var.data_dir
    max_connections     = var.max_connections
    admin_oidc_issuer   = var.admin_oidc_issuer
    admin_oidc_audience = var.admin_oidc_audience
    admin_role_claim    = var.admin_role_claim
    use_cases           = var.use_cases
    clouds              = { for name, cloud in var.clouds : name => cloud if cloud != null }
    issuers             = var.issuers
  })
}
