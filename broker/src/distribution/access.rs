//! Who may have which key, checked the same way by the fetch and release
//! endpoints: the key must be servable, the ad tech onboarded for its use
//! case, and the workload's cloud (from the credential, never the request)
//! enabled on this coordinator.

use std::sync::Arc;

use cloud_adapters::KeyWrapper;
use idp::VerifiedCredential;
use serde_json::json;

use super::KeyApiError;
use crate::audit::AuditEvent;
use crate::config::{UnwrapMode, UseCaseConfig};
use crate::state::AppState;
use crate::storage::{KeyRecord, StoreError, status};

/// Key ids are UUIDs or decimal sequence numbers; anything longer is not one.
const MAX_KEY_ID_LEN: usize = 64;

/// The key `id` if a workload may be given it now: published (the Type-2
/// acknowledged it), not revoked, before its TTL.
pub(super) async fn servable_key(state: &AppState, id: &str) -> Result<KeyRecord, KeyApiError> {
    if id.is_empty()
        || id.len() > MAX_KEY_ID_LEN
        || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(KeyApiError::InvalidArgument(
            "a key id is a UUID or a sequence number".into(),
        ));
    }
    let key = match state.store.key(id).await {
        Ok(key) => key,
        Err(StoreError::NotFound(_)) => {
            return Err(KeyApiError::MissingKey(format!("no key `{id}`")));
        }
        Err(e) => return Err(e.into()),
    };
    let now = state.now_ms();
    if key.status == status::REVOKED {
        return Err(KeyApiError::KeyRevoked(key.id));
    }
    if key.status != status::ACTIVE || key.ttl_time <= now {
        return Err(KeyApiError::MissingKey(format!("no key `{id}`")));
    }
    Ok(key)
}

/// The use case named, or the first configured one.
pub(super) fn use_case_or_default(
    state: &AppState,
    name: Option<&str>,
) -> Result<String, KeyApiError> {
    let use_cases = state.keys.use_cases();
    match name {
        Some(name) if use_cases.iter().any(|u| u.name == name) => Ok(name.to_owned()),
        Some(name) => Err(KeyApiError::InvalidArgument(format!(
            "no use case `{}`",
            name.chars().take(64).collect::<String>()
        ))),
        None => use_cases
            .first()
            .map(|u| u.name.clone())
            .ok_or_else(|| KeyApiError::MissingKey("no use case is configured".into())),
    }
}

/// The use case's servable keys created within the last `max_age_secs`,
/// newest first.
pub(super) async fn recent_keys(
    state: &AppState,
    use_case: &str,
    max_age_secs: i64,
) -> Result<Vec<KeyRecord>, KeyApiError> {
    let now = state.now_ms();
    let since = now.saturating_sub(max_age_secs.saturating_mul(1000));
    let mut keys: Vec<KeyRecord> = state
        .store
        .keys(Some(use_case))
        .await?
        .into_iter()
        .filter(|k| k.status == status::ACTIVE && k.ttl_time > now && k.creation_time >= since)
        .collect();
    keys.sort_by(|a, b| b.creation_time.cmp(&a.creation_time).then(a.id.cmp(&b.id)));
    Ok(keys)
}

/// Proof that a credential's ad tech may have keys of one use case, in its
/// cloud, from this coordinator.
pub(super) struct KeyAccess {
    pub(super) adtech: String,
    pub(super) cloud: &'static str,
    pub(super) use_case: UseCaseConfig,
    pub(super) unwrap: UnwrapMode,
    kek: Arc<dyn KeyWrapper>,
    source: String,
}

impl KeyAccess {
    pub(super) async fn check(
        state: &AppState,
        credential: &VerifiedCredential,
        use_case: &str,
    ) -> Result<KeyAccess, KeyApiError> {
        let use_case = state
            .keys
            .use_cases()
            .iter()
            .find(|u| u.name == use_case)
            .cloned()
            .ok_or_else(|| KeyApiError::MissingKey(format!("no use case `{use_case}`")))?;
        let adtech_id = credential.adtech();
        let denied = || {
            KeyApiError::PermissionDenied(format!(
                "ad tech `{adtech_id}` is not onboarded for use case `{}`",
                use_case.name
            ))
        };
        let adtech = match state.store.adtech(adtech_id).await {
            Ok(adtech) => adtech,
            Err(StoreError::NotFound(_)) => return Err(denied()),
            Err(e) => return Err(e.into()),
        };
        if !adtech.enabled || !adtech.use_cases.contains(&use_case.name) {
            return Err(denied());
        }
        let cloud_name = credential.cloud().as_str();
        let (cloud, kek) = state
            .cloud_keks
            .iter()
            .find(|(name, _)| *name == cloud_name)
            .map(|(name, kek)| (*name, kek.clone()))
            .ok_or_else(|| KeyApiError::CloudNotEnabled(cloud_name.to_owned()))?;
        let unwrap = state
            .config
            .clouds
            .enabled()
            .into_iter()
            .find(|(name, _)| *name == cloud)
            .map(|(_, c)| c.unwrap)
            .unwrap_or_default();
        Ok(KeyAccess {
            adtech: adtech.id,
            cloud,
            use_case,
            unwrap,
            kek,
            source: format!("{} {}", credential.src_iss(), credential.src_sub()),
        })
    }

    /// The `GET` endpoints serve only use cases without attestation.
    pub(super) fn require_no_attestation(&self) -> Result<(), KeyApiError> {
        if self.use_case.require_attestation {
            Err(KeyApiError::AttestationRequired(self.use_case.name.clone()))
        } else {
            Ok(())
        }
    }

    /// The workload cloud's KEK URI.
    pub(super) fn kek_uri(&self) -> String {
        self.kek.kek_uri().to_string()
    }

    /// This coordinator's split of `key_id`, wrapped by the cloud's KEK.
    pub(super) async fn cloud_split(
        &self,
        state: &AppState,
        key_id: &str,
    ) -> Result<Vec<u8>, KeyApiError> {
        let kek_uri = self.kek_uri();
        state
            .store
            .splits(key_id)
            .await?
            .into_iter()
            .find(|s| s.kek_uri == kek_uri)
            .map(|s| s.ciphertext)
            .ok_or_else(|| {
                KeyApiError::Unavailable(format!(
                    "key `{key_id}` has no split for {} yet (re-wrap pending)",
                    self.cloud
                ))
            })
    }

    /// Audits a fetch of wrapped splits (not an attested release).
    pub(super) async fn audit_fetch(
        &self,
        state: &AppState,
        key_ids: &[&str],
    ) -> Result<(), KeyApiError> {
        let event = AuditEvent::new(
            "keys.fetched",
            format!("adtech:{}", self.adtech),
            json!({
                "useCase": self.use_case.name,
                "cloud": self.cloud,
                "keyIds": key_ids,
                "workload": self.source,
            }),
        );
        state.audit.record(state.now_ms(), event).await?;
        Ok(())
    }
}
