# Exactly the fields of the "gcp" object of the broker's ad-tech export
# (GET /v1/admin/adtechs/{id}/terraform, `keyferry onboard terraform`),
# written as *.auto.tfvars.json. Add no variable here that the export does
# not carry.

variable "coordinator" {
  description = "The coordinator's name (coordinator.name) whose split key this ad tech may unwrap."
  type        = string

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,18}[a-z0-9])?$", var.coordinator))
    error_message = "coordinator must be 1-20 lower-case letters, digits or '-' (the workload-cloud module's coordinator_name)."
  }
}

variable "adtech_id" {
  description = "The ad tech's id at the broker (2-64 characters of a-z, 0-9, '-', starting with a letter)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,63}$", var.adtech_id))
    error_message = "adtech_id must be 2-64 characters of a-z, 0-9, '-', starting with a letter."
  }
}

variable "adtech_name" {
  description = "The ad tech's display name (used in descriptions only)."
  type        = string
}

variable "use_cases" {
  description = "The use cases the ad tech may fetch keys for (recorded in the pool's description; the split key covers every use case of the coordinator)."
  type        = list(string)
}

variable "kms_crypto_key_id" {
  description = "The coordinator's split key, projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k> (the workload-cloud/gcp module's kms_crypto_key_id output)."
  type        = string

  validation {
    condition     = can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.kms_crypto_key_id))
    error_message = "kms_crypto_key_id must be projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>."
  }
}

variable "workload_identities" {
  description = "The ad tech's GCP workload identities as mapped at the broker: issuer (https://accounts.google.com or https://confidentialcomputing.googleapis.com), subject (a service account email or its 21-digit unique id) and claim conditions (claim path => required value)."
  type = list(object({
    issuer     = string
    subject    = string
    conditions = optional(map(string), {})
  }))

  validation {
    condition = alltrue([
      for identity in var.workload_identities :
      can(regex("^([0-9]{21}|[a-z0-9-]+@[a-z0-9-]+\\.iam\\.gserviceaccount\\.com)$", identity.subject))
    ])
    error_message = "Each GCP subject must be a 21-digit service account unique id or <name>@<project>.iam.gserviceaccount.com."
  }
}
