variable "project_id" {
  description = "The GCP project that runs this coordinator (Cloud Run, Cloud SQL, Cloud KMS, Secret Manager)."
  type        = string
}

variable "region" {
  description = "The region of the Cloud Run service, the Cloud SQL instance and the storage KEK's key ring."
  type        = string
}

variable "name" {
  description = "The coordinator's name (coordinator.name, sub = coordinator:<name>). Also names every resource, so this module allows only lower-case letters, digits and '-' (1-20 characters, starting with a letter), stricter than the broker."
  type        = string

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,18}[a-z0-9])?$", var.name))
    error_message = "name must be 1-20 lower-case letters, digits or '-', start with a letter and not end with '-'."
  }
}

variable "role" {
  description = "type1 or type2."
  type        = string

  validation {
    condition     = contains(["type1", "type2"], var.role)
    error_message = "role must be type1 or type2."
  }
}

variable "image" {
  description = "The keyferry container image, pinned by digest (REGION-docker.pkg.dev/PROJECT/REPO/keyferry@sha256:…). Cloud Run pulls from Artifact Registry."
  type        = string

  validation {
    condition     = can(regex("@sha256:[0-9a-f]{64}$", var.image))
    error_message = "image must be pinned by digest (…@sha256:<64 hex>), so that what runs is what was reviewed."
  }
}

variable "container_command" {
  description = "The container entrypoint, e.g. [\"/usr/local/bin/keyferry\"]. Null uses the image's ENTRYPOINT, which must then be keyferry."
  type        = list(string)
  default     = null
}

variable "domain_name" {
  description = "A custom domain (e.g. coordinator-a.example.com). When set, the module puts a global external HTTPS load balancer with a Google-managed certificate in front of Cloud Run, restricts Cloud Run ingress to it, and the public URL is https://<domain_name>. When null, the public URL is Cloud Run's deterministic https://<service>-<project number>.<region>.run.app."
  type        = string
  default     = null

  validation {
    condition     = var.domain_name == null || can(regex("^([a-z0-9]([a-z0-9-]*[a-z0-9])?\\.)+[a-z]{2,}$", var.domain_name))
    error_message = "domain_name must be a lower-case DNS name without scheme or path."
  }
}

variable "peer_url" {
  description = "Type-1 only: the Type-2 coordinator's public URL (its issuer URL). Null for a type2."
  type        = string
  default     = null
}

variable "peer_issuer" {
  description = "Type-2 only: the Type-1 coordinator's issuer URL. Null for a type1."
  type        = string
  default     = null
}

variable "admin_oidc_issuer" {
  description = "The operators' OIDC issuer (admin.oidc_issuer), https."
  type        = string
}

variable "admin_oidc_audience" {
  description = "The aud operator tokens must carry (admin.oidc_audience)."
  type        = string
}

variable "admin_role_claim" {
  description = "The claim holding operator roles (admin.role_claim); null keeps the broker's default, keyferry_roles."
  type        = string
  default     = null
}

variable "use_cases" {
  description = "The use cases ([[use_cases]]); both coordinators of a pair must list the same names."
  type = list(object({
    name                = string
    aead                = optional(string, "chacha20-poly1305")
    key_id_format       = optional(string, "uuid")
    require_attestation = optional(bool, true)
  }))
  default = [{ name = "aggregation-service" }]
}

variable "clouds" {
  description = "The workload clouds ([clouds.*]); pass the clouds_config output of each workload-cloud module."
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
  description = "Workload identity issuers trusted from the configuration file ([[issuers]]); they can also be added later with `keyferry onboard issuer add`."
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
}

variable "min_instances" {
  description = "Cloud Run minimum instance count. At least 1: the broker runs the key lifecycle and signing-key rotation in the background."
  type        = number
  default     = 1

  validation {
    condition     = var.min_instances >= 1
    error_message = "min_instances must be at least 1, or background key generation stops when no request arrives."
  }
}

variable "max_instances" {
  description = "Cloud Run maximum instance count."
  type        = number
  default     = 4
}

variable "cpu" {
  description = "CPU limit of the container (Cloud Run syntax, e.g. \"1\")."
  type        = string
  default     = "1"
}

variable "memory" {
  description = "Memory limit of the container (e.g. \"512Mi\")."
  type        = string
  default     = "512Mi"
}

variable "log_filter" {
  description = "RUST_LOG of the broker."
  type        = string
  default     = "info,sqlx=warn"
}

variable "db_tier" {
  description = "Cloud SQL machine tier (ENTERPRISE edition)."
  type        = string
  default     = "db-custom-2-7680"
}

variable "db_availability_type" {
  description = "REGIONAL (high availability, the default) or ZONAL."
  type        = string
  default     = "REGIONAL"

  validation {
    condition     = contains(["REGIONAL", "ZONAL"], var.db_availability_type)
    error_message = "db_availability_type must be REGIONAL or ZONAL."
  }
}

variable "db_version" {
  description = "Cloud SQL PostgreSQL version."
  type        = string
  default     = "POSTGRES_16"
}

variable "vpc_subnet_cidr" {
  description = "The range of the coordinator network's one subnet, from which Cloud Run's Direct VPC egress takes addresses (about two per instance). Cloud SQL's private range (a /20) is allocated next to it automatically."
  type        = string
  default     = "10.8.0.0/24"

  validation {
    condition     = can(cidrnetmask(var.vpc_subnet_cidr)) && can(regex("/([0-9]|1[0-9]|2[0-6])$", var.vpc_subnet_cidr))
    error_message = "vpc_subnet_cidr must be an IPv4 CIDR range of /26 or larger."
  }
}

variable "kms_protection_level" {
  description = "Protection level of the storage KEK: SOFTWARE or HSM."
  type        = string
  default     = "HSM"

  validation {
    condition     = contains(["SOFTWARE", "HSM"], var.kms_protection_level)
    error_message = "kms_protection_level must be SOFTWARE or HSM."
  }
}

variable "key_rotation_period" {
  description = "Automatic rotation period of the storage KEK (seconds with an s suffix). Cloud KMS decrypts with any enabled version, so rotation needs no re-wrap."
  type        = string
  default     = "7776000s"
}

variable "labels" {
  description = "Labels added to every resource that takes them."
  type        = map(string)
  default     = {}
}
