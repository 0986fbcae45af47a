//! Who may have which key, checked the same way by the fetch and release
//! endpoints: the key must be servable, the ad tech onboarded for its use
//! case, and the workload's cloud (from the credential, never the request)
//! enabled on this coordinator.

use std::sync::Arc;

use cloud_adapters::{Cloud, KeyWrapper};
use idp::VerifiedCredential;
use serde_json::json;

use super::{Distribution, KeyApiError};
use crate::audit::{AuditEvent, EventKind};
use crate::config::{UnwrapMode, UseCaseConfig};
use crate::storage::{KeyRecord, StoreError, status};

/// Key ids are UUIDs or decimal sequence numbers; anything longer is not one.
const MAX_KEY_ID_LEN: usize = 64;

impl Distribution {
    /// The key `id` if a workload may be given it now: published (the Type-2
    /// acknowledged it), not revoked, before its TTL.
    pub(super) async fn servable_key(&self, id: &str) -> Result<KeyRecord, KeyApiError> {
        if id.is_empty()
            || id.len() > MAX_KEY_ID_LEN
            || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(KeyApiError::InvalidArgument(
                "a key id is a UUID or a sequence number".into(),
            ));
        }
        let key = match self.store.key(id).await {
            Ok(key) => key,
            Err(StoreError::NotFound(_)) => {
                return Err(KeyApiError::MissingKey(format!("no key `{id}`")));
            }
            Err(e) => return Err(e.into()),
        };
        let now = self.now_ms();
        if key.status == status::REVOKED {
            return Err(KeyApiError::KeyRevoked(key.id));
        }
        if key.status != status::ACTIVE || key.ttl_time <= now {
            return Err(KeyApiError::MissingKey(format!("no key `{id}`")));
        }
        Ok(key)
    }

    /// The use case named, or the first configured one.
    pub(super) fn use_case_or_default(&self, name: Option<&str>) -> Result<String, KeyApiError> {
        match name {
            Some(name) if self.use_cases.iter().any(|u| u.name == name) => Ok(name.to_owned()),
            Some(name) => Err(KeyApiError::InvalidArgument(format!(
                "no use case `{}`",
                name.chars().take(64).collect::<String>()
            ))),
            None => self
                .use_cases
                .first()
                .map(|u| u.name.clone())
                .ok_or_else(|| KeyApiError::MissingKey("no use case is configured".into())),
        }
    }

    /// The use case's servable keys created within the last `max_age_secs`,
    /// newest first.
    pub(super) async fn recent_keys(
        &self,
        use_case: &str,
        max_age_secs: i64,
    ) -> Result<Vec<KeyRecord>, KeyApiError> {
        let now = self.now_ms();
        let since = now.saturating_sub(max_age_secs.saturating_mul(1000));
        let mut keys: Vec<KeyRecord> = self
            .store
            .keys(Some(use_case))
            .await?
            .into_iter()
            .filter(|k| k.status == status::ACTIVE && k.ttl_time > now && k.creation_time >= since)
            .collect();
        keys.sort_by(|a, b| b.creation_time.cmp(&a.creation_time).then(a.id.cmp(&b.id)));
        Ok(keys)
    }
}

/// Proof that a credential's ad tech may have keys of one use case, in its
/// cloud, from this coordinator. Only [`KeyAccess::check`] makes one; it is
/// not yet permission to take material: that also needs evidence or an
/// `Unattested` proof (see `material`).
pub struct KeyAccess {
    pub(super) adtech: String,
    pub(super) cloud: Cloud,
    pub(super) use_case: UseCaseConfig,
    pub(super) unwrap: UnwrapMode,
    pub(super) kek: Arc<dyn KeyWrapper>,
    source: String,
}

impl KeyAccess {
    pub(super) async fn check(
        service: &Distribution,
        credential: &VerifiedCredential,
        use_case: &str,
    ) -> Result<KeyAccess, KeyApiError> {
        let use_case = service
            .use_cases
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
        let adtech = match service.store.adtech(adtech_id).await {
            Ok(adtech) => adtech,
            Err(StoreError::NotFound(_)) => return Err(denied()),
            Err(e) => return Err(e.into()),
        };
        if !adtech.enabled || !adtech.use_cases.contains(&use_case.name) {
            return Err(denied());
        }
        // The credential outlives its mapping (up to its TTL): check on each
        // use that an enabled mapping still gives this identity this ad tech.
        // Removing a mapping, or its issuer (which removes its mappings),
        // stops the credential at its next request.
        let live = service
            .store
            .active_mappings_for(credential.src_iss(), credential.src_sub())
            .await?
            .iter()
            .any(|m| m.adtech == adtech.id);
        if !live {
            return Err(KeyApiError::PermissionDenied(
                "the identity mapping that issued this credential was removed or disabled".into(),
            ));
        }
        let cloud_name = credential.cloud().as_str();
        let cloud = service
            .clouds
            .iter()
            .find(|c| c.cloud == cloud_name)
            .ok_or_else(|| KeyApiError::CloudNotEnabled(cloud_name.to_owned()))?;
        Ok(KeyAccess {
            adtech: adtech.id,
            cloud: cloud.cloud,
            use_case,
            unwrap: cloud.unwrap,
            kek: cloud.kek.clone(),
            source: workload_identity(credential),
        })
    }

    /// The workload cloud's KEK URI.
    pub(super) fn kek_uri(&self) -> String {
        self.kek.kek_uri().to_string()
    }

    /// Audits a fetch of wrapped splits (not an attested release).
    pub(super) async fn audit_fetch(
        &self,
        service: &Distribution,
        key_ids: &[&str],
    ) -> Result<(), KeyApiError> {
        let event = AuditEvent::new(
            EventKind::KeysFetched,
            format!("adtech:{}", self.adtech),
            json!({
                "useCase": self.use_case.name,
                "cloud": self.cloud,
                "keyIds": key_ids,
                "workload": self.source,
            }),
        );
        service.audit.record(service.now_ms(), event).await?;
        Ok(())
    }
}

/// The workload identity a credential was issued to, as audited.
pub(super) fn workload_identity(credential: &VerifiedCredential) -> String {
    format!("{} {}", credential.src_iss(), credential.src_sub())
}
