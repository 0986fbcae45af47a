//! `keyferry onboard …`: a client of the admin API (DESIGN §7.1, §11).
//!
//! Connection options and output are shared with `keyferry keys` (see
//! `client`). Request bodies are the `onboarding` crate's types, the ones
//! the handlers deserialise; each command that sends one builds it in its
//! `request()`. Field rules stay the server's: the CLI checks only what it
//! must to build the type (a kind, a URL, a condition's syntax), so a bad
//! id is the server's `400 invalid_field`, worded as for any other client.

use std::process::ExitCode;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Subcommand};
use idp::{Condition, ConditionOp, IssuerKind};
use onboarding::{AdTechPatch, AdTechRequest, IdentityRequest, IssuerRequest, MappingQuery};
use serde::Serialize;
use serde_json::{Value, json};
use url::Url;

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
    Add(IssuerAdd),
    /// List trusted issuers.
    List,
}

// `issuer add` (no doc comment: clap would take it over the variant's).
#[derive(Debug, Args)]
struct IssuerAdd {
    /// Short name.
    #[arg(long)]
    name: String,
    /// aws, gcp, azure or oidc.
    #[arg(long, value_parser = issuer_kind())]
    kind: IssuerKind,
    /// The exact `iss` URL.
    #[arg(long)]
    issuer: String,
    /// The `aud` its tokens must carry.
    #[arg(long)]
    audience: String,
    /// Fetch keys here instead of through discovery.
    #[arg(long)]
    jwks_uri: Option<Url>,
}

impl IssuerAdd {
    /// The body of `POST /v1/admin/issuers`.
    fn request(self) -> IssuerRequest {
        IssuerRequest {
            name: self.name,
            kind: self.kind,
            issuer: self.issuer,
            audience: self.audience,
            algorithms: None,
            max_token_lifetime: None,
            jwks_uri: self.jwks_uri,
        }
    }
}

#[derive(Debug, Subcommand)]
enum AdtechCommand {
    /// Onboard an ad tech.
    Create(AdtechCreate),
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

// `adtech create`.
#[derive(Debug, Args)]
struct AdtechCreate {
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
}

impl AdtechCreate {
    /// The body of `POST /v1/admin/adtechs`.
    fn request(self) -> AdTechRequest {
        AdTechRequest {
            id: self.id,
            name: self.name,
            sites: self.sites,
            use_cases: self.use_cases,
        }
    }
}

/// The body of `PATCH /v1/admin/adtechs/{id}` for `adtech disable`.
const DISABLE: AdTechPatch = AdTechPatch { enabled: false };

#[derive(Debug, Subcommand)]
enum IdentityCommand {
    /// Map a workload identity to an ad tech.
    Add(IdentityAdd),
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

// `identity add`.
#[derive(Debug, Args)]
struct IdentityAdd {
    /// The ad tech.
    #[arg(long)]
    adtech: String,
    /// aws, gcp, azure or oidc (the issuer's kind).
    #[arg(long, value_parser = issuer_kind())]
    cloud: IssuerKind,
    /// The issuer URL.
    #[arg(long)]
    issuer: String,
    /// The exact `sub`.
    #[arg(long)]
    subject: String,
    /// A claim condition (repeatable): CLAIM=VALUE (equals),
    /// CLAIM^=PREFIX (starts with) or CLAIM@=A,B (one of).
    #[arg(long = "condition", value_parser = parse_condition)]
    conditions: Vec<Condition>,
    /// A scope to grant (repeatable; default keys:read and keys:release).
    #[arg(long = "scope")]
    scopes: Vec<String>,
}

impl IdentityAdd {
    /// The body of `POST /v1/admin/adtechs/{adtech}/identities`. No
    /// `--scope` sends no `scopes`, so the server's default applies.
    fn request(self) -> IdentityRequest {
        IdentityRequest {
            cloud: self.cloud,
            issuer: self.issuer,
            subject: self.subject,
            conditions: self.conditions,
            scopes: (!self.scopes.is_empty()).then_some(self.scopes),
        }
    }
}

#[derive(Debug, Subcommand)]
enum MappingsCommand {
    /// List mappings, optionally filtered.
    List(MappingsList),
}

// `mappings list`.
#[derive(Debug, Args)]
struct MappingsList {
    /// Only this ad tech's.
    #[arg(long)]
    adtech: Option<String>,
    /// Only this cloud's.
    #[arg(long)]
    cloud: Option<String>,
    /// Only this issuer's.
    #[arg(long)]
    issuer: Option<String>,
}

impl MappingsList {
    /// The query of `GET /v1/admin/mappings`.
    fn query(self) -> MappingQuery {
        MappingQuery {
            adtech: self.adtech,
            cloud: self.cloud,
            issuer: self.issuer,
        }
    }
}

/// `--kind` and `--cloud`: an issuer kind by name, with the names listed in
/// `--help` and anything else refused as bad usage.
fn issuer_kind() -> impl TypedValueParser<Value = IssuerKind> {
    const KINDS: [IssuerKind; 4] = [
        IssuerKind::Aws,
        IssuerKind::Gcp,
        IssuerKind::Azure,
        IssuerKind::Oidc,
    ];
    PossibleValuesParser::new(KINDS.map(IssuerKind::as_str)).try_map(|name| {
        KINDS
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or("not an issuer kind")
    })
}

/// `--condition`: only the syntax; the server checks the claim path and
/// value like any other client's.
fn parse_condition(raw: &str) -> Result<Condition, String> {
    let (claim, op, value) = if let Some((c, v)) = raw.split_once("^=") {
        (c, ConditionOp::Prefix, json!(v))
    } else if let Some((c, v)) = raw.split_once("@=") {
        (c, ConditionOp::In, json!(v.split(',').collect::<Vec<_>>()))
    } else if let Some((c, v)) = raw.split_once('=') {
        (c, ConditionOp::Eq, json!(v))
    } else {
        return Err("expected CLAIM=VALUE, CLAIM^=PREFIX or CLAIM@=A,B".into());
    };
    Ok(Condition {
        claim: claim.to_owned(),
        op,
        value,
    })
}

/// A request body as `Client::call` sends it.
fn body(request: &impl Serialize) -> Result<Value, Failure> {
    serde_json::to_value(request).map_err(|e| Failure(format!("cannot encode the request: {e}")))
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

async fn execute(client: Client, json_out: bool, command: OnboardCommand) -> Result<(), Failure> {
    use reqwest::Method;
    match command {
        OnboardCommand::Issuer(IssuerCommand::Add(add)) => {
            let request = add.request();
            let created = client
                .call(Method::POST, "/v1/admin/issuers", Some(body(&request)?))
                .await?;
            let summary = format!("trusted issuer {}", request.issuer);
            print_record(json_out, &created, &summary);
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
        OnboardCommand::Adtech(AdtechCommand::Create(create)) => {
            let request = create.request();
            let created = client
                .call(Method::POST, "/v1/admin/adtechs", Some(body(&request)?))
                .await?;
            print_record(
                json_out,
                &created,
                &format!("created ad tech {}", request.id),
            );
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
            let updated = client
                .call(
                    Method::PATCH,
                    &format!("/v1/admin/adtechs/{id}"),
                    Some(body(&DISABLE)?),
                )
                .await?;
            print_record(json_out, &updated, &format!("disabled ad tech {id}"));
        }
        OnboardCommand::Identity(IdentityCommand::Add(add)) => {
            let adtech = add.adtech.clone();
            let request = add.request();
            let created = client
                .call(
                    Method::POST,
                    &format!("/v1/admin/adtechs/{adtech}/identities"),
                    Some(body(&request)?),
                )
                .await?;
            print_record(
                json_out,
                &created,
                &format!("added identity {} to {adtech}", text(&created["id"])),
            );
        }
        OnboardCommand::Identity(IdentityCommand::List { adtech }) => {
            let query = MappingQuery {
                adtech,
                ..MappingQuery::default()
            };
            list_mappings(&client, json_out, &query).await?;
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
        OnboardCommand::Mappings(MappingsCommand::List(list)) => {
            list_mappings(&client, json_out, &list.query()).await?;
        }
    }
    Ok(())
}

async fn list_mappings(
    client: &Client,
    json_out: bool,
    query: &MappingQuery,
) -> Result<(), Failure> {
    let list = client
        .call(
            reqwest::Method::GET,
            &format!("/v1/admin/mappings{}", query.query_string()),
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
    use axum::extract::{FromRequest, FromRequestParts};
    use clap::Parser;
    use serde::de::DeserializeOwned;

    use super::*;
    use crate::http::{ApiJson, ApiQuery};

    #[test]
    fn conditions_parse_into_the_api_shape() {
        let parsed = |raw| serde_json::to_value(parse_condition(raw).expect(raw)).expect("json");
        assert_eq!(
            parsed("google.compute_engine.project_id=acme"),
            json!({"claim": "google.compute_engine.project_id", "op": "eq", "value": "acme"})
        );
        assert_eq!(
            parsed("email^=svc-"),
            json!({"claim": "email", "op": "prefix", "value": "svc-"})
        );
        assert_eq!(
            parsed("tid@=a,b"),
            json!({"claim": "tid", "op": "in", "value": ["a", "b"]})
        );
        assert!(parse_condition("no-operator").is_err());
    }

    /// `keyferry onboard …` without the connection options.
    #[derive(Debug, Parser)]
    struct Onboard {
        #[command(subcommand)]
        command: OnboardCommand,
    }

    /// `line` (words split at spaces) as clap parses it after `onboard`.
    fn try_parse(line: &str) -> Result<OnboardCommand, clap::Error> {
        Onboard::try_parse_from(std::iter::once("onboard").chain(line.split_whitespace()))
            .map(|parsed| parsed.command)
    }

    fn parse(line: &str) -> OnboardCommand {
        try_parse(line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    /// `request` as `Client::call` puts it on the wire, read back by the
    /// extractor the handler uses.
    async fn as_the_handler_reads<T: Serialize + DeserializeOwned>(request: &T) -> T {
        let bytes = serde_json::to_vec(&body(request).ok().expect("encode")).expect("bytes");
        let http = axum::http::Request::builder()
            .method("POST")
            .uri("/")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(bytes))
            .expect("request");
        match ApiJson::<T>::from_request(http, &()).await {
            Ok(ApiJson(read)) => read,
            Err(e) => panic!("the handler refuses the CLI's body: {e}"),
        }
    }

    /// `query` as the CLI appends it to the path, read back by the
    /// extractor the handler uses.
    async fn query_as_the_handler_reads(query: &MappingQuery) -> MappingQuery {
        let uri = format!("/v1/admin/mappings{}", query.query_string());
        let (mut parts, ()) = axum::http::Request::builder()
            .uri(&uri)
            .body(())
            .expect("request")
            .into_parts();
        match ApiQuery::<MappingQuery>::from_request_parts(&mut parts, &()).await {
            Ok(ApiQuery(read)) => read,
            Err(e) => panic!("the handler refuses the CLI's query {uri}: {e}"),
        }
    }

    #[tokio::test]
    async fn every_request_the_cli_builds_is_read_back_unchanged_by_its_handler() {
        for line in [
            "issuer add --name eks --kind aws --issuer https://oidc.eks.us-east-1.amazonaws.com/id/ABC \
             --audience sts.amazonaws.com",
            "issuer add --name ms --kind azure --issuer https://login.microsoftonline.com/t/v2.0 \
             --audience api://kf --jwks-uri https://login.microsoftonline.com/common/discovery/v2.0/keys",
        ] {
            let OnboardCommand::Issuer(IssuerCommand::Add(add)) = parse(line) else {
                panic!("{line}")
            };
            let request = add.request();
            assert_eq!(as_the_handler_reads(&request).await, request, "{line}");
        }

        for line in [
            "adtech create --id acme --name Acme",
            "adtech create --id acme --name Acme --site https://acme.example \
             --site https://b.acme.example:8443 --use-case aggregation-service",
            // Invalid values travel unchanged: the server's rules answer them.
            "adtech create --id BAD --name x --site http://x --use-case Not_Ok",
        ] {
            let OnboardCommand::Adtech(AdtechCommand::Create(create)) = parse(line) else {
                panic!("{line}")
            };
            let request = create.request();
            assert_eq!(as_the_handler_reads(&request).await, request, "{line}");
        }

        let OnboardCommand::Adtech(AdtechCommand::Disable { .. }) = parse("adtech disable acme")
        else {
            panic!("adtech disable")
        };
        assert_eq!(as_the_handler_reads(&DISABLE).await, DISABLE);

        for line in [
            "identity add --adtech acme --cloud gcp --issuer https://accounts.google.com \
             --subject 112233445566778899001",
            "identity add --adtech acme --cloud gcp --issuer https://accounts.google.com \
             --subject 112233445566778899001 --condition google.compute_engine.project_id=acme \
             --condition email^=svc- --condition tid@=a,b --scope keys:read",
        ] {
            let OnboardCommand::Identity(IdentityCommand::Add(add)) = parse(line) else {
                panic!("{line}")
            };
            let request = add.request();
            assert_eq!(as_the_handler_reads(&request).await, request, "{line}");
        }

        for line in [
            "mappings list",
            "mappings list --adtech acme --cloud gcp --issuer https://accounts.google.com/?a=b&c=d%20e",
        ] {
            let OnboardCommand::Mappings(MappingsCommand::List(list)) = parse(line) else {
                panic!("{line}")
            };
            let query = list.query();
            assert_eq!(query_as_the_handler_reads(&query).await, query, "{line}");
        }
    }

    #[test]
    fn the_cli_leaves_the_server_defaults_to_the_server() {
        let OnboardCommand::Identity(IdentityCommand::Add(add)) =
            parse("identity add --adtech acme --cloud oidc --issuer https://i.example --subject s")
        else {
            panic!("identity add")
        };
        assert_eq!(
            body(&add.request()).ok().expect("encode"),
            json!({"cloud": "oidc", "issuer": "https://i.example", "subject": "s", "conditions": []}),
            "no --scope sends no scopes"
        );
        let OnboardCommand::Issuer(IssuerCommand::Add(add)) =
            parse("issuer add --name n --kind oidc --issuer https://i.example --audience a")
        else {
            panic!("issuer add")
        };
        assert_eq!(
            body(&add.request()).ok().expect("encode"),
            json!({"name": "n", "kind": "oidc", "issuer": "https://i.example", "audience": "a"})
        );
    }

    #[test]
    fn kinds_outside_the_four_and_urls_that_do_not_parse_are_bad_usage() {
        for line in [
            "issuer add --name n --kind mars --issuer i --audience a",
            "issuer add --name n --kind oidc --issuer i --audience a --jwks-uri not-a-url",
            "identity add --adtech a --cloud mars --issuer x --subject y",
        ] {
            // Exit code 2: DESIGN §11's bad usage.
            assert_eq!(
                try_parse(line).map(|_| ()).map_err(|e| e.exit_code()),
                Err(2),
                "{line}"
            );
        }
    }
}
