//! Drives the test IdP in `tests/idp-server/` at the repository root (a
//! wrapper around the npm package `oauth2-mock-server`) over its
//! stdin/stdout JSON-line protocol.

use serde_json::{Value, json};

use crate::node::NodeServer;

/// A running `node tests/idp-server/server.mjs`; killed when dropped.
pub struct NodeIdp {
    server: NodeServer,
    /// The issuer URL, `http://127.0.0.1:<port>`.
    pub issuer: String,
}

impl NodeIdp {
    /// Starts the IdP, or returns `None` (test skipped) when node or the npm package is
    /// missing outside CI.
    pub async fn start() -> Option<Self> {
        let (server, ready) =
            NodeServer::start("idp-server", "oauth2-mock-server", "test IdP").await?;
        let issuer = ready["issuer"].as_str().expect("issuer").to_owned();
        Some(Self { server, issuer })
    }

    async fn call(&mut self, request: Value) -> Value {
        self.server.call(request).await
    }

    /// A token signed by the IdP's current key with `claims` merged into its defaults
    /// (`iss`, `iat`, `exp` = iat + 3600, `nbf`), `header` merged into the JOSE header and
    /// the claims named in `remove` deleted.
    pub async fn token_with(&mut self, claims: Value, header: Value, remove: &[&str]) -> String {
        let reply = self
            .call(json!({"cmd": "token", "claims": claims, "header": header, "remove": remove}))
            .await;
        reply["token"].as_str().expect("token").to_owned()
    }

    /// A token with `claims` and default header.
    pub async fn token(&mut self, claims: Value) -> String {
        self.token_with(claims, json!({}), &[]).await
    }

    /// Generates a new RS256 key that signs later tokens; returns its kid. The old key
    /// stays published.
    pub async fn rotate(&mut self) -> String {
        let reply = self.call(json!({"cmd": "rotate"})).await;
        reply["kid"].as_str().expect("kid").to_owned()
    }

    /// (JWKS requests, discovery requests) served so far.
    pub async fn stats(&mut self) -> (u64, u64) {
        let reply = self.call(json!({"cmd": "stats"})).await;
        (
            reply["jwks"].as_u64().expect("jwks"),
            reply["discovery"].as_u64().expect("discovery"),
        )
    }

    /// Stops the HTTP server (the process keeps answering on stdin).
    pub async fn stop(&mut self) {
        self.call(json!({"cmd": "stop"})).await;
    }
}
