//! The one source of randomness: the operating system's CSPRNG.

use rand::TryRngCore;
use rand::rngs::OsRng;

/// The OS RNG in the `RngCore + CryptoRng` shape `hpke` wants.
///
/// # Panics
/// When the operating system cannot supply randomness. Nothing sensible can continue without
/// it (the same choice as `rand::rng()`), and returning an error from every key operation for
/// a condition that does not happen on supported platforms would only hide real errors.
pub(crate) fn os_rng() -> rand::rand_core::UnwrapErr<OsRng> {
    OsRng.unwrap_err()
}
