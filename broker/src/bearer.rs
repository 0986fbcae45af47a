//! The `Authorization: Bearer` header, read the same strict way by every
//! extractor that authenticates (workload credentials, operators, the peer
//! coordinator). Low layer: it names no other module.

use axum::http::header;
use axum::http::request::Parts;

/// The bearer token of a request, if it has exactly one well-formed one.
pub fn bearer(parts: &Parts) -> Result<&str, &'static str> {
    let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or("missing Authorization header")?;
    if values.next().is_some() {
        return Err("more than one Authorization header");
    }
    let value = value
        .to_str()
        .map_err(|_| "malformed Authorization header")?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or("malformed Authorization header")?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err("expected a Bearer token");
    }
    Ok(token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(values: &[&str]) -> Parts {
        let mut builder = axum::http::Request::builder();
        for v in values {
            builder = builder.header(header::AUTHORIZATION, *v);
        }
        builder.body(()).expect("request").into_parts().0
    }

    #[test]
    fn bearer_tokens_are_taken_only_from_one_well_formed_header() {
        assert_eq!(bearer(&parts(&["Bearer abc.def.ghi"])), Ok("abc.def.ghi"));
        assert_eq!(bearer(&parts(&["bearer abc"])), Ok("abc"));
        assert!(bearer(&parts(&[])).is_err());
        assert!(bearer(&parts(&["Basic dXNlcjpwYXNz"])).is_err());
        assert!(bearer(&parts(&["Bearer"])).is_err());
        assert!(bearer(&parts(&["Bearer  "])).is_err());
        assert!(bearer(&parts(&["Bearer a", "Bearer b"])).is_err());
    }
}
