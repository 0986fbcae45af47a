//! The request bodies and the query of the admin API (DESIGN §7.1).
//!
//! The broker deserialises exactly these types and the CLI serialises them,
//! so the two cannot disagree on a field name. Every body refuses unknown
//! fields (a typo such as `useCase` is an error, not a silently empty list),
//! and bodies are camelCase.
//!
//! Text fields are plain `String`s on the wire and pass their rule in
//! `validate`, which names the field at fault (`sites[2]`) in the order the
//! API has always reported them: the first bad field wins.

use std::collections::BTreeSet;

use idp::{Condition, IssuerConfig, IssuerKind};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::fields::{AdTechId, DisplayName, Site, Subject, UseCaseName};
use crate::{Error, FieldError};

/// `POST /v1/admin/issuers`: trust an issuer of workload identity tokens
/// (DESIGN §3.3). Absent options take idp's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IssuerRequest {
    /// Short name, for logs and for `DELETE /v1/admin/issuers/{name}`.
    pub name: String,
    /// Which cloud's rules apply to its URL and subjects.
    pub kind: IssuerKind,
    /// The exact `iss` its tokens carry.
    pub issuer: String,
    /// The `aud` its tokens must carry.
    pub audience: String,
    /// JWS algorithm names (`RS256`…); absent means RS256 and ES256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithms: Option<Vec<String>>,
    /// Longest accepted token lifetime, in seconds; absent means 24 h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_token_lifetime: Option<u64>,
    /// Fetch keys here instead of through discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<Url>,
}

impl IssuerRequest {
    /// The issuer entry, once every field passes: `name`, `audience`,
    /// `algorithms`, then idp's rules for the whole entry (reported as
    /// `issuer`). `allow_http_loopback` is the dev profile's switch of
    /// [`IssuerConfig::validate`].
    ///
    /// Whether the issuer is already trusted is the caller's to check: that
    /// needs the registry.
    pub fn validate(self, allow_http_loopback: bool) -> Result<IssuerConfig, FieldError> {
        DisplayName::try_from(self.name.as_str()).map_err(|e| e.at("name"))?;
        if self.audience.trim().is_empty() {
            return Err(Error::Empty.at("audience"));
        }
        let mut config = IssuerConfig::new(&self.name, self.kind, &self.issuer, &self.audience);
        if let Some(algorithms) = &self.algorithms {
            config.algorithms = algorithms
                .iter()
                .map(|a| {
                    a.parse()
                        .map_err(|_| Error::UnknownAlgorithm(a.clone()).at("algorithms"))
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(secs) = self.max_token_lifetime {
            config.max_token_lifetime = std::time::Duration::from_secs(secs);
        }
        config.jwks_uri = self.jwks_uri;
        config
            .validate(allow_http_loopback)
            .map_err(|e| Error::Issuer(e).at("issuer"))?;
        Ok(config)
    }
}

/// `POST /v1/admin/adtechs`: onboard an ad tech (enabled).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdTechRequest {
    /// Stable id; see [`AdTechId`].
    pub id: String,
    /// Display name; see [`DisplayName`].
    pub name: String,
    /// Its sites, as https origins; see [`Site`].
    #[serde(default)]
    pub sites: Vec<String>,
    /// Use cases it may fetch keys for; see [`UseCaseName`].
    #[serde(default)]
    pub use_cases: Vec<String>,
}

/// An [`AdTechRequest`] whose every field passed its rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAdTech {
    /// The id.
    pub id: AdTechId,
    /// The display name.
    pub name: DisplayName,
    /// The sites, distinct, in the order given.
    pub sites: Vec<Site>,
    /// The use cases, distinct, in the order given.
    pub use_cases: Vec<UseCaseName>,
}

impl AdTechRequest {
    /// Checks `id`, `name`, each site, each use case, then that neither list
    /// repeats itself.
    pub fn validate(self) -> Result<NewAdTech, FieldError> {
        let id = AdTechId::try_from(self.id).map_err(|e| e.at("id"))?;
        let name = DisplayName::try_from(self.name).map_err(|e| e.at("name"))?;
        let sites = self
            .sites
            .into_iter()
            .enumerate()
            .map(|(i, site)| Site::try_from(site).map_err(|e| e.at(format!("sites[{i}]"))))
            .collect::<Result<Vec<_>, _>>()?;
        let use_cases = self
            .use_cases
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                UseCaseName::try_from(name).map_err(|e| e.at(format!("useCases[{i}]")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !distinct(&sites) {
            return Err(Error::DuplicateSite.at("sites"));
        }
        if !distinct(&use_cases) {
            return Err(Error::DuplicateUseCase.at("useCases"));
        }
        Ok(NewAdTech {
            id,
            name,
            sites,
            use_cases,
        })
    }
}

fn distinct<T: Ord>(items: &[T]) -> bool {
    items.iter().collect::<BTreeSet<_>>().len() == items.len()
}

/// `PATCH /v1/admin/adtechs/{id}`: `false` disables an ad tech (its
/// identities get no new credentials), `true` enables it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdTechPatch {
    /// Whether the ad tech may get credentials and keys.
    pub enabled: bool,
}

/// `POST /v1/admin/adtechs/{id}/identities`: map one workload identity to
/// the ad tech (DESIGN §3.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentityRequest {
    /// The issuer's kind; it must be the kind the issuer was trusted as.
    pub cloud: IssuerKind,
    /// The trusted issuer's exact URL.
    pub issuer: String,
    /// The exact `sub`; see [`Subject`].
    pub subject: String,
    /// Extra claim conditions; all must hold.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Scopes to grant; absent means every scope the broker supports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}

/// An [`IdentityRequest`] whose subject, conditions and scopes passed.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIdentity {
    /// The issuer URL, as given.
    pub issuer: String,
    /// The subject, with the cloud it was checked for.
    pub subject: Subject,
    /// The conditions, each valid.
    pub conditions: Vec<Condition>,
    /// The scopes to grant: never empty, each supported.
    pub scopes: Vec<String>,
}

impl IdentityRequest {
    /// Checks `subject` against `cloud`, each condition, and the scopes
    /// against `supported` (which is also the default).
    ///
    /// That the issuer is trusted, and as `cloud`, is the caller's to check
    /// first (it needs the registry), so those refusals come before these.
    pub fn validate(self, supported: &[&str]) -> Result<NewIdentity, FieldError> {
        let subject = Subject::new(self.cloud, self.subject).map_err(|e| e.at("subject"))?;
        for (i, condition) in self.conditions.iter().enumerate() {
            condition
                .validate()
                .map_err(|e| Error::Condition(e).at(format!("conditions[{i}]")))?;
        }
        let scopes = self
            .scopes
            .unwrap_or_else(|| supported.iter().map(|s| (*s).to_owned()).collect());
        if scopes.is_empty() {
            return Err(Error::NoScopes.at("scopes"));
        }
        if let Some(unknown) = scopes.iter().find(|s| !supported.contains(&s.as_str())) {
            return Err(Error::UnknownScope(unknown.clone()).at("scopes"));
        }
        Ok(NewIdentity {
            issuer: self.issuer,
            subject,
            conditions: self.conditions,
            scopes,
        })
    }
}

/// `GET /v1/admin/mappings?adtech=&cloud=&issuer=`: each given filter must
/// match exactly; unknown parameters are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingQuery {
    /// Only this ad tech's mappings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adtech: Option<String>,
    /// Only this cloud's (`aws`, `gcp`, `azure`, `oidc`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud: Option<String>,
    /// Only this issuer URL's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}

impl MappingQuery {
    /// The query as the CLI appends it to `/v1/admin/mappings`: empty when
    /// no filter is set, otherwise `?` and the form-encoded filters.
    pub fn query_string(&self) -> String {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in [
            ("adtech", &self.adtech),
            ("cloud", &self.cloud),
            ("issuer", &self.issuer),
        ] {
            if let Some(value) = value {
                serializer.append_pair(key, value);
            }
        }
        let query = serializer.finish();
        if query.is_empty() {
            query
        } else {
            format!("?{query}")
        }
    }
}

#[cfg(test)]
mod tests {
    use idp::ConditionOp;
    use serde::de::DeserializeOwned;
    use serde_json::json;

    use super::*;

    const SCOPES: [&str; 2] = ["keys:read", "keys:release"];

    /// Serialises `request` as the CLI sends it and reads it back as the
    /// broker's handler does (`serde_json` from bytes, into the same type).
    fn round_trip<T: Serialize + DeserializeOwned>(request: &T) -> T {
        let body = serde_json::to_vec(request).expect("serialise");
        serde_json::from_slice(&body).expect("deserialise")
    }

    fn field_of<T>(result: Result<T, FieldError>) -> (String, String) {
        match result {
            Ok(_) => panic!("accepted"),
            Err(e) => (e.field().to_owned(), e.to_string()),
        }
    }

    fn adtech(id: &str, name: &str, sites: &[&str], use_cases: &[&str]) -> AdTechRequest {
        AdTechRequest {
            id: id.into(),
            name: name.into(),
            sites: sites.iter().map(|s| (*s).to_owned()).collect(),
            use_cases: use_cases.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn identity(cloud: IssuerKind, subject: &str) -> IdentityRequest {
        IdentityRequest {
            cloud,
            issuer: "https://accounts.google.com".into(),
            subject: subject.into(),
            conditions: vec![],
            scopes: None,
        }
    }

    #[test]
    fn every_request_round_trips_through_its_json() {
        let issuers = [
            IssuerRequest {
                name: "eks".into(),
                kind: IssuerKind::Aws,
                issuer: "https://oidc.eks.us-east-1.amazonaws.com/id/ABC".into(),
                audience: "sts.amazonaws.com".into(),
                algorithms: None,
                max_token_lifetime: None,
                jwks_uri: None,
            },
            IssuerRequest {
                name: "ms".into(),
                kind: IssuerKind::Azure,
                issuer: "https://login.microsoftonline.com/t/v2.0".into(),
                audience: "api://kf".into(),
                algorithms: Some(vec!["RS256".into()]),
                max_token_lifetime: Some(3600),
                jwks_uri: Some("https://login.example/keys".parse().expect("url")),
            },
        ];
        for request in issuers {
            assert_eq!(round_trip(&request), request);
        }
        for request in [
            adtech("acme", "Acme", &[], &[]),
            adtech(
                "acme",
                "Acme Ads",
                &["https://acme.example", "https://b.acme.example:8443"],
                &["aggregation-service"],
            ),
        ] {
            assert_eq!(round_trip(&request), request);
        }
        for patch in [
            AdTechPatch { enabled: false },
            AdTechPatch { enabled: true },
        ] {
            assert_eq!(round_trip(&patch), patch);
        }
        let mut full = identity(IssuerKind::Gcp, "112233445566778899001");
        full.conditions = vec![
            Condition {
                claim: "google.compute_engine.project_id".into(),
                op: ConditionOp::Eq,
                value: json!("acme"),
            },
            Condition {
                claim: "tid".into(),
                op: ConditionOp::In,
                value: json!(["a", "b"]),
            },
        ];
        full.scopes = Some(vec!["keys:read".into()]);
        for request in [identity(IssuerKind::Gcp, "112233445566778899001"), full] {
            assert_eq!(round_trip(&request), request);
        }
    }

    #[test]
    fn a_mapping_query_round_trips_through_its_query_string() {
        let queries = [
            MappingQuery::default(),
            MappingQuery {
                adtech: Some("acme".into()),
                ..MappingQuery::default()
            },
            MappingQuery {
                adtech: Some("acme".into()),
                cloud: Some("gcp".into()),
                issuer: Some("https://accounts.google.com/?a=b&c".into()),
            },
        ];
        for query in queries {
            let text = query.query_string();
            // The pairs as a form decoder hands them to serde (the broker's
            // `Query` extractor is the same decoder behind serde_urlencoded).
            let pairs: serde_json::Map<String, serde_json::Value> =
                url::form_urlencoded::parse(text.trim_start_matches('?').as_bytes())
                    .map(|(k, v)| (k.into_owned(), json!(v)))
                    .collect();
            let read: MappingQuery =
                serde_json::from_value(serde_json::Value::Object(pairs)).expect("query");
            assert_eq!(read, query, "{text}");
        }
        assert_eq!(MappingQuery::default().query_string(), "");
        assert_eq!(
            MappingQuery {
                issuer: Some("https://a.example/x y".into()),
                cloud: Some("gcp".into()),
                ..MappingQuery::default()
            }
            .query_string(),
            "?cloud=gcp&issuer=https%3A%2F%2Fa.example%2Fx+y"
        );
    }

    #[test]
    fn bodies_refuse_unknown_fields_and_speak_camel_case() {
        let err = serde_json::from_value::<AdTechRequest>(
            json!({"id": "acme", "name": "Acme", "color": "red"}),
        )
        .expect_err("unknown field");
        assert!(err.to_string().contains("color"), "{err}");
        assert!(
            serde_json::from_value::<AdTechRequest>(
                json!({"id": "acme", "name": "Acme", "use_cases": []})
            )
            .is_err()
        );
        assert!(
            serde_json::from_value::<IdentityRequest>(
                json!({"cloud": "gcp", "issuer": "i", "subject": "s", "bogus": 1})
            )
            .is_err()
        );
        assert!(serde_json::from_value::<AdTechPatch>(json!({"enabled": true, "x": 1})).is_err());
        assert!(serde_json::from_value::<MappingQuery>(json!({"colour": "blue"})).is_err());
        let issuer: IssuerRequest = serde_json::from_value(json!({
            "name": "n", "kind": "oidc", "issuer": "https://i.example", "audience": "a",
            "maxTokenLifetime": 60, "jwksUri": "https://i.example/keys"
        }))
        .expect("camelCase");
        assert_eq!(issuer.max_token_lifetime, Some(60));
    }

    #[test]
    fn adtech_requests_name_the_first_bad_field_in_api_order() {
        let cases = [
            (adtech("A", "", &["http://x"], &[]), "id"),
            (adtech("acme", "", &[], &[]), "name"),
            (
                adtech(
                    "acme",
                    "Acme",
                    &["https://a.example", "https://b.example", "http://c.example"],
                    &["Bad"],
                ),
                "sites[2]",
            ),
            (
                adtech("acme", "Acme", &[], &["ok", "Not Ok"]),
                "useCases[1]",
            ),
            (
                adtech(
                    "acme",
                    "Acme",
                    &["https://a.example", "https://a.example"],
                    &["x", "x"],
                ),
                "sites",
            ),
            (adtech("acme", "Acme", &[], &["x", "x"]), "useCases"),
        ];
        for (request, field) in cases {
            assert_eq!(field_of(request.validate()).0, field);
        }
    }

    #[test]
    fn field_errors_read_as_the_api_has_always_worded_them() {
        let cases = [
            (
                field_of(adtech("A", "x", &[], &[]).validate()).1,
                "id: 2-64 lower-case letters, digits or '-', starting with a letter",
            ),
            (
                field_of(adtech("ok", " ", &[], &[]).validate()).1,
                "name: 1-200 printable characters",
            ),
            (
                field_of(adtech("ok", "x", &["nope"], &[]).validate()).1,
                "sites[0]: not a URL: relative URL without a base",
            ),
            (
                field_of(adtech("ok", "x", &["https://a.example/"], &[]).validate()).1,
                "sites[0]: must be an https origin such as https://ads.example",
            ),
            (
                field_of(adtech("ok", "x", &[], &["Bad Case"]).validate()).1,
                "useCases[0]: lower-case letters, digits or '-'",
            ),
            (
                field_of(adtech("ok", "x", &["https://a.example"; 2], &[]).validate()).1,
                "sites: duplicate site",
            ),
            (
                field_of(adtech("ok", "x", &[], &["a", "a"]).validate()).1,
                "useCases: duplicate use case",
            ),
            (
                field_of(identity(IssuerKind::Gcp, "").validate(&SCOPES)).1,
                "subject: subject is empty",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn a_valid_adtech_request_keeps_its_values_and_their_order() {
        let new = adtech(
            "acme",
            "Acme Ads",
            &["https://b.example", "https://a.example"],
            &["uc-2", "uc-1"],
        )
        .validate()
        .expect("valid");
        assert_eq!(new.id.as_str(), "acme");
        assert_eq!(new.name.as_str(), "Acme Ads");
        let sites: Vec<&str> = new.sites.iter().map(Site::as_str).collect();
        assert_eq!(sites, ["https://b.example", "https://a.example"]);
        let use_cases: Vec<&str> = new.use_cases.iter().map(UseCaseName::as_str).collect();
        assert_eq!(use_cases, ["uc-2", "uc-1"]);
    }

    #[test]
    fn identity_requests_check_subject_then_conditions_then_scopes() {
        let bad_condition = |value| Condition {
            claim: "a.b".into(),
            op: ConditionOp::In,
            value,
        };
        let mut conditions = identity(IssuerKind::Gcp, "112233445566778899001");
        conditions.conditions = vec![
            Condition {
                claim: "a".into(),
                op: ConditionOp::Eq,
                value: json!("x"),
            },
            bad_condition(json!([])),
        ];
        let mut both = conditions.clone();
        both.subject = "not-a-number".into();
        let with_scopes = |scopes: &[&str]| IdentityRequest {
            scopes: Some(scopes.iter().map(|s| (*s).to_owned()).collect()),
            ..identity(IssuerKind::Gcp, "112233445566778899001")
        };
        let cases = [
            (both, "subject"),
            (
                identity(IssuerKind::Azure, "112233445566778899001"),
                "subject",
            ),
            (conditions, "conditions[1]"),
            (with_scopes(&[]), "scopes"),
            (with_scopes(&["keys:read", "keys:delete"]), "scopes"),
        ];
        for (request, field) in cases {
            assert_eq!(field_of(request.validate(&SCOPES)).0, field);
        }
        assert_eq!(
            field_of(with_scopes(&["keys:delete"]).validate(&SCOPES)).1,
            "scopes: unknown scope `keys:delete`"
        );
        assert_eq!(
            field_of(with_scopes(&[]).validate(&SCOPES)).1,
            "scopes: at least one scope"
        );
    }

    #[test]
    fn an_identity_without_scopes_gets_every_supported_scope() {
        let new = identity(IssuerKind::Gcp, "112233445566778899001")
            .validate(&SCOPES)
            .expect("valid");
        assert_eq!(new.scopes, SCOPES);
        assert_eq!(new.subject.kind(), IssuerKind::Gcp);
        assert_eq!(new.subject.as_str(), "112233445566778899001");
    }

    #[test]
    fn issuer_requests_check_name_audience_algorithms_then_the_entry() {
        let issuer =
            |name: &str, audience: &str, algorithms: Option<&[&str]>, url: &str| IssuerRequest {
                name: name.into(),
                kind: IssuerKind::Oidc,
                issuer: url.into(),
                audience: audience.into(),
                algorithms: algorithms.map(|a| a.iter().map(|s| (*s).to_owned()).collect()),
                max_token_lifetime: None,
                jwks_uri: None,
            };
        let cases = [
            (issuer("", " ", None, "http://x"), "name"),
            (issuer("x", " ", Some(&["HS999"]), "http://x"), "audience"),
            (issuer("x", "a", Some(&["HS999"]), "http://x"), "algorithms"),
            (issuer("x", "a", None, "http://idp.example"), "issuer"),
        ];
        for (request, field) in cases {
            assert_eq!(field_of(request.validate(false)).0, field);
        }
        assert_eq!(
            field_of(
                issuer("x", "a", Some(&["RS256", "HS999"]), "https://i.example").validate(false)
            )
            .1,
            "algorithms: unknown algorithm `HS999`"
        );
        assert_eq!(
            field_of(issuer("x", " ", None, "https://i.example").validate(false)).1,
            "audience: must not be empty"
        );
    }

    #[test]
    fn a_valid_issuer_request_becomes_its_entry_with_defaults_or_its_options() {
        let plain = IssuerRequest {
            name: "google".into(),
            kind: IssuerKind::Gcp,
            issuer: "https://accounts.google.com".into(),
            audience: "keyferry".into(),
            algorithms: None,
            max_token_lifetime: None,
            jwks_uri: None,
        };
        let config = plain.clone().validate(false).expect("valid");
        assert_eq!(
            config,
            IssuerConfig::new(
                "google",
                IssuerKind::Gcp,
                "https://accounts.google.com",
                "keyferry"
            )
        );
        let tuned = IssuerRequest {
            algorithms: Some(vec!["ES256".into()]),
            max_token_lifetime: Some(600),
            jwks_uri: Some(
                "https://www.googleapis.com/oauth2/v3/certs"
                    .parse()
                    .expect("url"),
            ),
            ..plain
        }
        .validate(false)
        .expect("valid");
        assert_eq!(
            serde_json::to_value(&tuned).expect("json")["algorithms"],
            json!(["ES256"])
        );
        assert_eq!(tuned.max_token_lifetime.as_secs(), 600);
        assert!(tuned.jwks_uri.is_some());
    }
}
