//! XOR splitting of a serialized keyset between the two coordinators (DESIGN §4.1).
//!
//! With a uniformly random pad as long as the keyset, each split alone is uniformly random
//! and says nothing about the key (a one-time pad); both are needed to recombine.

use std::fmt;

use rand::RngCore as _;
use zeroize::Zeroizing;

use crate::{KeyError, rng::os_rng};

/// The two halves of a private keyset. Both are secret until KMS-wrapped.
pub struct Splits {
    /// Split A (kept by the Type-1 coordinator): keyset ⊕ pad.
    pub a: Zeroizing<Vec<u8>>,
    /// Split B (handed to the Type-2 coordinator): the pad.
    pub b: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Splits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Splits")
            .field("a", &format_args!("<{} bytes redacted>", self.a.len()))
            .field("b", &format_args!("<{} bytes redacted>", self.b.len()))
            .finish()
    }
}

/// Splits `keyset` into A = keyset ⊕ pad and B = pad, the pad drawn from the OS CSPRNG.
///
/// # Panics
/// When the OS has no randomness (see the crate's RNG notes).
pub fn split(keyset: &[u8]) -> Splits {
    let mut b = Zeroizing::new(vec![0u8; keyset.len()]);
    os_rng().fill_bytes(&mut b);
    let a = Zeroizing::new(keyset.iter().zip(b.iter()).map(|(k, p)| k ^ p).collect());
    Splits { a, b }
}

/// Recombines the keyset from its two splits (A ⊕ B).
///
/// A length mismatch means the splits belong to different keys (or one is truncated); the
/// caller still has to check the result, e.g. with `PrivateKeyset::from_tink_bytes` and the
/// published public key, because XOR of two wrong splits of equal length is not detectable
/// here.
pub fn recombine(a: &[u8], b: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    if a.len() != b.len() {
        return Err(KeyError::SplitLengthMismatch {
            a: a.len(),
            b: b.len(),
        });
    }
    Ok(Zeroizing::new(
        a.iter().zip(b).map(|(x, y)| x ^ y).collect(),
    ))
}
