//! `/v1/audit/*`: tree heads, entries and proofs, for auditors and admins.

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use serde_json::{Value, json};

use super::TransparencyLog;
use super::log::{LogError, SignedTreeHead};
use crate::Error;
use crate::http::ApiQuery;
use crate::operator::{AdminAuth, Operator, ReaderRole};

/// Most entries one `/v1/audit/entries` call returns.
pub const MAX_ENTRIES_PER_CALL: u64 = 1000;

pub(crate) fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<TransparencyLog>: FromRef<S>,
    Arc<AdminAuth>: FromRef<S>,
{
    Router::new()
        .route("/v1/audit/sth", get(sth))
        .route("/v1/audit/entries", get(entries))
        .route("/v1/audit/proofs/inclusion", get(inclusion))
        .route("/v1/audit/proofs/consistency", get(consistency))
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

async fn sth(
    State(audit_log): State<Arc<TransparencyLog>>,
    _operator: Operator<ReaderRole>,
) -> Result<Json<SignedTreeHead>, Error> {
    Ok(Json(audit_log.sth().await?))
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
    _operator: Operator<ReaderRole>,
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
