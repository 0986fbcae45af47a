output "toml" {
  description = "The rendered keyferry.toml (production profile, no secrets)."
  value       = local.toml

  precondition {
    condition     = var.role != "type1" || var.peer_url != null
    error_message = "A type1 coordinator needs peer_url: the Type-2's public URL."
  }

  precondition {
    condition     = var.role != "type2" || var.peer_issuer != null
    error_message = "A type2 coordinator needs peer_issuer: the Type-1's issuer URL."
  }
}
