# Exactly the fields of the "azure" object of the broker's ad-tech export
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
  description = "The use cases the ad tech may fetch keys for (recorded in the role assignments' descriptions; the split key covers every use case of the coordinator)."
  type        = list(string)
}

variable "key_vault_key_id" {
  description = "The coordinator's split key URL, https://<vault>.vault.azure.net/keys/<name>[/<version>] (the workload-cloud/azure module's key_vault_key_id output)."
  type        = string

  validation {
    condition     = can(regex("^https://[a-zA-Z0-9-]+\\.vault\\.(azure\\.net|azure\\.cn|usgovcloudapi\\.net)/keys/[a-zA-Z0-9-]+(/[0-9a-f]{32})?$", var.key_vault_key_id))
    error_message = "key_vault_key_id must be https://<vault>.vault.azure.net/keys/<name>, optionally followed by /<version>."
  }
}

variable "workload_identities" {
  description = "The ad tech's Azure workload identities as mapped at the broker: issuer (https://login.microsoftonline.com/<tenant>/v2.0 or https://sts.windows.net/<tenant>/), subject (the principal's object id) and claim conditions (checked by the broker; Azure RBAC cannot evaluate token claims)."
  type = list(object({
    issuer     = string
    subject    = string
    conditions = optional(map(string), {})
  }))

  validation {
    condition = alltrue([
      for identity in var.workload_identities :
      can(regex("^(?i)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", identity.subject))
    ])
    error_message = "Each Azure subject must be an object id GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)."
  }
}
