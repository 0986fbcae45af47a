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

/// The query of `:recent`, read as the Privacy Sandbox coordinator reads it
/// (`ListRecentEncryptionKeysRequestHandler`): `maxAgeSeconds` is a required
/// int32 (Java's `Integer.parseInt`: optional sign, decimal digits), negative
/// is refused, the first occurrence counts and parameters it does not know are
/// ignored, so a stock client's request means here what it means there.
/// `useCase` is Keyferry's own and must not be ambiguous: given twice, it is
/// refused rather than guessed.
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
                "maxAgeSeconds" => {
                    max_age.get_or_insert(value);
                }
                "useCase" if use_case.is_none() => use_case = Some(value.into_owned()),
                "useCase" => {
                    return Err(KeyApiError::InvalidArgument(
                        "`useCase` given more than once".into(),
                    ));
                }
                _ => {}
            }
        }
        let max_age = max_age.ok_or_else(|| {
            KeyApiError::InvalidArgument("maxAgeSeconds query parameter is required.".into())
        })?;
        let max_age = max_age.parse::<i32>().map_err(|_| {
            KeyApiError::InvalidArgument("maxAgeSeconds should be a valid integer.".into())
        })?;
        if max_age < 0 {
            return Err(KeyApiError::InvalidArgument(format!(
                "Age should be positive, found ({max_age}) instead."
            )));
        }
        Ok(RecentQuery {
            max_age_secs: i64::from(max_age),
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
    fn recent_query_takes_the_whole_int32_range_as_the_coordinator_does() {
        for (query, secs) in [
            ("maxAgeSeconds=0", 0),
            ("maxAgeSeconds=2147483647", 2_147_483_647),
            // `+` in a query is a space; an encoded one is a sign, as for
            // `Integer.parseInt`.
            ("maxAgeSeconds=%2B60", 60),
            ("maxAgeSeconds=007", 7),
            // The first occurrence counts; unknown parameters are ignored.
            ("maxAgeSeconds=60&maxAgeSeconds=-1", 60),
            ("cacheBuster=1&maxAgeSeconds=60&cloud=aws", 60),
        ] {
            assert_eq!(
                RecentQuery::parse(query).expect(query).max_age_secs,
                secs,
                "{query}"
            );
        }
    }

    #[test]
    fn recent_query_refuses_what_the_coordinator_refuses() {
        for bad in [
            "",
            "maxAge=60",
            "maxAgeSeconds=",
            "maxAgeSeconds=-1",
            "maxAgeSeconds=-2147483648",
            "maxAgeSeconds=2147483648",
            "maxAgeSeconds=1e3",
            "maxAgeSeconds=1.0",
            "maxAgeSeconds=%2060",
            "maxAgeSeconds=+60",
            "maxAgeSeconds=abc",
            "maxAgeSeconds=60&useCase=a&useCase=b",
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
