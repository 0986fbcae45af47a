//! Keyferry onboarding (DESIGN §7.1): the registry of ad techs and their
//! workload identities, as the admin API speaks it.
//!
//! The broker's handlers and the `keyferry onboard` CLI both use these types,
//! so a request the CLI builds is, by construction, one the server reads.
//! Nothing here does I/O: storage, HTTP, the issuer registry and the KEKs
//! stay in the broker, which passes in what a rule needs.
//!
//! # Layout
//!
//! - `fields`: validating newtypes, one per field rule: [`AdTechId`],
//!   [`DisplayName`], [`Site`], [`UseCaseName`], [`Subject`] (always with
//!   its [`idp::IssuerKind`]) and [`KeyId`]. A value of one of these types has
//!   passed its rule.
//! - `requests`: the bodies and query of the admin API ([`IssuerRequest`],
//!   [`AdTechRequest`], [`AdTechPatch`], [`IdentityRequest`],
//!   [`MappingQuery`]) and their `validate` steps, which name the field at
//!   fault in the order the API reports them.
//! - `records`: the response shapes ([`AdTechRecord`], [`IdentityMapping`],
//!   [`IssuerEntry`] and the list and removal envelopes).
//! - `overlap`: [`first_overlap`], the mapping a new one would make
//!   ambiguous (DESIGN §3.4).
//! - `terraform`: [`terraform_vars`], the tfvars of each workload cloud's
//!   ad-tech module, from each cloud's KEK URI.
//! - `error`: [`Error`], why a value was refused, and [`FieldError`], that
//!   reason with the request field it belongs to.

mod error;
mod fields;
mod overlap;
mod records;
mod requests;
mod terraform;

pub use error::{Error, FieldError};
pub use fields::{AdTechId, DisplayName, KeyId, Site, Subject, UseCaseName};
pub use overlap::first_overlap;
pub use records::{
    AdTechDetail, AdTechList, AdTechRecord, IdentityMapping, IssuerEntry, IssuerList, IssuerSource,
    MappingList, Removed,
};
pub use requests::{
    AdTechPatch, AdTechRequest, IdentityRequest, IssuerRequest, MappingQuery, NewAdTech,
    NewIdentity,
};
pub use terraform::terraform_vars;
