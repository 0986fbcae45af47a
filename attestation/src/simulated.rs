//! A simulated AMD: an ARK/ASK/VCEK chain with AMD's algorithms and a report signer, for
//! tests and the demo.
//!
//! The chain is built like AMD's: RSA-4096 ARK and ASK keys (plain `rsaEncryption`), ASK and
//! VCEK certificates signed with RSASSA-PSS/SHA-384 (MGF1-SHA-384, salt 48), a P-384 VCEK with
//! AMD's extensions (TCB SPLs as DER INTEGERs, product name as IA5String, hwID as the raw chip
//! id). Reports are signed with ECDSA P-384/SHA-384 over bytes 0..0x2A0, r and s little-endian.
//!
//! Its reports verify only when its ARK is configured as an extra root
//! ([`crate::Verifier::with_extra_roots`] with [`SimulatedAmd::ark_pem`]); the production
//! verifier refuses them with `ark_not_trusted`. The dev profile alone may configure it.
//!
//! [`SimulatedVtpm`] adds what an Azure confidential VM's paravisor and vTPM produce.

mod azure;

pub use azure::SimulatedVtpm;

use std::str::FromStr;
use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use der::asn1::{BitString, Ia5StringRef, ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use p384::ecdsa::signature::Signer as _;
use rand_core::OsRng;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sev::firmware::guest::{AttestationReport, GuestPolicy, KeyInfo, PlatformInfo};
use sev::firmware::host::TcbVersion;
use sev::parser::ByteParser;
use sha2::Sha384;
use spki::{DynSignatureAlgorithmIdentifier, SubjectPublicKeyInfoOwned};
use x509_cert::certificate::{Certificate, TbsCertificate, Version};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use zeroize::Zeroizing;

use crate::cert::{
    self, OID_BL_SPL, OID_FMC_SPL, OID_HW_ID, OID_PRODUCT_NAME, OID_SNP_SPL, OID_TEE_SPL,
    OID_UCODE_SPL,
};
use crate::claims::Tcb;
use crate::error::Error;
use crate::evidence::{Evidence, ReportFormat};
use crate::report::{Generation, SIGNED_LEN};

const ARK_NAME: &str = "CN=ARK-Simulated,O=Keyferry simulated AMD,C=US";
const ASK_NAME: &str = "CN=SEV-Simulated,O=Keyferry simulated AMD,C=US";
const VCEK_NAME: &str = "CN=SEV-VCEK,O=Keyferry simulated AMD,C=US";
/// AMD's VCEK "structure version" extension (`1.3.6.1.4.1.3704.1.1`).
const OID_STRUCT_VERSION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.1");
const RSA_BITS: usize = 4096;
/// Fixed validity: 2024-01-01 to 2049-12-31 (UTCTime ends in 2049), so simulated evidence is
/// valid today and in every test, like AMD's long-lived roots.
const NOT_BEFORE_UNIX: u64 = 1_704_067_200;
const NOT_AFTER_UNIX: u64 = 2_524_607_999;

fn sim_err(context: &str, e: impl std::fmt::Display) -> Error {
    Error::Simulated(format!("{context}: {e}"))
}

/// A simulated AMD certificate authority: ARK and ASK with their private keys.
pub struct SimulatedAmd {
    ark_key: RsaPrivateKey,
    ask_key: RsaPrivateKey,
    ark: Certificate,
    ask: Certificate,
}

impl std::fmt::Debug for SimulatedAmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private keys.
        f.debug_struct("SimulatedAmd").finish_non_exhaustive()
    }
}

impl SimulatedAmd {
    /// Generates a new ARK and ASK. Slow: two RSA-4096 keys take seconds (a minute in an
    /// unoptimised build); tests use [`SimulatedAmd::shared`], a demo persists one with
    /// [`SimulatedAmd::to_pem`].
    pub fn generate() -> Result<Self, Error> {
        let ark_key =
            RsaPrivateKey::new(&mut OsRng, RSA_BITS).map_err(|e| sim_err("ARK key", e))?;
        let ask_key =
            RsaPrivateKey::new(&mut OsRng, RSA_BITS).map_err(|e| sim_err("ASK key", e))?;
        let ark_name = name(ARK_NAME)?;
        let ask_name = name(ASK_NAME)?;
        let ca_exts = ca_extensions()?;
        let ark = sign_cert(
            1,
            ark_name.clone(),
            ark_name.clone(),
            rsa_spki(&ark_key.to_public_key())?,
            ca_exts.clone(),
            &ark_key,
        )?;
        let ask = sign_cert(
            2,
            ask_name,
            ark_name,
            rsa_spki(&ask_key.to_public_key())?,
            ca_exts,
            &ark_key,
        )?;
        Ok(SimulatedAmd {
            ark_key,
            ask_key,
            ark,
            ask,
        })
    }

    /// One simulated CA per process, generated on first use: RSA-4096 generation is too slow
    /// to repeat per test.
    pub fn shared() -> Result<&'static SimulatedAmd, Error> {
        static SHARED: OnceLock<Result<SimulatedAmd, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| SimulatedAmd::generate().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| Error::Simulated(e.clone()))
    }

    /// The ARK certificate as PEM: what goes into `attestation.extra_roots`.
    pub fn ark_pem(&self) -> String {
        cert_pem(&self.ark)
    }

    /// The ASK certificate as PEM.
    pub fn ask_pem(&self) -> String {
        cert_pem(&self.ask)
    }

    /// The whole CA as PEM (ARK and ASK certificates, then their PKCS#8 private keys), to
    /// keep a dev broker's simulated AMD on disk. Holds private keys: write it with mode 0600.
    pub fn to_pem(&self) -> Result<Zeroizing<String>, Error> {
        let mut out = Zeroizing::new(String::new());
        out.push_str(&self.ark_pem());
        out.push_str(&self.ask_pem());
        for (what, key) in [("ARK", &self.ark_key), ("ASK", &self.ask_key)] {
            let pem = key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| sim_err(&format!("{what} key to PEM"), e))?;
            out.push_str(&pem);
        }
        Ok(out)
    }

    /// Loads a CA written by [`SimulatedAmd::to_pem`], checking that each key matches its
    /// certificate.
    pub fn from_pem(pem: &str) -> Result<Self, Error> {
        let blocks = cert::pem_blocks(pem.as_bytes()).map_err(|e| sim_err("PEM", e))?;
        let mut certs = Vec::new();
        let mut keys = Vec::new();
        for (label, der) in blocks {
            let der = Zeroizing::new(der);
            match label.as_str() {
                "CERTIFICATE" => {
                    certs.push(Certificate::from_der(&der).map_err(|e| sim_err("certificate", e))?)
                }
                "PRIVATE KEY" => keys.push(
                    RsaPrivateKey::from_pkcs8_der(&der).map_err(|e| sim_err("private key", e))?,
                ),
                other => return Err(Error::Simulated(format!("unexpected PEM block `{other}`"))),
            }
        }
        let (Ok([ark, ask]), Ok([ark_key, ask_key])) = (
            <[Certificate; 2]>::try_from(certs),
            <[RsaPrivateKey; 2]>::try_from(keys),
        ) else {
            return Err(Error::Simulated(
                "expected two certificates (ARK, ASK) and two private keys".into(),
            ));
        };
        for (what, cert, key) in [("ARK", &ark, &ark_key), ("ASK", &ask, &ask_key)] {
            if rsa_spki(&key.to_public_key())? != cert.tbs_certificate.subject_public_key_info {
                return Err(Error::Simulated(format!(
                    "{what} key does not match its certificate"
                )));
            }
        }
        Ok(SimulatedAmd {
            ark_key,
            ask_key,
            ark,
            ask,
        })
    }

    /// Issues a VCEK for a simulated chip. Cheap (a P-384 key and one RSA signature).
    pub fn chip(&self, spec: ChipSpec) -> Result<SimulatedChip, Error> {
        let key = p384::ecdsa::SigningKey::random(&mut OsRng);
        let spki_der = p384::PublicKey::from(key.verifying_key())
            .to_public_key_der()
            .map_err(|e| sim_err("VCEK public key", e))?;
        let spki = SubjectPublicKeyInfoOwned::from_der(spki_der.as_bytes())
            .map_err(|e| sim_err("VCEK public key", e))?;
        let vcek = sign_cert(
            3,
            name(VCEK_NAME)?,
            self.ask.tbs_certificate.subject.clone(),
            spki,
            vcek_extensions(&spec)?,
            &self.ask_key,
        )?;
        Ok(SimulatedChip {
            key,
            vcek,
            ask_pem: self.ask_pem(),
            ark_pem: self.ark_pem(),
            spec,
        })
    }
}

/// What a simulated chip is: its generation, chip id and the TCB its VCEK certifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChipSpec {
    /// Processor generation: decides CPUID fields, the TCB layout and the hwID length.
    pub generation: Generation,
    /// The chip id (on Turin only the first 8 bytes are the hwID; the rest must be zero).
    pub chip_id: [u8; 64],
    /// The TCB the VCEK is issued for (`fmc` is used on Turin only).
    pub tcb: Tcb,
}

impl ChipSpec {
    /// A Milan chip with a fixed, recognisable chip id and TCB bl=3 tee=0 snp=8 ucode=115.
    pub fn milan() -> Self {
        ChipSpec {
            generation: Generation::Milan,
            chip_id: [0x5a; 64],
            tcb: Tcb {
                bootloader: 3,
                tee: 0,
                snp: 8,
                microcode: 115,
                fmc: None,
            },
        }
    }
}

/// A simulated chip: its VCEK (with key) and the CA chain above it.
pub struct SimulatedChip {
    key: p384::ecdsa::SigningKey,
    vcek: Certificate,
    ask_pem: String,
    ark_pem: String,
    spec: ChipSpec,
}

impl std::fmt::Debug for SimulatedChip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedChip")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

/// Every report field a test may want to set. Start from [`SimulatedChip::report_fields`],
/// which fills in what the chip is, then change what the test is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportFields {
    /// Report version (2, 3 or 5 verify; anything else tests refusal).
    pub version: u32,
    /// Guest SVN.
    pub guest_svn: u32,
    /// Guest policy bits (bit 16 SMT, 18 migration agent, 19 debug; bit 17 is always set).
    pub policy: u64,
    /// Family id.
    pub family_id: [u8; 16],
    /// Image id.
    pub image_id: [u8; 16],
    /// VMPL.
    pub vmpl: u32,
    /// Signature algorithm (1 = ECDSA P-384/SHA-384).
    pub sig_algo: u32,
    /// Platform info bits (bit 0 SMT enabled).
    pub platform_info: u64,
    /// KEY_INFO signing-key field (0 = VCEK, 1 = VLEK).
    pub signing_key: u32,
    /// Report data.
    pub report_data: [u8; 64],
    /// Launch measurement.
    pub measurement: [u8; 48],
    /// Host data.
    pub host_data: [u8; 32],
    /// ID key digest.
    pub id_key_digest: [u8; 48],
    /// Reported TCB (defaults to the VCEK's; change it to test `tcb_mismatch`).
    pub reported_tcb: Tcb,
    /// Current, committed and launch TCB.
    pub current_tcb: Tcb,
    /// Committed TCB.
    pub committed_tcb: Tcb,
    /// Launch TCB.
    pub launch_tcb: Tcb,
    /// CPUID family, model, stepping (written for v3+).
    pub cpuid: (u8, u8, u8),
    /// Chip id (defaults to the chip's; zero it to test a masked chip id).
    pub chip_id: [u8; 64],
}

impl SimulatedChip {
    /// The chip's VCEK as PEM.
    pub fn vcek_pem(&self) -> String {
        cert_pem(&self.vcek)
    }

    /// VCEK, ASK and ARK as PEM, in that order: the `certs` of [`Evidence::from_parts`].
    pub fn cert_pems(&self) -> Vec<Vec<u8>> {
        vec![
            self.vcek_pem().into_bytes(),
            self.ask_pem.clone().into_bytes(),
            self.ark_pem.clone().into_bytes(),
        ]
    }

    /// Report fields describing this chip honestly: version 3, its CPUID, chip id and TCB,
    /// guest policy with SMT allowed and nothing else, VMPL 0, zero measurement and data.
    pub fn report_fields(&self) -> ReportFields {
        let cpuid = match self.spec.generation {
            Generation::Milan => (0x19, 0x01, 0x01),
            Generation::Genoa => (0x19, 0x11, 0x01),
            Generation::Turin => (0x1A, 0x02, 0x00),
        };
        let tcb = self.spec.tcb;
        ReportFields {
            version: 3,
            guest_svn: 0,
            policy: 0x3_0000,
            family_id: [0; 16],
            image_id: [0; 16],
            vmpl: 0,
            sig_algo: 1,
            platform_info: 0x3,
            signing_key: 0,
            report_data: [0; 64],
            measurement: [0; 48],
            host_data: [0; 32],
            id_key_digest: [0; 48],
            reported_tcb: tcb,
            current_tcb: tcb,
            committed_tcb: tcb,
            launch_tcb: tcb,
            cpuid,
            chip_id: self.spec.chip_id,
        }
    }

    /// Builds and signs a 1184-byte report with `fields`. Reserved bytes stay zero, as `sev`
    /// requires.
    pub fn sign_report(&self, fields: &ReportFields) -> Result<Vec<u8>, Error> {
        let tcb = |t: Tcb| {
            let mut v = TcbVersion::from(t);
            if self.spec.generation == Generation::Turin {
                v.fmc = Some(t.fmc.unwrap_or(0));
            }
            v
        };
        let v3 = fields.version >= 3;
        let v5 = fields.version >= 5;
        let mut report = AttestationReport {
            version: fields.version,
            guest_svn: fields.guest_svn,
            policy: GuestPolicy::from(fields.policy),
            family_id: fields.family_id,
            image_id: fields.image_id,
            vmpl: fields.vmpl,
            sig_algo: fields.sig_algo,
            current_tcb: tcb(fields.current_tcb),
            plat_info: PlatformInfo::from(fields.platform_info),
            key_info: KeyInfo::from(fields.signing_key << 2),
            report_data: fields.report_data,
            measurement: fields.measurement,
            host_data: fields.host_data,
            id_key_digest: fields.id_key_digest,
            reported_tcb: tcb(fields.reported_tcb),
            cpuid_fam_id: v3.then_some(fields.cpuid.0),
            cpuid_mod_id: v3.then_some(fields.cpuid.1),
            cpuid_step: v3.then_some(fields.cpuid.2),
            chip_id: fields.chip_id,
            committed_tcb: tcb(fields.committed_tcb),
            launch_tcb: tcb(fields.launch_tcb),
            launch_mit_vector: v5.then_some(0),
            current_mit_vector: v5.then_some(0),
            report_id_ma: [0xff; 32],
            ..Default::default()
        };
        let unsigned = report.to_bytes().map_err(|e| sim_err("report", e))?;
        let signature: p384::ecdsa::Signature = self.key.sign(&unsigned[..SIGNED_LEN]);
        let (r, s) = signature.split_bytes();
        let le72 = |be: &[u8]| {
            let mut out = [0u8; 72];
            for (i, b) in be.iter().rev().enumerate() {
                out[i] = *b;
            }
            out
        };
        report.signature = sev::certs::snp::ecdsa::Signature::new(le72(&r), le72(&s));
        let signed = report.to_bytes().map_err(|e| sim_err("report", e))?;
        Ok(signed.to_vec())
    }

    /// Signs a report and wraps it with this chip's VCEK, ASK and ARK.
    pub fn evidence(&self, fields: &ReportFields) -> Result<Evidence, Error> {
        let report = self.sign_report(fields)?;
        Evidence::from_parts(&report, ReportFormat::Raw, self.cert_pems())
    }
}

fn name(text: &str) -> Result<Name, Error> {
    Name::from_str(text).map_err(|e| sim_err("name", e))
}

fn cert_pem(cert: &Certificate) -> String {
    // Encoding a certificate we built cannot fail; an empty string would fail loudly later.
    cert.to_der()
        .ok()
        .and_then(|der| cert::to_pem("CERTIFICATE", &der).ok())
        .unwrap_or_default()
}

fn rsa_spki(key: &RsaPublicKey) -> Result<SubjectPublicKeyInfoOwned, Error> {
    let der = key
        .to_public_key_der()
        .map_err(|e| sim_err("RSA public key", e))?;
    SubjectPublicKeyInfoOwned::from_der(der.as_bytes()).map_err(|e| sim_err("RSA public key", e))
}

fn extension(oid: ObjectIdentifier, critical: bool, value: Vec<u8>) -> Result<Extension, Error> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value).map_err(|e| sim_err("extension", e))?,
    })
}

fn encode(value: &impl Encode) -> Result<Vec<u8>, Error> {
    value.to_der().map_err(|e| sim_err("DER", e))
}

fn ca_extensions() -> Result<Vec<Extension>, Error> {
    use der::oid::AssociatedOid;
    Ok(vec![
        extension(
            KeyUsage::OID,
            true,
            encode(&KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign))?,
        )?,
        extension(
            BasicConstraints::OID,
            true,
            encode(&BasicConstraints {
                ca: true,
                path_len_constraint: None,
            })?,
        )?,
    ])
}

fn vcek_extensions(spec: &ChipSpec) -> Result<Vec<Extension>, Error> {
    let product = match spec.generation {
        Generation::Milan => "Milan-B0",
        Generation::Genoa => "Genoa-B1",
        Generation::Turin => "Turin",
    };
    let turin = spec.generation == Generation::Turin;
    let hw_id = if turin {
        spec.chip_id[..8].to_vec()
    } else {
        spec.chip_id.to_vec()
    };
    let product = Ia5StringRef::new(product).map_err(|e| sim_err("product name", e))?;
    let mut exts = vec![
        extension(OID_STRUCT_VERSION, false, encode(&0u8)?)?,
        extension(OID_PRODUCT_NAME, false, encode(&product)?)?,
        extension(OID_BL_SPL, false, encode(&spec.tcb.bootloader)?)?,
        extension(OID_TEE_SPL, false, encode(&spec.tcb.tee)?)?,
        extension(OID_SNP_SPL, false, encode(&spec.tcb.snp)?)?,
        extension(OID_UCODE_SPL, false, encode(&spec.tcb.microcode)?)?,
    ];
    if turin {
        exts.push(extension(
            OID_FMC_SPL,
            false,
            encode(&spec.tcb.fmc.unwrap_or(0))?,
        )?);
    }
    exts.push(extension(OID_HW_ID, false, hw_id)?);
    Ok(exts)
}

/// Builds a certificate and signs it with RSASSA-PSS/SHA-384 (salt 48), as AMD does.
fn sign_cert(
    serial: u32,
    subject: Name,
    issuer: Name,
    spki: SubjectPublicKeyInfoOwned,
    extensions: Vec<Extension>,
    signer: &RsaPrivateKey,
) -> Result<Certificate, Error> {
    let signing_key = rsa::pss::BlindedSigningKey::<Sha384>::new(signer.clone());
    let algorithm = signing_key
        .signature_algorithm_identifier()
        .map_err(|e| sim_err("PSS algorithm identifier", e))?;
    let time = |unix: u64| {
        Time::try_from(UNIX_EPOCH + Duration::from_secs(unix)).map_err(|e| sim_err("time", e))
    };
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::from(serial),
        signature: algorithm.clone(),
        issuer,
        validity: Validity {
            not_before: time(NOT_BEFORE_UNIX)?,
            not_after: time(NOT_AFTER_UNIX)?,
        },
        subject,
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    let message = encode(&tbs)?;
    let signature = signing_key.sign_with_rng(&mut OsRng, &message);
    Ok(Certificate {
        tbs_certificate: tbs,
        signature_algorithm: algorithm,
        signature: BitString::from_bytes(&signature.to_bytes())
            .map_err(|e| sim_err("signature", e))?,
    })
}
