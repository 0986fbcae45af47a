//! Drives the operator OIDC provider in `tests/operator-idp/` (the npm
//! package `oidc-provider` with the device authorization grant enabled): the
//! issuer `keyferry login` signs in at, and the browser of the operator who
//! approves the sign-in.

use serde_json::json;

use crate::node::NodeServer;

/// A running `node tests/operator-idp/server.mjs`; killed when dropped.
/// Its accounts: `alice` (role `admin`), `audrey` (`auditor`), `mallory`
/// (no role), in the claim `keyferry_roles`, released with scope `keyferry`.
pub struct OperatorIdp {
    server: NodeServer,
    /// The issuer URL, `http://127.0.0.1:<port>`.
    pub issuer: String,
    /// The one client, public, allowed the device grant: `keyferry-cli`.
    pub client_id: String,
}

impl OperatorIdp {
    /// Starts the provider, or returns `None` (test skipped) when node or the
    /// npm package is missing outside CI.
    pub async fn start() -> Option<Self> {
        let (server, ready) =
            NodeServer::start("operator-idp", "oidc-provider", "operator OIDC provider").await?;
        Some(Self {
            server,
            issuer: ready["issuer"].as_str().expect("issuer").to_owned(),
            client_id: ready["client_id"].as_str().expect("client_id").to_owned(),
        })
    }

    /// Opens `verification_uri_complete` as `account` would in a browser and
    /// confirms the code (or refuses the sign-in when `deny`); returns the
    /// title of the last page shown (`Sign-in Success` when it worked).
    pub async fn approve(
        &mut self,
        verification_uri_complete: &str,
        account: &str,
        deny: bool,
    ) -> String {
        let reply = self
            .server
            .call(json!({
                "cmd": "approve",
                "url": verification_uri_complete,
                "account": account,
                "deny": deny,
            }))
            .await;
        reply["page"].as_str().expect("page").to_owned()
    }
}
