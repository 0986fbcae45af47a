//! Compact JWS plumbing shared by subject-token validation and credential verification.
//!
//! Parsing is done here rather than with `jsonwebtoken::decode` so that every check can
//! run in the order DESIGN §3.1 fixes, against our own [`Clock`](crate::Clock), and with a
//! distinct rejection for each failure.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// A compact JWS split into its parts; nothing in it has been verified.
pub(crate) struct CompactJws<'a> {
    /// `base64url(header) "." base64url(payload)`: the bytes the signature covers.
    pub(crate) signing_input: &'a str,
    /// The third part, still base64url (what `jsonwebtoken::crypto::verify` takes).
    pub(crate) signature_b64: &'a str,
    pub(crate) header: Map<String, Value>,
    pub(crate) payload: Map<String, Value>,
}

/// Splits `token` into three base64url parts and parses header and payload as JSON objects.
///
/// The error is a fixed phrase that never contains token bytes.
pub(crate) fn parse_compact(token: &str) -> Result<CompactJws<'_>, &'static str> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a compact JWS of three dot-separated parts");
    };
    let header_bytes = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|_| "header is not base64url")?;
    let payload_bytes = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| "payload is not base64url")?;
    // The signature may be empty here so that `alg: none` is reported as such, not as
    // malformed; no accepted algorithm verifies an empty signature.
    URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| "signature is not base64url")?;
    let Ok(Value::Object(header)) = serde_json::from_slice::<Value>(&header_bytes) else {
        return Err("header is not a JSON object");
    };
    let Ok(Value::Object(payload)) = serde_json::from_slice::<Value>(&payload_bytes) else {
        return Err("payload is not a JSON object");
    };
    let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
    Ok(CompactJws {
        signing_input,
        signature_b64,
        header,
        payload,
    })
}

/// A JWT `NumericDate` as whole seconds; fractions are truncated toward −∞.
pub(crate) fn numeric_date(value: &Value) -> Option<i64> {
    if let Some(i) = value.as_i64() {
        return Some(i);
    }
    if value.as_u64().is_some() {
        return Some(i64::MAX);
    }
    value
        .as_f64()
        .filter(|f| f.is_finite())
        // Saturating float-to-int conversion is what we want for absurd values.
        .map(|f| f.floor() as i64)
}

/// The `aud` claim as a list: a single string or an array of strings; anything else is
/// `None`.
pub(crate) fn audiences(value: Option<&Value>) -> Option<Vec<String>> {
    match value? {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    }
}

/// base64url without padding, as JOSE uses everywhere.
pub(crate) fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding.
pub(crate) fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64json(v: &Value) -> String {
        b64url(v.to_string().as_bytes())
    }

    #[test]
    fn parses_three_parts_and_keeps_the_signing_input() {
        let h = b64json(&json!({"alg":"RS256","kid":"k"}));
        let p = b64json(&json!({"iss":"x"}));
        let token = format!("{h}.{p}.c2ln");
        let jws = parse_compact(&token).expect("parses");
        assert_eq!(jws.signing_input, format!("{h}.{p}"));
        assert_eq!(jws.signature_b64, "c2ln");
        assert_eq!(jws.header["kid"], "k");
        assert_eq!(jws.payload["iss"], "x");
    }

    #[test]
    fn refuses_malformed_shapes() {
        let h = b64json(&json!({"alg":"RS256"}));
        let p = b64json(&json!({}));
        let arr = b64json(&json!([1]));
        let cases = [
            (
                String::new(),
                "not a compact JWS of three dot-separated parts",
            ),
            (
                format!("{h}.{p}"),
                "not a compact JWS of three dot-separated parts",
            ),
            (
                format!("{h}.{p}.a.b"),
                "not a compact JWS of three dot-separated parts",
            ),
            (format!("{h}==.{p}.sig"), "header is not base64url"),
            (format!("{h}.{p}!.sig"), "payload is not base64url"),
            (format!("{h}.{p}.s+g"), "signature is not base64url"),
            (format!("{arr}.{p}.sig"), "header is not a JSON object"),
            (format!("{h}.{arr}.sig"), "payload is not a JSON object"),
        ];
        for (token, why) in cases {
            assert_eq!(parse_compact(&token).err(), Some(why), "{token}");
        }
    }

    #[test]
    fn numeric_dates_and_audiences() {
        assert_eq!(numeric_date(&json!(1_700_000_000)), Some(1_700_000_000));
        assert_eq!(numeric_date(&json!(1.9)), Some(1));
        assert_eq!(numeric_date(&json!(-1.5)), Some(-2));
        assert_eq!(numeric_date(&json!(u64::MAX)), Some(i64::MAX));
        assert_eq!(numeric_date(&json!("1700000000")), None);
        assert_eq!(audiences(Some(&json!("a"))), Some(vec!["a".to_owned()]));
        assert_eq!(
            audiences(Some(&json!(["a", "b"]))),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(audiences(Some(&json!(["a", 1]))), None);
        assert_eq!(audiences(Some(&json!(5))), None);
        assert_eq!(audiences(None), None);
        assert_eq!(b64url_decode(&b64url(b"\xff\x00")), Some(vec![0xff, 0]));
    }
}
