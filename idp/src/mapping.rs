//! Mapping rules: which workload identity may act for which ad tech (DESIGN §3.4).
//!
//! A token is authorized only when **exactly one** enabled mapping matches it. Ambiguity
//! is a refusal, not a tie-break, because two mappings that both match would grant one
//! identity the union of two ad techs' permissions depending on iteration order.
//! [`overlaps`] lets onboarding refuse a mapping that could make a later token ambiguous.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::issuer::{IssuerKind, SubjectError, validate_subject};
use crate::signing::{AccessTokenClaims, GrantedClaims};
use crate::validate::{VerifiedToken, claim_at_path};

/// One identity → ad tech rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mapping {
    /// Stable id; becomes the credential's `client_id`.
    pub id: String,
    /// The ad tech the identity acts for.
    pub adtech: String,
    /// The exact `iss` the token must carry.
    pub issuer: String,
    /// The exact `sub` the token must carry.
    pub subject: String,
    /// Extra claim conditions; all must hold.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Scopes this identity may be granted (`keys:read`, `keys:release`, …).
    pub scopes: Vec<String>,
    /// The workload's cloud, copied into the credential.
    pub cloud: IssuerKind,
    /// Disabled mappings never match.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// A condition on one claim of the subject token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Dotted path into the payload, e.g. `google.compute_engine.project_id`.
    pub claim: String,
    /// The comparison.
    pub op: ConditionOp,
    /// A string for `eq` and `prefix`, a non-empty array of strings for `in`.
    pub value: Value,
}

/// How a claim is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConditionOp {
    /// The claim equals the value.
    Eq,
    /// The claim is one of the values.
    In,
    /// The claim starts with the value.
    Prefix,
}

/// Why a condition is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConditionError {
    /// The path is empty or has an empty segment (`a..b`).
    #[error("claim path must be non-empty dotted segments")]
    BadPath,
    /// `eq` and `prefix` take one string.
    #[error("eq and prefix take a string value")]
    NotAString,
    /// `prefix` with an empty string would always hold.
    #[error("prefix must not be empty")]
    EmptyPrefix,
    /// `in` takes a non-empty array of strings.
    #[error("in takes a non-empty array of strings")]
    NotAStringArray,
}

impl Condition {
    /// Checks the condition's shape (onboarding calls this before storing a mapping).
    pub fn validate(&self) -> Result<(), ConditionError> {
        if self.claim.is_empty() || self.claim.split('.').any(str::is_empty) {
            return Err(ConditionError::BadPath);
        }
        match self.op {
            ConditionOp::Eq => self
                .value
                .as_str()
                .map(|_| ())
                .ok_or(ConditionError::NotAString),
            ConditionOp::Prefix => match self.value.as_str() {
                None => Err(ConditionError::NotAString),
                Some("") => Err(ConditionError::EmptyPrefix),
                Some(_) => Ok(()),
            },
            ConditionOp::In => match self.value.as_array() {
                Some(items) if !items.is_empty() && items.iter().all(Value::is_string) => Ok(()),
                _ => Err(ConditionError::NotAStringArray),
            },
        }
    }

    /// Whether `claims` satisfies the condition. A missing claim, an object or array
    /// claim, or an invalid condition never holds. Numbers and booleans compare by their
    /// JSON text (`"project_number": 42` equals `"42"`), as tokens differ in how they
    /// encode ids.
    pub fn holds(&self, claims: &Value) -> bool {
        let Some(actual) = claim_at_path(claims, &self.claim).and_then(scalar_text) else {
            return false;
        };
        match self.op {
            ConditionOp::Eq => self.value.as_str() == Some(actual.as_str()),
            ConditionOp::Prefix => self
                .value
                .as_str()
                .is_some_and(|p| !p.is_empty() && actual.starts_with(p)),
            ConditionOp::In => self
                .value
                .as_array()
                .is_some_and(|items| items.iter().any(|v| v.as_str() == Some(actual.as_str()))),
        }
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Why a mapping is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// A required text field is empty or holds control characters.
    #[error("{field} must be non-empty text")]
    EmptyField {
        /// The field's name.
        field: &'static str,
    },
    /// The subject does not fit the cloud.
    #[error("subject: {0}")]
    Subject(#[from] SubjectError),
    /// No scopes, or a scope that is not an RFC 6749 scope token.
    #[error("scopes must be a non-empty list of scope tokens (no spaces or quotes)")]
    Scopes,
    /// A condition is invalid.
    #[error("conditions[{index}]: {error}")]
    Condition {
        /// Position in `conditions`.
        index: usize,
        /// What is wrong.
        error: ConditionError,
    },
}

impl Mapping {
    /// Checks fields, the subject's shape for `cloud`, scope syntax and every condition.
    pub fn validate(&self) -> Result<(), MappingError> {
        for (field, value) in [
            ("id", &self.id),
            ("adtech", &self.adtech),
            ("issuer", &self.issuer),
        ] {
            if value.trim().is_empty() || value.chars().any(char::is_control) {
                return Err(MappingError::EmptyField { field });
            }
        }
        validate_subject(self.cloud, &self.subject)?;
        let scope_token_ok = |s: &String| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
        };
        if self.scopes.is_empty() || !self.scopes.iter().all(scope_token_ok) {
            return Err(MappingError::Scopes);
        }
        for (index, condition) in self.conditions.iter().enumerate() {
            condition
                .validate()
                .map_err(|error| MappingError::Condition { index, error })?;
        }
        Ok(())
    }

    /// Whether this mapping matches `token`: enabled, same issuer and subject, every
    /// condition holds. `Err` names the first failing condition's claim path.
    fn evaluate(&self, token: &VerifiedToken) -> Option<Result<(), String>> {
        if !self.enabled || self.issuer != token.iss() || self.subject != token.sub() {
            return None;
        }
        match self.conditions.iter().find(|c| !c.holds(token.claims())) {
            Some(failed) => Some(Err(failed.claim.clone())),
            None => Some(Ok(())),
        }
    }
}

/// Why no mapping authorizes a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingRejection {
    /// No enabled mapping has this issuer and subject.
    #[error("no mapping for this identity")]
    NoMapping,
    /// More than one mapping matches; refused rather than guessing.
    #[error("identity matches {count} mappings")]
    Ambiguous {
        /// How many matched.
        count: usize,
    },
    /// A mapping has this issuer and subject but a condition does not hold. Names the
    /// claim path, never the token's value.
    #[error("mapping condition on claim {claim} does not hold")]
    ConditionFailed {
        /// The configured claim path.
        claim: String,
    },
}

impl MappingRejection {
    /// Stable snake_case identifier.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoMapping => "no_mapping",
            Self::Ambiguous { .. } => "ambiguous_mapping",
            Self::ConditionFailed { .. } => "condition_failed",
        }
    }
}

/// The single mapping that authorizes `token`.
///
/// `candidates` are the enabled mappings of enabled ad techs (disabled mappings are also
/// skipped here, defensively). When nothing matches but some mapping failed only on a
/// condition, that is reported, naming the claim, because it tells the operator which
/// attribute of the workload is off, while "no mapping" tells them the identity is unknown.
pub fn select_mapping<'a>(
    token: &'a VerifiedToken,
    candidates: impl IntoIterator<Item = &'a Mapping>,
) -> Result<MatchedMapping<'a>, MappingRejection> {
    let mut matched = Vec::new();
    let mut first_failure = None;
    for mapping in candidates {
        match mapping.evaluate(token) {
            Some(Ok(())) => matched.push(mapping),
            Some(Err(claim)) => {
                first_failure.get_or_insert(claim);
            }
            None => {}
        }
    }
    match (matched.as_slice(), first_failure) {
        ([only], _) => Ok(MatchedMapping {
            token,
            mapping: only,
        }),
        ([], Some(claim)) => Err(MappingRejection::ConditionFailed { claim }),
        ([], None) => Err(MappingRejection::NoMapping),
        (many, _) => Err(MappingRejection::Ambiguous { count: many.len() }),
    }
}

/// Proof that a verified subject token matched exactly one enabled mapping. Only
/// [`select_mapping`] makes one, and an access token is granted only from one
/// ([`MatchedMapping::grant`]): there is no way to mint a credential for an identity that
/// did not pass validation and mapping.
///
/// ```compile_fail
/// // AccessTokenClaims has no public constructor: its fields are private.
/// let claims = idp::AccessTokenClaims {
///     adtech: "acme".into(), client_id: "m1".into(), audience: "https://b".into(),
///     scopes: vec![], cloud: idp::IssuerKind::Gcp, src_iss: "https://i".into(),
///     src_sub: "s".into(), ttl: std::time::Duration::from_secs(60),
/// };
/// ```
///
/// The path that compiles goes through the proof:
///
/// ```
/// # fn f(token: &idp::VerifiedToken, mappings: &[idp::Mapping]) -> Option<idp::AccessTokenClaims> {
/// let matched = idp::select_mapping(token, mappings).ok()?;
/// matched.grant("https://broker.example", None, std::time::Duration::from_secs(60)).ok()
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct MatchedMapping<'a> {
    token: &'a VerifiedToken,
    mapping: &'a Mapping,
}

impl<'a> MatchedMapping<'a> {
    /// The mapping that matched.
    pub fn mapping(&self) -> &'a Mapping {
        self.mapping
    }

    /// The verified token it matched.
    pub fn token(&self) -> &'a VerifiedToken {
        self.token
    }

    /// The claims of a credential for this identity: `requested` scopes (all of the
    /// mapping's when `None`), each of which the mapping must grant, for `audience`, living
    /// `ttl`. Refuses the first scope the mapping does not grant.
    pub fn grant(
        &self,
        audience: impl Into<String>,
        requested: Option<Vec<String>>,
        ttl: std::time::Duration,
    ) -> Result<AccessTokenClaims, UngrantedScope> {
        let scopes = match requested {
            None => self.mapping.scopes.clone(),
            Some(requested) => {
                if let Some(extra) = requested.iter().find(|s| !self.mapping.scopes.contains(s)) {
                    return Err(UngrantedScope(extra.clone()));
                }
                requested
            }
        };
        Ok(AccessTokenClaims::granted(GrantedClaims {
            adtech: self.mapping.adtech.clone(),
            client_id: self.mapping.id.clone(),
            audience: audience.into(),
            scopes,
            cloud: self.mapping.cloud,
            src_iss: self.token.iss().to_owned(),
            src_sub: self.token.sub().to_owned(),
            ttl,
        }))
    }
}

impl PartialEq for MatchedMapping<'_> {
    /// The same mapping matched for the same token (by identity: a proof is about one token).
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.token, other.token) && self.mapping == other.mapping
    }
}

/// A requested scope that the matched mapping does not grant (the scope, as requested).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scope `{0}` is not granted to this identity")]
pub struct UngrantedScope(pub String);

/// Whether one token could satisfy both mappings.
///
/// Conservative: mappings with the same issuer and subject overlap unless some claim path
/// carries conditions in both whose combined constraints no single string can meet
/// (different `eq` values, disjoint `in` sets, incompatible prefixes…). Different issuer
/// or subject never overlap. The `enabled` flag is ignored: a disabled mapping can be
/// re-enabled.
pub fn overlaps(a: &Mapping, b: &Mapping) -> bool {
    if a.issuer != b.issuer || a.subject != b.subject {
        return false;
    }
    let mut by_path: HashMap<&str, Vec<&Condition>> = HashMap::new();
    for condition in a.conditions.iter().chain(&b.conditions) {
        by_path
            .entry(condition.claim.as_str())
            .or_default()
            .push(condition);
    }
    by_path.values().all(|conditions| satisfiable(conditions))
}

/// Whether some string satisfies every condition (conditions with invalid values are
/// ignored, which can only make the answer "satisfiable", i.e. more conservative).
fn satisfiable(conditions: &[&Condition]) -> bool {
    let mut allowed: Option<BTreeSet<&str>> = None;
    let mut prefixes = Vec::new();
    for condition in conditions {
        let values: Option<BTreeSet<&str>> = match condition.op {
            ConditionOp::Eq => condition.value.as_str().map(|v| BTreeSet::from([v])),
            ConditionOp::In => condition
                .value
                .as_array()
                .map(|items| items.iter().filter_map(Value::as_str).collect()),
            ConditionOp::Prefix => {
                if let Some(p) = condition.value.as_str() {
                    prefixes.push(p);
                }
                None
            }
        };
        if let Some(values) = values {
            allowed = Some(match allowed {
                None => values,
                Some(previous) => previous.intersection(&values).copied().collect(),
            });
        }
    }
    match allowed {
        Some(set) => set
            .iter()
            .any(|v| prefixes.iter().all(|p| v.starts_with(p))),
        None => prefixes.iter().all(|p| {
            prefixes
                .iter()
                .all(|q| p.starts_with(q) || q.starts_with(p))
        }),
    }
}

#[cfg(test)]
mod tests;
