//! What the log records: [`EventKind`], every kind of entry this broker
//! writes, and [`AuditEntry`], one entry as written (canonical JSON) and as
//! read back by the API, the CLI and tests. docs/audit.md describes each
//! kind and its details.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

macro_rules! event_kinds {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// Every kind of entry this broker writes. Adding one: a variant
        /// here, its row in docs/audit.md.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum EventKind {
            $($(#[$doc])* $variant,)*
        }

        impl EventKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [EventKind] = &[$(EventKind::$variant,)*];

            /// The dotted name written into entries, e.g. `token.exchange`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventKind::$variant => $name,)*
                }
            }

            /// The kind named `name`, if this build writes it.
            pub fn parse(name: &str) -> Option<Self> {
                match name {
                    $($name => Some(EventKind::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

event_kinds! {
    /// `POST /v1/token` allowed or denied (`details.decision`).
    TokenExchange => "token.exchange",
    /// Refused exchanges beyond the audited budget of a minute, counted per
    /// source (reason, claimed issuer).
    TokenRefusals => "token.refusals",
    /// A trusted issuer was added through the admin API.
    IssuerAdded => "issuer.added",
    /// A trusted issuer was removed.
    IssuerRemoved => "issuer.removed",
    /// An ad tech was onboarded.
    AdtechCreated => "adtech.created",
    /// An ad tech was enabled again.
    AdtechEnabled => "adtech.enabled",
    /// An ad tech was disabled.
    AdtechDisabled => "adtech.disabled",
    /// A workload identity mapping was added.
    MappingAdded => "mapping.added",
    /// A workload identity mapping was removed.
    MappingRemoved => "mapping.removed",
    /// The Type-1 generated a key (pending until the Type-2 acknowledges).
    KeyGenerated => "key.generated",
    /// The Type-2's acknowledgement verified; the key is published.
    KeyActivated => "key.activated",
    /// The Type-2 stored a handed-over key.
    KeyReceived => "key.received",
    /// The Type-2 refused a handover (`details.reason`), storing nothing.
    KeyHandoverRefused => "key.handover_refused",
    /// A pending key was dropped after `handover_timeout`.
    KeyDropped => "key.dropped",
    /// A key past its TTL was deleted.
    KeyDeleted => "key.deleted",
    /// An operator revoked a key.
    KeyRevoked => "key.revoked",
    /// An operator asked for new keys.
    KeysRotated => "keys.rotated",
    /// A live key got a split under a cloud's current KEK.
    KeyRewrapped => "key.rewrapped",
    /// Wrapped splits were served without attestation.
    KeysFetched => "keys.fetched",
    /// An attested release was answered.
    KeysReleased => "keys.released",
    /// An attested release was refused.
    KeysReleaseRefused => "keys.release_refused",
    /// A governance proposal was made.
    GovProposed => "gov.proposed",
    /// A valid ballot was recorded.
    GovBallot => "gov.ballot",
    /// A ballot was refused.
    GovBallotRefused => "gov.ballot_refused",
    /// The M-th ballot applied a proposal.
    GovApplied => "gov.applied",
    /// The M-th ballot found a proposal no longer applicable.
    GovRejected => "gov.rejected",
    /// This coordinator began witnessing its peer's log (the peer's log
    /// key is pinned).
    AuditWitnessStarted => "audit.witness_started",
    /// The peer's log showed a head that does not extend the last one seen
    /// (a rollback, a split view, an inconsistent history, a changed key).
    AuditWitnessFailed => "audit.witness_failed",
    /// The peer co-signed a head this log never signed.
    AuditCosignatureRefused => "audit.cosignature_refused",
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of an entry read back: one this build writes, or another (an
/// entry imported from the interim table, or written by a newer broker).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A kind this build writes.
    Known(EventKind),
    /// Any other name, kept as written.
    Other(String),
}

impl EntryKind {
    /// The kind `name` names.
    pub fn from_name(name: &str) -> Self {
        EventKind::parse(name).map_or_else(|| EntryKind::Other(name.to_owned()), EntryKind::Known)
    }

    /// The dotted name.
    pub fn as_str(&self) -> &str {
        match self {
            EntryKind::Known(kind) => kind.as_str(),
            EntryKind::Other(name) => name,
        }
    }
}

impl PartialEq<EventKind> for EntryKind {
    fn eq(&self, other: &EventKind) -> bool {
        *self == EntryKind::Known(*other)
    }
}

impl Serialize for EntryKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EntryKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(EntryKind::from_name(&String::deserialize(d)?))
    }
}

/// Why a text is not an audit entry.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// Not JSON of an entry's shape.
    #[error("not an audit entry: {0}")]
    Json(#[from] serde_json::Error),
    /// The right shape, but not the canonical text (RFC 8785) of it.
    #[error("not in canonical form (RFC 8785), as every entry is written")]
    NotCanonical,
}

/// One entry of the log. Its canonical JSON (RFC 8785) is what is stored,
/// hashed into the tree and served; [`AuditEntry::parse`] reads it back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]

pub struct AuditEntry {
    /// Position in the log, from 0.
    pub index: i64,
    /// Unix ms at which it was recorded.
    pub time: i64,
    /// What happened.
    pub kind: EntryKind,
    /// Who caused it (`admin-token:<label>`, `operator:<sub>`,
    /// `adtech:<id>`, `coordinator:<name>`, `unauthenticated`).
    pub actor: String,
    /// The kind's details; never a secret.
    pub details: Value,
}

impl AuditEntry {
    /// The canonical JSON text: the bytes the leaf hash covers.
    pub fn canonical(&self) -> String {
        // Serialising strings, integers and a `Value` cannot fail.
        serde_jcs::to_string(self).unwrap_or_default()
    }

    /// Reads a stored or exported entry. Only its canonical text is an
    /// entry: that is what the broker writes and what the leaf hash covers,
    /// so any other spelling of the same JSON (whitespace, member order, an
    /// integer beyond 2^53, which RFC 8785 writes as its nearest double) was
    /// not written by a broker, and reading it would show an auditor
    /// something other than what was hashed.
    pub fn parse(text: &str) -> Result<Self, EntryError> {
        let entry: AuditEntry = serde_json::from_str(text)?;
        if entry.canonical() != text {
            return Err(EntryError::NotCanonical);
        }
        Ok(entry)
    }

    /// The `index` an entry's text claims, read even from an entry whose
    /// other members are damaged (the verifier names what is wrong).
    pub fn claimed_index(text: &str) -> Option<u64> {
        #[derive(Deserialize)]
        struct Index {
            index: u64,
        }
        serde_json::from_str::<Index>(text).ok().map(|i| i.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_back_from_its_name_and_names_are_unique() {
        let mut names = std::collections::HashSet::new();
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(*kind));
            assert!(names.insert(kind.as_str()), "{kind} twice");
        }
        assert_eq!(EventKind::parse("no.such"), None);
    }

    #[test]
    fn an_entry_round_trips_through_its_canonical_text() {
        let entry = AuditEntry {
            index: 7,
            time: 1_700_000_000_000,
            kind: EntryKind::Known(EventKind::KeysFetched),
            actor: "adtech:acme".into(),
            details: serde_json::json!({"keyIds": ["k1"], "cloud": "gcp"}),
        };
        let text = entry.canonical();
        // RFC 8785: members sorted, no whitespace.
        assert_eq!(
            text,
            r#"{"actor":"adtech:acme","details":{"cloud":"gcp","keyIds":["k1"]},"index":7,"kind":"keys.fetched","time":1700000000000}"#
        );
        assert_eq!(AuditEntry::parse(&text).ok(), Some(entry));
        assert_eq!(AuditEntry::claimed_index(&text), Some(7));
        // Another spelling of the same entry is not an entry; nor is an
        // integer a double cannot hold, which canonical JSON rounds.
        let spaced = text.replace(",\"index\"", ", \"index\"");
        assert!(matches!(
            AuditEntry::parse(&spaced),
            Err(EntryError::NotCanonical)
        ));
        let huge = text.replace("1700000000000", "9007199254740993");
        assert!(matches!(
            AuditEntry::parse(&huge),
            Err(EntryError::NotCanonical)
        ));
        assert!(matches!(
            AuditEntry::parse("{\"index\": 1}"),
            Err(EntryError::Json(_))
        ));
        let other = text.replace("keys.fetched", "future.kind");
        assert_eq!(
            AuditEntry::parse(&other).map(|e| e.kind).ok(),
            Some(EntryKind::Other("future.kind".into()))
        );
    }
}
