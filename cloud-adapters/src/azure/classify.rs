//! From `azure_core` errors to the [`WrapError`] a caller acts on.
//!
//! Messages name the operation, the key and the HTTP status or service error
//! code; never a token, an assertion, a plaintext or a ciphertext. The
//! service's free-text message is left out too: it is not ours to vouch for.

use std::error::Error as _;
use std::fmt;

use crate::WrapError;
use azure_core::error::ErrorKind;
use azure_core::http::StatusCode;

/// The vault operation that failed; `400` means different things per op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    GetKey,
    Wrap,
    Unwrap,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::GetKey => "get key",
            Op::Wrap => "wrapkey",
            Op::Unwrap => "unwrapkey",
        })
    }
}

/// What went wrong, found by walking the error chain: the token source's own
/// error, an HTTP answer, or a transport failure.
enum Cause<'a> {
    TokenSource(&'a WrapError),
    Http {
        status: StatusCode,
        code: Option<&'a str>,
    },
    Transport,
    Other,
}

fn http_cause(err: &azure_core::Error) -> Option<Cause<'_>> {
    match err.kind() {
        ErrorKind::HttpResponse {
            status, error_code, ..
        } => Some(Cause::Http {
            status: *status,
            code: error_code.as_deref(),
        }),
        ErrorKind::Connection | ErrorKind::Io => Some(Cause::Transport),
        _ => None,
    }
}

/// The innermost meaningful cause. azure_identity wraps the token
/// endpoint's answer in a `Credential` error, so the chain is walked.
fn root_cause(err: &azure_core::Error) -> Cause<'_> {
    let mut found = http_cause(err);
    let mut next = err.source();
    while let Some(e) = next {
        if let Some(w) = e.downcast_ref::<WrapError>() {
            return Cause::TokenSource(w);
        }
        if let Some(a) = e.downcast_ref::<azure_core::Error>()
            && let Some(c) = http_cause(a)
        {
            found = Some(c);
        }
        next = e.source();
    }
    found.unwrap_or(Cause::Other)
}

fn code_suffix(code: Option<&str>) -> String {
    code.map(|c| format!(" ({c})")).unwrap_or_default()
}

/// Rebuilds the token source's error: `WrapError` is not `Clone`, and the
/// source's own words ("issuer unreachable", …) are the useful ones.
fn copy_wrap_error(e: &WrapError) -> WrapError {
    let msg = |m: &str| format!("identity token source: {m}");
    match e {
        WrapError::InvalidUri(m) => WrapError::Misconfigured(msg(m)),
        WrapError::NotBuiltIn(s) => WrapError::NotBuiltIn(s),
        WrapError::Misconfigured(m) => WrapError::Misconfigured(msg(m)),
        WrapError::KeyNotFound(m) => WrapError::Misconfigured(msg(m)),
        WrapError::PermissionDenied(m) => WrapError::PermissionDenied(msg(m)),
        WrapError::Unavailable(m) => WrapError::Unavailable(msg(m)),
        WrapError::InvalidCiphertext => WrapError::Misconfigured(msg("invalid ciphertext")),
    }
}

/// Maps a failed vault call. `key` names the key for messages
/// (`<vault-host>/keys/<name>/<version>`).
pub(crate) fn classify(err: &azure_core::Error, op: Op, key: &str) -> WrapError {
    let credential = matches!(err.kind(), ErrorKind::Credential);
    match root_cause(err) {
        Cause::TokenSource(e) => copy_wrap_error(e),
        // Entra refused the assertion (invalid_client, unauthorized_client,
        // invalid_request): an identity or federation setup problem.
        Cause::Http { status, code } if credential && status.is_client_error() => {
            WrapError::PermissionDenied(format!(
                "Entra ID refused the client assertion for {key}: HTTP {status}{}",
                code_suffix(code)
            ))
        }
        Cause::Http { status, code } if credential => WrapError::Unavailable(format!(
            "Entra ID token endpoint failed for {key}: HTTP {status}{}",
            code_suffix(code)
        )),
        Cause::Transport if credential => WrapError::Unavailable(format!(
            "cannot reach the Entra ID token endpoint for {key}"
        )),
        Cause::Http { status, code } => match status {
            StatusCode::NotFound => {
                WrapError::KeyNotFound(format!("{key}: HTTP 404{}", code_suffix(code)))
            }
            StatusCode::Unauthorized | StatusCode::Forbidden => WrapError::PermissionDenied(
                format!("{op} on {key}: HTTP {status}{}", code_suffix(code)),
            ),
            // Key Vault answers 400 when the RSA-OAEP decryption fails: the
            // ciphertext was altered or made by another key.
            StatusCode::BadRequest if op == Op::Unwrap => WrapError::InvalidCiphertext,
            // A 400 on wrap will not heal by retrying later: the plaintext is
            // too long for the key, or the key is not an RSA key.
            StatusCode::BadRequest => WrapError::Misconfigured(format!(
                "{op} on {key} refused: HTTP 400{} (plaintext too long for the key, or not an RSA key?)",
                code_suffix(code)
            )),
            _ => {
                WrapError::Unavailable(format!("{op} on {key}: HTTP {status}{}", code_suffix(code)))
            }
        },
        Cause::Transport => {
            WrapError::Unavailable(format!("{op} on {key}: cannot reach the vault"))
        }
        Cause::Other if credential => {
            WrapError::Unavailable(format!("no vault token for {key}: the credential failed"))
        }
        Cause::Other => WrapError::Unavailable(format!("{op} on {key}: {}", err.kind())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: StatusCode) -> azure_core::Error {
        azure_core::Error::new(
            ErrorKind::HttpResponse {
                status,
                error_code: Some("Code".into()),
                raw_response: None,
            },
            "answer",
        )
    }

    fn kind(e: &WrapError) -> &'static str {
        match e {
            WrapError::KeyNotFound(_) => "KeyNotFound",
            WrapError::PermissionDenied(_) => "PermissionDenied",
            WrapError::InvalidCiphertext => "InvalidCiphertext",
            WrapError::Misconfigured(_) => "Misconfigured",
            WrapError::Unavailable(_) => "Unavailable",
            WrapError::InvalidUri(_) | WrapError::NotBuiltIn(_) => "other",
        }
    }

    #[test]
    fn vault_answers_map_to_what_the_caller_does_next() {
        use StatusCode as S;
        for (status, op, expected) in [
            (S::NotFound, Op::Wrap, "KeyNotFound"),
            (S::NotFound, Op::GetKey, "KeyNotFound"),
            (S::Forbidden, Op::Unwrap, "PermissionDenied"),
            (S::Unauthorized, Op::Wrap, "PermissionDenied"),
            (S::BadRequest, Op::Unwrap, "InvalidCiphertext"),
            (S::BadRequest, Op::Wrap, "Misconfigured"),
            (S::TooManyRequests, Op::Wrap, "Unavailable"),
            (S::ServiceUnavailable, Op::Unwrap, "Unavailable"),
            (S::Conflict, Op::Wrap, "Unavailable"),
        ] {
            let got = classify(&http(status), op, "vault/keys/k/v");
            assert_eq!(kind(&got), expected, "{status} on {op}: {got:?}");
        }
    }

    #[test]
    fn token_endpoint_failures_are_told_apart_from_vault_failures() {
        let credential = |inner: azure_core::Error| {
            azure_core::Error::with_error(ErrorKind::Credential, inner, "credential failed")
        };
        let refused = classify(&credential(http(StatusCode::BadRequest)), Op::Wrap, "k");
        assert!(matches!(refused, WrapError::PermissionDenied(ref m) if m.contains("Entra")));
        let down = classify(&credential(http(StatusCode::BadGateway)), Op::Wrap, "k");
        assert!(matches!(down, WrapError::Unavailable(ref m) if m.contains("Entra")));
        let unreachable = classify(
            &credential(azure_core::Error::with_message(
                ErrorKind::Connection,
                "refused",
            )),
            Op::Wrap,
            "k",
        );
        assert!(matches!(unreachable, WrapError::Unavailable(_)));
        let source = classify(
            &credential(azure_core::Error::with_error(
                ErrorKind::Credential,
                WrapError::Unavailable("issuer down".into()),
                "token source",
            )),
            Op::Wrap,
            "k",
        );
        assert!(matches!(source, WrapError::Unavailable(ref m) if m.contains("issuer down")));
    }
}
