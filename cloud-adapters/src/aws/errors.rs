//! SDK errors onto [`WrapError`], in one place.
//!
//! What a message may hold: the operation, the AWS error code, the HTTP
//! status, and for KMS the service's message (it names the key, never the
//! data). It never holds plaintext, credentials or identity tokens: the SDK
//! does not echo request bodies into errors, and STS messages are dropped
//! (see `federation`).

use std::error::Error as StdError;

use crate::WrapError;
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::aws::federation::FederationError;

/// Error codes AWS uses for "slow down", whatever the HTTP status.
const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "SlowDown",
];

/// Codes meaning the credentials themselves were refused (bad signature,
/// expired session), which IAM, not a retry, fixes.
const CREDENTIAL_CODES: &[&str] = &[
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "ExpiredTokenException",
    "IncompleteSignature",
    "MissingAuthenticationToken",
];

/// Maps a failed KMS call. `op` is the operation name (`Encrypt`).
pub(crate) fn kms_error<E>(op: &'static str, err: SdkError<E>) -> WrapError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(ctx) => kms_service_error(
            op,
            ctx.err().code(),
            ctx.err().message(),
            ctx.raw().status().as_u16(),
        ),
        SdkError::TimeoutError(_) => WrapError::Unavailable(format!("KMS {op} timed out")),
        // Credentials are resolved just before sending, so a failed STS
        // exchange surfaces here, wrapped; it carries its own verdict.
        SdkError::DispatchFailure(_) | SdkError::ConstructionFailure(_) => {
            if let Some(fed) = find_in_chain::<FederationError>(&err) {
                return fed.to_wrap_error();
            }
            if matches!(err, SdkError::DispatchFailure(_)) {
                WrapError::Unavailable(format!(
                    "KMS {op} could not reach KMS: {}",
                    DisplayErrorContext(&err)
                ))
            } else {
                WrapError::Misconfigured(format!(
                    "KMS {op} request could not be built: {}",
                    DisplayErrorContext(&err)
                ))
            }
        }
        SdkError::ResponseError(_) => {
            WrapError::Unavailable(format!("KMS {op} answered with an unreadable response"))
        }
        _ => WrapError::Unavailable(format!("KMS {op} failed: {}", DisplayErrorContext(&err))),
    }
}

/// The verdict for an error the KMS service itself returned.
pub(crate) fn kms_service_error(
    op: &'static str,
    code: Option<&str>,
    message: Option<&str>,
    status: u16,
) -> WrapError {
    let detail = format!(
        "KMS {op}: {} (HTTP {status}){}",
        code.unwrap_or("unknown error"),
        message.map(|m| format!(": {m}")).unwrap_or_default()
    );
    match code {
        Some("NotFoundException" | "DisabledException" | "KMSInvalidStateException") => {
            WrapError::KeyNotFound(detail)
        }
        Some("InvalidCiphertextException" | "IncorrectKeyException") => {
            WrapError::InvalidCiphertext
        }
        Some(c) if CREDENTIAL_CODES.contains(&c) => WrapError::PermissionDenied(detail),
        _ if status == 403 => WrapError::PermissionDenied(detail),
        Some(c) if THROTTLING_CODES.contains(&c) => WrapError::Unavailable(detail),
        _ if status == 429 || status >= 500 => WrapError::Unavailable(detail),
        // Any other 4xx (ValidationException, InvalidKeyUsageException, …)
        // means the request or the key's configuration is wrong.
        _ => WrapError::Misconfigured(detail),
    }
}

/// The first error of type `T` in `err`'s source chain (`err` included).
pub(crate) fn find_in_chain<'a, T: StdError + 'static>(
    err: &'a (dyn StdError + 'static),
) -> Option<&'a T> {
    let mut next = Some(err);
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

    /// Whether an error is the variant a case expects.
    type Expect = fn(&WrapError) -> bool;

    #[test]
    fn kms_error_codes_map_to_the_variant_a_caller_acts_on() {
        use WrapError as W;
        let cases: &[(Option<&str>, u16, Expect)] = &[
            (Some("NotFoundException"), 400, |e| {
                matches!(e, W::KeyNotFound(_))
            }),
            (Some("DisabledException"), 400, |e| {
                matches!(e, W::KeyNotFound(_))
            }),
            (Some("KMSInvalidStateException"), 400, |e| {
                matches!(e, W::KeyNotFound(_))
            }),
            (Some("AccessDeniedException"), 400, |e| {
                matches!(e, W::PermissionDenied(_))
            }),
            (Some("UnrecognizedClientException"), 400, |e| {
                matches!(e, W::PermissionDenied(_))
            }),
            (None, 403, |e| matches!(e, W::PermissionDenied(_))),
            (Some("InvalidCiphertextException"), 400, |e| {
                matches!(e, W::InvalidCiphertext)
            }),
            (Some("IncorrectKeyException"), 400, |e| {
                matches!(e, W::InvalidCiphertext)
            }),
            (Some("ThrottlingException"), 400, |e| {
                matches!(e, W::Unavailable(_))
            }),
            (None, 429, |e| matches!(e, W::Unavailable(_))),
            (Some("KMSInternalException"), 500, |e| {
                matches!(e, W::Unavailable(_))
            }),
            (Some("DependencyTimeoutException"), 503, |e| {
                matches!(e, W::Unavailable(_))
            }),
            (Some("ValidationException"), 400, |e| {
                matches!(e, W::Misconfigured(_))
            }),
            (Some("InvalidKeyUsageException"), 400, |e| {
                matches!(e, W::Misconfigured(_))
            }),
        ];
        for (code, status, expected) in cases {
            let got = kms_service_error("Encrypt", *code, Some("details"), *status);
            assert!(expected(&got), "{code:?}/{status} gave {got:?}");
        }
    }

    #[test]
    fn messages_name_the_operation_code_and_status() {
        let e = kms_service_error(
            "Decrypt",
            Some("NotFoundException"),
            Some("Key 'k' does not exist"),
            400,
        );
        assert_eq!(
            e.to_string(),
            "KEK not found: KMS Decrypt: NotFoundException (HTTP 400): Key 'k' does not exist"
        );
    }
}
