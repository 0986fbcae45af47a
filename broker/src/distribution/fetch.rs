//! `GET /v1alpha/encryptionKeys/{keyId}` and
//! `GET /v1alpha/encryptionKeys:recent?maxAgeSeconds=N` (DESIGN §5.2): the
//! wrapped split of each key, for use cases that do not require attestation.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use wire::{EncryptionKey, EncryptionKeyList};

use super::encryption_key::encryption_key;
use super::{Distribution, KeyAccess, KeyApiError, Unattested};
use crate::federation::{Caller, KeysRead};
use crate::storage::KeyRecord;

/// The longest `maxAgeSeconds` accepted: a year, far beyond any key's TTL.
const MAX_AGE_LIMIT_SECS: i64 = 365 * 24 * 3600;

/// `GET /v1alpha/encryptionKeys/{keyId}`
pub(super) async fn get_key(
    State(service): State<Arc<Distribution>>,
    caller: Caller<KeysRead>,
    Path(key_id): Path<String>,
) -> Result<Json<EncryptionKey>, KeyApiError> {
    let key = service.servable_key(&key_id).await?;
    let grant = KeyAccess::check(&service, &caller.credential, &key.use_case).await?;
    let unattested = Unattested::check(&grant)?;
    let document = wrapped(&service, &grant, &unattested, &key).await?;
    grant.audit_fetch(&service, &[key.id.as_str()]).await?;
    Ok(Json(document))
}

/// `GET /v1alpha/encryptionKeys:recent?maxAgeSeconds=N[&useCase=U]`: the
/// use case's keys created within the last `N` seconds. Without `useCase`,
/// the first configured use case (the Privacy Sandbox API has one key set).
pub(super) async fn recent_keys(
    State(service): State<Arc<Distribution>>,
    caller: Caller<KeysRead>,
    RawQuery(query): RawQuery,
) -> Result<Json<EncryptionKeyList>, KeyApiError> {
    let recent = RecentQuery::parse(query.as_deref().unwrap_or(""))?;
    let use_case = service.use_case_or_default(recent.use_case.as_deref())?;
    let grant = KeyAccess::check(&service, &caller.credential, &use_case).await?;
    let unattested = Unattested::check(&grant)?;
    let keys = service.recent_keys(&use_case, recent.max_age_secs).await?;
    let mut documents = Vec::with_capacity(keys.len());
    for key in &keys {
        documents.push(wrapped(&service, &grant, &unattested, key).await?);
    }
    let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
    grant.audit_fetch(&service, &ids).await?;
    Ok(Json(EncryptionKeyList { keys: documents }))
}

async fn wrapped(
    service: &Distribution,
    grant: &KeyAccess,
    unattested: &Unattested,
    key: &KeyRecord,
) -> Result<EncryptionKey, KeyApiError> {
    let material = service.material.wrapped(grant, key, unattested).await?;
    Ok(encryption_key(key, service.role, material))
}

/// The query of `:recent`, parsed strictly: an unknown parameter is a
/// client mistake worth telling, not something to ignore.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct RecentQuery {
    pub(super) max_age_secs: i64,
    pub(super) use_case: Option<String>,
}

impl RecentQuery {
    pub(super) fn parse(query: &str) -> Result<Self, KeyApiError> {
        let mut max_age = None;
        let mut use_case = None;
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match name.as_ref() {
                "maxAgeSeconds" if max_age.is_none() => max_age = Some(value.into_owned()),
                "useCase" if use_case.is_none() => use_case = Some(value.into_owned()),
                "maxAgeSeconds" | "useCase" => {
                    return Err(KeyApiError::InvalidArgument(format!(
                        "`{name}` given more than once"
                    )));
                }
                other => {
                    return Err(KeyApiError::InvalidArgument(format!(
                        "unknown query parameter `{}`",
                        other.chars().take(40).collect::<String>()
                    )));
                }
            }
        }
        let max_age = max_age
            .ok_or_else(|| KeyApiError::InvalidArgument("`maxAgeSeconds` is required".into()))?;
        let max_age_secs = max_age
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_AGE_LIMIT_SECS).contains(n))
            .ok_or_else(|| {
                KeyApiError::InvalidArgument(format!(
                    "`maxAgeSeconds` must be an integer from 1 to {MAX_AGE_LIMIT_SECS}"
                ))
            })?;
        Ok(RecentQuery {
            max_age_secs,
            use_case,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_query_takes_max_age_and_an_optional_use_case() {
        assert_eq!(
            RecentQuery::parse("maxAgeSeconds=3600").expect("ok"),
            RecentQuery {
                max_age_secs: 3600,
                use_case: None
            }
        );
        assert_eq!(
            RecentQuery::parse("useCase=a%2Db&maxAgeSeconds=1")
                .expect("ok")
                .use_case
                .as_deref(),
            Some("a-b")
        );
    }

    #[test]
    fn recent_query_refuses_what_it_does_not_understand() {
        for bad in [
            "",
            "maxAgeSeconds=",
            "maxAgeSeconds=0",
            "maxAgeSeconds=-5",
            "maxAgeSeconds=1e3",
            "maxAgeSeconds=99999999999999999999",
            "maxAgeSeconds=60&maxAgeSeconds=70",
            "maxAgeSeconds=60&cloud=aws",
        ] {
            assert!(
                matches!(
                    RecentQuery::parse(bad),
                    Err(KeyApiError::InvalidArgument(_))
                ),
                "{bad:?} must be refused"
            );
        }
    }
}
