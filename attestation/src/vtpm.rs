//! vTPM quotes: a `TPMS_ATTEST` of type quote, its RSA signature by an attestation key, and
//! the PCR values it covers (TPM 2.0 Part 2, §10.12; structures from `tpm2-protocol`).
//!
//! A quote proves three things once [`TpmQuote::verify`] accepts it: the TPM holding the
//! attestation key signed it, it was made for the caller's `extraData` (the nonce), and the
//! PCR values presented beside it are the ones the TPM hashed into `pcrDigest`. Nothing about
//! the key itself: whoever calls `verify` must have established that the key belongs to the
//! attested VM (on Azure, the HCL report's runtime data names it).

use std::collections::BTreeMap;

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;
use tpm2_protocol::TpmUnmarshal as _;
use tpm2_protocol::data::{TpmAlgId, TpmSt, TpmsAttest, TpmuAttest};

use crate::error::{Error, Reason};

/// PCRs of a TPM 2.0 bank: 0..=23.
pub const PCR_COUNT: usize = 24;
/// Length of a SHA-256 PCR value.
pub const PCR_LEN: usize = 32;
/// Largest quote message accepted: a `TPMS_ATTEST` is at most ~1 KiB; anything longer is not
/// a quote.
const MAX_MESSAGE_LEN: usize = 2048;
/// Largest signature accepted (RSA-8192).
const MAX_SIGNATURE_LEN: usize = 1024;

/// An RSA public key in the JWK form the Azure runtime data carries (`n`, `e` big-endian).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RsaKey {
    /// The modulus, big-endian.
    pub n: Vec<u8>,
    /// The public exponent, big-endian.
    pub e: Vec<u8>,
}

/// A quote as presented: the marshalled `TPMS_ATTEST`, its signature, and the SHA-256 bank's
/// PCR values (index = PCR number). Framing only; [`TpmQuote::verify`] checks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TpmQuote {
    message: Vec<u8>,
    signature: Vec<u8>,
    pcrs: Vec<[u8; PCR_LEN]>,
}

fn malformed(detail: impl Into<String>) -> Error {
    Error::refused(Reason::QuoteMalformed, detail)
}

impl TpmQuote {
    /// Frames a quote. Fails with `quote_malformed` when a part is empty or too long, or a PCR
    /// value is not 32 bytes.
    pub fn new(message: Vec<u8>, signature: Vec<u8>, pcrs: Vec<Vec<u8>>) -> Result<Self, Error> {
        if message.is_empty() || message.len() > MAX_MESSAGE_LEN {
            return Err(malformed(format!(
                "quote message has {} bytes (1..={MAX_MESSAGE_LEN})",
                message.len()
            )));
        }
        if signature.is_empty() || signature.len() > MAX_SIGNATURE_LEN {
            return Err(malformed(format!(
                "quote signature has {} bytes (1..={MAX_SIGNATURE_LEN})",
                signature.len()
            )));
        }
        if pcrs.len() > PCR_COUNT {
            return Err(malformed(format!(
                "{} PCR values; a bank has {PCR_COUNT}",
                pcrs.len()
            )));
        }
        let pcrs = pcrs
            .iter()
            .enumerate()
            .map(|(i, p)| {
                <[u8; PCR_LEN]>::try_from(p.as_slice()).map_err(|_| {
                    malformed(format!("PCR {i} has {} bytes, expected {PCR_LEN}", p.len()))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(TpmQuote {
            message,
            signature,
            pcrs,
        })
    }

    /// The marshalled `TPMS_ATTEST`.
    pub fn message(&self) -> &[u8] {
        &self.message
    }

    /// The signature over [`TpmQuote::message`].
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The PCR values presented, by PCR number.
    pub fn pcrs(&self) -> &[[u8; PCR_LEN]] {
        &self.pcrs
    }

    /// The quote's `extraData`, unverified: for offline inspection without a nonce.
    pub(crate) fn extra_data(&self) -> Result<Vec<u8>, Error> {
        let (attest, _) = TpmsAttest::unmarshal(&self.message)
            .map_err(|e| malformed(format!("TPMS_ATTEST: {e:?}")))?;
        Ok(attest.extra_data.to_vec())
    }

    /// Checks the quote: a `TPM_ST_ATTEST_QUOTE` structure with nothing after it, signed by
    /// `key` (RSASSA-PKCS1-v1_5 with SHA-256, the scheme of Azure's attestation key), made
    /// for exactly `nonce`, over a SHA-256 selection whose digest the presented PCR values
    /// reproduce. Returns the selected PCRs and their values.
    ///
    /// Reasons: `quote_malformed`, `quote_signature_invalid`, `quote_nonce_mismatch`,
    /// `pcr_digest_mismatch`.
    pub fn verify(&self, key: &RsaKey, nonce: &[u8]) -> Result<BTreeMap<u8, [u8; PCR_LEN]>, Error> {
        // The signature first: nothing in an unsigned message is worth parsing further.
        RsaPublicKeyComponents {
            n: key.n.as_slice(),
            e: key.e.as_slice(),
        }
        .verify(&RSA_PKCS1_2048_8192_SHA256, &self.message, &self.signature)
        .map_err(|_| {
            Error::refused(
                Reason::QuoteSignatureInvalid,
                "the quote is not signed by the attestation key",
            )
        })?;

        let (attest, rest) = TpmsAttest::unmarshal(&self.message)
            .map_err(|e| malformed(format!("TPMS_ATTEST: {e:?}")))?;
        if !rest.is_empty() {
            return Err(malformed(format!(
                "{} bytes after the TPMS_ATTEST",
                rest.len()
            )));
        }
        if attest.attest_type != TpmSt::AttestQuote {
            return Err(malformed(format!(
                "attestation type {:?} is not a quote",
                attest.attest_type
            )));
        }
        let TpmuAttest::Quote(info) = &attest.attested else {
            return Err(malformed("attested information is not a quote"));
        };
        if !bool::from(attest.extra_data.ct_eq(nonce)) {
            return Err(Error::refused(
                Reason::QuoteNonceMismatch,
                "the quote's extraData is not this challenge's nonce",
            ));
        }

        let mut selected = BTreeMap::new();
        let mut digest = Sha256::new();
        for selection in info.pcr_select.iter() {
            if selection.hash != TpmAlgId::Sha256 {
                return Err(malformed(format!(
                    "PCR bank {:?} is not SHA-256",
                    selection.hash
                )));
            }
            for (byte, bits) in selection.pcr_select.iter().enumerate() {
                for bit in 0..8 {
                    if bits & (1 << bit) == 0 {
                        continue;
                    }
                    let index = byte * 8 + bit;
                    let value = self.pcrs.get(index).ok_or_else(|| {
                        malformed(format!("the quote selects PCR {index}, which is not given"))
                    })?;
                    digest.update(value);
                    // `index` < 8 * TPM_PCR_SELECT_MAX, far below 256.
                    selected.insert(u8::try_from(index).unwrap_or(u8::MAX), *value);
                }
            }
        }
        if selected.is_empty() {
            return Err(malformed("the quote selects no PCR"));
        }
        let computed: [u8; 32] = digest.finalize().into();
        if !bool::from(computed.as_slice().ct_eq(&info.pcr_digest)) {
            return Err(Error::refused(
                Reason::PcrDigestMismatch,
                "the PCR values given do not hash to the quote's pcrDigest",
            ));
        }
        Ok(selected)
    }
}
