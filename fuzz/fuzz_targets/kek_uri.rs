//! KEK URIs (`aws-kms://`, `gcp-kms://`, `azure-kv://`, `local-kek://`), as
//! configuration and the key endpoints' `keyEncryptionKeyUri` carry them:
//! whatever parses must print back to a URI that parses to the same KEK.
#![no_main]

use cloud_adapters::KekUri;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(uri) = text.parse::<KekUri>() {
        let printed = uri.to_string();
        let again: KekUri = printed.parse().expect("a printed KEK URI parses");
        assert_eq!(again.to_string(), printed, "printing is stable");
    }
});
