//! The key endpoints' error body (DESIGN §5.2).

use serde::{Deserialize, Serialize};

/// `{"code", "details": [{"reason", "attestationReason"?}], "message"}`: the reasons let a
/// workload tell a missing key, an authentication or permission failure, a required
/// attestation and an outage apart.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyApiErrorBody {
    /// The status code.
    #[serde(default)]
    pub code: u16,
    /// One entry today.
    #[serde(default)]
    pub details: Vec<KeyApiErrorDetail>,
    /// A short description, safe to show.
    #[serde(default)]
    pub message: String,
}

/// One `details` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyApiErrorDetail {
    /// Attestation refusals only: the stable code of the check that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation_reason: Option<String>,
    /// The stable reason, e.g. `MISSING_KEY`, `UNAUTHENTICATED`.
    #[serde(default)]
    pub reason: Option<String>,
}

impl KeyApiErrorBody {
    /// A body with one detail.
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        KeyApiErrorBody {
            code,
            details: vec![KeyApiErrorDetail {
                attestation_reason: None,
                reason: Some(reason.to_owned()),
            }],
            message: message.into(),
        }
    }

    /// The first detail's reason.
    pub fn reason(&self) -> Option<&str> {
        self.details.first().and_then(|d| d.reason.as_deref())
    }
}
