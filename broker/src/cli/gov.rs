//! `keyferry gov propose|approve|list|show|members`: governance of release
//! policies (admin API). `approve` signs locally: the member's private key
//! never leaves the machine it is on.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aws_lc_rs::signature::Ed25519KeyPair;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::client::{Connection, Failure, block_on_client, print_record, print_table, text};
use crate::governance::{ballot_message, encode_signature};

/// `keyferry gov`.
#[derive(Debug, Args)]
pub(crate) struct GovArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: GovCommand,
}

#[derive(Debug, Subcommand)]
enum GovCommand {
    /// Propose a change; prints the proposal id and the digest members sign.
    #[command(subcommand)]
    Propose(ProposeCommand),
    /// Approve a proposal: check its digest, sign it with a member key
    /// (Ed25519 PKCS#8 PEM, e.g. `openssl genpkey -algorithm ed25519`), send
    /// the ballot.
    Approve {
        /// The proposal id.
        proposal_id: String,
        /// The member's name.
        #[arg(long)]
        member: String,
        /// The member's private key (PEM).
        #[arg(long)]
        key: PathBuf,
    },
    /// List proposals.
    List {
        /// Only proposals in this status (open, applied, expired, rejected).
        #[arg(long)]
        status: Option<String>,
    },
    /// Show one proposal, its document and its approvals.
    Show {
        /// The proposal id.
        proposal_id: String,
    },
    /// List members and the threshold.
    Members,
}

/// One change per proposal.
#[derive(Debug, Subcommand)]
enum ProposeCommand {
    /// A release policy (JSON file) for a use case.
    ReleasePolicy {
        /// The policy document.
        file: PathBuf,
        /// The use case it governs.
        #[arg(long)]
        use_case: String,
    },
    /// The key-generation policy (JSON file, the release policy format) of
    /// this Type-2: which key generators may hand it splits.
    KeyGenerationPolicy {
        /// The policy document.
        file: PathBuf,
    },
    /// Add a member.
    AddMember {
        /// The new member's name.
        name: String,
        /// Their Ed25519 public key (PEM, or a file with base64 of the 32 bytes).
        #[arg(long)]
        public_key: PathBuf,
    },
    /// Remove a member.
    RemoveMember {
        /// The member's name.
        name: String,
    },
    /// Set the threshold M.
    Threshold {
        /// The new M.
        m: u32,
    },
}

fn read(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|e| Failure(format!("cannot read {}: {e}", path.display())))
}

impl ProposeCommand {
    fn to_json(&self) -> Result<Value, Failure> {
        Ok(match self {
            ProposeCommand::ReleasePolicy { file, use_case } => {
                let policy: Value = serde_json::from_str(&read(file)?)
                    .map_err(|e| Failure(format!("{}: not JSON: {e}", file.display())))?;
                json!({"kind": "release_policy", "useCase": use_case, "policy": policy})
            }
            ProposeCommand::KeyGenerationPolicy { file } => {
                let policy: Value = serde_json::from_str(&read(file)?)
                    .map_err(|e| Failure(format!("{}: not JSON: {e}", file.display())))?;
                json!({"kind": "key_generation_policy", "policy": policy})
            }
            ProposeCommand::AddMember { name, public_key } => {
                let key = crate::governance::parse_member_key(&read(public_key)?)
                    .map_err(|e| Failure(format!("{}: {e}", public_key.display())))?;
                json!({"kind": "add_member", "name": name, "publicKey": key})
            }
            ProposeCommand::RemoveMember { name } => {
                json!({"kind": "remove_member", "name": name})
            }
            ProposeCommand::Threshold { m } => json!({"kind": "set_threshold", "threshold": m}),
        })
    }
}

/// Loads an Ed25519 private key from a PKCS#8 PEM file.
fn load_member_key(path: &Path) -> Result<Ed25519KeyPair, Failure> {
    let text = Zeroizing::new(read(path)?);
    let pem = pem::parse(text.as_bytes())
        .map_err(|e| Failure(format!("{}: not PEM: {e}", path.display())))?;
    if pem.tag() != "PRIVATE KEY" {
        return Err(Failure(format!(
            "{}: expected a PKCS#8 `PRIVATE KEY`, got `{}`",
            path.display(),
            pem.tag()
        )));
    }
    let der = Zeroizing::new(pem.into_contents());
    // OpenSSL writes PKCS#8 v1 (no public key inside); aws-lc checks the
    // pair when the public key is present and derives it otherwise.
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
        .map_err(|_| Failure(format!("{}: not an Ed25519 private key", path.display())))
}

/// Checks that the proposal's document hashes to its digest, so the member
/// signs what they were shown and not just a number the server chose.
fn checked_digest(proposal: &Value) -> Result<String, Failure> {
    let document = proposal["document"].as_str().unwrap_or_default();
    let digest = proposal["digest"].as_str().unwrap_or_default();
    let computed = hex::encode(Sha256::digest(document.as_bytes()));
    if computed != digest || digest.is_empty() {
        return Err(Failure(
            "the server's digest does not match the proposal document; not signing".into(),
        ));
    }
    Ok(computed)
}

/// Runs a `gov` command.
pub(crate) fn run(args: GovArgs) -> ExitCode {
    let GovArgs {
        connection,
        command,
    } = args;
    block_on_client(connection, |client, json_out| async move {
        match command {
            GovCommand::Propose(change) => {
                let body = json!({"change": change.to_json()?});
                let proposal = client
                    .call(Method::POST, "/v1/gov/proposals", Some(body))
                    .await?;
                print_record(
                    json_out,
                    &proposal,
                    &format!(
                        "proposal {} (digest {}), expires at {} ms",
                        text(&proposal["id"]),
                        text(&proposal["digest"]),
                        text(&proposal["expiresAt"])
                    ),
                );
            }
            GovCommand::Approve {
                proposal_id,
                member,
                key,
            } => {
                let pair = load_member_key(&key)?;
                let path = format!("/v1/gov/proposals/{proposal_id}");
                let proposal = client.call(Method::GET, &path, None).await?;
                let digest = checked_digest(&proposal)?;
                let signature = encode_signature(pair.sign(&ballot_message(&digest)).as_ref());
                let body = json!({"member": member, "signature": signature});
                let after = client
                    .call(Method::POST, &format!("{path}/ballots"), Some(body))
                    .await?;
                let approvals = after["approvals"].as_array().map_or(0, Vec::len);
                print_record(
                    json_out,
                    &after,
                    &format!(
                        "approved {proposal_id}: {approvals} of {} approvals, {}",
                        text(&after["threshold"]),
                        text(&after["status"])
                    ),
                );
            }
            GovCommand::List { status } => {
                let path = match &status {
                    Some(s) => format!(
                        "/v1/gov/proposals?status={}",
                        url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                    ),
                    None => "/v1/gov/proposals".to_owned(),
                };
                let list = client.call(Method::GET, &path, None).await?;
                let rows: Vec<Vec<String>> = list["proposals"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|p| {
                                vec![
                                    text(&p["id"]),
                                    text(&p["change"]["kind"]),
                                    text(&p["status"]),
                                    format!(
                                        "{}/{}",
                                        p["approvals"].as_array().map_or(0, Vec::len),
                                        text(&p["threshold"])
                                    ),
                                ]
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                print_table(
                    json_out,
                    &list,
                    &["ID", "KIND", "STATUS", "APPROVALS"],
                    &rows,
                );
            }
            GovCommand::Show { proposal_id } => {
                let proposal = client
                    .call(
                        Method::GET,
                        &format!("/v1/gov/proposals/{proposal_id}"),
                        None,
                    )
                    .await?;
                // Always the full record: the document is what gets signed.
                println!(
                    "{}",
                    serde_json::to_string_pretty(&proposal).unwrap_or_default()
                );
            }
            GovCommand::Members => {
                let members = client.call(Method::GET, "/v1/gov/members", None).await?;
                let rows: Vec<Vec<String>> = members["members"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|m| vec![text(&m["name"]), text(&m["publicKey"])])
                            .collect()
                    })
                    .unwrap_or_default();
                print_table(json_out, &members, &["NAME", "PUBLIC KEY"], &rows);
            }
        }
        Ok(())
    })
}
