//! `keyferry keys list|rotate|revoke|rewrap`: key administration (admin API).

use std::process::ExitCode;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::json;

use super::client::{Connection, block_on_client, print_record, print_table, text};

/// `keyferry keys`.
#[derive(Debug, Args)]
pub(crate) struct KeysArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// List keys with their state (pending, active, scheduled, retired, revoked).
    List {
        /// Only this use case's keys.
        #[arg(long)]
        use_case: Option<String>,
    },
    /// Generate a fresh key set now (type1 only); it replaces the published
    /// set once the type2 has acknowledged it.
    Rotate {
        /// The use case (default: the first configured).
        #[arg(long)]
        use_case: Option<String>,
    },
    /// Revoke a key: out of the public set and out of split serving at once.
    Revoke {
        /// The key id.
        key_id: String,
    },
    /// Give every live key a split wrapped by a cloud's current KEK (after
    /// enabling the cloud or changing its KEK; the server also does this at
    /// start).
    Rewrap {
        /// The cloud: aws, gcp or azure.
        #[arg(long, value_parser = ["aws", "gcp", "azure"])]
        cloud: String,
    },
}

/// Runs a `keys` command.
pub(crate) fn run(args: KeysArgs) -> ExitCode {
    let KeysArgs {
        connection,
        command,
    } = args;
    block_on_client(connection, |client, json_out| async move {
        match command {
            KeysCommand::List { use_case } => {
                let path = match &use_case {
                    Some(u) => format!(
                        "/v1/admin/keys?useCase={}",
                        url::form_urlencoded::byte_serialize(u.as_bytes()).collect::<String>()
                    ),
                    None => "/v1/admin/keys".to_owned(),
                };
                let list = client.call(Method::GET, &path, None).await?;
                let rows: Vec<Vec<String>> = list["keys"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|k| {
                                vec![
                                    text(&k["id"]),
                                    text(&k["useCase"]),
                                    text(&k["status"]),
                                    text(&k["expirationTime"]),
                                ]
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                print_table(
                    json_out,
                    &list,
                    &["ID", "USE CASE", "STATUS", "EXPIRES (ms)"],
                    &rows,
                );
            }
            KeysCommand::Rotate { use_case } => {
                let body = json!({"useCase": use_case});
                let rotated = client
                    .call(Method::POST, "/v1/admin/keys/rotate", Some(body))
                    .await?;
                let count = rotated["generated"].as_array().map_or(0, Vec::len);
                print_record(
                    json_out,
                    &rotated,
                    &format!("generated {count} keys for {}", text(&rotated["useCase"])),
                );
            }
            KeysCommand::Revoke { key_id } => {
                let revoked = client
                    .call(
                        Method::POST,
                        &format!("/v1/admin/keys/{key_id}/revoke"),
                        None,
                    )
                    .await?;
                print_record(json_out, &revoked, &format!("revoked key {key_id}"));
            }
            KeysCommand::Rewrap { cloud } => {
                let body = json!({"cloud": cloud});
                let outcome = client
                    .call(Method::POST, "/v1/admin/keys/rewrap", Some(body))
                    .await?;
                let count = outcome["rewrapped"].as_array().map_or(0, Vec::len);
                print_record(
                    json_out,
                    &outcome,
                    &format!("re-wrapped {count} splits for {cloud}"),
                );
            }
        }
        Ok(())
    })
}
