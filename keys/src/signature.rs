//! ES256 signatures over published public keys (DESIGN §4.1): the Type-1 coordinator signs
//! `keyId|creationTime|publicKeyMaterial` so that clients can tell its keys from injected ones.

use std::fmt;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _,
    UnparsedPublicKey,
};
use zeroize::Zeroizing;

use crate::KeyError;

/// The bytes the public key signature covers: `keyId|creationTime|publicKeyMaterial`, with
/// the creation time (Unix milliseconds) as RFC 3339 UTC with exactly three fractional digits,
/// e.g. 1669252790485 → `2022-11-24T01:19:50.485Z`.
///
/// Unambiguous without escaping: the time has a fixed shape and base64 has no `|`, so the
/// message splits at its last two `|` even if a key id contained one.
///
/// Every `i64` is accepted. Times before 1970 are formatted as the proleptic Gregorian
/// instant they are (-1 → `1969-12-31T23:59:59.999Z`) rather than refused: the value is
/// signed, not interpreted, and refusing would make this function fallible for a case the
/// broker never produces. Years outside 0000..=9999 (which RFC 3339 cannot express) use
/// ISO 8601's expanded form with a sign, as Java's `Instant` does (`+10000-01-01T…`).
pub fn public_key_signature_message(
    key_id: &str,
    creation_time_ms: i64,
    public_key_material_b64: &str,
) -> Vec<u8> {
    format!(
        "{key_id}|{}|{public_key_material_b64}",
        rfc3339_millis(creation_time_ms)
    )
    .into_bytes()
}

/// Unix milliseconds as RFC 3339 UTC with exactly three fractional digits.
fn rfc3339_millis(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let second_of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let year = if (0..=9999).contains(&year) {
        format!("{year:04}")
    } else {
        format!("{year:+05}")
    };
    format!(
        "{year}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`). Exact for every day an `i64` of milliseconds can reach.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A P-256 ES256 signing key (the Type-1 coordinator's public key signing key).
pub struct KeySigner {
    key_pair: EcdsaKeyPair,
    pkcs8: Zeroizing<Vec<u8>>,
    spki_der: Vec<u8>,
}

impl KeySigner {
    /// A fresh P-256 key.
    pub fn generate() -> Result<Self, KeyError> {
        let key_pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| KeyError::SigningKeyGeneration)?;
        let pkcs8 = key_pair
            .to_pkcs8v1()
            .map_err(|_| KeyError::SigningKeyGeneration)?;
        Self::from_pkcs8(pkcs8.as_ref())
    }

    /// Loads a PKCS#8 (v1 or v2) DER P-256 private key.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        let key_pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map_err(|_| KeyError::InvalidSigningKey)?;
        let spki_der = key_pair
            .public_key()
            .as_der()
            .map_err(|_| KeyError::InvalidSigningKey)?
            .as_ref()
            .to_vec();
        Ok(Self {
            key_pair,
            pkcs8: Zeroizing::new(der.to_vec()),
            spki_der,
        })
    }

    /// The PKCS#8 DER private key, for storing it (KMS-wrapped): the bytes it was loaded from
    /// or generated as.
    pub fn to_pkcs8(&self) -> Zeroizing<Vec<u8>> {
        self.pkcs8.clone()
    }

    /// The public key as DER SubjectPublicKeyInfo, what [`verify_signature`] takes.
    pub fn public_key_spki_der(&self) -> Vec<u8> {
        self.spki_der.clone()
    }

    /// ES256 signature of `message`: 64 bytes r ‖ s (the JWS encoding, not DER).
    ///
    /// # Panics
    /// When aws-lc cannot draw the nonce from the OS RNG, as for every other random draw in
    /// this crate.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.key_pair
            .sign(&SystemRandom::new(), message)
            .expect("ECDSA signing with a loaded key fails only without OS randomness")
            .as_ref()
            .to_vec()
    }
}

impl fmt::Debug for KeySigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySigner")
            .field("public_key_spki_der_len", &self.spki_der.len())
            .field("private_key", &"<redacted>")
            .finish()
    }
}

/// Verifies a 64-byte r ‖ s ES256 signature with a DER SubjectPublicKeyInfo P-256 key.
pub fn verify_signature(spki_der: &[u8], message: &[u8], signature: &[u8]) -> Result<(), KeyError> {
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, spki_der)
        .verify(message, signature)
        .map_err(|_| KeyError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creation_times_format_as_rfc3339_with_milliseconds() {
        for (ms, text) in [
            (1_669_252_790_485, "2022-11-24T01:19:50.485Z"),
            (0, "1970-01-01T00:00:00.000Z"),
            (1, "1970-01-01T00:00:00.001Z"),
            (1_709_164_800_000, "2024-02-29T00:00:00.000Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (4_107_542_399_999, "2100-02-28T23:59:59.999Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (-86_400_000, "1969-12-31T00:00:00.000Z"),
            (-62_167_219_200_000, "0000-01-01T00:00:00.000Z"),
            (-62_167_219_200_001, "-0001-12-31T23:59:59.999Z"),
            (253_402_300_800_000, "+10000-01-01T00:00:00.000Z"),
        ] {
            assert_eq!(rfc3339_millis(ms), text, "{ms}");
        }
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        assert!(rfc3339_millis(i64::MAX).starts_with('+'));
        assert!(rfc3339_millis(i64::MIN).starts_with('-'));
    }
}
