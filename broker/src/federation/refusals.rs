//! Refused token exchanges, audited without letting anyone write the log at
//! will.
//!
//! Anyone can send `POST /v1/token` a bad token, and every refusal used to
//! become a permanent log entry (9,000 requests, 9,000 entries). Refusals
//! still matter: an operator must see that someone is trying. So within each
//! window (a minute) the first refusals, up to a budget, are audited one by
//! one as before, durably before their answer. The rest are counted by
//! source (the reason and the claimed issuer), and each window's counts
//! become one `token.refusals` entry per source when the window ends. The
//! sources kept per window are bounded too; beyond them a refusal is counted
//! under its reason alone, and reasons are a fixed set. So the log grows by
//! at most `budget + MAX_SOURCES + reasons` entries a minute, however many
//! refusals arrive; every refusal is also counted in
//! `keyferry_token_decisions_total`.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::json;

use crate::audit::{AuditEvent, EventKind};

/// The length of a window, in ms.
const WINDOW_MS: i64 = 60_000;

/// Sources whose counts a window keeps apart.
const MAX_SOURCES: usize = 64;

/// The claimed issuer is the client's word: at most this much of it is kept.
const MAX_CLAIMED_ISSUER: usize = 256;

/// Where refusals come from, as far as an unauthenticated request tells.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Source {
    reason: &'static str,
    claimed_issuer: Option<String>,
}

#[derive(Debug, Default)]
struct Window {
    start_ms: i64,
    audited: u32,
    counted: HashMap<Source, u64>,
}

/// What to do with one refusal.
#[derive(Debug)]
pub(super) struct Admission {
    /// Audit this refusal itself (within the window's budget).
    pub(super) audit_it: bool,
    /// The counts of a window that ended, to write first.
    pub(super) ended: Vec<AuditEvent>,
}

/// The budget and the current window's counts.
#[derive(Debug)]
pub(super) struct Refusals {
    budget: u32,
    window: Mutex<Window>,
}

impl Refusals {
    /// Audits at most `budget` refusals one by one per window.
    pub(super) fn new(budget: u32) -> Self {
        Self {
            budget,
            window: Mutex::new(Window::default()),
        }
    }

    /// Admits one refusal at `now_ms`.
    pub(super) fn admit(
        &self,
        now_ms: i64,
        reason: &'static str,
        claimed_issuer: Option<&str>,
    ) -> Admission {
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let ended = Self::roll(&mut window, now_ms);
        if window.audited < self.budget {
            window.audited += 1;
            return Admission {
                audit_it: true,
                ended,
            };
        }
        let mut source = Source {
            reason,
            claimed_issuer: claimed_issuer.map(|iss| truncate(iss, MAX_CLAIMED_ISSUER)),
        };
        if !window.counted.contains_key(&source) && window.counted.len() >= MAX_SOURCES {
            source.claimed_issuer = None;
        }
        *window.counted.entry(source).or_default() += 1;
        Admission {
            audit_it: false,
            ended,
        }
    }

    /// The counts of the window, if it ended by `now_ms` (the periodic
    /// flush, so that a quiet minute after a flood still writes them).
    pub(super) fn ended(&self, now_ms: i64) -> Vec<AuditEvent> {
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        Self::roll(&mut window, now_ms)
    }

    /// Starts a new window if the current one ended; returns the ended
    /// window's counts as entries.
    fn roll(window: &mut Window, now_ms: i64) -> Vec<AuditEvent> {
        if now_ms < window.start_ms + WINDOW_MS {
            return Vec::new();
        }
        let (from, to) = (window.start_ms, now_ms);
        let ended = std::mem::replace(
            window,
            Window {
                start_ms: now_ms,
                ..Window::default()
            },
        );
        let mut counted: Vec<(Source, u64)> = ended.counted.into_iter().collect();
        counted.sort_by(|a, b| {
            (a.0.reason, &a.0.claimed_issuer).cmp(&(b.0.reason, &b.0.claimed_issuer))
        });
        counted
            .into_iter()
            .map(|(source, count)| {
                AuditEvent::new(
                    EventKind::TokenRefusals,
                    "workload",
                    json!({
                        "reason": source.reason,
                        "claimedIssuer": source.claimed_issuer,
                        "count": count,
                        "from": from,
                        "to": to,
                    }),
                )
            })
            .collect()
    }
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(events: &[AuditEvent]) -> u64 {
        events
            .iter()
            .map(|e| e.details["count"].as_u64().expect("count"))
            .sum()
    }

    #[test]
    fn the_budget_is_audited_one_by_one_and_the_rest_counted_per_window() {
        let refusals = Refusals::new(3);
        let start = 1_000_000;
        let mut audited = 0;
        for i in 0..10 {
            let admission = refusals.admit(start + i, "bad_signature", Some("https://x"));
            assert!(admission.ended.is_empty());
            audited += u32::from(admission.audit_it);
        }
        assert_eq!(audited, 3);
        // The first refusal of the next window writes the last one's counts.
        let next = refusals.admit(start + WINDOW_MS + 10, "bad_signature", None);
        assert!(next.audit_it, "a new window has a new budget");
        assert_eq!(next.ended.len(), 1);
        assert_eq!(next.ended[0].kind.as_str(), "token.refusals");
        assert_eq!(counts(&next.ended), 7);
        assert_eq!(next.ended[0].details["claimedIssuer"], "https://x");
    }

    #[test]
    fn sources_are_bounded_whatever_issuers_are_claimed() {
        let refusals = Refusals::new(0);
        for i in 0..10_000 {
            let issuer = format!("https://{i}.example/{}", "p".repeat(1000));
            refusals.admit(0, "unknown_issuer", Some(&issuer));
        }
        let ended = refusals.ended(WINDOW_MS);
        assert!(ended.len() <= MAX_SOURCES + 1, "{} entries", ended.len());
        assert_eq!(counts(&ended), 10_000);
        assert!(ended.iter().all(|e| {
            e.details["claimedIssuer"]
                .as_str()
                .is_none_or(|s| s.len() <= MAX_CLAIMED_ISSUER)
        }));
        assert!(refusals.ended(WINDOW_MS + 1).is_empty(), "written once");
    }
}
