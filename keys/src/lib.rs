//! Keyferry's key material: HPKE key pairs in Google Tink's formats, their XOR splits, HPKE
//! sealing of splits in transit, and ES256 signatures over published public keys
//! (DESIGN §4.1, §4.3, §5.3).
//!
//! Everything here is synchronous, pure computation: no I/O, no clocks (times come in as Unix
//! milliseconds), so the broker and the workload use the same code for both ends of each
//! format.
//!
//! Secrets (private keys, serialized private keysets, splits, opened plaintexts) live only in
//! [`zeroize::Zeroizing`] buffers or types that wipe themselves on drop, and every `Debug`
//! impl of a type holding one prints `<redacted>`. Errors never carry key bytes.
//!
//! Randomness comes only from the operating system's CSPRNG. Functions that need it panic if
//! the OS cannot supply it, rather than returning an error nobody can act on.
//!
//! # Layout
//! - `error`: [`KeyError`], the crate's one error type.
//! - `suite`: [`Aead`], a use case's HPKE AEAD choice.
//! - `ids`: [`KeyIdFormat`] and the two key id generators.
//! - [`tink`] (public): Tink's `Keyset`/HPKE protobuf messages (hand-written prost) and JSON
//!   keyset types.
//! - `keyset`: [`generate`], [`PrivateKeyset`], [`PublicKeyset`] and Tink-compatible
//!   [`hybrid_encrypt`].
//! - `split`: [`split`] and [`recombine`] (one-time-pad XOR).
//! - `seal`: [`seal`]/[`open`] of splits in transit, [`RecipientKey`], the `info` constants.
//! - `signature`: the public key signature message, [`KeySigner`], [`verify_signature`].
//! - `suite_hpke`: the RFC 9180 base-mode seal/open both `keyset` and `seal` build on.
//! - `rng`: the OS CSPRNG adapter.

mod error;
mod ids;
mod keyset;
mod rng;
mod seal;
mod signature;
mod split;
mod suite;
mod suite_hpke;
pub mod tink;

pub use error::KeyError;
pub use ids::{KeyIdFormat, sequence_key_id, uuid_key_id};
pub use keyset::{GeneratedKey, PrivateKeyset, PublicKeyset, generate, hybrid_encrypt};
pub use seal::{HANDOVER_INFO, RELEASE_INFO, RecipientKey, open, seal};
pub use signature::{KeySigner, public_key_signature_message, verify_signature};
pub use split::{Splits, recombine, split};
pub use suite::Aead;
