# Grants the ad tech's workloads roles/cloudkms.cryptoKeyDecrypter on the
# coordinator's split key, and nothing else.
#
# Two principal forms, chosen per identity:
#
# 1. A service account email without conditions is bound directly as
#    serviceAccount:<email>. The workload calls Cloud KMS with its own
#    service account credentials.
#
# 2. Every other identity (a 21-digit unique id, which IAM cannot name as a
#    member, or any identity with claim conditions, which IAM cannot check
#    on a service account's own calls) is admitted through a workload
#    identity pool of this ad tech in the key's project. It has one OIDC
#    provider per issuer whose attribute condition is the OR of the
#    identities of that issuer, each the AND of its subject and its claim
#    conditions (and, for Confidential Space, of the production-image
#    checks). The decrypter role goes to
#    principalSet://iam.googleapis.com/projects/<number>/locations/global/workloadIdentityPools/<pool>/*.
#    The workload exchanges its identity token at Google STS (audience: the
#    provider's output audience) and calls Cloud KMS with the federated token.

locals {
  key_project = split("/", var.kms_crypto_key_id)[1]

  confidential_space = "https://confidentialcomputing.googleapis.com"

  email_pattern = "^[a-z0-9-]+@[a-z0-9-]+\\.iam\\.gserviceaccount\\.com$"

  direct = [
    for identity in var.workload_identities : identity
    if can(regex(local.email_pattern, identity.subject)) && length(identity.conditions) == 0
  ]
  federated = [
    for identity in var.workload_identities : identity
    if !(can(regex(local.email_pattern, identity.subject)) && length(identity.conditions) == 0)
  ]

  direct_members = toset([for identity in local.direct : "serviceAccount:${identity.subject}"])

  # CEL for one identity: the AND of its subject, its claim conditions and,
  # for Confidential Space, the production-image checks. Claim paths are
  # dotted; each segment becomes an index, so claim names that are not CEL
  # identifiers work. Strings are written with jsonencode, which CEL reads as
  # a double-quoted literal.
  confidential_space_terms = [
    "assertion.swname == \"CONFIDENTIAL_SPACE\"",
    "\"STABLE\" in assertion.submods.confidential_space.support_attributes",
  ]
  identity_conditions = [
    for identity in local.federated : {
      issuer = identity.issuer
      subject = (
        !can(regex(local.email_pattern, identity.subject)) ? "assertion.sub == ${jsonencode(identity.subject)}" :
        identity.issuer == local.confidential_space ? "${jsonencode(identity.subject)} in assertion.google_service_accounts" :
        "assertion.email == ${jsonencode(identity.subject)}"
      )
      claims = [
        for claim, value in identity.conditions :
        "assertion${join("", [for segment in split(".", claim) : "[${jsonencode(segment)}]"])} == ${jsonencode(value)}"
      ]
    }
  ]
  identity_expressions = [
    for c in local.identity_conditions : {
      issuer = c.issuer
      expression = join(" && ", concat(
        [c.subject],
        c.claims,
        c.issuer == local.confidential_space ? local.confidential_space_terms : [],
      ))
    }
  ]

  issuers = toset([for identity in local.federated : identity.issuer])
  provider_conditions = {
    for issuer in local.issuers : issuer => join(" || ", [
      for c in local.identity_expressions : "(${c.expression})" if c.issuer == issuer
    ])
  }

  # Pool ids: 4-32 characters; provider ids: 4-32 characters.
  pool_id      = "kf-${substr(var.adtech_id, 0, 18)}-${substr(sha256("${var.coordinator}/${var.adtech_id}"), 0, 8)}"
  pool_enabled = length(local.federated) > 0 ? toset(["pool"]) : toset([])
  provider_ids = { for issuer in local.issuers : issuer => "i-${substr(sha256(issuer), 0, 12)}" }
}

data "google_project" "key" {
  project_id = local.key_project
}

resource "google_kms_crypto_key_iam_member" "direct" {
  for_each = local.direct_members

  crypto_key_id = var.kms_crypto_key_id
  role          = "roles/cloudkms.cryptoKeyDecrypter"
  member        = each.value
}

resource "google_iam_workload_identity_pool" "adtech" {
  for_each = local.pool_enabled

  project                   = local.key_project
  workload_identity_pool_id = local.pool_id
  display_name              = substr("Keyferry ${var.adtech_id}", 0, 32)
  description               = substr("Keyferry ${var.coordinator}: workloads of ${var.adtech_name} (${var.adtech_id}); use cases: ${join(", ", var.use_cases)}", 0, 256)
}

resource "google_iam_workload_identity_pool_provider" "adtech" {
  for_each = local.provider_conditions

  project                            = local.key_project
  workload_identity_pool_id          = google_iam_workload_identity_pool.adtech["pool"].workload_identity_pool_id
  workload_identity_pool_provider_id = local.provider_ids[each.key]
  display_name                       = substr(replace(each.key, "https://", ""), 0, 32)
  description                        = "Identities of ${var.adtech_id} issued by ${each.key}"

  attribute_mapping = {
    "google.subject" = "assertion.sub"
  }
  attribute_condition = each.value

  oidc {
    issuer_uri = each.key
    # Confidential Space attestation tokens are minted for Google STS by
    # default; other issuers' tokens must name this provider.
    allowed_audiences = each.key == local.confidential_space ? ["https://sts.googleapis.com"] : null
  }

  lifecycle {
    precondition {
      condition     = length(each.value) <= 4096
      error_message = "The attribute condition for ${each.key} is longer than 4096 characters: split the ad tech's identities of this issuer."
    }
  }
}

resource "google_kms_crypto_key_iam_member" "federated" {
  for_each = local.pool_enabled

  crypto_key_id = var.kms_crypto_key_id
  role          = "roles/cloudkms.cryptoKeyDecrypter"
  member        = "principalSet://iam.googleapis.com/projects/${data.google_project.key.number}/locations/global/workloadIdentityPools/${google_iam_workload_identity_pool.adtech[each.key].workload_identity_pool_id}/*"

  # A pool principal is only admitted after one of its providers' attribute
  # conditions held, so create the providers first.
  depends_on = [google_iam_workload_identity_pool_provider.adtech]
}
