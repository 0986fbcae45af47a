//! `keyferry onboard …`: a client of the admin API (DESIGN §7.1, §11).
//!
//! Connection options and output are shared with `keyferry keys` (see
//! `client`).

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::client::{
    Client, Connection, Failure, block_on_client, join, print_record, print_table, text,
};

/// Shared options of every `onboard` command.
#[derive(Debug, Args)]
pub(crate) struct OnboardArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: OnboardCommand,
}

#[derive(Debug, Subcommand)]
enum OnboardCommand {
    /// Trusted workload identity issuers.
    #[command(subcommand)]
    Issuer(IssuerCommand),
    /// Ad techs.
    #[command(subcommand)]
    Adtech(AdtechCommand),
    /// Workload identities of ad techs (mappings).
    #[command(subcommand)]
    Identity(IdentityCommand),
    /// The mapping table.
    #[command(subcommand)]
    Mappings(MappingsCommand),
    /// The tfvars (JSON) of each workload cloud's ad-tech Terraform module:
    /// `jq .aws` of it is `terraform/workload-cloud/aws/adtech`'s input.
    Terraform {
        /// The ad tech.
        #[arg(long)]
        adtech: String,
    },
}

#[derive(Debug, Subcommand)]
enum IssuerCommand {
    /// Trust an issuer.
    Add {
        /// Short name.
        #[arg(long)]
        name: String,
        /// aws, gcp, azure or oidc.
        #[arg(long, value_parser = ["aws", "gcp", "azure", "oidc"])]
        kind: String,
        /// The exact `iss` URL.
        #[arg(long)]
        issuer: String,
        /// The `aud` its tokens must carry.
        #[arg(long)]
        audience: String,
        /// Fetch keys here instead of through discovery.
        #[arg(long)]
        jwks_uri: Option<String>,
    },
    /// List trusted issuers.
    List,
}

#[derive(Debug, Subcommand)]
enum AdtechCommand {
    /// Onboard an ad tech.
    Create {
        /// Identifier (lower-case letters, digits, '-').
        #[arg(long)]
        id: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// An https origin of the ad tech (repeatable).
        #[arg(long = "site")]
        sites: Vec<String>,
        /// A use case it may fetch keys for (repeatable).
        #[arg(long = "use-case")]
        use_cases: Vec<String>,
    },
    /// List ad techs.
    List,
    /// Show one ad tech with its identities.
    Show {
        /// The ad tech id.
        id: String,
    },
    /// Disable an ad tech: its identities get no new credentials.
    Disable {
        /// The ad tech id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum IdentityCommand {
    /// Map a workload identity to an ad tech.
    Add {
        /// The ad tech.
        #[arg(long)]
        adtech: String,
        /// aws, gcp, azure or oidc (the issuer's kind).
        #[arg(long, value_parser = ["aws", "gcp", "azure", "oidc"])]
        cloud: String,
        /// The issuer URL.
        #[arg(long)]
        issuer: String,
        /// The exact `sub`.
        #[arg(long)]
        subject: String,
        /// A claim condition (repeatable): CLAIM=VALUE (equals),
        /// CLAIM^=PREFIX (starts with) or CLAIM@=A,B (one of).
        #[arg(long = "condition", value_parser = parse_condition)]
        conditions: Vec<Value>,
        /// A scope to grant (repeatable; default keys:read and keys:release).
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
    /// List identities.
    List {
        /// Only this ad tech's.
        #[arg(long)]
        adtech: Option<String>,
    },
    /// Remove an identity by mapping id.
    Remove {
        /// The mapping id (`m-…`).
        mapping_id: String,
    },
}

#[derive(Debug, Subcommand)]
enum MappingsCommand {
    /// List mappings, optionally filtered.
    List {
        /// Only this ad tech's.
        #[arg(long)]
        adtech: Option<String>,
        /// Only this cloud's.
        #[arg(long)]
        cloud: Option<String>,
        /// Only this issuer's.
        #[arg(long)]
        issuer: Option<String>,
    },
}

fn parse_condition(raw: &str) -> Result<Value, String> {
    let (claim, op, value) = if let Some((c, v)) = raw.split_once("^=") {
        (c, "prefix", json!(v))
    } else if let Some((c, v)) = raw.split_once("@=") {
        (c, "in", json!(v.split(',').collect::<Vec<_>>()))
    } else if let Some((c, v)) = raw.split_once('=') {
        (c, "eq", json!(v))
    } else {
        return Err("expected CLAIM=VALUE, CLAIM^=PREFIX or CLAIM@=A,B".into());
    };
    Ok(json!({"claim": claim, "op": op, "value": value}))
}

/// Runs an `onboard` command.
pub(crate) fn run(args: OnboardArgs) -> ExitCode {
    let OnboardArgs {
        connection,
        command,
    } = args;
    block_on_client(connection, |client, json_out| {
        execute(client, json_out, command)
    })
}

fn query(pairs: &[(&str, &Option<String>)]) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        if let Some(value) = value {
            serializer.append_pair(key, value);
        }
    }
    let q = serializer.finish();
    if q.is_empty() { q } else { format!("?{q}") }
}

async fn execute(client: Client, json_out: bool, command: OnboardCommand) -> Result<(), Failure> {
    use reqwest::Method;
    match command {
        OnboardCommand::Issuer(IssuerCommand::Add {
            name,
            kind,
            issuer,
            audience,
            jwks_uri,
        }) => {
            let mut body =
                json!({"name": name, "kind": kind, "issuer": issuer, "audience": audience});
            if let Some(uri) = jwks_uri {
                body["jwksUri"] = json!(uri);
            }
            let created = client
                .call(Method::POST, "/v1/admin/issuers", Some(body))
                .await?;
            print_record(json_out, &created, &format!("trusted issuer {issuer}"));
        }
        OnboardCommand::Issuer(IssuerCommand::List) => {
            let list = client.call(Method::GET, "/v1/admin/issuers", None).await?;
            let rows: Vec<Vec<String>> = list["issuers"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|i| {
                            let e = &i["issuer"];
                            vec![
                                text(&e["name"]),
                                text(&e["kind"]),
                                text(&e["issuer"]),
                                text(&e["audience"]),
                                text(&i["source"]),
                            ]
                        })
                        .collect()
                })
                .unwrap_or_default();
            print_table(
                json_out,
                &list,
                &["NAME", "KIND", "ISSUER", "AUDIENCE", "SOURCE"],
                &rows,
            );
        }
        OnboardCommand::Adtech(AdtechCommand::Create {
            id,
            name,
            sites,
            use_cases,
        }) => {
            let body = json!({"id": id, "name": name, "sites": sites, "useCases": use_cases});
            let created = client
                .call(Method::POST, "/v1/admin/adtechs", Some(body))
                .await?;
            print_record(json_out, &created, &format!("created ad tech {id}"));
        }
        OnboardCommand::Adtech(AdtechCommand::List) => {
            let list = client.call(Method::GET, "/v1/admin/adtechs", None).await?;
            let rows: Vec<Vec<String>> = list["adtechs"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|t| {
                            vec![
                                text(&t["id"]),
                                text(&t["name"]),
                                text(&t["enabled"]),
                                join(&t["sites"]),
                                join(&t["useCases"]),
                            ]
                        })
                        .collect()
                })
                .unwrap_or_default();
            print_table(
                json_out,
                &list,
                &["ID", "NAME", "ENABLED", "SITES", "USE CASES"],
                &rows,
            );
        }
        OnboardCommand::Terraform { adtech } => {
            let vars = client
                .call(
                    Method::GET,
                    &format!("/v1/admin/adtechs/{adtech}/terraform"),
                    None,
                )
                .await?;
            // Always JSON: it is a file for Terraform, not a table.
            println!(
                "{}",
                serde_json::to_string_pretty(&vars).unwrap_or_default()
            );
        }
        OnboardCommand::Adtech(AdtechCommand::Show { id }) => {
            let adtech = client
                .call(Method::GET, &format!("/v1/admin/adtechs/{id}"), None)
                .await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&adtech).unwrap_or_default()
            );
        }
        OnboardCommand::Adtech(AdtechCommand::Disable { id }) => {
            let body = json!({"enabled": false});
            let updated = client
                .call(
                    Method::PATCH,
                    &format!("/v1/admin/adtechs/{id}"),
                    Some(body),
                )
                .await?;
            print_record(json_out, &updated, &format!("disabled ad tech {id}"));
        }
        OnboardCommand::Identity(IdentityCommand::Add {
            adtech,
            cloud,
            issuer,
            subject,
            conditions,
            scopes,
        }) => {
            let mut body = json!({"cloud": cloud, "issuer": issuer, "subject": subject, "conditions": conditions});
            if !scopes.is_empty() {
                body["scopes"] = json!(scopes);
            }
            let created = client
                .call(
                    Method::POST,
                    &format!("/v1/admin/adtechs/{adtech}/identities"),
                    Some(body),
                )
                .await?;
            print_record(
                json_out,
                &created,
                &format!("added identity {} to {adtech}", text(&created["id"])),
            );
        }
        OnboardCommand::Identity(IdentityCommand::List { adtech }) => {
            list_mappings(&client, json_out, &query(&[("adtech", &adtech)])).await?;
        }
        OnboardCommand::Identity(IdentityCommand::Remove { mapping_id }) => {
            let all = client.call(Method::GET, "/v1/admin/mappings", None).await?;
            let adtech = all["mappings"]
                .as_array()
                .and_then(|a| a.iter().find(|m| m["id"] == mapping_id.as_str()))
                .map(|m| text(&m["adtech"]))
                .ok_or_else(|| Failure(format!("no identity {mapping_id}")))?;
            let removed = client
                .call(
                    Method::DELETE,
                    &format!("/v1/admin/adtechs/{adtech}/identities/{mapping_id}"),
                    None,
                )
                .await?;
            print_record(
                json_out,
                &removed,
                &format!("removed identity {mapping_id} of {adtech}"),
            );
        }
        OnboardCommand::Mappings(MappingsCommand::List {
            adtech,
            cloud,
            issuer,
        }) => {
            let q = query(&[("adtech", &adtech), ("cloud", &cloud), ("issuer", &issuer)]);
            list_mappings(&client, json_out, &q).await?;
        }
    }
    Ok(())
}

async fn list_mappings(client: &Client, json_out: bool, query: &str) -> Result<(), Failure> {
    let list = client
        .call(
            reqwest::Method::GET,
            &format!("/v1/admin/mappings{query}"),
            None,
        )
        .await?;
    let rows: Vec<Vec<String>> = list["mappings"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    let conditions = m["conditions"].as_array().map_or(0, Vec::len);
                    vec![
                        text(&m["id"]),
                        text(&m["adtech"]),
                        text(&m["cloud"]),
                        text(&m["issuer"]),
                        text(&m["subject"]),
                        conditions.to_string(),
                        join(&m["scopes"]),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    print_table(
        json_out,
        &list,
        &[
            "ID",
            "ADTECH",
            "CLOUD",
            "ISSUER",
            "SUBJECT",
            "CONDITIONS",
            "SCOPES",
        ],
        &rows,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse_into_the_api_shape() {
        assert_eq!(
            parse_condition("google.compute_engine.project_id=acme").expect("eq"),
            json!({"claim": "google.compute_engine.project_id", "op": "eq", "value": "acme"})
        );
        assert_eq!(
            parse_condition("email^=svc-").expect("prefix"),
            json!({"claim": "email", "op": "prefix", "value": "svc-"})
        );
        assert_eq!(
            parse_condition("tid@=a,b").expect("in"),
            json!({"claim": "tid", "op": "in", "value": ["a", "b"]})
        );
        assert!(parse_condition("no-operator").is_err());
    }
}
