//! `keyferry attest verify`: checks evidence offline, the way the broker
//! does at release, and prints the attested claims as JSON (exit 0) or the
//! refusal reason (exit 1). Two inputs: a report file with certificates
//! (`--report`, SNP only), or an `evidence` object as the release endpoint
//! takes it, of any type (`--evidence`; trustee's `az-snp-vtpm` evidence
//! JSON is read too).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use attestation::{
    AzureVtpmEvidence, Evidence, EvidenceWire, PlatformEvidence, ReleaseBinding, ReleasePolicy,
    ReportDataCheck, ReportFormat, Verifier,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use clap::{Args, Subcommand, ValueEnum};

/// `keyferry attest`.
#[derive(Debug, Args)]
pub(crate) struct AttestArgs {
    #[command(subcommand)]
    command: AttestCommand,
}

#[derive(Debug, Subcommand)]
enum AttestCommand {
    /// Verify a report and its certificates (and a release policy).
    Verify(VerifyArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// Raw 1184 bytes, hex text or an Azure HCL report, by content.
    Auto,
    /// The 1184 raw bytes.
    Raw,
    /// Hex text.
    Hex,
    /// An Azure vTPM HCL report (the SNP report is bytes 32..1216).
    AzureHcl,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["report", "evidence"])))]
struct VerifyArgs {
    /// The report file (SNP; with --certs).
    #[arg(long, requires = "certs")]
    report: Option<PathBuf>,
    /// An `evidence` JSON object as `POST /v1/encryptionKeys:release` takes
    /// it (`sev-snp` or `az-snp-vtpm`), or trustee's az-snp-vtpm evidence.
    #[arg(long, conflicts_with_all = ["report_data", "format"])]
    evidence: Option<PathBuf>,
    /// The challenge nonce (base64) the evidence must be bound to, with
    /// --tee-public-key. Without both the binding is not checked.
    #[arg(long, requires = "tee_public_key", requires = "evidence")]
    nonce: Option<String>,
    /// The TEE's X25519 public key (base64), with --nonce.
    #[arg(long, requires = "nonce")]
    tee_public_key: Option<String>,
    /// How the report file is encoded.
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    format: Format,
    /// Certificate files (PEM or DER, several per PEM file allowed): the
    /// VCEK or VLEK, and the ASK or ASVK; the ARK is optional (AMD's is
    /// built in). With --evidence: certificates added to the evidence's.
    #[arg(long, num_args = 1..)]
    certs: Vec<PathBuf>,
    /// A release policy (JSON) to evaluate the verified report against.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// The expected report_data, 128 hex digits (with --report). Without
    /// it report_data is not checked: the report may be a replay.
    #[arg(long)]
    report_data: Option<String>,
    /// Judge certificate validity at this instant (RFC 3339) instead of now.
    #[arg(long)]
    at: Option<String>,
    /// Also trust this ARK (PEM), e.g. a simulated attester's (testing).
    #[arg(long)]
    extra_root: Vec<PathBuf>,
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn parse_hex_64(text: &str) -> Result<[u8; 64], String> {
    let text = text.trim();
    let bytes: Result<Vec<u8>, _> = (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .ok_or(())
                .and_then(|h| u8::from_str_radix(h, 16).map_err(|_| ()))
        })
        .collect();
    bytes
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| "--report-data must be 128 hex digits (64 bytes)".into())
}

fn parse_instant(text: &str) -> Result<SystemTime, String> {
    let instant: jiff::Timestamp = text
        .parse()
        .map_err(|e| format!("--at must be an RFC 3339 instant: {e}"))?;
    Ok(SystemTime::from(instant))
}

/// What `attest verify` checks: a report with certificates, or an
/// evidence object, with or without the binding.
// One per run of the command: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Input {
    Report {
        evidence: Result<Evidence, attestation::Error>,
        check: ReportDataCheck,
    },
    Evidence {
        evidence: Result<PlatformEvidence, attestation::Error>,
        binding: Option<ReleaseBinding>,
    },
}

/// Reads an evidence file: the release endpoint's object, else trustee's
/// az-snp-vtpm evidence. A usage error (`Err`) when extra certificates come
/// with a release object, whose `certs` are where they belong.
fn read_evidence(
    json: &[u8],
    certs: Vec<Vec<u8>>,
) -> Result<Result<PlatformEvidence, attestation::Error>, String> {
    match serde_json::from_slice::<EvidenceWire>(json) {
        Ok(_) if !certs.is_empty() => {
            Err("--certs with a release `evidence` object: put them in its `certs`".into())
        }
        Ok(wire) => Ok(PlatformEvidence::try_from(wire)),
        Err(_) => {
            Ok(AzureVtpmEvidence::from_trustee_json(json, certs).map(PlatformEvidence::AzSnpVtpm))
        }
    }
}

fn decode_b64(flag: &str, text: &str) -> Result<Vec<u8>, String> {
    B64.decode(text.trim())
        .map_err(|e| format!("{flag} is not base64: {e}"))
}

/// Runs an `attest` command.
pub(crate) fn run(args: AttestArgs) -> ExitCode {
    let AttestCommand::Verify(args) = args.command;
    // Usage problems (unreadable files, bad flags) exit 2; refused
    // evidence exits 1.
    let prepared = (|| -> Result<_, String> {
        let certs = args
            .certs
            .iter()
            .map(|p| read(p))
            .collect::<Result<Vec<_>, _>>()?;
        let roots = args
            .extra_root
            .iter()
            .map(|p| read(p))
            .collect::<Result<Vec<_>, _>>()?;
        let policy = match &args.policy {
            Some(path) => {
                let text = String::from_utf8(read(path)?)
                    .map_err(|_| format!("{}: not UTF-8", path.display()))?;
                Some(ReleasePolicy::from_json(&text).map_err(|e| e.to_string())?)
            }
            None => None,
        };
        let at = match &args.at {
            Some(text) => parse_instant(text)?,
            None => SystemTime::now(),
        };
        let input = match (&args.report, &args.evidence) {
            (Some(path), _) => {
                let format = match args.format {
                    Format::Auto => ReportFormat::Auto,
                    Format::Raw => ReportFormat::Raw,
                    Format::Hex => ReportFormat::Hex,
                    Format::AzureHcl => ReportFormat::AzureHcl,
                };
                Input::Report {
                    evidence: Evidence::from_parts(&read(path)?, format, certs),
                    check: match &args.report_data {
                        Some(hex) => ReportDataCheck::Expect(parse_hex_64(hex)?),
                        None => ReportDataCheck::NotChecked,
                    },
                }
            }
            (None, Some(path)) => {
                let binding = match (&args.nonce, &args.tee_public_key) {
                    (Some(nonce), Some(key)) => {
                        let key = <[u8; 32]>::try_from(decode_b64("--tee-public-key", key)?)
                            .map_err(|_| "--tee-public-key must be 32 bytes".to_owned())?;
                        Some(ReleaseBinding::new(&decode_b64("--nonce", nonce)?, key))
                    }
                    _ => None,
                };
                Input::Evidence {
                    evidence: read_evidence(&read(path)?, certs)?,
                    binding,
                }
            }
            (None, None) => return Err("give --report or --evidence".into()),
        };
        let verifier = Verifier::with_extra_roots(&roots).map_err(|e| e.to_string())?;
        Ok((input, policy, at, verifier))
    })();
    let (input, policy, at, verifier) = match prepared {
        Ok(p) => p,
        Err(message) => {
            eprintln!("keyferry: {message}");
            return ExitCode::from(2);
        }
    };
    let (inspected, note) = match input {
        Input::Report { evidence, check } => (
            evidence.and_then(|e| verifier.inspect_at(&e, check, at)),
            matches!(check, ReportDataCheck::NotChecked)
                .then_some("report_data was not checked (no --report-data)"),
        ),
        Input::Evidence { evidence, binding } => (
            evidence.and_then(|e| verifier.inspect_platform_at(&e, binding.as_ref(), at)),
            binding.is_none().then_some(
                "the nonce and TEE key binding was not checked (no --nonce and --tee-public-key)",
            ),
        ),
    };
    let outcome = inspected.and_then(|inspected| match &policy {
        Some(policy) => policy
            .check_claims(inspected.claims())
            .map(|()| inspected.claims().clone()),
        None => Ok(inspected.claims().clone()),
    });
    match outcome {
        Ok(claims) => {
            if let Some(note) = note {
                eprintln!("note: {note}");
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&claims).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            let reason = e.reason().map_or("invalid", |r| r.code());
            println!(
                "{}",
                serde_json::json!({"verified": false, "reason": reason, "detail": e.to_string()})
            );
            eprintln!("refused: {e}");
            ExitCode::FAILURE
        }
    }
}
