//! `keyferry keys verify --server URL`: checks a coordinator's signed public
//! key manifest against its unsigned list, from the outside, needing no
//! token (everything it reads is public).
//!
//! A key passes when both coordinators' signatures verify with the signing
//! keys each coordinator publishes itself (`keysUrl`), the two are different
//! keys, and each coordinator's log proves the entry recording the key's
//! publication under the log key that coordinator serves. A key in the
//! unsigned list without a passing manifest entry fails: that is a key the
//! Type-2 never acknowledged, or one no log records.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use transparency::{CosignedTreeHead, EventKind};
use wire::{ES256, KeyInclusion, KeySignature, PeerKeys, SignedKey, SignedKeyList, TYPE1, TYPE2};

use super::client::{Failure, print_table};

/// What `keys verify` was asked.
pub(crate) struct VerifyRequest {
    pub(crate) server: String,
    pub(crate) use_case: Option<String>,
    /// The Type-2 the keys must be acknowledged by, if pinned.
    pub(crate) type2: Option<String>,
    pub(crate) json: bool,
}

/// Fetches what a check needs, once per URL.
struct Fetcher {
    http: reqwest::Client,
    signing_keys: HashMap<String, Vec<u8>>,
    log_keys: HashMap<String, String>,
}

impl Fetcher {
    async fn get<T: DeserializeOwned>(&self, url: &str) -> Result<T, Failure> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| Failure(format!("cannot reach {url}: {e}")))?;
        if !response.status().is_success() {
            return Err(Failure(format!("{url} answered {}", response.status())));
        }
        response
            .json()
            .await
            .map_err(|e| Failure(format!("{url}: {e}")))
    }

    /// The signing key (SPKI DER) published at `keys_url`.
    async fn signing_key(&mut self, keys_url: &str) -> Result<Vec<u8>, Failure> {
        if let Some(key) = self.signing_keys.get(keys_url) {
            return Ok(key.clone());
        }
        let keys: PeerKeys = self.get(keys_url).await?;
        let key = B64
            .decode(&keys.signing_key)
            .map_err(|e| Failure(format!("{keys_url}: signingKey: {e}")))?;
        self.signing_keys.insert(keys_url.to_owned(), key.clone());
        Ok(key)
    }

    /// The log key `coordinator` serves with its tree heads.
    async fn log_key(&mut self, coordinator: &str) -> Result<String, Failure> {
        if let Some(key) = self.log_keys.get(coordinator) {
            return Ok(key.clone());
        }
        let head: CosignedTreeHead = self.get(&format!("{coordinator}/v1/audit/sth")).await?;
        self.log_keys
            .insert(coordinator.to_owned(), head.head.public_key.clone());
        Ok(head.head.public_key)
    }
}

/// Runs `keys verify`: `Ok` only when every served key passes.
pub(crate) async fn verify(request: VerifyRequest) -> Result<(), Failure> {
    let server = request.server.trim_end_matches('/');
    let (unsigned, signed) = match &request.use_case {
        Some(u) => (
            format!("{server}/.well-known/{u}/v1/public-keys"),
            format!("{server}/.well-known/{u}/v1/public-keys:signed"),
        ),
        None => (
            format!("{server}/v1alpha/publicKeys"),
            format!("{server}/v1alpha/publicKeys:signed"),
        ),
    };
    let mut fetcher = Fetcher {
        http: reqwest::Client::new(),
        signing_keys: HashMap::new(),
        log_keys: HashMap::new(),
    };
    let served: Value = fetcher.get(&unsigned).await?;
    let manifest: SignedKeyList = fetcher.get(&signed).await?;
    let mut rows = Vec::new();
    let mut report = Vec::new();
    let mut failed = 0;
    for key in served["keys"].as_array().into_iter().flatten() {
        let id = key["id"].as_str().unwrap_or_default();
        let material = key["key"].as_str().unwrap_or_default();
        let outcome = match manifest.keys.iter().find(|k| k.id == id) {
            None => Err("not in the signed manifest".to_owned()),
            Some(entry) if entry.key != material => {
                Err("the signed manifest holds another key under this id".to_owned())
            }
            Some(entry) => check_key(&mut fetcher, entry, request.type2.as_deref()).await,
        };
        let verdict = match &outcome {
            Ok(()) => "verified".to_owned(),
            Err(reason) => {
                failed += 1;
                format!("REFUSED: {reason}")
            }
        };
        report.push(json!({"id": id, "verified": outcome.is_ok(), "reason": outcome.err()}));
        rows.push(vec![id.to_owned(), verdict]);
    }
    print_table(
        request.json,
        &json!({ "keys": report }),
        &["KEY", "RESULT"],
        &rows,
    );
    if failed > 0 {
        return Err(Failure(format!("{failed} of {} keys refused", rows.len())));
    }
    Ok(())
}

/// Both signatures and both inclusion proofs of one key.
async fn check_key(
    fetcher: &mut Fetcher,
    key: &SignedKey,
    pinned_type2: Option<&str>,
) -> Result<(), String> {
    let message = keys::public_key_signature_message(&key.id, key.creation_time, &key.key);
    let mut signers = Vec::new();
    for role in [TYPE1, TYPE2] {
        let signature = key
            .signatures
            .iter()
            .find(|s| s.role == role)
            .ok_or_else(|| format!("no {role} signature"))?;
        let spki = check_signature(fetcher, signature, &message).await?;
        signers.push((signature.coordinator.as_str(), spki));
    }
    if signers[0].1 == signers[1].1 || signers[0].0 == signers[1].0 {
        return Err("both signatures are by one coordinator".into());
    }
    if let Some(pinned) = pinned_type2
        && signers[1].0 != pinned.trim_end_matches('/')
    {
        return Err(format!("acknowledged by {}, not {pinned}", signers[1].0));
    }
    for ((role, kind), (coordinator, _)) in [
        (TYPE1, EventKind::KeyActivated),
        (TYPE2, EventKind::KeyReceived),
    ]
    .into_iter()
    .zip(&signers)
    {
        let inclusion = key
            .inclusion
            .iter()
            .find(|i| i.role == role)
            .ok_or_else(|| format!("no {role} log entry"))?;
        check_inclusion(fetcher, inclusion, coordinator, kind, &key.id).await?;
    }
    Ok(())
}

/// Verifies one signature with the key its coordinator publishes; returns
/// that key.
async fn check_signature(
    fetcher: &mut Fetcher,
    signature: &KeySignature,
    message: &[u8],
) -> Result<Vec<u8>, String> {
    let role = &signature.role;
    if signature.alg != ES256 {
        return Err(format!("{role} signature uses {}", signature.alg));
    }
    let expected_url = format!("{}/v1/peer/keys", signature.coordinator);
    if signature.keys_url != expected_url {
        return Err(format!("{role} keysUrl is not its coordinator's"));
    }
    let spki = fetcher
        .signing_key(&signature.keys_url)
        .await
        .map_err(|Failure(e)| e)?;
    if crate::lifecycle::signing_key_id(&spki) != signature.kid {
        return Err(format!(
            "{role} signed with a key its coordinator does not publish"
        ));
    }
    let bytes = B64
        .decode(&signature.signature)
        .map_err(|_| format!("{role} signature is not base64"))?;
    keys::verify_signature(&spki, message, &bytes)
        .map_err(|_| format!("{role} signature does not verify"))?;
    Ok(spki)
}

/// Verifies one coordinator's proof of the key's entry in its log.
async fn check_inclusion(
    fetcher: &mut Fetcher,
    inclusion: &KeyInclusion,
    coordinator: &str,
    kind: EventKind,
    key_id: &str,
) -> Result<(), String> {
    let role = &inclusion.role;
    if inclusion.coordinator != coordinator {
        return Err(format!("{role} log is not the signer's"));
    }
    let entry = inclusion
        .proof
        .verify()
        .map_err(|e| format!("{role} log entry: {e}"))?;
    if entry.kind != kind || entry.details["keyId"].as_str() != Some(key_id) {
        return Err(format!(
            "{role} log entry is not this key's {}",
            kind.as_str()
        ));
    }
    let log_key = fetcher.log_key(coordinator).await.map_err(|Failure(e)| e)?;
    if inclusion.proof.head.public_key != log_key {
        return Err(format!(
            "{role} log entry is proven under another log's key"
        ));
    }
    Ok(())
}
