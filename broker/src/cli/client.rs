//! The admin API client shared by `keyferry onboard` and `keyferry keys`.
//!
//! The server comes from `--server`, `KEYFERRY_SERVER`, or the dev default
//! `http://127.0.0.1:8080`; the bearer token from `--token-file`,
//! `KEYFERRY_TOKEN`, the token `keyferry login` cached, or the dev bootstrap
//! file `./keyferry-data/admin-token`, in that order.
//! A refusal prints the server's problem detail and exits 1.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use serde_json::Value;
use zeroize::Zeroizing;

/// Where the admin API is and how to authenticate.
#[derive(Debug, Args)]
pub(crate) struct Connection {
    /// Broker base URL.
    #[arg(
        long,
        env = "KEYFERRY_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    server: String,
    /// File holding an operator bearer token (default: the token cached by
    /// `keyferry login`, else ./keyferry-data/admin-token).
    #[arg(long, global = true)]
    token_file: Option<PathBuf>,
    /// The token cache of `keyferry login` (default:
    /// `$XDG_CONFIG_HOME/keyferry/operator-token.json`).
    #[arg(long, env = "KEYFERRY_TOKEN_CACHE", global = true)]
    token_cache: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
}

impl Connection {
    /// The broker base URL.
    pub(crate) fn server(&self) -> &str {
        &self.server
    }

    /// Whether `--json` was given.
    pub(crate) fn json(&self) -> bool {
        self.json
    }
}

/// A refusal or failure to report; exit code 1.
pub(crate) struct Failure(pub(crate) String);

pub(crate) struct Client {
    http: reqwest::Client,
    server: String,
    /// The operator's bearer token: zeroized when the command ends.
    token: Zeroizing<String>,
}

impl Client {
    pub(crate) async fn call(
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
            .bearer_auth(self.token.as_str());
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

/// Every copy of the token this reads is zeroized once dropped (the
/// untrimmed text included).
fn read_token(connection: &Connection) -> Result<Zeroizing<String>, Failure> {
    if let Some(file) = &connection.token_file {
        return read_token_file(file);
    }
    if let Ok(token) = std::env::var("KEYFERRY_TOKEN") {
        let token = Zeroizing::new(token);
        return Ok(Zeroizing::new(token.trim().to_owned()));
    }
    if let Some(cache) = super::login::cache_path(connection.token_cache.as_deref())
        && let Some(cached) = super::login::read_cache(&cache)?
    {
        return Ok(cached.token);
    }
    read_token_file(Path::new("./keyferry-data/admin-token")).map_err(|Failure(message)| {
        Failure(format!(
            "{message} (run `keyferry login`, or use --token-file or KEYFERRY_TOKEN)"
        ))
    })
}

fn read_token_file(path: &Path) -> Result<Zeroizing<String>, Failure> {
    std::fs::read_to_string(path)
        .map(|t| {
            let t = Zeroizing::new(t);
            Zeroizing::new(t.trim().to_owned())
        })
        .map_err(|e| {
            Failure(format!(
                "cannot read the token from {}: {e}",
                path.display()
            ))
        })
}

/// Connects and runs `body` on a small runtime; maps failures to exit 1.
pub(crate) fn block_on_client<F, Fut>(connection: Connection, body: F) -> ExitCode
where
    F: FnOnce(Client, bool) -> Fut,
    Fut: std::future::Future<Output = Result<(), Failure>>,
{
    block_on(async {
        let client = Client {
            http: reqwest::Client::new(),
            server: connection.server.clone(),
            token: read_token(&connection)?,
        };
        body(client, connection.json).await
    })
}

/// Runs `command` on a small runtime: exit 0, or its failure printed and exit 1.
pub(crate) fn block_on(
    command: impl std::future::Future<Output = Result<(), Failure>>,
) -> ExitCode {
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
    match runtime.block_on(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("keyferry: {message}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub(crate) fn join(v: &Value) -> String {
    v.as_array()
        .map(|a| a.iter().map(text).collect::<Vec<_>>().join(","))
        .unwrap_or_default()
}

pub(crate) fn print_record(json_out: bool, record: &Value, summary: &str) {
    if json_out {
        println!("{record}");
    } else {
        println!("{summary}");
    }
}

pub(crate) fn print_table(json_out: bool, raw: &Value, header: &[&str], rows: &[Vec<String>]) {
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
