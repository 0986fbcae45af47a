//! The broker's own federated credential, as every key endpoint's `Caller`
//! and a peer coordinator verify it: shape, header, `kid`, ES256 signature,
//! then the claims.
#![no_main]

use std::sync::OnceLock;
use std::time::SystemTime;

use idp::CredentialVerifier;
use libfuzzer_sys::fuzz_target;

fn verifier() -> &'static CredentialVerifier {
    static VERIFIER: OnceLock<CredentialVerifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        // A P-256 public key (the RFC 7515 A.3 example), published as `k1`.
        let jwks = serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": "k1",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
        }]});
        CredentialVerifier::from_jwks("https://keyferry.example", &jwks)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let _ = verifier().verify(
        token,
        "https://keyferry.example",
        "keys:read",
        SystemTime::now(),
    );
});
