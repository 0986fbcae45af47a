//! `keyferry audit verify|export|mappings` (DESIGN §7.2, §11).
//!
//! Every command reads the log from a server (`--server`, auditor or admin
//! token) or from an export file (`--export`), so an auditor can check a
//! copy offline. `verify` exits 1 naming the first problem.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{Client, Connection, Failure, block_on_client, print_table, text};
use crate::audit::merkle;
use crate::audit::verify::{self, Export, ExportedEntry};
use crate::audit::{
    AuditEntry, CosignedTreeHead, EntryKind, EventKind, MAX_ENTRIES_PER_CALL, SignedTreeHead,
    WitnessView,
};

/// `keyferry audit`.
#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check every entry, the root, the head's signature, and consistency
    /// with a head saved earlier.
    Verify {
        /// Verify this export instead of a server.
        #[arg(long)]
        export: Option<PathBuf>,
        /// A head saved earlier (by --save-sth): its key is pinned and the
        /// log must extend it.
        #[arg(long)]
        trusted_sth: Option<PathBuf>,
        /// Save the verified head here, for the next verification.
        #[arg(long)]
        save_sth: Option<PathBuf>,
        /// Also require the peer coordinator's co-signature (a server
        /// only): the newest co-signed head must be a head of this log, and
        /// what the witness saw must be too (detects a rollback or a split
        /// view without a saved head).
        #[arg(long)]
        require_cosigned: bool,
        /// With --require-cosigned: the newest co-signature must be at
        /// most this many seconds old. The witness co-signs every round
        /// (`audit.witness_interval`), idle or not, so an old one means it
        /// stopped reaching this log.
        #[arg(long, requires = "require_cosigned", value_name = "SECONDS")]
        max_cosigned_age: Option<u64>,
    },
    /// Write the head and every entry to a file.
    Export {
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Rebuild the mapping table from the log.
    Mappings {
        /// Read this export instead of a server.
        #[arg(long)]
        export: Option<PathBuf>,
        /// As of this tree size (default: the whole log).
        #[arg(long)]
        at: Option<u64>,
        /// Show what changed between two tree sizes.
        #[arg(long, num_args = 2, value_names = ["A", "B"])]
        diff: Option<Vec<u64>>,
    },
}

/// Fetches the current head and every entry it covers.
async fn fetch(client: &Client) -> Result<Export, Failure> {
    let sth: SignedTreeHead =
        serde_json::from_value(client.call(Method::GET, "/v1/audit/sth", None).await?)
            .map_err(|e| Failure(format!("the server's tree head does not parse: {e}")))?;
    let mut entries: Vec<ExportedEntry> =
        Vec::with_capacity(usize::try_from(sth.tree_size).unwrap_or(0));
    let mut start = 0;
    while start < sth.tree_size {
        let end = (start + MAX_ENTRIES_PER_CALL).min(sth.tree_size);
        let page = client
            .call(
                Method::GET,
                &format!("/v1/audit/entries?start={start}&end={end}"),
                None,
            )
            .await?;
        let page: Vec<ExportedEntry> = serde_json::from_value(page["entries"].clone())
            .map_err(|e| Failure(format!("entries {start}..{end} do not parse: {e}")))?;
        if page.is_empty() {
            break;
        }
        start += page.len() as u64;
        entries.extend(page);
    }
    Ok(Export { sth, entries })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, Failure> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Failure(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| Failure(format!("{}: {e}", path.display())))
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure(e.to_string()))?;
    std::fs::write(path, text).map_err(|e| Failure(format!("{}: {e}", path.display())))
}

fn check(
    export: &Export,
    trusted: Option<&Path>,
    save: Option<&Path>,
    proof: Option<Vec<merkle::Hash>>,
) -> Result<(), Failure> {
    let saved: Option<SignedTreeHead> = trusted.map(read_json).transpose()?;
    let verified =
        verify::verify(export, saved.as_ref()).map_err(|e| Failure(format!("FAILED: {e}")))?;
    // A server's consistency proof must agree too (it is what a client
    // without the whole log would rely on).
    if let (Some(saved), Some(proof)) = (&saved, proof) {
        let decode = |b: &str| {
            B64.decode(b)
                .ok()
                .and_then(|v| <[u8; 32]>::try_from(v).ok())
        };
        let ok = match (decode(&saved.root_hash), decode(&export.sth.root_hash)) {
            (Some(old), Some(new)) => merkle::verify_consistency(
                saved.tree_size,
                export.sth.tree_size,
                &old,
                &new,
                &proof,
            ),
            _ => false,
        };
        if !ok {
            return Err(Failure(format!(
                "FAILED: the server's consistency proof from size {} does not verify",
                saved.tree_size
            )));
        }
    }
    if let Some(path) = save {
        write_json(path, &export.sth)?;
    }
    let consistency = if verified.consistent_with_saved {
        ", consistent with the saved head"
    } else {
        ""
    };
    println!(
        "verified {} entries; root {}{consistency}",
        verified.tree_size, export.sth.root_hash
    );
    Ok(())
}

/// `--require-cosigned`: the log's newest co-signed head and what each
/// co-signing witness saw, checked against the verified `export`.
async fn check_cosigned(
    client: &Client,
    export: &Export,
    max_age_secs: Option<u64>,
) -> Result<(), Failure> {
    let cosigned: CosignedTreeHead = serde_json::from_value(
        client
            .call(Method::GET, "/v1/audit/sth/cosigned", None)
            .await?,
    )
    .map_err(|e| Failure(format!("the co-signed head does not parse: {e}")))?;
    let witnesses: Vec<&str> = cosigned
        .cosignatures
        .iter()
        .map(|c| c.witness.as_str())
        .collect();
    let Some(witness) = witnesses.first() else {
        return Err(Failure(
            "FAILED: the co-signed head has no co-signature".into(),
        ));
    };
    // The witness's key is the one it publishes, not the one the log hands over.
    let get = |path: String| async move {
        let response = reqwest::get(&path)
            .await
            .map_err(|e| Failure(format!("cannot reach the witness at {path}: {e}")))?;
        if !response.status().is_success() {
            return Err(Failure(format!("{path} answered {}", response.status())));
        }
        response
            .json::<Value>()
            .await
            .map_err(|e| Failure(format!("{path}: {e}")))
    };
    let base = witness.trim_end_matches('/');
    let witness_head: CosignedTreeHead =
        serde_json::from_value(get(format!("{base}/v1/audit/sth")).await?)
            .map_err(|e| Failure(format!("the witness's head does not parse: {e}")))?;
    let view: WitnessView = serde_json::from_value(get(format!("{base}/v1/audit/witness")).await?)
        .map_err(|e| Failure(format!("the witness's view does not parse: {e}")))?;
    verify::check_witnessed(export, &cosigned, &witness_head.head.public_key, &view)
        .map_err(|e| Failure(format!("FAILED: {e}")))?;
    if let Some(max_age_secs) = max_age_secs {
        // The witness's own co-signature of this head (checked above).
        let newest = cosigned
            .cosignatures
            .iter()
            .filter(|c| c.public_key == witness_head.head.public_key && c.valid_for(&cosigned.head))
            .map(|c| c.cosigned_at)
            .max()
            .unwrap_or(i64::MIN);
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let age_ms = now_ms.saturating_sub(newest);
        let age_secs = age_ms / 1000;
        let allowed_ms = i64::try_from(max_age_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        if age_ms > allowed_ms {
            return Err(Failure(format!(
                "FAILED: the newest co-signature is {age_secs} s old (at most {max_age_secs} s allowed): the witness has not reached this log since"
            )));
        }
    }
    println!(
        "co-signed at size {} by {base}, which saw {} entries and refused nothing",
        cosigned.head.tree_size,
        view.head.map_or(0, |h| h.tree_size)
    );
    Ok(())
}

/// The mapping table as of `size` entries: id → (mapping, ad tech enabled).
fn mappings_at(export: &Export, size: u64) -> BTreeMap<String, Value> {
    let mut table: BTreeMap<String, Value> = BTreeMap::new();
    let mut disabled: std::collections::HashSet<String> = std::collections::HashSet::new();
    for e in export
        .entries
        .iter()
        .take(usize::try_from(size).unwrap_or(usize::MAX))
    {
        let Ok(entry) = AuditEntry::parse(&e.entry) else {
            continue;
        };
        let details = &entry.details;
        let EntryKind::Known(kind) = entry.kind else {
            continue;
        };
        match kind {
            EventKind::MappingAdded => {
                table.insert(text(&details["id"]), details.clone());
            }
            EventKind::MappingRemoved => {
                table.remove(&text(&details["id"]));
            }
            EventKind::AdtechDisabled => {
                disabled.insert(text(&details["id"]));
            }
            EventKind::AdtechEnabled => {
                disabled.remove(&text(&details["id"]));
            }
            _ => {}
        }
    }
    for mapping in table.values_mut() {
        let enabled = !disabled.contains(&text(&mapping["adtech"]));
        mapping["adtechEnabled"] = json!(enabled);
    }
    table
}

fn row(m: &Value) -> Vec<String> {
    vec![
        text(&m["id"]),
        text(&m["adtech"]),
        text(&m["cloud"]),
        text(&m["issuer"]),
        text(&m["subject"]),
        text(&m["adtechEnabled"]),
    ]
}

const HEADER: [&str; 6] = [
    "ID",
    "ADTECH",
    "CLOUD",
    "ISSUER",
    "SUBJECT",
    "ADTECH ENABLED",
];

fn mappings(export: &Export, at: Option<u64>, diff: Option<Vec<u64>>, json_out: bool) {
    match diff.as_deref() {
        Some(&[a, b]) => {
            let (before, after) = (mappings_at(export, a), mappings_at(export, b));
            let mut changes = Vec::new();
            for (id, m) in &after {
                match before.get(id) {
                    None => changes.push(("added", m.clone())),
                    Some(old) if old != m => changes.push(("changed", m.clone())),
                    Some(_) => {}
                }
            }
            for (id, m) in &before {
                if !after.contains_key(id) {
                    changes.push(("removed", m.clone()));
                }
            }
            let raw = json!({"from": a, "to": b, "changes": changes.iter().map(|(c, m)| json!({"change": c, "mapping": m})).collect::<Vec<_>>()});
            let rows: Vec<Vec<String>> = changes
                .iter()
                .map(|(change, m)| {
                    std::iter::once((*change).to_owned())
                        .chain(row(m))
                        .collect()
                })
                .collect();
            let mut header = vec!["CHANGE"];
            header.extend(HEADER);
            print_table(json_out, &raw, &header, &rows);
        }
        _ => {
            let size = at.unwrap_or(export.sth.tree_size);
            let table = mappings_at(export, size);
            let raw = json!({"treeSize": size, "mappings": table.values().collect::<Vec<_>>()});
            let rows: Vec<Vec<String>> = table.values().map(row).collect();
            print_table(json_out, &raw, &HEADER, &rows);
        }
    }
}

/// Runs an `audit` command.
pub(crate) fn run(args: AuditArgs) -> ExitCode {
    let AuditArgs {
        connection,
        command,
    } = args;
    let offline =
        match &command {
            AuditCommand::Verify {
                export: Some(path),
                trusted_sth,
                save_sth,
                ..
            } => Some(read_json::<Export>(path).and_then(|export| {
                check(&export, trusted_sth.as_deref(), save_sth.as_deref(), None)
            })),
            AuditCommand::Mappings {
                export: Some(path),
                at,
                diff,
            } => Some(
                read_json::<Export>(path)
                    .map(|export| mappings(&export, *at, diff.clone(), connection.json())),
            ),
            _ => None,
        };
    if let Some(result) = offline {
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(Failure(message)) => {
                eprintln!("keyferry audit: {message}");
                ExitCode::FAILURE
            }
        };
    }
    block_on_client(connection, |client, json_out| async move {
        match command {
            AuditCommand::Verify {
                trusted_sth,
                save_sth,
                require_cosigned,
                max_cosigned_age,
                ..
            } => {
                let export = fetch(&client).await?;
                let proof = match &trusted_sth {
                    Some(path) => {
                        let saved: SignedTreeHead = read_json(path)?;
                        let answer = client
                            .call(
                                Method::GET,
                                &format!(
                                    "/v1/audit/proofs/consistency?first={}&second={}",
                                    saved.tree_size.min(export.sth.tree_size),
                                    export.sth.tree_size
                                ),
                                None,
                            )
                            .await?;
                        let proof: Vec<String> =
                            serde_json::from_value(answer["proof"].clone()).unwrap_or_default();
                        Some(
                            proof
                                .iter()
                                .filter_map(|p| B64.decode(p).ok()?.try_into().ok())
                                .collect(),
                        )
                    }
                    None => None,
                };
                check(&export, trusted_sth.as_deref(), save_sth.as_deref(), proof)?;
                if require_cosigned {
                    check_cosigned(&client, &export, max_cosigned_age).await?;
                }
                Ok(())
            }
            AuditCommand::Export { out } => {
                let export = fetch(&client).await?;
                write_json(&out, &export)?;
                println!(
                    "exported {} entries to {}",
                    export.entries.len(),
                    out.display()
                );
                Ok(())
            }
            AuditCommand::Mappings { at, diff, .. } => {
                let export = fetch(&client).await?;
                mappings(&export, at, diff, json_out);
                Ok(())
            }
        }
    })
}
