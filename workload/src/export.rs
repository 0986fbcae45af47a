//! `--export-keyset DIR`: writes each key's recombined Tink private keyset (binary protobuf)
//! and its JSON public keyset, for interoperability tests with Google Tink.
//!
//! Dev profile only, twice over: this function refuses any other profile, and a production
//! fetch never keeps the serialized keyset in the first place. Files are created 0600 in a
//! 0700 directory.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crate::WorkloadError;
use crate::config::Profile;
use crate::keyset::KeySet;

fn export_err(path: &Path, message: impl std::fmt::Display) -> WorkloadError {
    WorkloadError::Export {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), WorkloadError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| export_err(path, e))?;
    // `mode` applies only to a file created now; an existing one keeps its bits otherwise.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| export_err(path, e))?;
    file.write_all(bytes).map_err(|e| export_err(path, e))?;
    file.sync_all().map_err(|e| export_err(path, e))
}

/// Writes `<id>.keyset.bin` (Tink `Keyset` protobuf, secret) and `<id>.public.json` (Tink
/// JSON public keyset) for every live key into `dir`, and returns the paths written.
pub fn export_keyset(
    keys: &KeySet,
    dir: &Path,
    profile: Profile,
) -> Result<Vec<PathBuf>, WorkloadError> {
    if profile != Profile::Dev {
        return Err(WorkloadError::DevOnly("--export-keyset"));
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| export_err(dir, e))?;
    let mut written = Vec::new();
    for key in keys.keys() {
        let Some(bytes) = &key.tink_bytes else {
            return Err(export_err(
                dir,
                format!(
                    "key `{}` was fetched without its serialized keyset (not in the dev profile)",
                    key.id()
                ),
            ));
        };
        // Key ids were checked to be [A-Za-z0-9_-] when parsed: safe file names.
        let private = dir.join(format!("{}.keyset.bin", key.id()));
        write_private(&private, bytes)?;
        let public = dir.join(format!("{}.public.json", key.id()));
        write_private(&public, key.public_keyset_json().as_bytes())?;
        written.push(private);
        written.push(public);
    }
    Ok(written)
}
