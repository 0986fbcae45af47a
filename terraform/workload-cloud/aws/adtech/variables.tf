# Exactly the fields of the "aws" object of the broker's ad-tech export
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
  description = "The use cases the ad tech may fetch keys for (recorded in a tag; the split key covers every use case of the coordinator)."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "The coordinator's split key in this AWS account (the workload-cloud/aws module's kms_key_arn output)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws(-cn|-us-gov)?:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]{36}$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:<partition>:kms:<region>:<account>:key/<uuid>), not an alias."
  }
}

variable "workload_identities" {
  description = "The ad tech's AWS workload identities as mapped at the broker: issuer, subject (an IAM role ARN, or an STS assumed-role ARN) and claim conditions (checked by the broker at token exchange; IAM cannot evaluate them)."
  type = list(object({
    issuer     = string
    subject    = string
    conditions = optional(map(string), {})
  }))
}
