//! The one place an SDK error becomes a [`WrapError`].
//!
//! Cloud KMS answers with a `google.rpc.Status` JSON body; the SDK parses it
//! when it can and otherwise keeps only the HTTP status. We look at the
//! status code first, then the HTTP code, then the transport kind. Messages
//! name the key, the operation and Google's short reason; they never hold
//! plaintext, ciphertext or tokens (no request data is echoed by Cloud KMS,
//! and our own credential errors are built without tokens).

use std::error::Error as _;

use crate::WrapError;
use google_cloud_gax::error::Error;
use google_cloud_gax::error::rpc::Code;

use crate::gcp::federation::FederationError;

/// Upper bound on Google's message we keep.
const MAX_DETAIL: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Encrypt,
    Decrypt,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Encrypt => "encrypt",
            Op::Decrypt => "decrypt",
        }
    }
}

pub(crate) fn to_wrap_error(err: &Error, op: Op, key: &str) -> WrapError {
    // Our federation errors know their kind; find them anywhere in the chain.
    if let Some(federation) = find_in_chain::<FederationError>(err) {
        return federation.to_wrap_error();
    }
    // The retry loop gave up: classify what it gave up on.
    if err.is_exhausted()
        && let Some(last) = err.source().and_then(|s| s.downcast_ref::<Error>())
    {
        return to_wrap_error(last, op, key);
    }
    let what = format!("Cloud KMS {} with {key}", op.as_str());
    if err.is_authentication() {
        let transient = find_in_chain::<google_cloud_gax::error::CredentialsError>(err)
            .is_some_and(|c| c.is_transient());
        let message = format!("{what}: credentials failed");
        return if transient {
            WrapError::Unavailable(message)
        } else {
            WrapError::PermissionDenied(message)
        };
    }

    let http = err.http_status_code();
    let status = err.status().filter(|s| s.code != Code::Unknown);
    if status.is_some() || http.is_some() {
        let mut message = what;
        if let Some(s) = status {
            message.push_str(&format!(": {}", s.code.name()));
        }
        if let Some(code) = http {
            message.push_str(&format!(" (HTTP {code})"));
        }
        if let Some(s) = err.status().filter(|s| !s.message.is_empty()) {
            message.push_str(": ");
            message.extend(s.message.chars().take(MAX_DETAIL));
        }
        return classify(status.map(|s| s.code), http, op, message);
    }

    if err.is_timeout() {
        return WrapError::Unavailable(format!("{what}: timed out"));
    }
    if err.is_connect() || err.is_io() || err.is_transport() {
        return WrapError::Unavailable(format!("{what}: Cloud KMS unreachable"));
    }
    if err.is_deserialization() {
        return WrapError::Unavailable(format!("{what}: unreadable response"));
    }
    if err.is_binding() || err.is_serialization() {
        return WrapError::Misconfigured(format!("{what}: request cannot be built"));
    }
    WrapError::Unavailable(format!("{what}: request failed"))
}

fn classify(code: Option<Code>, http: Option<u16>, op: Op, message: String) -> WrapError {
    match (code, http) {
        (Some(Code::NotFound), _) | (None, Some(404)) => WrapError::KeyNotFound(message),
        // A disabled or destroyed key version: the key is not usable, which
        // is the `KeyNotFound` contract ("does not exist or is disabled").
        (Some(Code::FailedPrecondition), _) => WrapError::KeyNotFound(message),
        (Some(Code::PermissionDenied | Code::Unauthenticated), _) | (None, Some(401 | 403)) => {
            WrapError::PermissionDenied(message)
        }
        // On decrypt, Cloud KMS says INVALID_ARGUMENT for a ciphertext it did
        // not make (altered, truncated, other key). The message is dropped:
        // the variant is the whole answer and callers treat it as tampering.
        (Some(Code::InvalidArgument), _) | (None, Some(400)) if op == Op::Decrypt => {
            WrapError::InvalidCiphertext
        }
        (Some(Code::InvalidArgument | Code::OutOfRange), _) | (None, Some(400)) => {
            WrapError::Misconfigured(message)
        }
        _ => WrapError::Unavailable(message),
    }
}

fn find_in_chain<T: std::error::Error + 'static>(err: &Error) -> Option<&T> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = err.source();
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use google_cloud_gax::error::rpc::Status;

    fn service(code: Code, http: u16) -> Error {
        Error::service_with_http_metadata(
            Status::default().set_code(code).set_message("reason"),
            Some(http),
            None,
        )
    }

    #[test]
    fn status_codes_map_to_the_variant_a_caller_acts_on() {
        let key = "projects/p/locations/l/keyRings/r/cryptoKeys/k";
        let cases = [
            (Code::NotFound, 404, Op::Encrypt, "KeyNotFound"),
            (Code::FailedPrecondition, 400, Op::Encrypt, "KeyNotFound"),
            (Code::PermissionDenied, 403, Op::Decrypt, "PermissionDenied"),
            (Code::Unauthenticated, 401, Op::Encrypt, "PermissionDenied"),
            (Code::InvalidArgument, 400, Op::Decrypt, "InvalidCiphertext"),
            (Code::InvalidArgument, 400, Op::Encrypt, "Misconfigured"),
            (Code::Unavailable, 503, Op::Encrypt, "Unavailable"),
            (Code::ResourceExhausted, 429, Op::Decrypt, "Unavailable"),
            (Code::Unknown, 404, Op::Encrypt, "KeyNotFound"),
            (Code::Unknown, 502, Op::Encrypt, "Unavailable"),
        ];
        for (code, http, op, want) in cases {
            let got = to_wrap_error(&service(code, http), op, key);
            let got_name = format!("{got:?}");
            assert!(
                got_name.starts_with(want),
                "{code:?}/{http}/{op:?}: got {got_name}"
            );
        }
    }

    #[test]
    fn exhausted_retries_are_classified_by_the_last_error() {
        let err = Error::exhausted(service(Code::Unavailable, 503));
        assert!(matches!(
            to_wrap_error(&err, Op::Encrypt, "k"),
            WrapError::Unavailable(_)
        ));
    }
}
