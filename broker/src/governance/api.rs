//! `/v1/gov/*`: governance over the admin API.

use std::sync::Arc;

use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use idp::Clock;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Change, Governance, ProposalView};
use crate::Error;
use crate::audit::Audit;
use crate::http::{ApiJson, ApiQuery};
use crate::operator::{AdminAuth, AnyRole, GovernorRole, Operator};
use crate::storage::Store;

/// What the governance endpoints use; taken from the application's state.
#[derive(Clone)]
pub struct GovernanceState {
    /// Proposals, ballots and their application.
    pub governance: Arc<Governance>,
    /// Members, proposals, ballots.
    pub store: Store,
    /// Where every step is recorded.
    pub audit: Arc<dyn Audit>,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

impl GovernanceState {
    fn now_ms(&self) -> i64 {
        crate::time::unix_ms(self.clock.now())
    }
}

pub(crate) fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    GovernanceState: FromRef<S>,
    Arc<AdminAuth>: FromRef<S>,
{
    Router::new()
        .route("/v1/gov/members", get(members))
        .route("/v1/gov/proposals", get(list).post(propose))
        .route("/v1/gov/proposals/{id}", get(show))
        .route("/v1/gov/proposals/{id}/ballots", post(approve))
}

/// `GET /v1/gov/members`
async fn members(
    State(state): State<GovernanceState>,
    _operator: Operator<AnyRole>,
) -> Result<Json<Value>, Error> {
    let members = state.store.gov_members().await?;
    let threshold = state.store.gov_threshold().await?;
    Ok(Json(json!({
        "threshold": threshold,
        "members": members.iter().map(|m| json!({"name": m.name, "publicKey": m.public_key, "addedAt": m.added_at})).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ProposeRequest {
    change: Change,
}

/// `POST /v1/gov/proposals`
async fn propose(
    State(state): State<GovernanceState>,
    operator: Operator<GovernorRole>,
    ApiJson(request): ApiJson<ProposeRequest>,
) -> Result<(StatusCode, Json<ProposalView>), Error> {
    let view = state
        .governance
        .propose(
            &state.store,
            state.audit.as_ref(),
            request.change,
            &operator.actor,
            state.now_ms(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
}

/// `GET /v1/gov/proposals?status=`
async fn list(
    State(state): State<GovernanceState>,
    _operator: Operator<AnyRole>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, Error> {
    if let Some(status) = &query.status
        && !["open", "applied", "expired", "rejected"].contains(&status.as_str())
    {
        return Err(Error::invalid_field(
            "status",
            "one of open, applied, expired, rejected",
        ));
    }
    let now = state.now_ms();
    let mut views = Vec::new();
    for proposal in state.store.gov_proposals(query.status.as_deref()).await? {
        views.push(
            state
                .governance
                .view(&state.store, &proposal.id, now)
                .await?,
        );
    }
    Ok(Json(json!({ "proposals": views })))
}

/// `GET /v1/gov/proposals/{id}`
async fn show(
    State(state): State<GovernanceState>,
    _operator: Operator<AnyRole>,
    Path(id): Path<String>,
) -> Result<Json<ProposalView>, Error> {
    let view = state
        .governance
        .view(&state.store, &id, state.now_ms())
        .await?;
    Ok(Json(view))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BallotRequest {
    member: String,
    /// Base64 Ed25519 signature of the ballot message for the digest.
    signature: String,
}

/// `POST /v1/gov/proposals/{id}/ballots`
async fn approve(
    State(state): State<GovernanceState>,
    operator: Operator<GovernorRole>,
    Path(id): Path<String>,
    ApiJson(ballot): ApiJson<BallotRequest>,
) -> Result<Json<ProposalView>, Error> {
    let view = state
        .governance
        .approve(
            &state.store,
            state.audit.as_ref(),
            &id,
            &ballot.member,
            &ballot.signature,
            &operator.actor,
            state.now_ms(),
        )
        .await?;
    Ok(Json(view))
}
