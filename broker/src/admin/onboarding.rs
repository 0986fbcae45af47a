//! Onboarding handlers: issuers, ad techs, identities (mappings).
//!
//! Every change is validated field by field, applied, and audited with the
//! operator as actor; the response is the stored record.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use idp::{Condition, IssuerConfig, IssuerKind, validate_subject};
use serde::Deserialize;
use serde_json::{Value, json};

use super::validation;
use crate::audit::{AuditEvent, EventKind};
use crate::federation::mapping_rule;
use crate::http::{ApiJson, ApiQuery};
use crate::issuer::SCOPES_SUPPORTED;
use crate::operator::{AdminRole, Operator, ReaderRole};
use crate::state::AppState;
use crate::storage::{AdTech, MappingFilter, MappingRecord, StoredIssuer};
use crate::time::unix_ms;
use crate::{Error, storage::StoreError};

type Created = (StatusCode, Json<Value>);

async fn audit(
    state: &AppState,
    kind: EventKind,
    actor: &str,
    details: Value,
) -> Result<(), Error> {
    let event = AuditEvent::new(kind, actor, details);
    state
        .audit
        .record(unix_ms(state.clock.now()), event)
        .await?;
    Ok(())
}

fn to_value<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

// ---- issuers ---------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct IssuerRequest {
    name: String,
    kind: IssuerKind,
    issuer: String,
    audience: String,
    #[serde(default)]
    algorithms: Option<Vec<String>>,
    /// Seconds.
    #[serde(default)]
    max_token_lifetime: Option<u64>,
    #[serde(default)]
    jwks_uri: Option<url::Url>,
}

pub(super) async fn add_issuer(
    State(state): State<AppState>,
    operator: Operator<AdminRole>,
    ApiJson(request): ApiJson<IssuerRequest>,
) -> Result<Created, Error> {
    validation::display_name("name", &request.name)?;
    if request.audience.trim().is_empty() {
        return Err(Error::invalid_field("audience", "must not be empty"));
    }
    let mut config = IssuerConfig::new(
        &request.name,
        request.kind,
        &request.issuer,
        &request.audience,
    );
    if let Some(algorithms) = &request.algorithms {
        config.algorithms = algorithms
            .iter()
            .map(|a| {
                a.parse().map_err(|_| {
                    Error::invalid_field("algorithms", format!("unknown algorithm `{a}`"))
                })
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(secs) = request.max_token_lifetime {
        config.max_token_lifetime = std::time::Duration::from_secs(secs);
    }
    config.jwks_uri = request.jwks_uri;
    config
        .validate(state.config.is_dev())
        .map_err(|e| Error::invalid_field("issuer", e))?;
    let registry = state.federation.registry();
    if registry.get(&config.issuer).is_some() {
        return Err(Error::Conflict(format!(
            "issuer {} is already trusted",
            config.issuer
        )));
    }
    let document = to_value(&config);
    let stored = StoredIssuer {
        name: config.name.clone(),
        kind: config.kind.as_str().to_owned(),
        issuer: config.issuer.clone(),
        document: document.clone(),
        created_at: unix_ms(state.clock.now()),
    };
    state.store.insert_issuer(&stored).await?;
    registry
        .insert(config)
        .map_err(|e| Error::invalid_field("issuer", e))?;
    audit(
        &state,
        EventKind::IssuerAdded,
        &operator.actor,
        document.clone(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "source": "api", "issuer": document })),
    ))
}

pub(super) async fn list_issuers(
    State(state): State<AppState>,
    _operator: Operator<ReaderRole>,
) -> Result<Json<Value>, Error> {
    let mut issuers: Vec<Value> = state
        .federation
        .registry()
        .list()
        .iter()
        .map(|config| {
            let source = if state.federation.is_configured(&config.issuer) {
                "config"
            } else {
                "api"
            };
            json!({ "source": source, "issuer": to_value(config.as_ref()) })
        })
        .collect();
    issuers.sort_by(|a, b| {
        a["issuer"]["name"]
            .as_str()
            .cmp(&b["issuer"]["name"].as_str())
    });
    Ok(Json(json!({ "issuers": issuers })))
}

pub(super) async fn remove_issuer(
    State(state): State<AppState>,
    operator: Operator<AdminRole>,
    Path(name): Path<String>,
) -> Result<Json<Value>, Error> {
    let is_configured = state
        .federation
        .registry()
        .list()
        .iter()
        .any(|c| c.name == name && state.federation.is_configured(&c.issuer));
    if is_configured {
        return Err(Error::Conflict(format!(
            "issuer `{name}` is configured in keyferry.toml; remove it there"
        )));
    }
    let removed = state.store.delete_issuer(&name).await?;
    state.federation.remove_issuer(&removed.issuer);
    audit(
        &state,
        EventKind::IssuerRemoved,
        &operator.actor,
        json!({ "name": name, "issuer": removed.issuer }),
    )
    .await?;
    Ok(Json(json!({ "removed": removed.document })))
}

// ---- ad techs --------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct AdTechRequest {
    id: String,
    name: String,
    #[serde(default)]
    sites: Vec<String>,
    #[serde(default)]
    use_cases: Vec<String>,
}

pub(super) async fn create_adtech(
    State(state): State<AppState>,
    operator: Operator<AdminRole>,
    ApiJson(request): ApiJson<AdTechRequest>,
) -> Result<Created, Error> {
    validation::adtech_id(&request.id)?;
    validation::display_name("name", &request.name)?;
    for (i, site) in request.sites.iter().enumerate() {
        validation::site(i, site)?;
    }
    for (i, use_case) in request.use_cases.iter().enumerate() {
        validation::use_case(i, use_case)?;
    }
    let dedup = |v: &[String]| v.iter().collect::<std::collections::BTreeSet<_>>().len() == v.len();
    if !dedup(&request.sites) {
        return Err(Error::invalid_field("sites", "duplicate site"));
    }
    if !dedup(&request.use_cases) {
        return Err(Error::invalid_field("useCases", "duplicate use case"));
    }
    let now = unix_ms(state.clock.now());
    let adtech = AdTech {
        id: request.id,
        name: request.name,
        sites: request.sites,
        use_cases: request.use_cases,
        enabled: true,
        created_at: now,
        updated_at: now,
    };
    state.store.insert_adtech(&adtech).await?;
    audit(
        &state,
        EventKind::AdtechCreated,
        &operator.actor,
        to_value(&adtech),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(to_value(&adtech))))
}

pub(super) async fn list_adtechs(
    State(state): State<AppState>,
    _operator: Operator<ReaderRole>,
) -> Result<Json<Value>, Error> {
    Ok(Json(json!({ "adtechs": state.store.adtechs().await? })))
}

pub(super) async fn show_adtech(
    State(state): State<AppState>,
    _operator: Operator<ReaderRole>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let adtech = state.store.adtech(&id).await?;
    let identities = state
        .store
        .mappings(&MappingFilter {
            adtech: Some(id),
            ..MappingFilter::default()
        })
        .await?;
    let mut body = to_value(&adtech);
    body["identities"] = to_value(&identities);
    Ok(Json(body))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct AdTechPatch {
    enabled: bool,
}

pub(super) async fn update_adtech(
    State(state): State<AppState>,
    operator: Operator<AdminRole>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<AdTechPatch>,
) -> Result<Json<Value>, Error> {
    let adtech = state
        .store
        .set_adtech_enabled(&id, patch.enabled, unix_ms(state.clock.now()))
        .await?;
    let kind = if patch.enabled {
        EventKind::AdtechEnabled
    } else {
        EventKind::AdtechDisabled
    };
    audit(&state, kind, &operator.actor, json!({ "id": id })).await?;
    Ok(Json(to_value(&adtech)))
}

// ---- identities (mappings) -------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct IdentityRequest {
    cloud: IssuerKind,
    issuer: String,
    subject: String,
    #[serde(default)]
    conditions: Vec<Condition>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

pub(super) async fn add_identity(
    State(state): State<AppState>,
    operator: Operator<AdminRole>,
    Path(adtech): Path<String>,
    ApiJson(request): ApiJson<IdentityRequest>,
) -> Result<Created, Error> {
    let Some(issuer) = state.federation.registry().get(&request.issuer) else {
        return Err(Error::invalid_field(
            "issuer",
            "not a trusted issuer; add it first",
        ));
    };
    if issuer.kind != request.cloud {
        return Err(Error::invalid_field(
            "cloud",
            format!("the issuer is of kind `{}`", issuer.kind.as_str()),
        ));
    }
    validate_subject(request.cloud, &request.subject)
        .map_err(|e| Error::invalid_field("subject", e))?;
    for (i, condition) in request.conditions.iter().enumerate() {
        condition
            .validate()
            .map_err(|e| Error::invalid_field(&format!("conditions[{i}]"), e))?;
    }
    let scopes = request
        .scopes
        .unwrap_or_else(|| SCOPES_SUPPORTED.iter().map(|s| (*s).to_owned()).collect());
    if scopes.is_empty() {
        return Err(Error::invalid_field("scopes", "at least one scope"));
    }
    if let Some(unknown) = scopes
        .iter()
        .find(|s| !SCOPES_SUPPORTED.contains(&s.as_str()))
    {
        return Err(Error::invalid_field(
            "scopes",
            format!("unknown scope `{unknown}`"),
        ));
    }
    let record = MappingRecord {
        id: format!("m-{}", uuid::Uuid::new_v4().simple()),
        adtech: adtech.clone(),
        cloud: request.cloud.as_str().to_owned(),
        issuer: request.issuer,
        subject: request.subject,
        conditions: to_value(&request.conditions),
        scopes,
        enabled: true,
        created_at: unix_ms(state.clock.now()),
    };
    let rule = mapping_rule(&record).map_err(Error::Internal)?;
    state
        .store
        .insert_mapping(&record, record.created_at, |existing| {
            for other in existing {
                if mapping_rule(other).is_ok_and(|o| idp::overlaps(&rule, &o)) {
                    return Err(format!(
                        "overlaps mapping {} of ad tech {}",
                        other.id, other.adtech
                    ));
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(what) => Error::Conflict(format!("identity {what}")),
            other => other.into(),
        })?;
    audit(
        &state,
        EventKind::MappingAdded,
        &operator.actor,
        to_value(&record),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(to_value(&record))))
}

pub(super) async fn list_identities(
    State(state): State<AppState>,
    _operator: Operator<ReaderRole>,
    Path(adtech): Path<String>,
) -> Result<Json<Value>, Error> {
    state.store.adtech(&adtech).await?;
    let mappings = state
        .store
        .mappings(&MappingFilter {
            adtech: Some(adtech),
            ..MappingFilter::default()
        })
        .await?;
    Ok(Json(json!({ "mappings": mappings })))
}

pub(super) async fn remove_identity(
    State(state): State<AppState>,
    operator: Operator<AdminRole>,
    Path((adtech, mapping)): Path<(String, String)>,
) -> Result<Json<Value>, Error> {
    let existing = state
        .store
        .mappings(&MappingFilter {
            adtech: Some(adtech.clone()),
            ..MappingFilter::default()
        })
        .await?;
    if !existing.iter().any(|m| m.id == mapping) {
        return Err(Error::NotFound(format!(
            "ad tech `{adtech}` has no identity `{mapping}`"
        )));
    }
    let removed = state.store.delete_mapping(&mapping).await?;
    audit(
        &state,
        EventKind::MappingRemoved,
        &operator.actor,
        to_value(&removed),
    )
    .await?;
    Ok(Json(json!({ "removed": removed })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MappingQuery {
    adtech: Option<String>,
    cloud: Option<String>,
    issuer: Option<String>,
}

pub(super) async fn list_mappings(
    State(state): State<AppState>,
    _operator: Operator<ReaderRole>,
    ApiQuery(query): ApiQuery<MappingQuery>,
) -> Result<Json<Value>, Error> {
    let filter = MappingFilter {
        adtech: query.adtech,
        cloud: query.cloud,
        issuer: query.issuer,
    };
    Ok(Json(
        json!({ "mappings": state.store.mappings(&filter).await? }),
    ))
}
