variable "coordinator_name" {
  description = "The coordinator's name (coordinator.name): the broker's tokens carry sub = coordinator:<name>. Also names resources, so lower-case letters, digits and '-' only."
  type        = string

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,18}[a-z0-9])?$", var.coordinator_name))
    error_message = "coordinator_name must be 1-20 lower-case letters, digits or '-', start with a letter and not end with '-'."
  }
}

variable "issuer_url" {
  description = "The coordinator's issuer URL (its server.public_url, the coordinator module's issuer_url output), exactly as in the tokens' iss: https, no trailing slash."
  type        = string

  validation {
    condition     = can(regex("^https://[^/?#]+(/[^?#]*[^/?#])?$", var.issuer_url))
    error_message = "issuer_url must be an https URL without query, fragment or trailing slash."
  }
}

variable "resource_group_name" {
  description = "An existing resource group for the vault and the coordinator's managed identity."
  type        = string
}

variable "location" {
  description = "Azure region of the vault and the identity."
  type        = string
}

variable "key_vault_name" {
  description = "The vault's name (3-24 characters, globally unique); its host becomes <name>.vault.azure.net."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$", var.key_vault_name))
    error_message = "key_vault_name must be 3-24 letters, digits or '-', starting with a letter and not ending with '-'."
  }
}

variable "key_name" {
  description = "The split key's name in the vault."
  type        = string
  default     = "splits"
}

variable "key_type" {
  description = "RSA-HSM (premium vault, HSM-protected, the default) or RSA (standard vault, software-protected)."
  type        = string
  default     = "RSA-HSM"

  validation {
    condition     = contains(["RSA-HSM", "RSA"], var.key_type)
    error_message = "key_type must be RSA-HSM or RSA."
  }
}

variable "key_size" {
  description = "RSA modulus size; the broker wraps with RSA-OAEP-256."
  type        = number
  default     = 3072

  validation {
    condition     = contains([3072, 4096], var.key_size)
    error_message = "key_size must be 3072 or 4096."
  }
}

variable "key_expiration_date" {
  description = "When the split key's current version expires (RFC 3339 UTC, e.g. 2028-12-31T00:00:00Z). Key Vault then refuses to wrap with it, so the coordinator must have rotated to a new version by then; unwrap of existing splits keeps working. Setting a later date extends the current version in place."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$", var.key_expiration_date))
    error_message = "key_expiration_date must be an RFC 3339 UTC time without fraction, e.g. 2028-12-31T00:00:00Z."
  }
}

variable "allowed_ip_ranges" {
  description = "Public IPv4 addresses or CIDR ranges the vault's firewall admits: the Terraform runner (it creates the key through the data plane), the coordinator's egress, and ad-tech workloads outside Azure. Every other network is denied; every admitted request still needs Entra ID authentication and an RBAC role. At least one of allowed_ip_ranges and allowed_subnet_ids must be set."
  type        = list(string)
  default     = []
}

variable "allowed_subnet_ids" {
  description = "Azure subnet IDs the vault's firewall admits (subnets with the Microsoft.KeyVault service endpoint), e.g. those of ad-tech workloads in Azure."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
