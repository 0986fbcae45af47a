//! Validating newtypes, one per field rule of onboarding.
//!
//! Each is made only through `TryFrom`, so a value of the type has passed
//! its rule, and each keeps the exact text it was given (a [`Site`] is not
//! re-serialised by `url`, which would add a trailing `/`): what is stored
//! and compared is what the operator wrote.
//!
//! Request bodies hold plain strings and convert in their `validate` step,
//! not at deserialisation: a serde failure is the broker's `bad_json` with no
//! `field`, and these rules must answer `invalid_field` naming the field.
//! The serde impls (`try_from = "String"`) are for bodies where a bad value
//! is a malformed document, not a field mistake.

use std::fmt;

use idp::IssuerKind;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::Error;

/// The impls every string newtype here shares; `$check` is its rule.
macro_rules! validated_string {
    ($(#[$doc:meta])* $name:ident, $check:path) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The text, as given.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;

            fn try_from(value: String) -> Result<Self, Error> {
                $check(&value)?;
                Ok(Self(value))
            }
        }

        impl TryFrom<&str> for $name {
            type Error = Error;

            fn try_from(value: &str) -> Result<Self, Error> {
                Self::try_from(value.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

validated_string!(
    /// An ad tech's stable id: 2 to 64 lower-case ASCII letters, digits or
    /// `-`, starting with a letter. It appears in URLs
    /// (`/v1/admin/adtechs/{id}`), credentials and Terraform resource names,
    /// so it is a slug that needs no escaping anywhere.
    AdTechId,
    check_adtech_id
);

validated_string!(
    /// A name for people (an ad tech's or an issuer's): 1 to 200 characters,
    /// not all blank, no control characters, so it prints on one line in
    /// tables and logs.
    DisplayName,
    check_display_name
);

validated_string!(
    /// One of an ad tech's sites: a bare https origin (`https://ads.example`,
    /// `https://ads.example:8443`). No path (not even `/`), query, fragment
    /// or credentials, because sites are compared as text and an origin has
    /// one spelling without them.
    Site,
    check_site
);

validated_string!(
    /// A use-case name (`aggregation-service`): 1 to 64 lower-case ASCII
    /// letters, digits or `-`, as in the public key URL
    /// `/.well-known/{use_case}/v1/public-keys`.
    UseCaseName,
    check_use_case
);

validated_string!(
    /// A key id a workload may ask for: 1 to 64 bytes of ASCII letters,
    /// digits or `-`, which covers both id formats (UUID, decimal sequence)
    /// and keeps anything else away from the database and the logs.
    KeyId,
    check_key_id
);

fn check_adtech_id(id: &str) -> Result<(), Error> {
    let ok = (2..=64).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    ok.then_some(()).ok_or(Error::AdTechId)
}

fn check_display_name(name: &str) -> Result<(), Error> {
    let ok = !name.trim().is_empty()
        && name.chars().count() <= 200
        && !name.chars().any(char::is_control);
    ok.then_some(()).ok_or(Error::DisplayName)
}

fn check_site(site: &str) -> Result<(), Error> {
    let url = Url::parse(site).map_err(Error::SiteNotUrl)?;
    // `Url` normalises an empty path to `/`, so a trailing slash in the
    // text is only visible in the text.
    let origin_only = url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none()
        && !site.ends_with('/');
    if url.scheme() != "https" || url.host_str().is_none() || !origin_only {
        return Err(Error::SiteNotOrigin);
    }
    Ok(())
}

fn check_use_case(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    ok.then_some(()).ok_or(Error::UseCaseName)
}

/// Key ids are UUIDs or decimal sequence numbers; anything longer is not one.
const MAX_KEY_ID_LEN: usize = 64;

fn check_key_id(id: &str) -> Result<(), Error> {
    let ok = !id.is_empty()
        && id.len() <= MAX_KEY_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    ok.then_some(()).ok_or(Error::KeyId)
}

/// A workload identity's exact `sub`, checked against the shape its cloud
/// gives subjects ([`idp::validate_subject`]: an AWS role ARN or EKS service
/// account, a GCP 21-digit id or service-account email, an Azure GUID).
///
/// A subject is only ever made together with its [`IssuerKind`], because the
/// rule depends on it: `"112233445566778899001"` is a GCP subject and not an
/// Azure one. For the same reason there is no `Deserialize` from a bare
/// string.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Subject {
    kind: IssuerKind,
    value: String,
}

impl Subject {
    /// The subject `value` of a `kind` issuer's tokens, if it fits.
    pub fn new(kind: IssuerKind, value: impl Into<String>) -> Result<Self, Error> {
        let value = value.into();
        idp::validate_subject(kind, &value).map_err(Error::Subject)?;
        Ok(Self { kind, value })
    }

    /// The cloud whose rule the subject passed.
    pub fn kind(&self) -> IssuerKind {
        self.kind
    }

    /// The text, as given.
    pub fn as_str(&self) -> &str {
        &self.value
    }
}

impl TryFrom<(IssuerKind, String)> for Subject {
    type Error = Error;

    fn try_from((kind, value): (IssuerKind, String)) -> Result<Self, Error> {
        Self::new(kind, value)
    }
}

impl TryFrom<(IssuerKind, &str)> for Subject {
    type Error = Error;

    fn try_from((kind, value): (IssuerKind, &str)) -> Result<Self, Error> {
        Self::new(kind, value)
    }
}

impl From<Subject> for String {
    fn from(subject: Subject) -> String {
        subject.value
    }
}

impl AsRef<str> for Subject {
    fn as_ref(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adtech_ids_are_slugs() {
        for ok in ["acme-ads", "ab", "a1", "a-", &"a".repeat(64)] {
            assert!(AdTechId::try_from(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "Acme",
            "1acme",
            "-acme",
            "acme_ads",
            "acme ads",
            "acmé",
            &"a".repeat(65),
        ] {
            assert_eq!(AdTechId::try_from(bad), Err(Error::AdTechId), "{bad}");
        }
    }

    #[test]
    fn display_names_are_one_to_two_hundred_printable_characters() {
        for ok in [
            "Acme Ads",
            "x",
            " padded ",
            "Zürich Ads GmbH",
            &"é".repeat(200),
        ] {
            assert!(DisplayName::try_from(ok).is_ok(), "{ok}");
        }
        for bad in ["", " ", "\t", "two\nlines", "bell\u{7}", &"é".repeat(201)] {
            assert_eq!(
                DisplayName::try_from(bad),
                Err(Error::DisplayName),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn sites_must_be_bare_https_origins() {
        for ok in [
            "https://ads.example",
            "https://ads.example:8443",
            "https://a.b.example",
            "https://ADS.example",
        ] {
            assert!(Site::try_from(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://ads.example",
            "https://ads.example/",
            "https://ads.example/path",
            "https://ads.example?q=1",
            "https://ads.example#top",
            "https://user@ads.example",
            "https://user:pw@ads.example",
            "ads.example",
            "",
        ] {
            assert!(Site::try_from(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_site_that_is_not_a_url_says_so_and_one_that_is_not_an_origin_says_that() {
        assert_eq!(
            Site::try_from("ads.example").map_err(|e| e.to_string()),
            Err("not a URL: relative URL without a base".to_owned())
        );
        assert_eq!(
            Site::try_from("http://ads.example"),
            Err(Error::SiteNotOrigin)
        );
    }

    #[test]
    fn a_site_keeps_the_text_it_was_given() {
        // `Url` would print `https://ads.example/`; the stored site must not
        // gain the slash that `Site` itself refuses.
        let site = Site::try_from("https://ADS.example:8443").expect("site");
        assert_eq!(site.as_str(), "https://ADS.example:8443");
        assert_eq!(site.to_string(), "https://ADS.example:8443");
        assert_eq!(String::from(site), "https://ADS.example:8443");
    }

    #[test]
    fn use_case_names_are_lower_case_slugs_of_at_most_64_bytes() {
        for ok in ["aggregation-service", "a", "1", "uc-2", &"a".repeat(64)] {
            assert!(UseCaseName::try_from(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Aggregation Service",
            "aggregation_service",
            "uc/1",
            &"a".repeat(65),
        ] {
            assert_eq!(UseCaseName::try_from(bad), Err(Error::UseCaseName), "{bad}");
        }
    }

    #[test]
    fn key_ids_are_short_ascii_alphanumerics_or_dashes() {
        for ok in [
            "219f6586-6e18-4b1a-aa6d-82972701ccb9",
            "42",
            "ABC-def",
            &"9".repeat(64),
        ] {
            assert!(KeyId::try_from(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "../etc", "id;drop", "ключ", &"9".repeat(65)] {
            assert_eq!(KeyId::try_from(bad), Err(Error::KeyId), "{bad}");
        }
    }

    #[test]
    fn subjects_are_checked_against_their_cloud() {
        let cases = [
            (IssuerKind::Gcp, "112233445566778899001", true),
            (
                IssuerKind::Gcp,
                "workload@adtech-one.iam.gserviceaccount.com",
                true,
            ),
            (IssuerKind::Gcp, "not-a-number", false),
            (
                IssuerKind::Azure,
                "00000000-0000-0000-0000-000000000001",
                true,
            ),
            (IssuerKind::Azure, "112233445566778899001", false),
            (
                IssuerKind::Aws,
                "arn:aws:iam::444455556666:role/workload",
                true,
            ),
            (IssuerKind::Aws, "system:serviceaccount:ns:sa", true),
            (IssuerKind::Aws, "arn:aws:iam::4444:role/workload", false),
            (IssuerKind::Oidc, "anything at all", true),
            (IssuerKind::Oidc, "", false),
        ];
        for (kind, subject, ok) in cases {
            let made = Subject::new(kind, subject);
            assert_eq!(made.is_ok(), ok, "{kind} {subject}: {made:?}");
            if let Ok(made) = made {
                assert_eq!((made.kind(), made.as_str()), (kind, subject));
            }
        }
    }

    #[test]
    fn a_subject_refusal_is_idps_reason() {
        let refused = Subject::try_from((IssuerKind::Gcp, "")).expect_err("empty");
        assert_eq!(refused, Error::Subject(idp::SubjectError::Empty));
        assert_eq!(refused.to_string(), "subject is empty");
    }

    #[test]
    fn newtypes_deserialize_only_what_their_rule_accepts_and_serialize_as_text() {
        let id: AdTechId = serde_json::from_str("\"acme\"").expect("valid");
        assert_eq!(serde_json::to_string(&id).expect("json"), "\"acme\"");
        assert!(serde_json::from_str::<AdTechId>("\"Acme\"").is_err());
        assert!(serde_json::from_str::<Site>("\"https://a.example/\"").is_err());
        assert!(serde_json::from_str::<UseCaseName>("\"a b\"").is_err());
        assert!(serde_json::from_str::<DisplayName>("\"\"").is_err());
        assert!(serde_json::from_str::<KeyId>("\"\"").is_err());
    }
}
