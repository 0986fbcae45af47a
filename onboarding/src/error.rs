//! Why onboarding refuses a value.
//!
//! The messages are part of the admin API: the broker answers
//! `400 invalid_field` with `detail` = `"<field>: <message>"`, and operators
//! and scripts read them. Change a text only as an API change.

/// Why a value was refused, without saying where it was.
///
/// The newtypes' `TryFrom` impls return this; the `validate` steps of
/// the requests attach the field with [`Error::at`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An ad tech id that is not a slug: upper case, `_`, a leading digit,
    /// or shorter than 2 or longer than 64.
    #[error("2-64 lower-case letters, digits or '-', starting with a letter")]
    AdTechId,
    /// A display name that is blank, longer than 200 characters or holds
    /// control characters (a pasted newline, usually).
    #[error("1-200 printable characters")]
    DisplayName,
    /// A site that does not parse as a URL at all (often a bare host:
    /// `ads.example` instead of `https://ads.example`).
    #[error("not a URL: {0}")]
    SiteNotUrl(url::ParseError),
    /// A URL that is not a bare https origin: `http`, a path (even `/`), a
    /// query, a fragment or credentials.
    #[error("must be an https origin such as https://ads.example")]
    SiteNotOrigin,
    /// A use-case name with upper case, spaces or `_`, empty, or over 64.
    #[error("lower-case letters, digits or '-'")]
    UseCaseName,
    /// A subject that does not fit its cloud (a GCP email given as an AWS
    /// role, a truncated ARN…). The text is idp's.
    #[error(transparent)]
    Subject(idp::SubjectError),
    /// A key id that cannot be one: empty, over 64 bytes, or holding
    /// something other than ASCII letters, digits and `-`.
    #[error("a key id is a UUID or a sequence number")]
    KeyId,
    /// A required text that is blank.
    #[error("must not be empty")]
    Empty,
    /// The same site twice in one ad tech.
    #[error("duplicate site")]
    DuplicateSite,
    /// The same use case twice in one ad tech.
    #[error("duplicate use case")]
    DuplicateUseCase,
    /// A JWS algorithm name jsonwebtoken does not know (`HS999`, `rs256`).
    #[error("unknown algorithm `{0}`")]
    UnknownAlgorithm(String),
    /// An issuer entry idp refuses (wrong URL shape for its kind, http
    /// outside the dev profile…). The text is idp's.
    #[error(transparent)]
    Issuer(idp::IssuerConfigError),
    /// A mapping condition with a bad path or value. The text is idp's.
    #[error(transparent)]
    Condition(idp::ConditionError),
    /// An explicit empty scope list (omit `scopes` for the default).
    #[error("at least one scope")]
    NoScopes,
    /// A scope the broker does not grant.
    #[error("unknown scope `{0}`")]
    UnknownScope(String),
}

impl Error {
    /// This reason, as the fault of request field `field` (`id`,
    /// `sites[2]`, `conditions[0]`…).
    pub fn at(self, field: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            error: self,
        }
    }
}

/// A refused request field: its name as the API spells it, and why.
///
/// The broker turns this into `400 invalid_field` with `field` set, in one
/// place (`From<FieldError>` in its `error.rs`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {error}")]
pub struct FieldError {
    field: String,
    error: Error,
}

impl FieldError {
    /// The field at fault, as the API spells it (`useCases[0]`).
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong with it.
    pub fn error(&self) -> &Error {
        &self.error
    }
}
