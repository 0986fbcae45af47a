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
    condition     = can(regex("^https://[^/?#:]+(/[^?#]*[^/?#])?$", var.issuer_url))
    error_message = "issuer_url must be an https URL without port, query, fragment or trailing slash (IAM OIDC providers take no port)."
  }
}

variable "audience" {
  description = "The aud of the broker's tokens for AWS (the OIDC provider's client id). The broker sends sts.amazonaws.com."
  type        = string
  default     = "sts.amazonaws.com"
}

variable "kms_admin_principal_arns" {
  description = "IAM principals that administer (but cannot use) the split key. Empty: the account root, which delegates key administration to IAM policies."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
