//! `keyferry attest verify`: checks SEV-SNP evidence offline, the way the
//! broker does at release, and prints the attested claims as JSON (exit 0)
//! or the refusal reason (exit 1).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use attestation::{Evidence, ReleasePolicy, ReportDataCheck, ReportFormat, Verifier};
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
struct VerifyArgs {
    /// The report file.
    #[arg(long)]
    report: PathBuf,
    /// How the report file is encoded.
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    format: Format,
    /// Certificate files (PEM or DER, several per PEM file allowed): the
    /// VCEK or VLEK, and the ASK or ASVK; the ARK is optional (AMD's is
    /// built in).
    #[arg(long, num_args = 1.., required = true)]
    certs: Vec<PathBuf>,
    /// A release policy (JSON) to evaluate the verified report against.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// The expected report_data, 128 hex digits. Without it report_data
    /// is not checked: the report may be a replay.
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

/// Runs an `attest` command.
pub(crate) fn run(args: AttestArgs) -> ExitCode {
    let AttestCommand::Verify(args) = args.command;
    // Usage problems (unreadable files, bad flags) exit 2; a refused
    // report exits 1.
    let prepared = (|| -> Result<_, String> {
        let report = read(&args.report)?;
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
        let check = match &args.report_data {
            Some(hex) => ReportDataCheck::Expect(parse_hex_64(hex)?),
            None => ReportDataCheck::NotChecked,
        };
        let at = match &args.at {
            Some(text) => parse_instant(text)?,
            None => SystemTime::now(),
        };
        let verifier = Verifier::with_extra_roots(&roots).map_err(|e| e.to_string())?;
        Ok((report, certs, policy, check, at, verifier))
    })();
    let (report, certs, policy, check, at, verifier) = match prepared {
        Ok(p) => p,
        Err(message) => {
            eprintln!("keyferry: {message}");
            return ExitCode::from(2);
        }
    };
    let format = match args.format {
        Format::Auto => ReportFormat::Auto,
        Format::Raw => ReportFormat::Raw,
        Format::Hex => ReportFormat::Hex,
        Format::AzureHcl => ReportFormat::AzureHcl,
    };
    let outcome = Evidence::from_parts(&report, format, certs)
        .and_then(|evidence| verifier.inspect_at(&evidence, check, at))
        .and_then(|inspected| match &policy {
            Some(policy) => policy
                .check_claims(inspected.claims())
                .map(|()| inspected.claims().clone()),
            None => Ok(inspected.claims().clone()),
        });
    match outcome {
        Ok(claims) => {
            if matches!(check, ReportDataCheck::NotChecked) {
                eprintln!("note: report_data was not checked (no --report-data)");
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
