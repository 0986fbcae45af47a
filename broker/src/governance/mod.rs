//! Governance of release policies (DESIGN §7.3): members with Ed25519 keys
//! and a threshold M approve proposals by signing their digest; the M-th
//! valid ballot applies the proposal in the same transaction. Proposals
//! expire after seven days. Every step, refusals included, is audited.
//!
//! # Layout
//! - `model`: [`Change`], the signed proposal document and its digest,
//!   ballot messages and member keys.
//! - `api`: `/v1/gov/*` (the admin API `keyferry gov` drives).
//!
//! The founding members and threshold come from `[governance]` once, when
//! the database has none; from then on only approved proposals change them.

mod api;

pub use api::GovernanceState;
pub mod model;

use base64::Engine as _;
use serde::Serialize;
use serde_json::json;

pub use model::{
    BALLOT_CONTEXT, Change, PROPOSAL_LIFETIME_MS, ProposalDocument, ballot_message,
    ballot_signature_valid, parse_member_key,
};

pub(crate) use api::router;

use crate::Error;
use crate::audit::{Audit, AuditEvent, EventKind};
use crate::config::GovernanceConfig;
use crate::storage::{
    GovMember, GovernanceTx, Store, StoreError, StoredBallot, StoredPolicy, StoredProposal,
};

/// Proposal statuses.
pub mod status {
    /// Collecting ballots.
    pub const OPEN: &str = "open";
    /// Approved and in force.
    pub const APPLIED: &str = "applied";
    /// Not approved within its lifetime.
    pub const EXPIRED: &str = "expired";
    /// Approved, but no longer applicable when its M-th ballot came (e.g. it
    /// removes a member another proposal already removed).
    pub const REJECTED: &str = "rejected";
}

/// A proposal as the API shows it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProposalView {
    /// Id.
    pub id: String,
    /// The change.
    pub change: serde_json::Value,
    /// What members sign (see [`ballot_message`]).
    pub digest: String,
    /// The signed document, canonical JSON: recompute its SHA-256 to check
    /// `digest` before signing.
    pub document: String,
    /// `open`, `applied`, `expired`, `rejected`.
    pub status: String,
    /// Proposer.
    pub created_by: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub expires_at: i64,
    /// Unix ms.
    pub applied_at: Option<i64>,
    /// Members who approved, in order.
    pub approvals: Vec<String>,
    /// M at the time of reading.
    pub threshold: u32,
}

/// The coordinator-wide governance service.
#[derive(Debug, Clone)]
pub struct Governance {
    coordinator: String,
}

fn document_of(coordinator: &str, p: &StoredProposal) -> Result<(Change, String), Error> {
    let change: Change = serde_json::from_str(&p.body)
        .map_err(|e| Error::Internal(format!("proposal {}: {e}", p.id)))?;
    let canonical = ProposalDocument {
        r#type: "keyferry/v1/governance-proposal",
        id: &p.id,
        coordinator,
        change: &change,
        created_at: p.created_at,
        expires_at: p.expires_at,
    }
    .canonical()
    .map_err(|e| Error::Internal(e.to_string()))?;
    Ok((change, canonical))
}

fn refused(status: axum::http::StatusCode, code: &'static str, detail: String) -> Error {
    Error::Refused {
        status,
        code,
        detail,
    }
}

impl Governance {
    /// Governance for coordinator `name`; seeds members and threshold from
    /// `config` if the database has no members yet.
    pub async fn open(
        name: &str,
        config: &GovernanceConfig,
        store: &Store,
        now_ms: i64,
    ) -> Result<Governance, StoreError> {
        let mut tx = store.lock_governance(now_ms).await?;
        if tx.members().await?.is_empty() && !config.members.is_empty() {
            for member in &config.members {
                let public_key = parse_member_key(&member.public_key).map_err(|e| {
                    StoreError::Corrupt(format!("governance.members `{}`: {e}", member.name))
                })?;
                tx.add_member(&GovMember {
                    name: member.name.clone(),
                    public_key,
                    added_at: now_ms,
                })
                .await?;
            }
            let threshold = config.threshold.unwrap_or(1);
            tx.set_threshold(threshold).await?;
        }
        tx.commit().await?;
        Ok(Governance {
            coordinator: format!("coordinator:{name}"),
        })
    }

    /// Records a proposal; returns it with the digest members must sign.
    pub async fn propose(
        &self,
        store: &Store,
        audit: &dyn Audit,
        change: Change,
        actor: &str,
        now_ms: i64,
    ) -> Result<ProposalView, Error> {
        self.validate(store, &change).await?;
        let id = uuid::Uuid::new_v4().to_string();
        let expires_at = now_ms + PROPOSAL_LIFETIME_MS;
        let document = ProposalDocument {
            r#type: "keyferry/v1/governance-proposal",
            id: &id,
            coordinator: &self.coordinator,
            change: &change,
            created_at: now_ms,
            expires_at,
        };
        let digest = document
            .digest()
            .map_err(|e| Error::Internal(e.to_string()))?;
        let body = serde_jcs::to_string(&change).map_err(|e| Error::Internal(e.to_string()))?;
        let stored = StoredProposal {
            id: id.clone(),
            kind: change.kind().to_owned(),
            body,
            digest: digest.clone(),
            status: status::OPEN.to_owned(),
            created_by: actor.to_owned(),
            created_at: now_ms,
            expires_at,
            applied_at: None,
        };
        let event = AuditEvent::new(
            EventKind::GovProposed,
            actor,
            json!({"proposalId": id, "kind": change.kind(), "digest": digest, "change": change, "expiresAt": expires_at}),
        );
        let mut tx = store.lock_governance(now_ms).await?;
        tx.insert_proposal(&stored).await?;
        tx.outbox(&event.outbox(now_ms)).await?;
        tx.commit().await?;
        audit.publish_outbox().await;
        self.view(store, &id, now_ms).await
    }

    /// Records a member's ballot; the M-th valid ballot applies the
    /// proposal atomically. Refusals are audited and answered with their
    /// own codes.
    #[allow(clippy::too_many_arguments)] // the ballot's parts and where it goes
    pub async fn approve(
        &self,
        store: &Store,
        audit: &dyn Audit,
        proposal_id: &str,
        member: &str,
        signature: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<ProposalView, Error> {
        match self
            .approve_locked(store, proposal_id, member, signature, actor, now_ms)
            .await
        {
            Ok(()) => {
                audit.publish_outbox().await;
                self.view(store, proposal_id, now_ms).await
            }
            Err(error) => {
                if let Error::Refused { code, .. } | Error::BadRequest { code, .. } = &error {
                    let event = AuditEvent::new(
                        EventKind::GovBallotRefused,
                        actor,
                        json!({"proposalId": proposal_id, "member": member, "reason": code}),
                    );
                    audit.record(now_ms, event).await?;
                }
                Err(error)
            }
        }
    }

    async fn approve_locked(
        &self,
        store: &Store,
        proposal_id: &str,
        member: &str,
        signature: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<(), Error> {
        use axum::http::StatusCode;
        let mut tx = store.lock_governance(now_ms).await?;
        let proposal = tx.proposal(proposal_id).await?;
        if proposal.status != status::OPEN {
            return Err(refused(
                StatusCode::CONFLICT,
                "proposal_closed",
                format!("proposal is {}", proposal.status),
            ));
        }
        if now_ms >= proposal.expires_at {
            tx.set_proposal_status(proposal_id, status::EXPIRED, now_ms)
                .await?;
            tx.commit().await?;
            return Err(refused(
                StatusCode::GONE,
                "proposal_expired",
                "the proposal expired before reaching its threshold".into(),
            ));
        }
        let members = tx.members().await?;
        let Some(voter) = members.iter().find(|m| m.name == member) else {
            return Err(refused(
                StatusCode::FORBIDDEN,
                "not_a_member",
                format!("`{member}` is not a governance member"),
            ));
        };
        if !ballot_signature_valid(&voter.public_key, &proposal.digest, signature) {
            return Err(Error::BadRequest {
                code: "ballot_signature_invalid",
                detail: "the signature does not verify with the member's key over this proposal's digest".into(),
                field: Some("signature".into()),
            });
        }
        let ballots = tx.ballots(proposal_id).await?;
        if ballots.iter().any(|b| b.member == member) {
            return Err(refused(
                StatusCode::CONFLICT,
                "duplicate_ballot",
                format!("`{member}` already approved this proposal"),
            ));
        }
        tx.insert_ballot(
            proposal_id,
            &StoredBallot {
                member: member.to_owned(),
                signature: signature.to_owned(),
                created_at: now_ms,
            },
        )
        .await?;
        // Only ballots of current members whose signatures still verify
        // count: a removed member's earlier ballot does not.
        let approvals: Vec<String> = ballots
            .iter()
            .chain(std::iter::once(&StoredBallot {
                member: member.to_owned(),
                signature: signature.to_owned(),
                created_at: now_ms,
            }))
            .filter(|b| {
                members.iter().any(|m| {
                    m.name == b.member
                        && ballot_signature_valid(&m.public_key, &proposal.digest, &b.signature)
                })
            })
            .map(|b| b.member.clone())
            .collect();
        let threshold = tx.threshold().await?.unwrap_or(1);
        let (change, _) = document_of(&self.coordinator, &proposal)?;
        let mut applied = None;
        if approvals.len() >= threshold as usize {
            let result = apply(&mut tx, &proposal, &change, &members, threshold, now_ms).await?;
            let next = if result.is_ok() {
                status::APPLIED
            } else {
                status::REJECTED
            };
            tx.set_proposal_status(proposal_id, next, now_ms).await?;
            applied = Some(result);
        }
        // The ballot, and the change it applied, commit with their entries.
        let ballot = AuditEvent::new(
            EventKind::GovBallot,
            actor,
            json!({"proposalId": proposal_id, "member": member, "approvals": approvals, "threshold": threshold}),
        );
        tx.outbox(&ballot.outbox(now_ms)).await?;
        if let Some(applied) = applied {
            let kind = if applied.is_ok() {
                EventKind::GovApplied
            } else {
                EventKind::GovRejected
            };
            let event = AuditEvent::new(
                kind,
                format!("governance:{}", self.coordinator),
                json!({"proposalId": proposal_id, "digest": proposal.digest, "change": change, "error": applied.err()}),
            );
            tx.outbox(&event.outbox(now_ms)).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Checks a change before it becomes a proposal.
    async fn validate(&self, store: &Store, change: &Change) -> Result<(), Error> {
        match change {
            Change::ReleasePolicy { use_case, policy } => {
                if use_case.trim().is_empty() {
                    return Err(Error::invalid_field("change.useCase", "must not be empty"));
                }
                validate_policy(policy).map_err(|e| Error::invalid_field("change.policy", e))
            }
            Change::KeyGenerationPolicy { policy } => {
                validate_policy(policy).map_err(|e| Error::invalid_field("change.policy", e))
            }
            Change::AddMember { name, public_key } => {
                if name.trim().is_empty() || name.len() > 64 {
                    return Err(Error::invalid_field("change.name", "1 to 64 characters"));
                }
                parse_member_key(public_key)
                    .map_err(|e| Error::invalid_field("change.publicKey", e))?;
                if store.gov_members().await?.iter().any(|m| &m.name == name) {
                    return Err(Error::Conflict(format!("`{name}` is already a member")));
                }
                Ok(())
            }
            Change::RemoveMember { name } => {
                if !store.gov_members().await?.iter().any(|m| &m.name == name) {
                    return Err(Error::invalid_field("change.name", "not a member"));
                }
                Ok(())
            }
            Change::SetThreshold { threshold } => {
                let members = store.gov_members().await?.len();
                if *threshold == 0 || *threshold as usize > members {
                    return Err(Error::invalid_field(
                        "change.threshold",
                        format!("must be from 1 to the number of members ({members})"),
                    ));
                }
                Ok(())
            }
        }
    }

    /// A proposal with its approvals.
    pub async fn view(&self, store: &Store, id: &str, _now_ms: i64) -> Result<ProposalView, Error> {
        let proposal = store.gov_proposal(id).await?;
        let ballots = store.gov_ballots(id).await?;
        let threshold = store.gov_threshold().await?.unwrap_or(1);
        let (change, document) = document_of(&self.coordinator, &proposal)?;
        Ok(ProposalView {
            change: serde_json::to_value(&change).map_err(|e| Error::Internal(e.to_string()))?,
            document,
            digest: proposal.digest,
            status: proposal.status,
            created_by: proposal.created_by,
            created_at: proposal.created_at,
            expires_at: proposal.expires_at,
            applied_at: proposal.applied_at,
            approvals: ballots.into_iter().map(|b| b.member).collect(),
            threshold,
            id: proposal.id,
        })
    }
}

/// Applies an approved change inside the governance transaction. A change
/// that is no longer possible (its member already removed…) is rejected,
/// not half-applied.
async fn apply(
    tx: &mut GovernanceTx,
    proposal: &StoredProposal,
    change: &Change,
    members: &[GovMember],
    threshold: u32,
    now_ms: i64,
) -> Result<Result<(), String>, StoreError> {
    match change {
        Change::ReleasePolicy { use_case, policy } => {
            tx.put_release_policy(&stored_policy(use_case, policy, proposal, now_ms)?)
                .await?;
        }
        Change::KeyGenerationPolicy { policy } => {
            let stored = stored_policy("key-generation", policy, proposal, now_ms)?;
            tx.put_key_generation_policy(&stored).await?;
        }
        Change::AddMember { name, public_key } => {
            if members.iter().any(|m| &m.name == name) {
                return Ok(Err(format!("`{name}` is already a member")));
            }
            let public_key = match parse_member_key(public_key) {
                Ok(k) => k,
                Err(e) => return Ok(Err(e)),
            };
            tx.add_member(&GovMember {
                name: name.clone(),
                public_key,
                added_at: now_ms,
            })
            .await?;
        }
        Change::RemoveMember { name } => {
            if !members.iter().any(|m| &m.name == name) {
                return Ok(Err(format!("`{name}` is not a member")));
            }
            if members.len() - 1 < threshold as usize {
                return Ok(Err(format!(
                    "removing `{name}` would leave fewer members than the threshold {threshold}"
                )));
            }
            tx.remove_member(name).await?;
        }
        Change::SetThreshold { threshold } => {
            if *threshold == 0 || *threshold as usize > members.len() {
                return Ok(Err(format!(
                    "threshold {threshold} is not between 1 and {} members",
                    members.len()
                )));
            }
            tx.set_threshold(*threshold).await?;
        }
    }
    Ok(Ok(()))
}

/// A policy document as it is kept: canonical JSON and its digest.
fn stored_policy(
    governs: &str,
    policy: &serde_json::Value,
    proposal: &StoredProposal,
    now_ms: i64,
) -> Result<StoredPolicy, StoreError> {
    use sha2::Digest as _;
    let canonical = serde_jcs::to_string(policy).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(StoredPolicy {
        use_case: governs.to_owned(),
        digest: hex::encode(sha2::Sha256::digest(canonical.as_bytes())),
        policy: canonical,
        proposal_id: proposal.id.clone(),
        applied_at: now_ms,
    })
}

/// Checks that a release policy document parses as one.
fn validate_policy(policy: &serde_json::Value) -> Result<(), String> {
    crate::distribution::parse_release_policy(policy).map(|_| ())
}

/// Base64 of a signature, for the CLI.
pub fn encode_signature(signature: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(signature)
}
