//! The admin API's request bodies (`onboarding` types, shared by the
//! broker's handlers and `keyferry onboard`): JSON, then the field rules.
//! The first byte picks the body type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onboarding::{AdTechRequest, IdentityRequest, IssuerRequest};

fuzz_target!(|data: &[u8]| {
    let Some((kind, body)) = data.split_first() else {
        return;
    };
    match kind % 3 {
        0 => {
            if let Ok(request) = serde_json::from_slice::<AdTechRequest>(body) {
                let _ = request.validate();
            }
        }
        1 => {
            if let Ok(request) = serde_json::from_slice::<IdentityRequest>(body) {
                let _ = request.validate(&["keys:read", "keys:release"]);
            }
        }
        _ => {
            if let Ok(request) = serde_json::from_slice::<IssuerRequest>(body) {
                let _ = request.validate(false);
            }
        }
    }
});
