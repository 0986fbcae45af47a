variable "project_id" {
  description = "The GCP project that holds the workload identity pool, the split key and the coordinator's service account."
  type        = string
}

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

variable "key_location" {
  description = "Location of the split key ring (e.g. global, us, us-central1). Workloads call Cloud KMS there."
  type        = string
  default     = "global"
}

variable "kms_protection_level" {
  description = "Protection level of the split key: SOFTWARE or HSM."
  type        = string
  default     = "HSM"

  validation {
    condition     = contains(["SOFTWARE", "HSM"], var.kms_protection_level)
    error_message = "kms_protection_level must be SOFTWARE or HSM."
  }
}

variable "key_rotation_period" {
  description = "Automatic rotation period of the split key (seconds with an s suffix). Cloud KMS decrypts with any enabled version, so existing wrapped splits stay readable."
  type        = string
  default     = "7776000s"
}

variable "labels" {
  description = "Labels added to the key and the key ring's resources that take them."
  type        = map(string)
  default     = {}
}
