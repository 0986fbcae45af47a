//! `/v1/audit/*`: tree heads, entries and proofs, for auditors and admins.
//!
//! Tree heads (with their co-signatures), consistency proofs and the
//! witness's view are public, and so is each key's publication entry with its
//! inclusion proof (what a signed key manifest carries): they hold hashes and sizes only, and the peer
//! and auditors without an operator token must read them. Entries and
//! inclusion proofs need an operator token with a reader role.

use std::sync::Arc;

use axum::extract::{FromRef, Path, State};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use serde_json::{Value, json};

use super::TransparencyLog;
use super::log::{LogError, SignedTreeHead};
use super::witness::{Refusal, Witness, WitnessError};
use crate::Error;
use crate::http::ApiQuery;
use crate::operator::{AdminAuth, Operator, ReaderRole};
use transparency::{Cosignature, CosignedTreeHead, EntryInclusion, WitnessView};

/// Most entries one `/v1/audit/entries` call returns.
pub const MAX_ENTRIES_PER_CALL: u64 = 1000;

pub(crate) fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<TransparencyLog>: FromRef<S>,
    Arc<AdminAuth>: FromRef<S>,
    Option<Arc<Witness>>: FromRef<S>,
{
    Router::new()
        .route("/v1/audit/sth", get(sth))
        .route("/v1/audit/sth/cosigned", get(cosigned_sth))
        .route("/v1/audit/cosignatures", axum::routing::post(cosignature))
        .route("/v1/audit/witness", get(witness_view))
        .route("/v1/audit/entries", get(entries))
        .route("/v1/audit/proofs/inclusion", get(inclusion))
        .route("/v1/audit/proofs/consistency", get(consistency))
        .route("/v1/audit/keys/{key_id}/inclusion", get(key_inclusion))
}

impl From<LogError> for Error {
    fn from(e: LogError) -> Self {
        match e {
            LogError::OutOfRange(detail) => Error::BadRequest {
                code: "out_of_range",
                detail,
                field: None,
            },
            LogError::Store(e) => e.into(),
            LogError::Secret(e) => Error::Internal(e.to_string()),
        }
    }
}

impl From<WitnessError> for Error {
    fn from(e: WitnessError) -> Self {
        match e {
            WitnessError::Store(e) => e.into(),
            WitnessError::Peer(detail) => Error::Unavailable(detail),
        }
    }
}

/// `head` with the co-signatures this log keeps of it.
async fn with_cosignatures(
    witness: Option<&Witness>,
    head: SignedTreeHead,
) -> Result<CosignedTreeHead, Error> {
    let cosignatures = match witness {
        Some(w) => w.cosignatures(&head).await?,
        None => Vec::new(),
    };
    Ok(CosignedTreeHead { head, cosignatures })
}

async fn sth(
    State(audit_log): State<Arc<TransparencyLog>>,
    State(witness): State<Option<Arc<Witness>>>,
) -> Result<Json<CosignedTreeHead>, Error> {
    let head = audit_log.sth().await?;
    Ok(Json(with_cosignatures(witness.as_deref(), head).await?))
}

/// `GET /v1/audit/sth/cosigned`: the newest head the peer co-signed.
async fn cosigned_sth(
    State(audit_log): State<Arc<TransparencyLog>>,
    State(witness): State<Option<Arc<Witness>>>,
) -> Result<Json<CosignedTreeHead>, Error> {
    let head = audit_log
        .latest_cosigned()
        .await?
        .ok_or_else(|| Error::NotFound("no head of this log is co-signed yet".into()))?;
    Ok(Json(with_cosignatures(witness.as_deref(), head).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CosignatureBody {
    head: SignedTreeHead,
    cosignature: Cosignature,
}

/// `POST /v1/audit/cosignatures`: the peer's co-signature of one of this
/// log's heads. Accepted only under the pinned peer key, for a head this
/// log signed, one kept per head.
async fn cosignature(
    State(witness): State<Option<Arc<Witness>>>,
    crate::http::ApiJson(body): crate::http::ApiJson<CosignatureBody>,
) -> Result<axum::http::StatusCode, Error> {
    let Some(witness) = witness else {
        return Err(Error::Forbidden(
            "this coordinator has no peer to witness it".into(),
        ));
    };
    let refused = |status, code, detail: &str| Error::Refused {
        status,
        code,
        detail: detail.into(),
    };
    use axum::http::StatusCode;
    match witness.accept(&body.head, &body.cosignature).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(Refusal::NotOurs) => Err(Error::invalid_field("head.publicKey", "not this log's key")),
        Err(Refusal::Invalid) => Err(refused(
            StatusCode::FORBIDDEN,
            "cosignature_invalid",
            "not the peer's valid co-signature of this head",
        )),
        Err(Refusal::UnknownHead) => Err(refused(
            StatusCode::CONFLICT,
            "unknown_head",
            "this log never signed that head",
        )),
        Err(Refusal::Unavailable(e)) => Err(e.into()),
    }
}

/// `GET /v1/audit/witness`: what this coordinator last accepted of its
/// peer's log, and why it refused a later head.
async fn witness_view(
    State(witness): State<Option<Arc<Witness>>>,
) -> Result<Json<WitnessView>, Error> {
    let Some(witness) = witness else {
        return Err(Error::NotFound("this coordinator witnesses no peer".into()));
    };
    Ok(Json(witness.view().await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Range {
    start: u64,
    end: u64,
}

async fn entries(
    State(audit_log): State<Arc<TransparencyLog>>,
    _operator: Operator<ReaderRole>,
    ApiQuery(q): ApiQuery<Range>,
) -> Result<Json<Value>, Error> {
    let Range { start, end } = q;
    if end < start || end - start > MAX_ENTRIES_PER_CALL {
        return Err(Error::BadRequest {
            code: "out_of_range",
            detail: format!(
                "need start <= end and at most {MAX_ENTRIES_PER_CALL} entries per call"
            ),
            field: None,
        });
    }
    let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let rows = audit_log.entries(to_i64(start), to_i64(end)).await?;
    let entries: Vec<Value> = rows
        .iter()
        .map(|e| json!({"index": e.index, "entry": e.entry, "leafHash": e.leaf_hash.as_ref().map(|h| B64.encode(h))}))
        .collect();
    Ok(Json(json!({ "entries": entries })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InclusionQuery {
    index: u64,
    tree_size: u64,
}

async fn inclusion(
    State(audit_log): State<Arc<TransparencyLog>>,
    _operator: Operator<ReaderRole>,
    ApiQuery(q): ApiQuery<InclusionQuery>,
) -> Result<Json<Value>, Error> {
    let InclusionQuery { index, tree_size } = q;
    let proof = audit_log.inclusion_proof(index, tree_size).await?;
    Ok(Json(json!({
        "index": index,
        "treeSize": tree_size,
        "path": proof.iter().map(|h| B64.encode(h)).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyQuery {
    first: u64,
    second: u64,
}

async fn consistency(
    State(audit_log): State<Arc<TransparencyLog>>,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> Result<Json<Value>, Error> {
    let ConsistencyQuery { first, second } = q;
    let proof = audit_log.consistency_proof(first, second).await?;
    Ok(Json(json!({
        "first": first,
        "second": second,
        "proof": proof.iter().map(|h| B64.encode(h)).collect::<Vec<_>>(),
    })))
}

/// Longest key id looked up; longer ones name no key.
const MAX_KEY_ID_LEN: usize = 128;

/// `GET /v1/audit/keys/{key_id}/inclusion`: the entry recording the key's
/// publication in this log (`key.activated` on a Type-1, `key.received` on
/// a Type-2) and its proof in the current signed head. Public: the entry
/// names a public key's id and use case, and the peer and every manifest
/// reader must fetch it.
async fn key_inclusion(
    State(audit_log): State<Arc<TransparencyLog>>,
    Path(key_id): Path<String>,
) -> Result<Json<EntryInclusion>, Error> {
    let not_found = || Error::NotFound(format!("no publication of key `{key_id}` in this log"));
    if key_id.len() > MAX_KEY_ID_LEN {
        return Err(not_found());
    }
    let proof = audit_log.key_inclusion(&key_id).await?;
    Ok(Json(proof.ok_or_else(not_found)?))
}
