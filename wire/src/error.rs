//! The key endpoints' error body (DESIGN §5.2), as the Privacy Sandbox
//! coordinator writes it (`shared/protos/api/v1/error_response.proto`):
//! `{"code", "message", "details": [{"reason", "domain", "metadata"}]}`, where
//! `code` is the **gRPC** status code (the HTTP status is the response's),
//! printed with default values included. The Java key fetcher parses it
//! strictly, so no other member may appear: anything Keyferry adds (the
//! attestation reason) goes into `metadata` as a string.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `details[].domain` of every Keyferry refusal.
pub const ERROR_DOMAIN: &str = "keyferry";

/// `metadata` key of an attested release's refusal: the stable code of the
/// check that failed (e.g. `measurement_not_allowed`).
pub const ATTESTATION_REASON: &str = "attestationReason";

/// The error body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyApiErrorBody {
    /// The gRPC status code of [`grpc_code`].
    #[serde(default)]
    pub code: i32,
    /// A short description, safe to show.
    #[serde(default)]
    pub message: String,
    /// One entry.
    #[serde(default)]
    pub details: Vec<KeyApiErrorDetail>,
}

/// One `details` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyApiErrorDetail {
    /// The stable reason, e.g. `MISSING_KEY`, `UNAUTHENTICATED`.
    #[serde(default)]
    pub reason: String,
    /// Always [`ERROR_DOMAIN`].
    #[serde(default)]
    pub domain: String,
    /// More detail, as strings (e.g. [`ATTESTATION_REASON`]).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// The gRPC status code the coordinator answers with an HTTP status
/// (`com.google.scp.shared.api.model.Code`): the Java fetcher refuses a
/// code outside that table, so an unlisted status is `UNKNOWN` (2).
pub fn grpc_code(http_status: u16) -> i32 {
    match http_status {
        200 => 0,
        400 | 413 => 3,
        401 => 16,
        403 => 7,
        404 => 5,
        409 => 6,
        412 => 9,
        429 => 8,
        500 => 13,
        501 => 12,
        503 => 14,
        504 => 4,
        _ => 2,
    }
}

impl KeyApiErrorBody {
    /// A body for `http_status` with one detail.
    pub fn new(http_status: u16, reason: &str, message: impl Into<String>) -> Self {
        KeyApiErrorBody {
            code: grpc_code(http_status),
            message: message.into(),
            details: vec![KeyApiErrorDetail {
                reason: reason.to_owned(),
                domain: ERROR_DOMAIN.to_owned(),
                metadata: BTreeMap::new(),
            }],
        }
    }

    /// The first detail's reason.
    pub fn reason(&self) -> Option<&str> {
        self.details
            .first()
            .map(|d| d.reason.as_str())
            .filter(|r| !r.is_empty())
    }

    /// The first detail's [`ATTESTATION_REASON`].
    pub fn attestation_reason(&self) -> Option<&str> {
        self.details
            .first()
            .and_then(|d| d.metadata.get(ATTESTATION_REASON))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_has_exactly_the_proto_members_with_defaults() {
        let body = KeyApiErrorBody::new(404, "MISSING_KEY", "no key");
        assert_eq!(
            serde_json::to_string(&body).expect("json"),
            r#"{"code":5,"message":"no key","details":[{"reason":"MISSING_KEY","domain":"keyferry","metadata":{}}]}"#
        );
    }

    #[test]
    fn statuses_map_to_the_grpc_codes_of_the_table() {
        for (status, code) in [
            (400, 3),
            (401, 16),
            (403, 7),
            (404, 5),
            (429, 8),
            (500, 13),
            (503, 14),
            (418, 2),
        ] {
            assert_eq!(grpc_code(status), code, "{status}");
        }
    }
}
