//! A workload's subject token, as `POST /v1/token` receives it: the claimed
//! identity peeked for audit, then the ordered validation. The one trusted
//! issuer's keys are unreachable, so an input that gets that far fails
//! there; what is fuzzed is everything before the network.
#![no_main]

use std::sync::{Arc, OnceLock};

use idp::{
    IssuerConfig, IssuerKind, IssuerRegistry, JwksCache, JwksPolicy, SystemClock, TokenValidator,
    UnverifiedIdentity,
};
use libfuzzer_sys::fuzz_target;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    validator: TokenValidator,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let registry = IssuerRegistry::new(true);
        let mut issuer =
            IssuerConfig::new("fuzz", IssuerKind::Oidc, "http://127.0.0.1:9", "keyferry");
        issuer.jwks_uri = Some("http://127.0.0.1:9/jwks".parse().expect("url"));
        registry.insert(issuer).expect("issuer");
        let policy = JwksPolicy {
            allow_http_loopback: true,
            ..JwksPolicy::default()
        };
        let clock = Arc::new(SystemClock);
        let jwks = JwksCache::new(clock.clone(), policy).expect("jwks cache");
        Fixture {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            validator: TokenValidator::new(registry, jwks, clock),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let _ = UnverifiedIdentity::peek(token);
    let fixture = fixture();
    let _ = fixture.runtime.block_on(fixture.validator.validate(token));
});
