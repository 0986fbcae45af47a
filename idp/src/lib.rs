//! Keyferry identity federation (DESIGN §3).
//!
//! The broker trades workload identity tokens from AWS, GCP, Azure or any OIDC issuer for
//! its own short-lived credentials. This crate holds that logic without HTTP serving or
//! storage, so the broker's handlers stay thin and every rule is testable in isolation.
//!
//! # Layout
//!
//! - `clock`: [`Clock`], [`SystemClock`], [`ManualClock`]; all freshness decisions read
//!   time through it, so tests move time instead of sleeping.
//! - `issuer`: [`IssuerConfig`] of a trusted issuer, its validation (https, per-cloud URL
//!   shapes, no HMAC) and [`validate_subject`] for per-cloud subject shapes.
//! - `discovery`: [`DiscoveryDocument`], OIDC discovery metadata, read from trusted
//!   issuers and written for the broker's own.
//! - `jwks`: [`JwksCache`], discovery plus JWKS fetching with `Cache-Control` lifetimes,
//!   rate-limited single-flight refreshes, and survival of issuer outages.
//! - `validate`: [`TokenValidator`] runs the ordered subject-token checks and returns the
//!   proof type [`VerifiedToken`] or a [`TokenRejection`] with a stable code.
//! - `mapping`: [`Mapping`] rules, [`select_mapping`] (exactly one must match, giving the
//!   proof [`MatchedMapping`], the only source of [`AccessTokenClaims`]) and [`overlaps`]
//!   for onboarding.
//! - `signing`: the broker's own issuer: rotating ES256 [`SigningKey`]s, JWKS and
//!   minting credentials, and [`CredentialVerifier`].
//! - `jose` (private): compact JWS parsing shared by validation and verification.
//!
//! Nothing in this crate writes a token or key into an error, a `Debug` string or a log
//! line: rejections carry fixed phrases, and secret-holding types redact themselves.

mod clock;
mod discovery;
mod issuer;
mod jose;
mod jwks;
mod mapping;
mod signing;
mod validate;

#[cfg(test)]
mod testutil;

pub use clock::{Clock, ManualClock, SystemClock};
pub use discovery::{DiscoveryDocument, discovery_document};
pub use issuer::{
    DEFAULT_MAX_TOKEN_LIFETIME, IssuerConfig, IssuerConfigError, IssuerKind, MAX_OIDC_SUBJECT_LEN,
    SubjectError, UrlProblem, validate_subject,
};
pub use jwks::{
    EcCurve, FetchFailure, JwksCache, JwksError, JwksPolicy, JwksStats, KeyKind, VerificationKey,
    default_http_client,
};
pub use mapping::{
    Condition, ConditionError, ConditionOp, Mapping, MappingError, MappingRejection,
    MatchedMapping, UngrantedScope, overlaps, select_mapping,
};
#[cfg(feature = "test-support")]
pub use signing::danger;
pub use signing::{
    AccessTokenClaims, BrokerIssuer, CredentialRejection, CredentialVerifier, DEFAULT_JWKS_MAX_AGE,
    DEFAULT_MAX_TOKEN_TTL, DEFAULT_ROTATION_PERIOD, KeySchedule, MintedToken, RotationOutcome,
    RotationPlan, RotationPolicy, SigningError, SigningKey, SigningKeySet, TOKEN_EXCHANGE_GRANT,
    VerifiedCredential, plan_rotation,
};
pub use validate::{
    CLOCK_SKEW, IssuerRegistry, MAX_TOKEN_BYTES, TokenRejection, TokenValidator,
    UnverifiedIdentity, VerifiedToken,
};
