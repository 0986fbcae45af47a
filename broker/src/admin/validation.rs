//! Field rules of onboarding requests. Each failure names its field, so the
//! caller sees `400 invalid_field` with `field` set.

use url::Url;

use crate::Error;

/// Ad tech ids: lower-case letters, digits and '-', 2..64, starting with a letter.
pub(super) fn adtech_id(id: &str) -> Result<(), Error> {
    let ok = (2..=64).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_field(
            "id",
            "2-64 lower-case letters, digits or '-', starting with a letter",
        ))
    }
}

/// Display names: 1..200 printable characters.
pub(super) fn display_name(field: &str, name: &str) -> Result<(), Error> {
    if name.trim().is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(Error::invalid_field(field, "1-200 printable characters"));
    }
    Ok(())
}

/// Sites are https origins: scheme and host (and port), nothing else.
pub(super) fn site(index: usize, site: &str) -> Result<(), Error> {
    let field = format!("sites[{index}]");
    let url =
        Url::parse(site).map_err(|e| Error::invalid_field(&field, format!("not a URL: {e}")))?;
    let origin_only = url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none()
        && !site.ends_with('/');
    if url.scheme() != "https" || url.host_str().is_none() || !origin_only {
        return Err(Error::invalid_field(
            &field,
            "must be an https origin such as https://ads.example",
        ));
    }
    Ok(())
}

/// Use-case names: lower-case letters, digits and '-'.
pub(super) fn use_case(index: usize, name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_field(
            &format!("useCases[{index}]"),
            "lower-case letters, digits or '-'",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_must_be_bare_https_origins() {
        for ok in [
            "https://ads.example",
            "https://ads.example:8443",
            "https://a.b.example",
        ] {
            assert!(site(0, ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://ads.example",
            "https://ads.example/",
            "https://ads.example/path",
            "https://ads.example?q=1",
            "https://user@ads.example",
            "ads.example",
            "",
        ] {
            assert!(site(0, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn adtech_ids_are_slugs() {
        assert!(adtech_id("acme-ads").is_ok());
        for bad in [
            "a",
            "Acme",
            "1acme",
            "acme_ads",
            "acme ads",
            &"a".repeat(65),
        ] {
            assert!(adtech_id(bad).is_err(), "{bad}");
        }
    }
}
