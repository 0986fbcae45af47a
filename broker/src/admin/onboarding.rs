//! Onboarding handlers: issuers, ad techs, identities (mappings).
//!
//! Every change is validated field by field, applied, and audited with the
//! operator as actor; the response is the stored record. The bodies, their
//! field rules and the records are the `onboarding` crate's (shared with
//! `keyferry onboard`); what needs the registry or the store is here.
//!
//! Bodies are rendered through `serde_json::Value`, whose objects keep their
//! keys sorted (serde_json is built without `preserve_order`): the API has
//! always answered that way, so a record's field order changes no byte.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use onboarding::{
    AdTechDetail, AdTechList, AdTechPatch, AdTechRecord, AdTechRequest, IdentityMapping,
    IdentityRequest, IssuerEntry, IssuerList, IssuerRequest, IssuerSource, MappingList,
    MappingQuery, Removed,
};
use serde_json::{Value, json};

use super::AdminState;
use crate::audit::{AuditEvent, EventKind};
use crate::federation::mapping_rule;
use crate::http::{ApiJson, ApiQuery};
use crate::issuer::SCOPES_SUPPORTED;
use crate::operator::{AdminRole, Operator, ReaderRole};
use crate::storage::{AdTech, MappingFilter, MappingRecord, OutboxEntry, StoredIssuer};
use crate::time::unix_ms;
use crate::{Error, storage::StoreError};

type Created = (StatusCode, Json<Value>);

/// The audit entry of a change, written in the change's own transaction
/// (the outbox), so no change is ever committed without it.
fn outbox_entry(state: &AdminState, kind: EventKind, actor: &str, details: Value) -> OutboxEntry {
    AuditEvent::new(kind, actor, details).outbox(unix_ms(state.clock.now()))
}

fn to_value<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

// ---- issuers ---------------------------------------------------------------

pub(super) async fn add_issuer(
    State(state): State<AdminState>,
    operator: Operator<AdminRole>,
    ApiJson(request): ApiJson<IssuerRequest>,
) -> Result<Created, Error> {
    let config = request.validate(state.config.is_dev())?;
    let registry = state.federation.registry();
    if registry.get(&config.issuer).is_some() {
        return Err(Error::Conflict(format!(
            "issuer {} is already trusted",
            config.issuer
        )));
    }
    let entry = IssuerEntry {
        source: IssuerSource::Api,
        issuer: config.clone(),
    };
    let document = to_value(&config);
    let stored = StoredIssuer {
        name: config.name.clone(),
        kind: config.kind.as_str().to_owned(),
        issuer: config.issuer.clone(),
        document: document.clone(),
        created_at: unix_ms(state.clock.now()),
    };
    let audit = outbox_entry(&state, EventKind::IssuerAdded, &operator.actor, document);
    state.store.insert_issuer(&stored, &audit).await?;
    registry
        .insert(config)
        .map_err(|e| Error::invalid_field("issuer", e))?;
    state.audit.publish_outbox().await;
    Ok((StatusCode::CREATED, Json(to_value(&entry))))
}

pub(super) async fn list_issuers(
    State(state): State<AdminState>,
    _operator: Operator<ReaderRole>,
) -> Result<Json<Value>, Error> {
    let mut issuers: Vec<IssuerEntry> = state
        .federation
        .registry()
        .list()
        .iter()
        .map(|config| IssuerEntry {
            source: if state.federation.is_configured(&config.issuer) {
                IssuerSource::Config
            } else {
                IssuerSource::Api
            },
            issuer: config.as_ref().clone(),
        })
        .collect();
    issuers.sort_by(|a, b| a.issuer.name.cmp(&b.issuer.name));
    Ok(Json(to_value(&IssuerList { issuers })))
}

pub(super) async fn remove_issuer(
    State(state): State<AdminState>,
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
    let (removed, _) = state
        .store
        .delete_issuer(&name, |issuer, mappings| {
            let details = json!({
                "name": name, "issuer": issuer.issuer, "mappingsRemoved": mappings.len()
            });
            let mut entries = vec![outbox_entry(
                &state,
                EventKind::IssuerRemoved,
                &operator.actor,
                details,
            )];
            for mapping in mappings {
                let mut details = to_value(&IdentityMapping::from(mapping.clone()));
                details["because"] = json!("issuer removed");
                entries.push(outbox_entry(
                    &state,
                    EventKind::MappingRemoved,
                    &operator.actor,
                    details,
                ));
            }
            entries
        })
        .await?;
    state.federation.remove_issuer(&removed.issuer);
    state.audit.publish_outbox().await;
    Ok(Json(to_value(&Removed {
        removed: removed.document,
    })))
}

// ---- ad techs --------------------------------------------------------------

pub(super) async fn create_adtech(
    State(state): State<AdminState>,
    operator: Operator<AdminRole>,
    ApiJson(request): ApiJson<AdTechRequest>,
) -> Result<Created, Error> {
    let new = request.validate()?;
    let now = unix_ms(state.clock.now());
    let adtech = AdTech {
        id: new.id.into(),
        name: new.name.into(),
        sites: new.sites.into_iter().map(String::from).collect(),
        use_cases: new.use_cases.into_iter().map(String::from).collect(),
        enabled: true,
        created_at: now,
        updated_at: now,
    };
    let record = to_value(&AdTechRecord::from(adtech.clone()));
    let audit = outbox_entry(
        &state,
        EventKind::AdtechCreated,
        &operator.actor,
        record.clone(),
    );
    state.store.insert_adtech(&adtech, &audit).await?;
    state.audit.publish_outbox().await;
    Ok((StatusCode::CREATED, Json(record)))
}

pub(super) async fn list_adtechs(
    State(state): State<AdminState>,
    _operator: Operator<ReaderRole>,
) -> Result<Json<Value>, Error> {
    let adtechs = state.store.adtechs().await?;
    Ok(Json(to_value(&AdTechList {
        adtechs: adtechs.into_iter().map(AdTechRecord::from).collect(),
    })))
}

pub(super) async fn show_adtech(
    State(state): State<AdminState>,
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
    Ok(Json(to_value(&AdTechDetail {
        adtech: adtech.into(),
        identities: identities.into_iter().map(IdentityMapping::from).collect(),
    })))
}

pub(super) async fn update_adtech(
    State(state): State<AdminState>,
    operator: Operator<AdminRole>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<AdTechPatch>,
) -> Result<Json<Value>, Error> {
    let kind = if patch.enabled {
        EventKind::AdtechEnabled
    } else {
        EventKind::AdtechDisabled
    };
    let audit = outbox_entry(&state, kind, &operator.actor, json!({ "id": id }));
    let adtech = state
        .store
        .set_adtech_enabled(&id, patch.enabled, unix_ms(state.clock.now()), &audit)
        .await?;
    state.audit.publish_outbox().await;
    Ok(Json(to_value(&AdTechRecord::from(adtech))))
}

// ---- identities (mappings) -------------------------------------------------

pub(super) async fn add_identity(
    State(state): State<AdminState>,
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
    let identity = request.validate(&SCOPES_SUPPORTED)?;
    let record = MappingRecord {
        id: format!("m-{}", uuid::Uuid::new_v4().simple()),
        adtech: adtech.clone(),
        cloud: identity.subject.kind().as_str().to_owned(),
        issuer: identity.issuer,
        subject: identity.subject.into(),
        conditions: to_value(&identity.conditions),
        scopes: identity.scopes,
        enabled: true,
        created_at: unix_ms(state.clock.now()),
    };
    let rule = mapping_rule(&record).map_err(Error::Internal)?;
    let added = to_value(&IdentityMapping::from(record.clone()));
    let audit = outbox_entry(
        &state,
        EventKind::MappingAdded,
        &operator.actor,
        added.clone(),
    );
    state
        .store
        .insert_mapping(
            &record,
            record.created_at,
            |existing| {
                // A stored row that is not a valid rule is skipped, as the
                // token exchange cannot match it either.
                let rules: Vec<idp::Mapping> = existing
                    .iter()
                    .filter_map(|m| mapping_rule(m).ok())
                    .collect();
                match onboarding::first_overlap(&rule, &rules) {
                    Some(other) => Err(format!(
                        "overlaps mapping {} of ad tech {}",
                        other.id, other.adtech
                    )),
                    None => Ok(()),
                }
            },
            &audit,
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict(what) => Error::Conflict(format!("identity {what}")),
            other => other.into(),
        })?;
    state.audit.publish_outbox().await;
    Ok((StatusCode::CREATED, Json(added)))
}

pub(super) async fn list_identities(
    State(state): State<AdminState>,
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
    Ok(Json(mapping_list(mappings)))
}

pub(super) async fn remove_identity(
    State(state): State<AdminState>,
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
    let removed = state
        .store
        .delete_mapping(&mapping, |removed| {
            let details = to_value(&IdentityMapping::from(removed.clone()));
            outbox_entry(&state, EventKind::MappingRemoved, &operator.actor, details)
        })
        .await?;
    let removed = IdentityMapping::from(removed);
    state.audit.publish_outbox().await;
    Ok(Json(to_value(&Removed { removed })))
}

pub(super) async fn list_mappings(
    State(state): State<AdminState>,
    _operator: Operator<ReaderRole>,
    ApiQuery(query): ApiQuery<MappingQuery>,
) -> Result<Json<Value>, Error> {
    // A cloud no mapping can have is a typo, not an empty answer.
    if let Some(cloud) = &query.cloud
        && !["aws", "gcp", "azure", "oidc"].contains(&cloud.as_str())
    {
        return Err(Error::BadRequest {
            code: "invalid_query",
            detail: "cloud: expected aws, gcp, azure or oidc".into(),
            field: Some("cloud".into()),
        });
    }
    let filter = MappingFilter {
        adtech: query.adtech,
        cloud: query.cloud,
        issuer: query.issuer,
    };
    Ok(Json(mapping_list(state.store.mappings(&filter).await?)))
}

fn mapping_list(mappings: Vec<MappingRecord>) -> Value {
    to_value(&MappingList {
        mappings: mappings.into_iter().map(IdentityMapping::from).collect(),
    })
}
