//! `keyferry onboard …`: a client of the admin API (DESIGN §7.1, §11).
//!
//! The server comes from `--server`, `KEYFERRY_SERVER`, or the dev default
//! `http://127.0.0.1:8080`; the bearer token from `--token-file`,
//! `KEYFERRY_TOKEN`, or the dev bootstrap file `./keyferry-data/admin-token`.
//! A refusal prints the server's problem detail and exits 1.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

/// Shared options of every `onboard` command.
#[derive(Debug, Args)]
pub(crate) struct OnboardArgs {
    /// Broker base URL.
    #[arg(
        long,
        env = "KEYFERRY_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    server: String,
    /// File holding an operator bearer token (default: ./keyferry-data/admin-token).
    #[arg(long, global = true)]
    token_file: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
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

/// A refusal or failure to report; exit code 1.
struct Failure(String);

struct Client {
    http: reqwest::Client,
    server: String,
    token: String,
}

impl Client {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Failure> {
        let mut request = self
            .http
            .request(
                method,
                format!("{}{path}", self.server.trim_end_matches('/')),
            )
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Failure(format!("cannot reach {}: {e}", self.server)))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(body)
        } else {
            let detail = body["detail"].as_str().unwrap_or("request refused");
            let code = body["code"].as_str().unwrap_or("error");
            Err(Failure(format!("{} {code}: {detail}", status.as_u16())))
        }
    }
}

fn read_token(file: Option<&PathBuf>) -> Result<String, Failure> {
    if file.is_none() {
        if let Ok(token) = std::env::var("KEYFERRY_TOKEN") {
            return Ok(token.trim().to_owned());
        }
    }
    let path = file
        .cloned()
        .unwrap_or_else(|| PathBuf::from("./keyferry-data/admin-token"));
    std::fs::read_to_string(&path)
        .map(|t| t.trim().to_owned())
        .map_err(|e| {
            Failure(format!(
                "cannot read the token from {}: {e} (use --token-file or KEYFERRY_TOKEN)",
                path.display()
            ))
        })
}

/// Runs an `onboard` command.
pub(crate) fn run(args: OnboardArgs) -> ExitCode {
    crate::server::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("keyferry onboard: {message}");
            ExitCode::FAILURE
        }
    }
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

async fn execute(args: OnboardArgs) -> Result<(), Failure> {
    use reqwest::Method;
    let client = Client {
        http: reqwest::Client::new(),
        server: args.server.clone(),
        token: read_token(args.token_file.as_ref())?,
    };
    let json_out = args.json;
    match args.command {
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

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn join(v: &Value) -> String {
    v.as_array()
        .map(|a| a.iter().map(text).collect::<Vec<_>>().join(","))
        .unwrap_or_default()
}

fn print_record(json_out: bool, record: &Value, summary: &str) {
    if json_out {
        println!("{record}");
    } else {
        println!("{summary}");
    }
}

fn print_table(json_out: bool, raw: &Value, header: &[&str], rows: &[Vec<String>]) {
    if json_out {
        println!("{raw}");
        return;
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
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
