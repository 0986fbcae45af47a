//! `keyferry.toml` (the `keyferry-config` crate): TOML, the typed keys, then
//! the profile rules. A configuration that loads must also render for
//! `config check` (secrets redacted) without the renderer giving up.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = keyferry_config::from_toml(text) {
        let shown = config.redacted_toml();
        assert!(
            !shown.starts_with("# cannot render"),
            "a loaded configuration does not render: {shown}"
        );
    }
});
