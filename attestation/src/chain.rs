//! The certificate chain ARK → ASK/ASVK → VCEK/VLEK: root pinning, signatures, validity
//! periods, and a bounded cache of chain results.
//!
//! `sev`'s `Chain::verify` only checks that the ARK signs itself; it never compares the ARK
//! with AMD's. Pinning happens here: a presented ARK must be byte-for-byte one of the
//! [`TrustAnchors`], and an absent one is looked up among them by the ASK's issuer name.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use sev::certs::snp::{Certificate as SevCert, Verifiable};
use sha2::{Digest, Sha256};

use crate::cert::{self, Cert, Role, VekExtensions};
use crate::error::{Error, Reason};
use crate::evidence::CertBundle;
use crate::report::Generation;

/// A pinned root: an ARK, with its generation when it is one of AMD's.
#[derive(Clone, Debug)]
struct Root {
    cert: Cert,
    /// `None` for extra (simulated) roots: their generation comes from the report.
    generation: Option<Generation>,
}

/// The roots a verifier trusts, plus AMD's published ASKs as a fallback when evidence omits
/// the ASK. Built once per [`crate::Verifier`].
#[derive(Clone, Debug)]
pub(crate) struct TrustAnchors {
    roots: Vec<Root>,
    builtin_asks: Vec<Cert>,
}

fn builtin(pem: &[u8]) -> Result<Cert, Error> {
    let mut certs = cert::decode_certs(pem)
        .map_err(|e| Error::InvalidTrustAnchor(format!("built-in AMD certificate: {e}")))?;
    certs
        .pop()
        .ok_or_else(|| Error::InvalidTrustAnchor("empty built-in AMD certificate".into()))
}

impl TrustAnchors {
    /// AMD's Milan, Genoa and Turin ARKs (as shipped in `sev`), plus `extra_roots` (each PEM
    /// with one or more certificates, or DER). Extra roots must be self-signed RSA certificates.
    pub(crate) fn new(extra_roots: &[&[u8]]) -> Result<Self, Error> {
        use sev::certs::snp::builtin::{genoa, milan, turin};
        let mut roots = vec![
            Root {
                cert: builtin(milan::ARK)?,
                generation: Some(Generation::Milan),
            },
            Root {
                cert: builtin(genoa::ARK)?,
                generation: Some(Generation::Genoa),
            },
            Root {
                cert: builtin(turin::ARK)?,
                generation: Some(Generation::Turin),
            },
        ];
        let builtin_asks = vec![
            builtin(milan::ASK)?,
            builtin(genoa::ASK)?,
            builtin(turin::ASK)?,
        ];
        for input in extra_roots {
            let certs = cert::decode_certs(input)
                .map_err(|e| Error::InvalidTrustAnchor(format!("extra root: {e}")))?;
            for cert in certs {
                let sev_cert = SevCert::from(cert.x509.clone());
                if !cert.is_rsa()
                    || !cert.is_self_issued()
                    || (&sev_cert, &sev_cert).verify().is_err()
                {
                    return Err(Error::InvalidTrustAnchor(format!(
                        "extra root `{}` is not a self-signed RSA-PSS certificate",
                        cert.label()
                    )));
                }
                if !roots.iter().any(|r| r.cert == cert) {
                    roots.push(Root {
                        cert,
                        generation: None,
                    });
                }
            }
        }
        Ok(TrustAnchors {
            roots,
            builtin_asks,
        })
    }
}

/// What a verified chain establishes, cached per chain.
#[derive(Clone, Debug)]
pub(crate) struct ChainFacts {
    pub(crate) root_generation: Option<Generation>,
    /// The VCEK/VLEK public key as a SEC1 P-384 point.
    pub(crate) vek_sec1: Vec<u8>,
    pub(crate) vek_extensions: VekExtensions,
    /// (role, subject CN, notBefore, notAfter) of VEK, ASK/ASVK and ARK, in that order.
    validity: Vec<(Role, String, SystemTime, SystemTime)>,
}

impl ChainFacts {
    /// Checks every certificate's validity period at `at`. Runs on every verification, also
    /// on a cache hit: only signatures are cached, never time.
    pub(crate) fn check_validity(&self, at: SystemTime) -> Result<(), Error> {
        for (role, cn, not_before, not_after) in &self.validity {
            if at < *not_before {
                return Err(Error::refused(
                    Reason::CertNotYetValid,
                    format!(
                        "{} `{cn}` is valid from {}",
                        role.name(),
                        rfc3339(*not_before)
                    ),
                ));
            }
            if at > *not_after {
                return Err(Error::refused(
                    Reason::CertExpired,
                    format!("{} `{cn}` expired at {}", role.name(), rfc3339(*not_after)),
                ));
            }
        }
        Ok(())
    }
}

fn rfc3339(t: SystemTime) -> String {
    der::DateTime::from_system_time(t)
        .map(|d| d.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Most chains a cache holds; past this an arbitrary entry is evicted. A few hundred chips
/// per deployment is typical, and an entry costs well under a kilobyte.
const CACHE_CAPACITY: usize = 1024;

/// Chain results per (ARK, ASK, VEK). A full chain check costs about 4 ms (RSA-4096 PSS twice),
/// the report signature a quarter of a millisecond: caching the former is what makes
/// attested release cheap. Failures are not cached.
#[derive(Debug, Default)]
pub(crate) struct ChainCache {
    map: Mutex<HashMap<[u8; 32], Arc<ChainFacts>>>,
}

impl ChainCache {
    fn get(&self, key: &[u8; 32]) -> Option<Arc<ChainFacts>> {
        // A poisoned lock only means another thread panicked mid-insert; the map is still a
        // valid map of verified facts.
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key).cloned()
    }

    fn insert(&self, key: [u8; 32], facts: Arc<ChainFacts>) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= CACHE_CAPACITY
            && !map.contains_key(&key)
            && let Some(victim) = map.keys().next().copied()
        {
            map.remove(&victim);
        }
        map.insert(key, facts);
    }

    pub(crate) fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// The cache key: SHA-256 over the length-prefixed DER of the ARK used, the ASK/ASVK and the
/// VEK. The ARK is part of the key so that a cache hit and a miss give the same answer for
/// evidence that presents a different (pinned) ARK.
fn cache_key(ark: &Cert, ask: &Cert, vek: &Cert) -> [u8; 32] {
    let mut h = Sha256::new();
    for c in [ark, ask, vek] {
        h.update((c.der.len() as u64).to_be_bytes());
        h.update(&c.der);
    }
    h.finalize().into()
}

fn signs(signer: &Cert, signee: &Cert) -> bool {
    let signer = SevCert::from(signer.x509.clone());
    let signee = SevCert::from(signee.x509.clone());
    (&signer, &signee).verify().is_ok()
}

/// Verifies the chain of `bundle` against `anchors` (signatures only; validity periods are
/// checked by the caller with [`ChainFacts::check_validity`]).
pub(crate) fn verify(
    anchors: &TrustAnchors,
    cache: &ChainCache,
    bundle: &CertBundle,
) -> Result<Arc<ChainFacts>, Error> {
    let (vek_role, vek) = (&bundle.vek.0, &bundle.vek.1);

    // The intermediate: a VCEK needs the ASK, a VLEK the ASVK. AMD's ASKs are public and
    // pinned through the ARK signature below, so an absent ASK may come from the built-ins.
    let ask = match vek_role {
        Role::Vlek => bundle.asvk.as_ref().ok_or_else(|| {
            Error::refused(Reason::CertMissing, "a VLEK needs its ASVK (SEV-VLEK-*)")
        })?,
        _ => match &bundle.ask {
            Some(ask) => ask,
            None => anchors
                .builtin_asks
                .iter()
                .find(|a| a.common_name() == vek.issuer_common_name())
                .ok_or_else(|| {
                    Error::refused(Reason::CertMissing, "no ASK for the VCEK's issuer")
                })?,
        },
    };

    // The root: a presented ARK must be one of the pinned roots, byte for byte.
    let candidates: Vec<&Root> = match &bundle.ark {
        Some(ark) => {
            let root = anchors
                .roots
                .iter()
                .find(|r| r.cert == *ark)
                .ok_or_else(|| {
                    Error::refused(
                        Reason::ArkNotTrusted,
                        format!("presented ARK `{}` is not a pinned root", ark.label()),
                    )
                })?;
            vec![root]
        }
        None => {
            let issuer = ask.x509.tbs_certificate.issuer.clone();
            let found: Vec<&Root> = anchors
                .roots
                .iter()
                .filter(|r| r.cert.x509.tbs_certificate.subject == issuer)
                .collect();
            if found.is_empty() {
                return Err(Error::refused(
                    Reason::ArkNotTrusted,
                    format!(
                        "no pinned root named `{}`",
                        ask.issuer_common_name().unwrap_or_default()
                    ),
                ));
            }
            found
        }
    };

    let mut root = None;
    for candidate in candidates {
        let key = cache_key(&candidate.cert, ask, vek);
        if let Some(facts) = cache.get(&key) {
            return Ok(facts);
        }
        if signs(&candidate.cert, ask) {
            root = Some((candidate, key));
            break;
        }
    }
    let Some((root, key)) = root else {
        return Err(Error::refused(
            Reason::AskNotSignedByArk,
            format!("`{}` is not signed by the pinned ARK", ask.label()),
        ));
    };
    if !signs(ask, vek) {
        return Err(Error::refused(
            Reason::VekNotSignedByAsk,
            format!("{} is not signed by `{}`", vek_role.name(), ask.label()),
        ));
    }

    let vek_sec1 = vek.public_key_bits().to_vec();
    if p384::PublicKey::from_sec1_bytes(&vek_sec1).is_err() {
        return Err(Error::refused(
            Reason::CertMalformed,
            format!("{} key is not a P-384 point", vek_role.name()),
        ));
    }
    let vek_extensions = vek.vek_extensions()?;
    if *vek_role == Role::Vcek && vek_extensions.hw_id.is_none() {
        return Err(Error::refused(
            Reason::CertExtensionInvalid,
            "VCEK has no hwID extension",
        ));
    }
    let ask_role = if *vek_role == Role::Vlek {
        Role::Asvk
    } else {
        Role::Ask
    };
    let validity = [(*vek_role, vek), (ask_role, ask), (Role::Ark, &root.cert)]
        .into_iter()
        .map(|(role, c)| {
            let (nb, na) = c.validity();
            (role, c.label(), nb, na)
        })
        .collect();
    let facts = Arc::new(ChainFacts {
        root_generation: root.generation,
        vek_sec1,
        vek_extensions,
        validity,
    });
    cache.insert(key, Arc::clone(&facts));
    Ok(facts)
}
