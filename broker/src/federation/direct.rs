//! A workload cloud's ID token as the Bearer of the key endpoints, for the
//! issuers that opt in (`accept_as_bearer`). The stock Privacy Sandbox GCP
//! key fetcher sends its own GCP ID token and has no token-exchange step; for
//! it, the exchange happens here, through the same validation, rate limit,
//! mapping and audit as `POST /v1/token` (`token::exchange_subject`), and the
//! endpoint then sees the same [`VerifiedCredential`] a federated credential
//! would have given it.
//!
//! One exchange per token and scope: its credential is kept, keyed by a hash
//! of the token, until the credential or the ID token expires, whichever is
//! first, so a fetcher that reuses its token for an hour is exchanged (and
//! audited) once, not on every request. Only tokens that passed validation
//! are kept, and at most [`CAPACITY`] of them.

use std::collections::HashMap;
use std::sync::Mutex;

use idp::{UnverifiedIdentity, VerifiedCredential};
use sha2::{Digest as _, Sha256};

use super::ExchangeState;
use super::credential::CredentialError;
use super::token::{self, Via};
use crate::time::unix_ms;

/// Most exchanged tokens kept at once; past it, expired ones are dropped
/// and, if that is not enough, the one that expires first.
const CAPACITY: usize = 4096;

/// The credentials of exchanged Bearer tokens.
pub(super) type DirectBearers = Exchanged<VerifiedCredential>;

/// What exchanged tokens gave, by [`cache_key`] (generic so that its bounds
/// can be tested without minting).
pub(super) struct Exchanged<T> {
    exchanged: Mutex<HashMap<[u8; 32], Entry<T>>>,
}

impl<T> Default for Exchanged<T> {
    fn default() -> Self {
        Exchanged {
            exchanged: Mutex::default(),
        }
    }
}

struct Entry<T> {
    credential: T,
    /// Unix s: the earlier of the credential's and the ID token's expiry.
    until: i64,
}

impl<T: Clone> Exchanged<T> {
    fn get(&self, key: &[u8; 32], now_s: i64) -> Option<T> {
        let exchanged = self.exchanged.lock().unwrap_or_else(|e| e.into_inner());
        exchanged
            .get(key)
            .filter(|e| e.until > now_s)
            .map(|e| e.credential.clone())
    }

    fn put(&self, key: [u8; 32], credential: T, until: i64, now_s: i64) {
        let mut exchanged = self.exchanged.lock().unwrap_or_else(|e| e.into_inner());
        if exchanged.len() >= CAPACITY {
            exchanged.retain(|_, e| e.until > now_s);
        }
        if exchanged.len() >= CAPACITY
            && let Some(first) = exchanged
                .iter()
                .min_by_key(|(_, e)| e.until)
                .map(|(k, _)| *k)
        {
            exchanged.remove(&first);
        }
        exchanged.insert(key, Entry { credential, until });
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.exchanged
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}

/// The credential for `token` as a Bearer needing `scope`, if its (claimed)
/// issuer accepts its tokens as Bearers; `None` otherwise, so the caller
/// answers what it would answer any other unknown Bearer.
pub(super) async fn exchange_bearer(
    state: &ExchangeState,
    token: &str,
    scope: &'static str,
) -> Option<Result<VerifiedCredential, CredentialError>> {
    let federation = &state.federation;
    let claimed = UnverifiedIdentity::peek(token)?;
    if !claimed
        .iss
        .as_deref()
        .is_some_and(|iss| federation.bearer_issuers.contains(iss))
    {
        return None;
    }
    let now_s = unix_ms(state.clock.now()).div_euclid(1000);
    let key = cache_key(token, scope);
    if let Some(credential) = federation.direct.get(&key, now_s) {
        return Some(Ok(credential));
    }
    // The credential is for the broker itself (its public URL, the first
    // audience), with only the endpoint's scope: what the endpoint needs.
    let audience = federation.audiences[0].clone();
    let requested = Some(vec![scope.to_owned()]);
    let exchanged = match token::exchange_subject(state, token, audience, requested, Via::Bearer)
        .await
    {
        Ok(exchanged) => exchanged,
        Err(denial) => {
            let refused = CredentialError::from_denial(&denial);
            if let Err(e) = token::record_denial(state, &denial, Some(claimed), Via::Bearer).await {
                tracing::error!(error = %e, "cannot record audit event");
                return Some(Err(CredentialError::unavailable(
                    "the decision could not be recorded; retry later",
                )));
            }
            return Some(Err(refused));
        }
    };
    let credential = match state
        .issuer
        .verify_credential(exchanged.minted.as_str(), scope)
    {
        Ok(credential) => credential,
        // It was minted a moment ago with this scope: only a signing key
        // rotated away in between could refuse it. The next request
        // exchanges again.
        Err(rejection) => return Some(Err(CredentialError::from(rejection))),
    };
    let until = credential.exp().min(exchanged.subject_expires_at);
    federation.direct.put(key, credential.clone(), until, now_s);
    Some(Ok(credential))
}

/// SHA-256 of the scope and the token: the token itself is never kept.
fn cache_key(token: &str, scope: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(scope.as_bytes());
    hash.update([0]);
    hash.update(token.as_bytes());
    hash.finalize().into()
}

impl CredentialError {
    /// The key API's answer to a refused direct exchange: the identity is
    /// not allowed (403), the broker is busy or failing (429, 503), or the
    /// token itself is refused (401).
    fn from_denial(denial: &token::Denial) -> Self {
        use axum::http::StatusCode;
        match denial.status() {
            StatusCode::SERVICE_UNAVAILABLE => CredentialError::unavailable(denial.description()),
            StatusCode::TOO_MANY_REQUESTS => {
                CredentialError::rate_limited(denial.retry_after().unwrap_or(1))
            }
            _ => match denial.reason {
                "no_mapping" | "ambiguous_mapping" | "condition_failed" | "adtech_disabled"
                | "invalid_scope" => CredentialError::permission_denied(format!(
                    "the workload identity is not allowed: {}",
                    denial.description()
                )),
                _ => CredentialError::unauthenticated(format!(
                    "ID token refused: {}",
                    denial.description()
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_is_bounded_and_forgets_what_expired() {
        let bearers = Exchanged::<&str>::default();
        let credential = "credential";
        for i in 0..CAPACITY + 10 {
            let key = cache_key(&format!("token-{i}"), "keys:read");
            bearers.put(key, credential, 1_000 + i as i64, 500);
        }
        assert_eq!(bearers.len(), CAPACITY, "bounded");
        // The earliest to expire went first.
        assert!(
            bearers
                .get(&cache_key("token-0", "keys:read"), 500)
                .is_none()
        );
        let last = cache_key(&format!("token-{}", CAPACITY + 9), "keys:read");
        assert!(bearers.get(&last, 500).is_some());
        // Past its `until`, an entry is not served, even before it is dropped.
        assert!(bearers.get(&last, 1_000 + CAPACITY as i64 + 9).is_none());
        // Another scope is another exchange.
        let other_scope = cache_key(&format!("token-{}", CAPACITY + 9), "keys:release");
        assert!(bearers.get(&other_scope, 500).is_none());
    }
}
