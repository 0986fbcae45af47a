//! Shared test helpers: the public SNP vectors in `shared/vectors/snp` (read in place, never
//! copied into the crate) and small builders.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use attestation::{Error, Evidence, Reason, ReportFormat};
use serde::Deserialize;

/// Where the vectors live, relative to this crate (here and once moved to /work/main).
pub const VECTORS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors/snp");

#[derive(Debug, Deserialize, Clone)]
pub struct Vector {
    pub name: String,
    pub report: String,
    pub format: String,
    pub certs: Vec<String>,
    pub generation: String,
    pub expect: String,
    pub verify_at: String,
    pub signing_key: Option<String>,
}

#[derive(Debug, Deserialize, Clone)]
pub struct Truth {
    pub error: Option<String>,
    pub measurement: String,
    pub report_data: String,
    pub host_data: String,
    pub chip_id: String,
    pub version: u32,
    pub vmpl: u32,
    pub reported_tcb: String,
}

pub struct Vectors {
    pub dir: PathBuf,
    pub list: Vec<Vector>,
    pub truth: std::collections::HashMap<String, serde_json::Value>,
}

/// The vectors, or `None` (with a printed reason) when the directory is absent outside CI.
/// Under `CI=true` a missing directory fails the test: CI must never pass by skipping.
pub fn vectors() -> Option<Vectors> {
    let dir = PathBuf::from(VECTORS_DIR);
    if !dir.join("vectors.json").is_file() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "CI=true and the SNP vectors are missing at {}",
                dir.display()
            );
        }
        eprintln!(
            "skipping: SNP vectors not found at {} (set up shared/ beside the crate)",
            dir.display()
        );
        return None;
    }
    #[derive(Deserialize)]
    struct File {
        vectors: Vec<Vector>,
    }
    let file: File =
        serde_json::from_slice(&std::fs::read(dir.join("vectors.json")).unwrap()).unwrap();
    let truth = serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap();
    Some(Vectors {
        dir,
        list: file.vectors,
        truth,
    })
}

impl Vectors {
    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    pub fn report(&self, v: &Vector) -> Vec<u8> {
        self.read(&v.report)
    }

    pub fn certs(&self, v: &Vector) -> Vec<Vec<u8>> {
        v.certs.iter().map(|c| self.read(c)).collect()
    }

    pub fn format(v: &Vector) -> ReportFormat {
        match v.format.as_str() {
            "raw" => ReportFormat::Raw,
            "hex" => ReportFormat::Hex,
            "azure-hcl" => ReportFormat::AzureHcl,
            other => panic!("unknown format {other}"),
        }
    }

    pub fn evidence(&self, v: &Vector) -> Result<Evidence, Error> {
        Evidence::from_parts(&self.report(v), Self::format(v), self.certs(v))
    }

    /// The 1184 raw report bytes of a vector (decoding hex / HCL).
    pub fn raw_report(&self, v: &Vector) -> Vec<u8> {
        self.evidence(v).unwrap().report_bytes().to_vec()
    }

    pub fn genuine(&self) -> impl Iterator<Item = &Vector> {
        self.list.iter().filter(|v| v.expect == "verify")
    }

    pub fn by_name(&self, name: &str) -> &Vector {
        self.list.iter().find(|v| v.name == name).unwrap()
    }

    pub fn truth(&self, name: &str) -> Truth {
        serde_json::from_value(self.truth[name].clone()).unwrap()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SSZ`.
pub fn instant(rfc3339: &str) -> SystemTime {
    let n = |r: std::ops::Range<usize>| rfc3339[r].parse::<u16>().unwrap();
    der::DateTime::new(
        n(0..4),
        n(5..7) as u8,
        n(8..10) as u8,
        n(11..13) as u8,
        n(14..16) as u8,
        n(17..19) as u8,
    )
    .unwrap()
    .to_system_time()
}

pub const DAY: Duration = Duration::from_secs(86_400);

/// The first certificate of a vector's first cert file (the VEK), decoded.
pub fn first_cert(bytes: &[u8]) -> x509_cert::Certificate {
    use der::Decode;
    if bytes.starts_with(b"-----") || bytes.windows(10).any(|w| w == b"-----BEGIN") {
        let text = std::str::from_utf8(bytes).unwrap();
        let start = text.find("-----BEGIN CERTIFICATE-----").unwrap();
        let end = start + text[start..].find("-----END CERTIFICATE-----").unwrap() + 25;
        let (_, der) = der::pem::decode_vec(&text.as_bytes()[start..end]).unwrap();
        x509_cert::Certificate::from_der(&der).unwrap()
    } else {
        x509_cert::Certificate::from_der(bytes).unwrap()
    }
}

/// The refusal reason of a result, panicking with context when it verified instead.
pub fn reason<T: std::fmt::Debug>(result: Result<T, Error>, what: &str) -> Reason {
    match result {
        Ok(v) => panic!("{what}: expected a refusal, got {v:?}"),
        Err(e) => e
            .reason()
            .unwrap_or_else(|| panic!("{what}: expected a refusal, got error {e}")),
    }
}

pub fn builtin(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join("virtee-sev/builtin").join(name)).unwrap()
}
