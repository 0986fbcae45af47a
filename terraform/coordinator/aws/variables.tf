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
  description = "The keyferry container image, pinned by digest (ACCOUNT.dkr.ecr.REGION.amazonaws.com/keyferry@sha256:…)."
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

variable "config_init_image" {
  description = "A small image with /bin/sh and base64 (busybox), pinned by digest, that writes keyferry.toml into the task's shared volume before the broker starts (ECS cannot mount a file from a secret store)."
  type        = string

  validation {
    condition     = can(regex("@sha256:[0-9a-f]{64}$", var.config_init_image))
    error_message = "config_init_image must be pinned by digest (…@sha256:<64 hex>)."
  }
}

variable "domain_name" {
  description = "The coordinator's DNS name (e.g. coordinator-b.example.net). The public and issuer URL is https://<domain_name>."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]*[a-z0-9])?\\.)+[a-z]{2,}$", var.domain_name))
    error_message = "domain_name must be a lower-case DNS name without scheme or path."
  }
}

variable "route53_zone_id" {
  description = "The public Route 53 hosted zone of domain_name: the module adds the ACM validation records and an alias record for the load balancer."
  type        = string
}

variable "vpc_id" {
  description = "The VPC of the load balancer, the tasks and the database."
  type        = string
}

variable "public_subnet_ids" {
  description = "At least two public subnets (different AZs) for the internet-facing load balancer."
  type        = list(string)

  validation {
    condition     = length(var.public_subnet_ids) >= 2
    error_message = "An application load balancer needs at least two subnets in different availability zones."
  }
}

variable "private_subnet_ids" {
  description = "At least two private subnets for the tasks and the database. The tasks need outbound HTTPS (a NAT gateway, or VPC endpoints for ECR, Secrets Manager, KMS, CloudWatch Logs and STS, plus the internet for the peer coordinator and the workload clouds)."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "RDS and ECS need at least two private subnets in different availability zones."
  }
}

variable "access_logs_bucket" {
  description = "An existing S3 bucket for the load balancer's access logs, written under the prefix keyferry-<name>/. It must use SSE-S3 (load balancers cannot write with SSE-KMS) and its bucket policy must let the region's Elastic Load Balancing log delivery put objects there; a central logging bucket usually does."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.access_logs_bucket))
    error_message = "access_logs_bucket must be an S3 bucket name (not an ARN or URL)."
  }
}

variable "ingress_cidr_blocks" {
  description = "Who may reach the load balancer on 443. The issuer's discovery and JWKS must be reachable by the workload clouds' STS, workloads and the peer coordinator, so the default is the whole internet."
  type        = list(string)
  default     = ["0.0.0.0/0"]
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

variable "desired_count" {
  description = "Number of broker tasks. Replicas share the database and take turns at key generation."
  type        = number
  default     = 2

  validation {
    condition     = var.desired_count >= 1
    error_message = "desired_count must be at least 1."
  }
}

variable "cpu" {
  description = "Fargate task CPU units."
  type        = number
  default     = 512
}

variable "memory" {
  description = "Fargate task memory (MiB)."
  type        = number
  default     = 1024
}

variable "cpu_architecture" {
  description = "X86_64 or ARM64, matching the image."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "log_filter" {
  description = "RUST_LOG of the broker."
  type        = string
  default     = "info,sqlx=warn"
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention of the broker's logs."
  type        = number
  default     = 365
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_engine_version" {
  description = "RDS PostgreSQL major version (the parameter group family follows it)."
  type        = string
  default     = "16"
}

variable "db_allocated_storage" {
  description = "Initial RDS storage in GiB (autoscaling up to 5x)."
  type        = number
  default     = 20
}

variable "db_multi_az" {
  description = "Run the database Multi-AZ."
  type        = bool
  default     = true
}

variable "kms_admin_principal_arns" {
  description = "IAM principals that administer (but cannot use) the storage KEK. Empty: the account root, which delegates key administration to IAM policies."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
