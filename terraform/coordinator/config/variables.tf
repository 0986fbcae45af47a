variable "name" {
  description = "The coordinator's short name (coordinator.name); its outbound tokens carry sub = coordinator:<name>."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]+$", var.name))
    error_message = "name must be letters, digits, '-' or '_' (the broker's rule for coordinator.name)."
  }
}

variable "role" {
  description = "type1 (generates keys, keeps split A, hands split B to its peer) or type2 (keeps split B)."
  type        = string

  validation {
    condition     = contains(["type1", "type2"], var.role)
    error_message = "role must be type1 or type2."
  }
}

variable "public_url" {
  description = "server.public_url: the https base URL clients reach, which is also the broker's OIDC issuer URL. No trailing slash."
  type        = string

  validation {
    condition     = can(regex("^https://[^/?#]+(/[^?#]*[^/?#])?$", var.public_url))
    error_message = "public_url must be an https URL without query, fragment or trailing slash."
  }
}

variable "peer_url" {
  description = "coordinator.peer_url: the Type-2's public URL. Required for a type1, unused (null) for a type2."
  type        = string
  default     = null

  validation {
    condition     = var.peer_url == null || can(regex("^https://[^/?#]+(/[^?#]*[^/?#])?$", var.peer_url))
    error_message = "peer_url must be an https URL without query, fragment or trailing slash."
  }
}

variable "peer_issuer" {
  description = "coordinator.peer_issuer: the Type-1's issuer (public) URL. Required for a type2, unused (null) for a type1."
  type        = string
  default     = null

  validation {
    condition     = var.peer_issuer == null || can(regex("^https://[^/?#]+(/[^?#]*[^/?#])?$", var.peer_issuer))
    error_message = "peer_issuer must be an https URL without query, fragment or trailing slash."
  }
}

variable "storage_kek" {
  description = "coordinator.storage_kek: the KEK URI (aws-kms://… or gcp-kms://…) that wraps everything the broker stores."
  type        = string

  validation {
    condition     = can(regex("^(aws-kms|gcp-kms|azure-kv)://", var.storage_kek))
    error_message = "storage_kek must be a cloud KEK URI (aws-kms://, gcp-kms:// or azure-kv://); local-kek:// is for the dev profile only."
  }
}

variable "listen" {
  description = "server.listen: the address the broker binds inside the container."
  type        = string
  default     = "0.0.0.0:8080"
}

variable "data_dir" {
  description = "data_dir: a writable directory in the container (unused with PostgreSQL and cloud KEKs, but it must exist)."
  type        = string
  default     = "/var/lib/keyferry"
}

variable "max_connections" {
  description = "storage.max_connections: the database pool size of each replica."
  type        = number
  default     = 10

  validation {
    condition     = var.max_connections >= 1
    error_message = "max_connections must be at least 1."
  }
}

variable "admin_oidc_issuer" {
  description = "admin.oidc_issuer: the operators' OIDC issuer (https). Without it no admin request is accepted in production."
  type        = string

  validation {
    condition     = can(regex("^https://", var.admin_oidc_issuer))
    error_message = "admin_oidc_issuer must be an https URL."
  }
}

variable "admin_oidc_audience" {
  description = "admin.oidc_audience: the aud operator tokens must carry."
  type        = string

  validation {
    condition     = length(var.admin_oidc_audience) > 0
    error_message = "admin_oidc_audience must not be empty."
  }
}

variable "admin_role_claim" {
  description = "admin.role_claim: the claim (dotted path) holding the roles admin, auditor, member. Null keeps the broker's default (keyferry_roles)."
  type        = string
  default     = null
}

variable "use_cases" {
  description = "[[use_cases]]: one key set each. Both coordinators of a pair must list the same names."
  type = list(object({
    name                = string
    aead                = optional(string, "chacha20-poly1305")
    key_id_format       = optional(string, "uuid")
    require_attestation = optional(bool, true)
  }))
  default = [{ name = "aggregation-service" }]

  validation {
    condition = alltrue([
      for uc in var.use_cases : can(regex("^[a-z0-9-]{1,64}$", uc.name))
      && contains(["chacha20-poly1305", "aes-256-gcm"], uc.aead)
      && contains(["uuid", "sequence"], uc.key_id_format)
    ])
    error_message = "Each use case needs a name of 1-64 characters of a-z, 0-9, '-', an aead of chacha20-poly1305 or aes-256-gcm, and a key_id_format of uuid or sequence."
  }
}

variable "clouds" {
  description = "[clouds.*]: the workload clouds whose KEKs wrap every split, each from the matching workload-cloud module's outputs."
  type = object({
    aws = optional(object({
      kek      = string
      role_arn = string
    }))
    gcp = optional(object({
      kek                        = string
      workload_identity_provider = string
      service_account            = string
    }))
    azure = optional(object({
      kek       = string
      tenant_id = string
      client_id = string
    }))
  })
  default = {}
}

variable "issuers" {
  description = "[[issuers]]: workload identity issuers trusted from the configuration file (issuers can also be added through the admin API)."
  type = list(object({
    name               = string
    kind               = string
    issuer             = string
    audience           = string
    algorithms         = optional(list(string))
    max_token_lifetime = optional(string)
    jwks_uri           = optional(string)
  }))
  default = []

  validation {
    condition     = alltrue([for i in var.issuers : contains(["aws", "gcp", "azure", "oidc"], i.kind)])
    error_message = "Each issuer's kind must be aws, gcp, azure or oidc."
  }
}
