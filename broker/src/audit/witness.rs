//! Mutual log witnessing (DESIGN §7.2): each coordinator fetches its peer's
//! signed tree head every `audit.witness_interval`, checks that it extends
//! the last head it accepted (RFC 9162 consistency proof), and co-signs it.
//! The peer keeps the co-signature and serves it with the head.
//!
//! A peer that rolls its log back, shows two histories of the same size, or
//! rewrites history gets no more co-signatures, and the witness records the
//! detection in its own log once per failure (`audit.witness_failed`). It
//! then serves what it saw at `GET /v1/audit/witness`, where an auditor
//! who holds no saved head of their own can compare.
//!
//! The peer's log key is pinned at first sight (`audit.witness_started`).
//! Whoever presents a co-signature must sign with that key, so only the
//! peer can add co-signatures, and only of heads this log signed.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use idp::Clock;
use serde_json::json;
use transparency::{
    Comparison, Cosignature, CosignedTreeHead, SignedTreeHead, WitnessFailure, WitnessView,
    compare, merkle,
};

use super::log::TransparencyLog;
use super::{Audit as _, AuditEvent, EventKind};
use crate::storage::{Store, StoreError, StoredWitnessState};
use crate::time::unix_ms;

/// The setting that pins the peer's log key (base64 Ed25519).
const PEER_LOG_KEY: &str = "peer_log_key";

/// Why a round could not finish. A refused head is not an error: it is
/// [`Round::Refused`].
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// The peer could not be reached or answered nonsense; retried next
    /// period.
    #[error("peer log: {0}")]
    Peer(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one round did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Round {
    /// The head extends the last one accepted (or is the first seen) and
    /// was co-signed.
    Cosigned {
        /// Its size.
        tree_size: u64,
    },
    /// The head is the one accepted last time.
    Unchanged,
    /// The head was refused, for `reason`.
    Refused {
        /// `rollback`, `split_view`, `inconsistent`, `bad_signature` or
        /// `log_key_changed`.
        reason: &'static str,
    },
}

/// This coordinator as the witness of its peer's log.
pub struct Witness {
    log: Arc<TransparencyLog>,
    store: Store,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    /// The peer's base URL.
    peer: String,
    /// This coordinator's base URL, named in its co-signatures.
    own_url: String,
    interval: Duration,
}

impl std::fmt::Debug for Witness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Witness")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl Witness {
    /// The witness of the log at `peer` (a base URL).
    pub fn new(
        log: Arc<TransparencyLog>,
        store: Store,
        clock: Arc<dyn Clock>,
        peer: &str,
        own_url: &str,
        interval: Duration,
        timeout: Duration,
    ) -> Result<Self, WitnessError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| WitnessError::Peer(e.to_string()))?;
        Ok(Witness {
            log,
            store,
            clock,
            http,
            peer: peer.trim_end_matches('/').to_owned(),
            own_url: own_url.trim_end_matches('/').to_owned(),
            interval,
        })
    }

    fn now_ms(&self) -> i64 {
        unix_ms(self.clock.now())
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<T, WitnessError> {
        let url = format!("{}{path}", self.peer);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| WitnessError::Peer(format!("cannot reach {}: {e}", self.peer)))?;
        if !response.status().is_success() {
            return Err(WitnessError::Peer(format!(
                "GET {path} answered {}",
                response.status()
            )));
        }
        response
            .json()
            .await
            .map_err(|e| WitnessError::Peer(format!("GET {path}: {e}")))
    }

    /// The peer's current head, as it serves it.
    async fn peer_head(&self) -> Result<SignedTreeHead, WitnessError> {
        let served: CosignedTreeHead = self.get_json("/v1/audit/sth").await?;
        Ok(served.head)
    }

    /// The peer's pinned log key; pinned now, from a head whose signature
    /// verifies, when this is the first time.
    pub async fn peer_log_key(&self) -> Result<String, WitnessError> {
        if let Some(key) = self.store.setting(PEER_LOG_KEY).await? {
            return Ok(key);
        }
        let head = self.peer_head().await?;
        if !head.signature_valid() {
            return Err(WitnessError::Peer(
                "the peer's tree head signature does not verify".into(),
            ));
        }
        self.pin(&head.public_key).await
    }

    /// Pins `key` unless one is pinned already; returns the pinned key.
    async fn pin(&self, key: &str) -> Result<String, WitnessError> {
        if self
            .store
            .insert_setting_if_absent(PEER_LOG_KEY, key)
            .await?
        {
            let started = AuditEvent::new(
                EventKind::AuditWitnessStarted,
                "witness",
                json!({"log": self.peer, "logKey": key}),
            );
            self.log.record(self.now_ms(), started).await?;
        }
        Ok(self
            .store
            .setting(PEER_LOG_KEY)
            .await?
            .unwrap_or_else(|| key.to_owned()))
    }

    async fn state(
        &self,
    ) -> Result<(Option<SignedTreeHead>, Option<WitnessFailure>), WitnessError> {
        let Some(state) = self.store.witness_state().await? else {
            return Ok((None, None));
        };
        Ok((parse_state(state.head)?, parse_state(state.failure)?))
    }

    async fn save(
        &self,
        head: Option<&SignedTreeHead>,
        failure: Option<&WitnessFailure>,
    ) -> Result<(), WitnessError> {
        let state = StoredWitnessState {
            log: self.peer.clone(),
            head: head.map(|h| serde_json::to_string(h).unwrap_or_default()),
            failure: failure.map(|f| serde_json::to_string(f).unwrap_or_default()),
            checked_at: Some(self.now_ms()),
        };
        Ok(self.store.put_witness_state(&state).await?)
    }

    /// One round: fetch, check, co-sign (or refuse and record why).
    pub async fn round(&self) -> Result<Round, WitnessError> {
        let seen = self.peer_head().await?;
        let (last, failure) = self.state().await?;
        let pinned = match self.store.setting(PEER_LOG_KEY).await? {
            Some(key) => key,
            None if seen.signature_valid() => self.pin(&seen.public_key).await?,
            None => String::new(),
        };
        let verdict = if seen.public_key != pinned {
            Err((
                "log_key_changed",
                "the head is signed by another key than the pinned one".to_owned(),
            ))
        } else if !seen.signature_valid() {
            Err((
                "bad_signature",
                "the head's signature does not verify".to_owned(),
            ))
        } else {
            match last.as_ref().map(|last| (last, compare(last, &seen))) {
                None => Ok(true),
                Some((_, Comparison::Same)) => Ok(false),
                Some((last, Comparison::Rollback)) => Err((
                    "rollback",
                    format!(
                        "size {} after size {} was seen",
                        seen.tree_size, last.tree_size
                    ),
                )),
                Some((last, Comparison::SplitView)) => Err((
                    "split_view",
                    format!(
                        "two roots of size {}: {} seen before, {} now",
                        seen.tree_size, last.root_hash, seen.root_hash
                    ),
                )),
                Some((last, Comparison::Extends)) => {
                    if self.consistent(last, &seen).await? {
                        Ok(true)
                    } else {
                        Err((
                            "inconsistent",
                            format!(
                                "size {} does not extend size {} seen before",
                                seen.tree_size, last.tree_size
                            ),
                        ))
                    }
                }
            }
        };
        match verdict {
            Ok(changed) => {
                self.save(Some(&seen), None).await?;
                // Co-signed again when unchanged too: the last push may
                // have failed, and the peer keeps one per head.
                self.cosign_at_peer(&seen).await?;
                Ok(if changed {
                    Round::Cosigned {
                        tree_size: seen.tree_size,
                    }
                } else {
                    Round::Unchanged
                })
            }
            Err((reason, message)) => {
                let first_time = failure.as_ref().is_none_or(|f| f.reason != reason);
                let recorded = WitnessFailure {
                    reason: reason.to_owned(),
                    message: message.clone(),
                    at: match &failure {
                        Some(f) if !first_time => f.at,
                        _ => self.now_ms(),
                    },
                };
                self.save(last.as_ref(), Some(&recorded)).await?;
                if first_time {
                    tracing::error!(log = %self.peer, reason, %message, "the peer's audit log failed witnessing");
                    let event = AuditEvent::new(
                        EventKind::AuditWitnessFailed,
                        "witness",
                        json!({"log": self.peer, "reason": reason, "message": message,
                               "seen": seen, "last": last}),
                    );
                    self.log.record(self.now_ms(), event).await?;
                }
                Ok(Round::Refused { reason })
            }
        }
    }

    /// Whether the peer's consistency proof shows `seen` extends `last`.
    async fn consistent(
        &self,
        last: &SignedTreeHead,
        seen: &SignedTreeHead,
    ) -> Result<bool, WitnessError> {
        let answer: serde_json::Value = self
            .get_json(&format!(
                "/v1/audit/proofs/consistency?first={}&second={}",
                last.tree_size, seen.tree_size
            ))
            .await?;
        let hash = |b: &str| {
            B64.decode(b)
                .ok()
                .and_then(|v| <merkle::Hash>::try_from(v).ok())
        };
        let proof: Option<Vec<merkle::Hash>> = answer["proof"]
            .as_array()
            .map(|items| items.iter().map(|p| p.as_str().and_then(hash)).collect())
            .unwrap_or(None);
        Ok(
            match (proof, hash(&last.root_hash), hash(&seen.root_hash)) {
                (Some(proof), Some(old), Some(new)) => {
                    merkle::verify_consistency(last.tree_size, seen.tree_size, &old, &new, &proof)
                }
                _ => false,
            },
        )
    }

    /// Signs `head` as its witness and hands the co-signature to the peer.
    async fn cosign_at_peer(&self, head: &SignedTreeHead) -> Result<(), WitnessError> {
        let cosignature = self.log.cosign(head, &self.own_url, self.now_ms());
        let response = self
            .http
            .post(format!("{}/v1/audit/cosignatures", self.peer))
            .json(&json!({"head": head, "cosignature": cosignature}))
            .send()
            .await
            .map_err(|e| WitnessError::Peer(format!("cannot reach {}: {e}", self.peer)))?;
        if !response.status().is_success() {
            return Err(WitnessError::Peer(format!(
                "POST /v1/audit/cosignatures answered {}",
                response.status()
            )));
        }
        Ok(())
    }

    /// What this coordinator saw of its peer's log.
    pub async fn view(&self) -> Result<WitnessView, WitnessError> {
        // One read: the view is of one round, not two.
        let state = self.store.witness_state().await?;
        let checked_at = state.as_ref().and_then(|s| s.checked_at);
        let (head, failure) = match state {
            Some(s) => (parse_state(s.head)?, parse_state(s.failure)?),
            None => (None, None),
        };
        Ok(WitnessView {
            log: self.peer.clone(),
            head,
            failure,
            checked_at,
        })
    }

    /// Checks and keeps a co-signature of one of this log's heads, from the
    /// peer (`POST /v1/audit/cosignatures`).
    pub async fn accept(
        &self,
        head: &SignedTreeHead,
        cosignature: &Cosignature,
    ) -> Result<(), Refusal> {
        let own_key = B64.encode(self.log.public_key());
        if head.public_key != own_key {
            return Err(Refusal::NotOurs);
        }
        let peer_key = self.peer_log_key().await.map_err(Refusal::Unavailable)?;
        if cosignature.public_key != peer_key || !cosignature.valid_for(head) {
            return Err(Refusal::Invalid);
        }
        let size = i64::try_from(head.tree_size).unwrap_or(i64::MAX);
        let signed = self
            .store
            .head_of_size(size)
            .await
            .map_err(|e| Refusal::Unavailable(e.into()))?;
        let ours = signed.is_some_and(|h| {
            B64.encode(&h.root) == head.root_hash && h.timestamp == head.timestamp
        });
        if !ours {
            // The peer, by its own key, vouches for a head this log never
            // signed: someone showed it another history.
            let event = AuditEvent::new(
                EventKind::AuditCosignatureRefused,
                format!("witness:{}", cosignature.witness),
                json!({"head": head, "reason": "unknown_head"}),
            );
            self.log
                .record(self.now_ms(), event)
                .await
                .map_err(|e| Refusal::Unavailable(e.into()))?;
            return Err(Refusal::UnknownHead);
        }
        let text = serde_json::to_string(cosignature).unwrap_or_default();
        self.store
            .put_cosignature(size, &cosignature.public_key, &text)
            .await
            .map_err(|e| Refusal::Unavailable(e.into()))
    }

    /// The co-signatures of `head` this log keeps.
    pub async fn cosignatures(
        &self,
        head: &SignedTreeHead,
    ) -> Result<Vec<Cosignature>, StoreError> {
        let size = i64::try_from(head.tree_size).unwrap_or(i64::MAX);
        Ok(self
            .store
            .cosignatures(size)
            .await?
            .iter()
            .filter_map(|text| serde_json::from_str::<Cosignature>(text).ok())
            .filter(|c| c.valid_for(head))
            .collect())
    }

    /// Runs a round every `audit.witness_interval` until the task is dropped.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let witness = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(witness.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = witness.round().await {
                    tracing::warn!(error = %e, "witnessing round failed; retrying next period");
                }
            }
        })
    }
}

/// A JSON column of the witness state.
fn parse_state<T: serde::de::DeserializeOwned>(
    text: Option<String>,
) -> Result<Option<T>, StoreError> {
    text.map(|t| serde_json::from_str(&t))
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("witness state: {e}")))
}

/// Why a co-signature was not kept.
#[derive(Debug)]
pub enum Refusal {
    /// The head is not signed by this log's key.
    NotOurs,
    /// Not the pinned peer's valid signature over the head.
    Invalid,
    /// A valid co-signature of a head this log never signed (audited).
    UnknownHead,
    /// The peer's key or the database could not be read.
    Unavailable(WitnessError),
}
