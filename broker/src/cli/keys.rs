//! `keyferry keys list|rotate|revoke|rewrap`: key administration (admin API);
//! `keyferry keys verify`: the public check of the signed key manifest.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::json;

use super::client::{Connection, block_on, block_on_client, print_record, print_table, text};

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
    #[command(flatten)]
    Admin(AdminCommand),
    /// Check the signed public key manifest (no token needed): every served
    /// key must carry both coordinators' valid signatures and a proven
    /// entry in each coordinator's log. Exits 1 when a key does not.
    Verify {
        /// The use case (default: the `/v1alpha` set, the first configured).
        #[arg(long)]
        use_case: Option<String>,
        /// The Type-2 base URL every key must be acknowledged by.
        #[arg(long)]
        type2: Option<String>,
    },
}

/// The commands of the admin API.
#[derive(Debug, Subcommand)]
enum AdminCommand {
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
    let command = match command {
        KeysCommand::Verify { use_case, type2 } => {
            return block_on(super::manifest::verify(super::manifest::VerifyRequest {
                server: connection.server().to_owned(),
                use_case,
                type2,
                json: connection.json(),
            }));
        }
        KeysCommand::Admin(command) => command,
    };
    block_on_client(connection, |client, json_out| async move {
        match command {
            AdminCommand::List { use_case } => {
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
            AdminCommand::Rotate { use_case } => {
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
            AdminCommand::Revoke { key_id } => {
                let revoked = client
                    .call(
                        Method::POST,
                        &format!("/v1/admin/keys/{key_id}/revoke"),
                        None,
                    )
                    .await?;
                print_record(json_out, &revoked, &format!("revoked key {key_id}"));
            }
            AdminCommand::Rewrap { cloud } => {
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
