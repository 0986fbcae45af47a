//! `POST /v1/token`: RFC 8693 token exchange (DESIGN §3.1).
//!
//! The order of work: parse the form (`invalid_request`,
//! `unsupported_grant_type`), check the audience (`invalid_target`),
//! validate the subject token (`invalid_grant` naming the failed check),
//! apply the per-identity rate limit (429), select exactly one mapping
//! (`invalid_grant`), check the scope (`invalid_scope`), record the decision
//! durably, mint. Every allow and every deny is audited and counted; the
//! subject token is never stored, logged or echoed.

use std::time::Duration;

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use idp::{
    MappingRejection, TOKEN_EXCHANGE_GRANT, TokenRejection, UnverifiedIdentity, VerifiedToken,
};
use serde_json::json;
use wire::{OAuthErrorBody, TokenResponse};

use super::{ExchangeState, mapping_rule};
use crate::audit::{AuditEvent, EventKind};
use crate::time::unix_ms;

const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
const TOKEN_TYPE_ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

/// An RFC 6749 §5.2 error response.
#[derive(Debug)]
pub(crate) struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    retry_after: Option<u64>,
}

impl OAuthError {
    fn new(error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            error,
            description: description.into(),
            retry_after: None,
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = OAuthErrorBody {
            error: self.error.to_owned(),
            error_description: Some(self.description),
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// The request parameters, each present at most once (RFC 6749 §3.2).
#[derive(Default)]
struct TokenRequest {
    grant_type: Option<String>,
    subject_token: Option<String>,
    subject_token_type: Option<String>,
    audience: Option<String>,
    scope: Option<String>,
    requested_token_type: Option<String>,
}

impl TokenRequest {
    fn parse(pairs: Vec<(String, String)>) -> Result<Self, OAuthError> {
        let mut request = TokenRequest::default();
        for (name, value) in pairs {
            let slot = match name.as_str() {
                "grant_type" => &mut request.grant_type,
                "subject_token" => &mut request.subject_token,
                "subject_token_type" => &mut request.subject_token_type,
                "audience" => &mut request.audience,
                "scope" => &mut request.scope,
                "requested_token_type" => &mut request.requested_token_type,
                // RFC 6749 §3.2: unrecognised parameters are ignored.
                _ => continue,
            };
            if slot.replace(value).is_some() {
                return Err(OAuthError::new(
                    "invalid_request",
                    format!("parameter `{name}` is repeated"),
                ));
            }
        }
        Ok(request)
    }
}

/// Why an exchange was refused, for audit and metrics.
pub(super) struct Denial {
    error: OAuthError,
    pub(super) reason: &'static str,
}

impl Denial {
    /// The HTTP status of its OAuth answer.
    pub(super) fn status(&self) -> StatusCode {
        self.error.status
    }

    /// What its OAuth answer says (never the token).
    pub(super) fn description(&self) -> &str {
        &self.error.description
    }

    /// Its `Retry-After`, when it has one.
    pub(super) fn retry_after(&self) -> Option<u64> {
        self.error.retry_after
    }

    fn unavailable(reason: &'static str, description: &str) -> Self {
        Denial {
            error: OAuthError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                error: "temporarily_unavailable",
                description: description.into(),
                retry_after: Some(5),
            },
            reason,
        }
    }

    fn grant(reason: &'static str, description: impl Into<String>) -> Self {
        Denial {
            error: OAuthError::new("invalid_grant", description),
            reason,
        }
    }
}

pub(super) async fn exchange(
    State(state): State<ExchangeState>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let request = match form {
        Ok(Form(pairs)) => TokenRequest::parse(pairs),
        Err(e) => Err(OAuthError::new(
            "invalid_request",
            format!(
                "the body must be application/x-www-form-urlencoded: {}",
                e.body_text()
            ),
        )),
    };
    let (decision, claimed) = match request {
        Ok(request) => {
            // Before validation only the claimed identity is known; it is
            // recorded as claimed, never trusted.
            let claimed = request
                .subject_token
                .as_deref()
                .and_then(UnverifiedIdentity::peek);
            (decide(&state, &request).await, claimed)
        }
        Err(error) => (
            Err(Denial {
                error,
                reason: "malformed_request",
            }),
            None,
        ),
    };
    match decision {
        Ok(response) => response,
        Err(denial) => match record_denial(&state, &denial, claimed, Via::TokenEndpoint).await {
            Ok(()) => denial.error.into_response(),
            Err(e) => unavailable(&e),
        },
    }
}

/// How a subject token reached the exchange: `POST /v1/token`, or as the
/// Bearer of a key endpoint (`direct.rs`). Recorded in both audit entries.
#[derive(Clone, Copy)]
pub(super) enum Via {
    TokenEndpoint,
    Bearer,
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Via::TokenEndpoint => "token",
            Via::Bearer => "bearer",
        }
    }
}

/// Counts a refusal and audits it, within the refusal budget (anyone can be
/// refused: only a budget of refusals is audited one by one, the rest are
/// counted, `refusals.rs`). Err: the entry could not be recorded.
pub(super) async fn record_denial(
    state: &ExchangeState,
    denial: &Denial,
    claimed: Option<UnverifiedIdentity>,
    via: Via,
) -> Result<(), crate::storage::StoreError> {
    let (issuer, subject) = claimed.map_or((None, None), |c| (c.iss, c.sub));
    state.metrics.token_decision("deny", denial.reason);
    let now_ms = unix_ms(state.clock.now());
    let admission = state
        .federation
        .refusals
        .admit(now_ms, denial.reason, issuer.as_deref());
    super::record_counts(state.audit.as_ref(), now_ms, admission.ended).await;
    if !admission.audit_it {
        return Ok(());
    }
    tracing::info!(reason = denial.reason, issuer = ?issuer, subject = ?subject, via = via.as_str(), "token exchange denied");
    let event = AuditEvent::new(
        EventKind::TokenExchange,
        "workload",
        json!({
            "decision": "deny",
            "reason": denial.reason,
            "claimedIssuer": issuer,
            "claimedSubject": subject,
            "via": via.as_str(),
        }),
    );
    state.audit.record(now_ms, event).await.map(drop)
}

fn unavailable(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "cannot record audit event");
    OAuthError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        error: "temporarily_unavailable",
        description: "the decision could not be recorded; retry later".into(),
        retry_after: Some(5),
    }
    .into_response()
}

async fn decide(state: &ExchangeState, request: &TokenRequest) -> Result<Response, Denial> {
    let federation = &state.federation;
    let invalid_request = |reason, msg: &str| Denial {
        error: OAuthError::new("invalid_request", msg),
        reason,
    };
    match request.grant_type.as_deref() {
        None => {
            return Err(invalid_request(
                "missing_grant_type",
                "grant_type is required",
            ));
        }
        Some(TOKEN_EXCHANGE_GRANT) => {}
        Some(_) => {
            return Err(Denial {
                error: OAuthError::new(
                    "unsupported_grant_type",
                    "only token exchange (RFC 8693) is supported",
                ),
                reason: "unsupported_grant_type",
            });
        }
    }
    let Some(subject_token) = request.subject_token.as_deref().filter(|t| !t.is_empty()) else {
        return Err(invalid_request(
            "missing_subject_token",
            "subject_token is required",
        ));
    };
    match request.subject_token_type.as_deref() {
        Some(TOKEN_TYPE_JWT | TOKEN_TYPE_ID_TOKEN) => {}
        None => {
            return Err(invalid_request(
                "missing_subject_token_type",
                "subject_token_type is required",
            ));
        }
        Some(_) => {
            return Err(invalid_request(
                "unsupported_subject_token_type",
                "subject_token_type must be urn:ietf:params:oauth:token-type:jwt or :id_token",
            ));
        }
    }
    match request.requested_token_type.as_deref() {
        None | Some(TOKEN_TYPE_JWT | TOKEN_TYPE_ACCESS_TOKEN) => {}
        Some(_) => {
            return Err(invalid_request(
                "unsupported_requested_token_type",
                "requested_token_type must be urn:ietf:params:oauth:token-type:jwt or :access_token",
            ));
        }
    }
    let audience = request
        .audience
        .clone()
        .unwrap_or_else(|| federation.audiences[0].clone());
    if !federation.audiences.contains(&audience) {
        return Err(Denial {
            error: OAuthError::new("invalid_target", "the requested audience is not allowed"),
            reason: "invalid_target",
        });
    }

    let requested = request
        .scope
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.split_whitespace().map(str::to_owned).collect());
    let exchanged = exchange_subject(
        state,
        subject_token,
        audience,
        requested,
        Via::TokenEndpoint,
    )
    .await?;
    let body = TokenResponse {
        access_token: exchanged.minted.as_str().to_owned(),
        expires_in: exchanged.expires_in.as_secs(),
        issued_token_type: TOKEN_TYPE_JWT.to_owned(),
        scope: exchanged.scope,
        token_type: "Bearer".to_owned(),
    };
    let mut response = axum::Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// What an allowed exchange minted.
pub(super) struct Exchanged {
    /// The federated credential.
    pub(super) minted: idp::MintedToken,
    /// Its granted scopes, space-separated.
    pub(super) scope: String,
    /// Its lifetime from now.
    pub(super) expires_in: Duration,
    /// When the subject token itself expires (Unix s).
    pub(super) subject_expires_at: i64,
}

/// The exchange proper, for `POST /v1/token` and a direct Bearer alike:
/// validate the subject token (`invalid_grant` naming the failed check),
/// apply the per-identity rate limit (429), select exactly one mapping
/// (`invalid_grant`), grant the scope (`invalid_scope`), mint, and record
/// the allow durably before the credential is handed out.
pub(super) async fn exchange_subject(
    state: &ExchangeState,
    subject_token: &str,
    audience: String,
    requested: Option<Vec<String>>,
    via: Via,
) -> Result<Exchanged, Denial> {
    let federation = &state.federation;
    let token = federation
        .validator
        .validate(subject_token)
        .await
        .map_err(|r| match r {
            // The broker's dependency failed, not the workload's token: a
            // 400 would tell the workload its token is bad and not to retry.
            TokenRejection::IssuerUnreachable => Denial {
                error: OAuthError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    error: "temporarily_unavailable",
                    description: r.description().into(),
                    retry_after: Some(5),
                },
                reason: r.code(),
            },
            r => Denial::grant(
                r.code(),
                format!("subject token refused: {}", r.description()),
            ),
        })?;

    let over_limit = federation
        .limiter
        .check(token.iss(), token.sub(), unix_ms(state.clock.now()))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot count the exchange");
            Denial::unavailable(
                "storage_unavailable",
                "the broker cannot count exchanges right now",
            )
        })?;
    if let Some(wait) = over_limit {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        return Err(Denial {
            error: OAuthError {
                status: StatusCode::TOO_MANY_REQUESTS,
                error: "slow_down",
                description: "too many token exchanges for this identity; retry later".into(),
                retry_after: Some(secs.max(1)),
            },
            reason: "rate_limited",
        });
    }

    let candidates = candidates(state, &token).await?;
    let matched = idp::select_mapping(&token, &candidates.active)
        .map_err(|rejection| candidates.denial(rejection))?;
    let claims = matched
        .grant(audience.clone(), requested, federation.token_ttl)
        .map_err(|e| Denial {
            error: OAuthError::new("invalid_scope", e.to_string()),
            reason: "invalid_scope",
        })?;
    let rule = matched.mapping();
    let adtech = rule.adtech.clone();
    let granted = claims.scopes().to_vec();

    let now = state.clock.now();
    let minted = state
        .issuer
        .current()
        .mint_access_token(now, &claims)
        .map_err(|e| {
            tracing::error!(error = %e, "cannot mint a credential");
            Denial::unavailable(
                "signing_unavailable",
                "the broker cannot sign credentials right now",
            )
        })?;
    let scope = granted.join(" ");
    let event = AuditEvent::new(
        EventKind::TokenExchange,
        format!("adtech:{adtech}"),
        json!({
            "decision": "allow",
            "issuer": token.iss(),
            "subject": token.sub(),
            "adtech": adtech,
            "mapping": rule.id,
            "cloud": rule.cloud.as_str(),
            "audience": audience,
            "scope": scope,
            "jti": minted.jti(),
            "expiresAt": minted.expires_at(),
            "via": via.as_str(),
        }),
    );
    if let Err(e) = state.audit.record(unix_ms(now), event).await {
        tracing::error!(error = %e, "cannot record audit event");
        return Err(Denial::unavailable(
            "audit_unavailable",
            "the decision could not be recorded; retry later",
        ));
    }
    state.metrics.token_decision("allow", "mapped");
    tracing::info!(adtech = %adtech, mapping = %rule.id, jti = %minted.jti(), via = via.as_str(), "token exchange allowed");
    let expires_in =
        Duration::from_secs(u64::try_from(minted.expires_at() - unix_ms(now) / 1000).unwrap_or(0));
    Ok(Exchanged {
        minted,
        scope,
        expires_in,
        subject_expires_at: token.exp(),
    })
}

/// The enabled mappings of enabled ad techs for the token's identity, and whether a
/// disabled ad tech had one (so "no mapping" can say why).
struct Candidates {
    active: Vec<idp::Mapping>,
    of_disabled_adtech: bool,
}

impl Candidates {
    fn denial(&self, rejection: MappingRejection) -> Denial {
        match rejection {
            MappingRejection::NoMapping if self.of_disabled_adtech => Denial::grant(
                "adtech_disabled",
                "the ad tech of this identity is disabled",
            ),
            MappingRejection::NoMapping => {
                Denial::grant("no_mapping", "no mapping for this identity")
            }
            MappingRejection::Ambiguous { .. } => Denial::grant(
                "ambiguous_mapping",
                "more than one mapping matches this identity",
            ),
            MappingRejection::ConditionFailed { claim } => Denial::grant(
                "condition_failed",
                format!("a mapping condition does not hold (claim `{claim}`)"),
            ),
        }
    }
}

/// Exactly one enabled mapping of an enabled ad tech must match: these are the ones that
/// may.
async fn candidates(state: &ExchangeState, token: &VerifiedToken) -> Result<Candidates, Denial> {
    let rows = state
        .store
        .mappings_for_subject(token.iss(), token.sub())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot read mappings");
            Denial::unavailable(
                "storage_unavailable",
                "the broker cannot read its mappings right now",
            )
        })?;
    let mut active = Vec::new();
    let mut of_disabled_adtech = false;
    for (record, adtech_enabled) in &rows {
        let Ok(rule) = mapping_rule(record) else {
            tracing::error!(mapping = %record.id, "stored mapping does not decode; ignored");
            continue;
        };
        if !adtech_enabled {
            of_disabled_adtech |= rule.enabled;
        } else if rule.enabled {
            active.push(rule);
        }
    }
    Ok(Candidates {
        active,
        of_disabled_adtech,
    })
}
