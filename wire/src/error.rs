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

/// The codes of the coordinator's table (`com.google.scp.shared.api.model.Code`)
/// with the HTTP status each stands for. `Code.fromRpcStatusCode` throws on
/// any other number, so the Java fetcher turns a body with one into an
/// exception of its own: UNIMPLEMENTED (12) is commented out of that table
/// and so is not in this one.
pub const CODE_TABLE: [(i32, &str, u16); 17] = [
    (0, "OK", 200),
    (17, "ACCEPTED", 202),
    (1, "CANCELLED", 499),
    (2, "UNKNOWN", 500),
    (3, "INVALID_ARGUMENT", 400),
    (4, "DEADLINE_EXCEEDED", 504),
    (5, "NOT_FOUND", 404),
    (6, "ALREADY_EXISTS", 409),
    (7, "PERMISSION_DENIED", 403),
    (16, "UNAUTHENTICATED", 401),
    (8, "RESOURCE_EXHAUSTED", 429),
    (9, "FAILED_PRECONDITION", 400),
    (10, "ABORTED", 409),
    (11, "OUT_OF_RANGE", 400),
    (13, "INTERNAL", 500),
    (14, "UNAVAILABLE", 503),
    (15, "DATA_LOSS", 500),
];

/// The gRPC status code for an HTTP status: the table's code for it, the
/// general one where the table has several (400 → INVALID_ARGUMENT, 409 →
/// ALREADY_EXISTS, 500 → INTERNAL), and for a status the table lacks the
/// code of its class, so a client still reads "your request" or "our
/// fault": another 4xx (405, 408, 413, 415, 431) is INVALID_ARGUMENT,
/// another 5xx is UNKNOWN.
pub fn grpc_code(http_status: u16) -> i32 {
    match http_status {
        400 => 3,
        409 => 6,
        500 => 13,
        status => CODE_TABLE
            .iter()
            .find(|(_, _, http)| *http == status)
            .map(|(code, _, _)| *code)
            .unwrap_or(if (400..500).contains(&status) { 3 } else { 2 }),
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
            (409, 6),
            (429, 8),
            (500, 13),
            (503, 14),
            (504, 4),
            (405, 3),
            (408, 3),
            (413, 3),
            (415, 3),
            (501, 2),
            (502, 2),
        ] {
            assert_eq!(grpc_code(status), code, "{status}");
        }
    }

    #[test]
    fn every_status_maps_to_a_code_the_java_fetcher_knows() {
        for status in 100..600 {
            let code = grpc_code(status);
            assert!(
                CODE_TABLE.iter().any(|(known, _, _)| *known == code),
                "{status} → {code}"
            );
            assert_ne!(code, 12, "UNIMPLEMENTED is not in Code.java's table");
        }
    }
}
