//! AMD certificates: decoding (PEM or DER, several per PEM file), classification by role, and
//! the AMD-specific extensions of a VCEK/VLEK.
//!
//! Roles are read from the certificates themselves, never from the labels a caller put on
//! them: AMD names its certificates consistently (`ARK-Milan`, `SEV-Milan`, `SEV-VLEK-Milan`,
//! `SEV-VCEK`, `SEV-VLEK`), and a bundle file may hold ASK, ARK and ASVK in any order.

use std::time::SystemTime;

use der::{Decode, Encode, asn1::ObjectIdentifier};
use x509_cert::Certificate;

use crate::error::{Error, Reason};

/// The role a certificate plays in an SEV-SNP chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Role {
    /// AMD Root Key: self-signed RSA-4096 root, one per processor generation.
    Ark,
    /// AMD SEV Signing Key: signs VCEKs.
    Ask,
    /// AMD SEV VLEK Signing Key: signs VLEKs.
    Asvk,
    /// Versioned Chip Endorsement Key (per chip and TCB).
    Vcek,
    /// Versioned Loaded Endorsement Key (per cloud provider and TCB).
    Vlek,
}

impl Role {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Ark => "ARK",
            Role::Ask => "ASK",
            Role::Asvk => "ASVK",
            Role::Vcek => "VCEK",
            Role::Vlek => "VLEK",
        }
    }
}

/// A decoded certificate with its DER bytes (kept for equality checks and cache keys).
#[derive(Clone, Debug)]
pub(crate) struct Cert {
    pub(crate) der: Vec<u8>,
    pub(crate) x509: Certificate,
}

impl PartialEq for Cert {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Cert {
    pub(crate) fn from_der(der: &[u8]) -> Result<Self, Error> {
        let x509 = Certificate::from_der(der)
            .map_err(|e| Error::refused(Reason::CertMalformed, format!("invalid DER: {e}")))?;
        // Re-encode so that `der` is exactly what the signature checks and equality use.
        let der = x509
            .to_der()
            .map_err(|e| Error::refused(Reason::CertMalformed, format!("re-encoding: {e}")))?;
        Ok(Cert { der, x509 })
    }

    pub(crate) fn common_name(&self) -> Option<String> {
        common_name(&self.x509.tbs_certificate.subject)
    }

    pub(crate) fn issuer_common_name(&self) -> Option<String> {
        common_name(&self.x509.tbs_certificate.issuer)
    }

    /// A short label for messages: the subject CN, or `?`.
    pub(crate) fn label(&self) -> String {
        self.common_name().unwrap_or_else(|| "?".to_owned())
    }

    pub(crate) fn is_self_issued(&self) -> bool {
        self.x509.tbs_certificate.subject == self.x509.tbs_certificate.issuer
    }

    pub(crate) fn is_rsa(&self) -> bool {
        self.x509
            .tbs_certificate
            .subject_public_key_info
            .algorithm
            .oid
            == RSA_ENCRYPTION
    }

    pub(crate) fn is_ec(&self) -> bool {
        self.x509
            .tbs_certificate
            .subject_public_key_info
            .algorithm
            .oid
            == EC_PUBLIC_KEY
    }

    /// The subject public key bits: SEC1 point for EC keys, PKCS#1 for RSA keys.
    pub(crate) fn public_key_bits(&self) -> &[u8] {
        self.x509
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes()
    }

    pub(crate) fn validity(&self) -> (SystemTime, SystemTime) {
        let v = &self.x509.tbs_certificate.validity;
        (v.not_before.to_system_time(), v.not_after.to_system_time())
    }

    fn extension(&self, oid: ObjectIdentifier) -> Option<&[u8]> {
        self.x509
            .tbs_certificate
            .extensions
            .as_ref()?
            .iter()
            .find(|e| e.extn_id == oid)
            .map(|e| e.extn_value.as_bytes())
    }

    /// Decides the role from the subject CN as AMD writes it, cross-checked with the key type
    /// so that a leaf cannot pose as a CA by name alone.
    pub(crate) fn role(&self) -> Result<Role, Error> {
        let cn = self.common_name().unwrap_or_default();
        let role = if cn == "SEV-VCEK" {
            Role::Vcek
        } else if cn == "SEV-VLEK" {
            Role::Vlek
        } else if cn.starts_with("SEV-VLEK-") {
            Role::Asvk
        } else if cn.starts_with("ARK-") || (self.is_self_issued() && self.is_rsa()) {
            Role::Ark
        } else if cn.starts_with("SEV-") {
            Role::Ask
        } else {
            return Err(Error::refused(
                Reason::CertUnrecognized,
                format!("certificate `{cn}` is not an AMD SEV-SNP certificate"),
            ));
        };
        let key_ok = match role {
            Role::Vcek | Role::Vlek => self.is_ec(),
            Role::Ark | Role::Ask | Role::Asvk => self.is_rsa(),
        };
        if !key_ok {
            return Err(Error::refused(
                Reason::CertMalformed,
                format!("{} `{cn}` has the wrong key type", role.name()),
            ));
        }
        Ok(role)
    }

    /// Reads the AMD extensions of a VCEK/VLEK.
    pub(crate) fn vek_extensions(&self) -> Result<VekExtensions, Error> {
        let int = |oid: ObjectIdentifier, name: &str| -> Result<Option<u8>, Error> {
            self.extension(oid)
                .map(|v| decode_small_int(v).ok_or_else(|| bad_ext(self, name)))
                .transpose()
        };
        let required = |oid, name: &str| int(oid, name)?.ok_or_else(|| missing_ext(self, name));
        let tcb = CertTcb {
            bootloader: required(OID_BL_SPL, "blSPL")?,
            tee: required(OID_TEE_SPL, "teeSPL")?,
            snp: required(OID_SNP_SPL, "snpSPL")?,
            microcode: required(OID_UCODE_SPL, "ucodeSPL")?,
            fmc: int(OID_FMC_SPL, "fmcSPL")?,
        };
        let hw_id = self.extension(OID_HW_ID).map(decode_hw_id).transpose();
        let hw_id = hw_id.map_err(|()| bad_ext(self, "hwID"))?;
        Ok(VekExtensions { tcb, hw_id })
    }
}

fn bad_ext(cert: &Cert, name: &str) -> Error {
    Error::refused(
        Reason::CertExtensionInvalid,
        format!("{name} extension of `{}` is badly encoded", cert.label()),
    )
}

fn missing_ext(cert: &Cert, name: &str) -> Error {
    Error::refused(
        Reason::CertExtensionInvalid,
        format!("`{}` has no {name} extension", cert.label()),
    )
}

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");

// AMD's VCEK/VLEK extensions (VCEK specification 57230, chapter 3).
pub(crate) const OID_PRODUCT_NAME: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.2");
pub(crate) const OID_BL_SPL: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.1");
pub(crate) const OID_TEE_SPL: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.2");
pub(crate) const OID_SNP_SPL: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.3");
pub(crate) const OID_UCODE_SPL: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.8");
pub(crate) const OID_FMC_SPL: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.9");
pub(crate) const OID_HW_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.4");

/// The TCB levels a VCEK/VLEK was issued for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CertTcb {
    pub(crate) bootloader: u8,
    pub(crate) tee: u8,
    pub(crate) snp: u8,
    pub(crate) microcode: u8,
    pub(crate) fmc: Option<u8>,
}

/// AMD extensions of a VCEK/VLEK. `hw_id` is 64 bytes (8 on Turin) for a VCEK; VLEKs have none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct VekExtensions {
    pub(crate) tcb: CertTcb,
    pub(crate) hw_id: Option<Vec<u8>>,
}

/// Decodes an SPL value: a DER INTEGER in 0..=255 (`020108`, or `020200D9` for 217).
fn decode_small_int(value: &[u8]) -> Option<u8> {
    let int = der::asn1::Int::from_der(value).ok()?;
    match int.as_bytes() {
        [b] if *b < 0x80 => Some(*b),
        [0, b] if *b >= 0x80 => Some(*b),
        _ => None,
    }
}

/// AMD writes hwID as the raw chip id (64 bytes, 8 on Turin); some issuers wrap it in a DER
/// OCTET STRING. The lengths tell the two apart without ambiguity.
fn decode_hw_id(value: &[u8]) -> Result<Vec<u8>, ()> {
    match value {
        v if v.len() == 64 || v.len() == 8 => Ok(v.to_vec()),
        [0x04, n, rest @ ..] if usize::from(*n) == rest.len() && (*n == 64 || *n == 8) => {
            Ok(rest.to_vec())
        }
        _ => Err(()),
    }
}

fn common_name(name: &x509_cert::name::Name) -> Option<String> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == OID_CN)
        .and_then(|atv| {
            // AMD uses UTF8String; accept the other directory string types too.
            der::asn1::Utf8StringRef::try_from(&atv.value)
                .map(|s| s.as_str().to_owned())
                .or_else(|_| {
                    der::asn1::PrintableStringRef::try_from(&atv.value)
                        .map(|s| s.as_str().to_owned())
                })
                .or_else(|_| {
                    der::asn1::Ia5StringRef::try_from(&atv.value).map(|s| s.as_str().to_owned())
                })
                .ok()
        })
}

/// Splits an input that is either DER (one certificate) or PEM (one or more `CERTIFICATE`
/// blocks, with any text between them) into certificates.
pub(crate) fn decode_certs(input: &[u8]) -> Result<Vec<Cert>, Error> {
    let trimmed = input.trim_ascii_start();
    if trimmed.is_empty() {
        return Err(Error::refused(
            Reason::CertMalformed,
            "empty certificate input",
        ));
    }
    if !input.windows(10).any(|w| w == b"-----BEGIN") {
        return Ok(vec![Cert::from_der(input)?]);
    }
    let blocks = pem_blocks(input)?;
    let mut certs = Vec::with_capacity(blocks.len());
    for (label, der) in blocks {
        if label != "CERTIFICATE" {
            return Err(Error::refused(
                Reason::CertMalformed,
                format!("unexpected PEM block `{label}`"),
            ));
        }
        certs.push(Cert::from_der(&der)?);
    }
    Ok(certs)
}

/// Finds every `-----BEGIN X-----` … `-----END X-----` block and decodes it. Text outside the
/// blocks (comments such as `# ARK-Milan`) is ignored.
///
/// Parsing is RFC 7468's lax form (§3, through the `pem` crate): base64 lines of any length,
/// CRLF or LF. Many encoders wrap at 76 characters (MIME), and a genuine VCEK written so was
/// refused by the strict parser; the DER inside is what is checked, byte for byte.
pub(crate) fn pem_blocks(input: &[u8]) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let malformed = |m: String| Error::refused(Reason::CertMalformed, m);
    std::str::from_utf8(input).map_err(|_| malformed("PEM is not UTF-8".into()))?;
    let blocks = pem::parse_many(input).map_err(|e| malformed(format!("PEM: {e}")))?;
    if blocks.is_empty() {
        return Err(malformed("no PEM block found".into()));
    }
    Ok(blocks
        .into_iter()
        .map(|block| (block.tag().to_owned(), block.into_contents()))
        .collect())
}

/// Encodes DER as a PEM block with the given label.
pub(crate) fn to_pem(label: &str, der: &[u8]) -> Result<String, der::pem::Error> {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn spl_values_decode_as_amd_writes_them() {
        assert_eq!(decode_small_int(&[0x02, 0x01, 0x08]), Some(8));
        assert_eq!(decode_small_int(&[0x02, 0x02, 0x00, 0xD9]), Some(217));
        assert_eq!(decode_small_int(&[0x02, 0x01, 0xD9]), None, "negative");
        assert_eq!(
            decode_small_int(&[0x02, 0x02, 0x01, 0x00]),
            None,
            "above 255"
        );
        assert_eq!(
            decode_small_int(&[0x04, 0x01, 0x08]),
            None,
            "not an INTEGER"
        );
        assert_eq!(decode_small_int(&[]), None);
    }

    #[test]
    fn hw_id_decodes_raw_or_wrapped_and_nothing_else() {
        let id = [7u8; 64];
        assert_eq!(decode_hw_id(&id).unwrap(), id.to_vec());
        let mut wrapped = vec![0x04, 0x40];
        wrapped.extend_from_slice(&id);
        assert_eq!(decode_hw_id(&wrapped).unwrap(), id.to_vec());
        assert_eq!(decode_hw_id(&[1u8; 8]).unwrap(), vec![1u8; 8], "Turin");
        assert!(decode_hw_id(&[1u8; 63]).is_err());
        assert!(decode_hw_id(&[0x04, 0x40, 1, 2]).is_err());
    }

    #[test]
    fn pem_blocks_skip_comments_between_blocks() {
        let der = [0x30, 0x00];
        let block = to_pem("CERTIFICATE", &der).unwrap();
        let text = format!("# ARK-Milan\n{block}\n# SEV-Milan\n{block}");
        let blocks = pem_blocks(text.as_bytes()).unwrap();
        assert_eq!(blocks.len(), 2);
        assert!(blocks.iter().all(|(l, d)| l == "CERTIFICATE" && d == &der));
        assert!(pem_blocks(b"no pem here").is_err());
    }

    #[test]
    fn pem_lines_of_any_length_and_crlf_are_accepted() {
        let der: Vec<u8> = (0..=255u8).cycle().take(1200).collect();
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &der);
        for (width, eol) in [(76, "\n"), (76, "\r\n"), (64, "\r\n"), (1200 * 2, "\n")] {
            let lines: Vec<&str> = b64
                .as_bytes()
                .chunks(width)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect();
            let text = format!(
                "-----BEGIN CERTIFICATE-----{eol}{}{eol}-----END CERTIFICATE-----{eol}",
                lines.join(eol)
            );
            let blocks = pem_blocks(text.as_bytes()).unwrap();
            assert_eq!(
                blocks,
                vec![("CERTIFICATE".to_owned(), der.clone())],
                "{width}"
            );
        }
        // Still refused: a body that is not base64, or a block without its end.
        assert!(
            pem_blocks(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n").is_err()
        );
        assert!(pem_blocks(b"-----BEGIN CERTIFICATE-----\nMAA=\n").is_err());
    }
}
