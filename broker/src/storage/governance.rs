//! Governance state (DESIGN §7.3): members, threshold, proposals, ballots,
//! and the release policies governance has applied. Every change happens in
//! a [`GovernanceTx`] holding the `governance` lock, so two replicas
//! counting ballots at once cannot both apply (or both miss) a proposal.

use sqlx::{Any, Transaction};

use super::audit_log::insert_outbox_in;
use super::{OutboxEntry, Store, StoreError, conflict_or};

const THRESHOLD_SETTING: &str = "gov_threshold";

/// A governance member.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct GovMember {
    /// Unique name.
    pub name: String,
    /// Ed25519 public key, base64 of the 32 raw bytes.
    pub public_key: String,
    /// Unix ms.
    pub added_at: i64,
}

/// A stored proposal.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredProposal {
    /// Random id.
    pub id: String,
    /// What kind of change.
    pub kind: String,
    /// Canonical JSON of the change.
    pub body: String,
    /// Hex SHA-256 of the document members sign.
    pub digest: String,
    /// `open`, `applied`, `expired` or `superseded`.
    pub status: String,
    /// Who proposed it.
    pub created_by: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub expires_at: i64,
    /// Unix ms, once applied.
    pub applied_at: Option<i64>,
}

/// A ballot on a proposal.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredBallot {
    /// The member.
    pub member: String,
    /// Base64 Ed25519 signature.
    pub signature: String,
    /// Unix ms.
    pub created_at: i64,
}

/// A release policy, or the key-generation policy, in force.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredPolicy {
    /// The use case (`key-generation` for the key-generation policy).
    pub use_case: String,
    /// Canonical JSON.
    pub policy: String,
    /// Hex SHA-256 of `policy`.
    pub digest: String,
    /// The proposal that applied it.
    pub proposal_id: String,
    /// Unix ms.
    pub applied_at: i64,
}

const PROPOSAL_COLUMNS: &str =
    "id, kind, body, digest, status, created_by, created_at, expires_at, applied_at";

impl Store {
    /// Members, by name.
    pub async fn gov_members(&self) -> Result<Vec<GovMember>, StoreError> {
        members_in(&self.pool).await
    }

    /// The approval threshold M (`None` before governance is set up).
    pub async fn gov_threshold(&self) -> Result<Option<u32>, StoreError> {
        let value = self.setting(THRESHOLD_SETTING).await?;
        value
            .map(|v| {
                v.parse()
                    .map_err(|_| StoreError::Corrupt(format!("{THRESHOLD_SETTING} = {v}")))
            })
            .transpose()
    }

    /// One proposal.
    pub async fn gov_proposal(&self, id: &str) -> Result<StoredProposal, StoreError> {
        sqlx::query_as(&format!(
            "SELECT {PROPOSAL_COLUMNS} FROM gov_proposals WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("proposal `{id}`")))
    }

    /// Proposals, newest first, optionally of one status.
    pub async fn gov_proposals(
        &self,
        status: Option<&str>,
    ) -> Result<Vec<StoredProposal>, StoreError> {
        let rows = match status {
            Some(status) => {
                sqlx::query_as(&format!(
                    "SELECT {PROPOSAL_COLUMNS} FROM gov_proposals WHERE status = $1 \
                     ORDER BY created_at DESC, id"
                ))
                .bind(status)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query_as(&format!(
                    "SELECT {PROPOSAL_COLUMNS} FROM gov_proposals ORDER BY created_at DESC, id"
                ))
                .fetch_all(&self.pool)
                .await?
            }
        };
        Ok(rows)
    }

    /// A proposal's ballots, oldest first.
    pub async fn gov_ballots(&self, proposal_id: &str) -> Result<Vec<StoredBallot>, StoreError> {
        ballots_in(&self.pool, proposal_id).await
    }

    /// The release policy governance applied for a use case, if any.
    pub async fn release_policy(&self, use_case: &str) -> Result<Option<StoredPolicy>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT use_case, policy, digest, proposal_id, applied_at FROM release_policies \
             WHERE use_case = $1",
        )
        .bind(use_case)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The key-generation policy governance applied, if any.
    pub async fn key_generation_policy(&self) -> Result<Option<StoredPolicy>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT 'key-generation' AS use_case, policy, digest, proposal_id, applied_at \
             FROM key_generation_policy WHERE id = 1",
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Starts a transaction holding the governance lock.
    pub async fn lock_governance(&self, now_ms: i64) -> Result<GovernanceTx, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE locks SET held_at = $1 WHERE name = 'governance'")
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        Ok(GovernanceTx { tx })
    }
}

async fn members_in<'e, E>(executor: E) -> Result<Vec<GovMember>, StoreError>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    Ok(
        sqlx::query_as("SELECT name, public_key, added_at FROM gov_members ORDER BY name")
            .fetch_all(executor)
            .await?,
    )
}

async fn ballots_in<'e, E>(executor: E, proposal_id: &str) -> Result<Vec<StoredBallot>, StoreError>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    Ok(sqlx::query_as(
        "SELECT member, signature, created_at FROM gov_ballots WHERE proposal_id = $1 \
         ORDER BY created_at, member",
    )
    .bind(proposal_id)
    .fetch_all(executor)
    .await?)
}

/// A transaction holding the governance lock. Dropping it rolls back.
pub struct GovernanceTx {
    tx: Transaction<'static, Any>,
}

impl GovernanceTx {
    /// Writes the audit entry of this transaction's change into the outbox,
    /// to commit with it.
    pub async fn outbox(&mut self, entry: &OutboxEntry) -> Result<(), StoreError> {
        insert_outbox_in(&mut self.tx, entry).await
    }

    /// Members, by name.
    pub async fn members(&mut self) -> Result<Vec<GovMember>, StoreError> {
        members_in(&mut *self.tx).await
    }

    /// The threshold M.
    pub async fn threshold(&mut self) -> Result<Option<u32>, StoreError> {
        let value: Option<String> =
            sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
                .bind(THRESHOLD_SETTING)
                .fetch_optional(&mut *self.tx)
                .await?;
        value
            .map(|v| {
                v.parse()
                    .map_err(|_| StoreError::Corrupt(format!("{THRESHOLD_SETTING} = {v}")))
            })
            .transpose()
    }

    /// Sets the threshold M.
    pub async fn set_threshold(&mut self, threshold: u32) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = $2",
        )
        .bind(THRESHOLD_SETTING)
        .bind(threshold.to_string())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Adds a member.
    pub async fn add_member(&mut self, member: &GovMember) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO gov_members (name, public_key, added_at) VALUES ($1, $2, $3)")
            .bind(&member.name)
            .bind(&member.public_key)
            .bind(member.added_at)
            .execute(&mut *self.tx)
            .await
            .map_err(|e| conflict_or(e, || format!("member `{}`", member.name)))?;
        Ok(())
    }

    /// Removes a member (their ballots stay, but no longer count).
    pub async fn remove_member(&mut self, name: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM gov_members WHERE name = $1")
            .bind(name)
            .execute(&mut *self.tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("member `{name}`")));
        }
        Ok(())
    }

    /// Records a new proposal.
    pub async fn insert_proposal(&mut self, p: &StoredProposal) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO gov_proposals (id, kind, body, digest, status, created_by, created_at, \
             expires_at, applied_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&p.id)
        .bind(&p.kind)
        .bind(&p.body)
        .bind(&p.digest)
        .bind(&p.status)
        .bind(&p.created_by)
        .bind(p.created_at)
        .bind(p.expires_at)
        .bind(p.applied_at)
        .execute(&mut *self.tx)
        .await
        .map_err(|e| conflict_or(e, || format!("proposal `{}`", p.id)))?;
        Ok(())
    }

    /// One proposal, read under the lock.
    pub async fn proposal(&mut self, id: &str) -> Result<StoredProposal, StoreError> {
        sqlx::query_as(&format!(
            "SELECT {PROPOSAL_COLUMNS} FROM gov_proposals WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("proposal `{id}`")))
    }

    /// A proposal's ballots.
    pub async fn ballots(&mut self, proposal_id: &str) -> Result<Vec<StoredBallot>, StoreError> {
        ballots_in(&mut *self.tx, proposal_id).await
    }

    /// Records a ballot; a second ballot of the same member is a conflict.
    pub async fn insert_ballot(
        &mut self,
        proposal_id: &str,
        ballot: &StoredBallot,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO gov_ballots (proposal_id, member, signature, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(proposal_id)
        .bind(&ballot.member)
        .bind(&ballot.signature)
        .bind(ballot.created_at)
        .execute(&mut *self.tx)
        .await
        .map_err(|e| conflict_or(e, || format!("ballot of `{}`", ballot.member)))?;
        Ok(())
    }

    /// Moves a proposal to `status` (`applied` sets `applied_at`).
    pub async fn set_proposal_status(
        &mut self,
        id: &str,
        status: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let applied_at = (status == "applied").then_some(now_ms);
        sqlx::query("UPDATE gov_proposals SET status = $1, applied_at = $2 WHERE id = $3")
            .bind(status)
            .bind(applied_at)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Puts the key-generation policy in force (its `use_case` is ignored).
    pub async fn put_key_generation_policy(
        &mut self,
        policy: &StoredPolicy,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO key_generation_policy (id, policy, digest, proposal_id, applied_at) \
             VALUES (1, $1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET \
             policy = $1, digest = $2, proposal_id = $3, applied_at = $4",
        )
        .bind(&policy.policy)
        .bind(&policy.digest)
        .bind(&policy.proposal_id)
        .bind(policy.applied_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Puts a release policy in force for a use case.
    pub async fn put_release_policy(&mut self, policy: &StoredPolicy) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO release_policies (use_case, policy, digest, proposal_id, applied_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (use_case) DO UPDATE SET \
             policy = $2, digest = $3, proposal_id = $4, applied_at = $5",
        )
        .bind(&policy.use_case)
        .bind(&policy.policy)
        .bind(&policy.digest)
        .bind(&policy.proposal_id)
        .bind(policy.applied_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Commits.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }
}
