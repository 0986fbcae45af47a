use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use zeroize::Zeroizing;

use crate::{KekUri, KeyWrapper, WrapError};

/// Format byte in front of every local ciphertext, so the layout can change
/// later without guessing.
const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;

/// A dev-only KEK: AES-256-GCM with a random 256-bit key in a file.
///
/// The file is created with mode 0600 inside a 0700 directory; an existing
/// file that others can read is refused, as ssh refuses a readable private
/// key. Ciphertext layout: `0x01 ‖ nonce (12) ‖ ciphertext ‖ tag (16)`.
pub struct LocalKek {
    uri: KekUri,
    path: PathBuf,
    cipher: Aes256Gcm,
}

impl fmt::Debug for LocalKek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key: only where it lives.
        f.debug_struct("LocalKek")
            .field("uri", &self.uri.to_string())
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl LocalKek {
    /// Opens `<dir>/<name>.key`, creating it with a fresh random key if absent.
    pub async fn open_or_create(dir: &Path, name: &str) -> Result<Self, WrapError> {
        let uri: KekUri = format!("local-kek://{name}").parse()?;
        let dir = dir.to_owned();
        let name = name.to_owned();
        tokio::task::spawn_blocking(move || Self::open_blocking(uri, &dir, &name))
            .await
            .map_err(|e| WrapError::Misconfigured(format!("local KEK task failed: {e}")))?
    }

    fn open_blocking(uri: KekUri, dir: &Path, name: &str) -> Result<Self, WrapError> {
        let io = |what: &str, e: std::io::Error| {
            WrapError::Misconfigured(format!("{what} {}: {e}", dir.display()))
        };
        create_private_dir(dir).map_err(|e| io("cannot create KEK directory", e))?;
        let path = dir.join(format!("{name}.key"));
        let key = match read_key_file(&path) {
            Ok(key) => key,
            Err(KeyFileError::Missing) => match create_key_file(&path) {
                Ok(key) => key,
                // Another process created it between our read and create.
                Err(KeyFileError::Exists) => {
                    read_key_file(&path).map_err(|e| e.into_wrap(&path))?
                }
                Err(e) => return Err(e.into_wrap(&path)),
            },
            Err(e) => return Err(e.into_wrap(&path)),
        };
        let cipher = Aes256Gcm::new_from_slice(key.as_slice()).map_err(|_| {
            WrapError::Misconfigured(format!("{} is not a 256-bit key", path.display()))
        })?;
        Ok(LocalKek { uri, path, cipher })
    }

    /// The key file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

enum KeyFileError {
    Missing,
    Exists,
    TooOpen(u32),
    WrongLength,
    Io(std::io::Error),
}

impl KeyFileError {
    fn into_wrap(self, path: &Path) -> WrapError {
        let p = path.display();
        WrapError::Misconfigured(match self {
            KeyFileError::Missing => format!("{p} does not exist"),
            KeyFileError::Exists => format!("{p} appeared while being created"),
            KeyFileError::TooOpen(mode) => {
                format!(
                    "{p} has mode {mode:o}; it must not be readable by group or others (chmod 600)"
                )
            }
            KeyFileError::WrongLength => format!("{p} must hold exactly {KEY_LEN} bytes"),
            KeyFileError::Io(e) => format!("{p}: {e}"),
        })
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

fn read_key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(KeyFileError::Missing),
        Err(e) => return Err(KeyFileError::Io(e)),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file
            .metadata()
            .map_err(KeyFileError::Io)?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyFileError::TooOpen(mode));
        }
    }
    let mut key = Zeroizing::new(Vec::with_capacity(KEY_LEN + 1));
    // Read one byte more than a key so a longer file is caught, not truncated.
    Read::by_ref(&mut file)
        .take(KEY_LEN as u64 + 1)
        .read_to_end(&mut key)
        .map_err(KeyFileError::Io)?;
    if key.len() != KEY_LEN {
        return Err(KeyFileError::WrongLength);
    }
    Ok(key)
}

fn create_key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = match options.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Err(KeyFileError::Exists),
        Err(e) => return Err(KeyFileError::Io(e)),
    };
    let key = Zeroizing::new(Aes256Gcm::generate_key(OsRng).to_vec());
    file.write_all(&key).map_err(KeyFileError::Io)?;
    file.sync_all().map_err(KeyFileError::Io)?;
    tracing::info!(path = %path.display(), "created local KEK (dev profile only)");
    Ok(key)
}

#[async_trait]
impl KeyWrapper for LocalKek {
    fn kek_uri(&self) -> &KekUri {
        &self.uri
    }

    async fn wrap(&self, plaintext: &[u8]) -> Result<Vec<u8>, WrapError> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, plaintext)
            .map_err(|_| WrapError::Misconfigured("AES-GCM refused the plaintext size".into()))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    async fn unwrap(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, WrapError> {
        let Some((&FORMAT_V1, rest)) = ciphertext.split_first() else {
            return Err(WrapError::InvalidCiphertext);
        };
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(WrapError::InvalidCiphertext);
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map(Zeroizing::new)
            .map_err(|_| WrapError::InvalidCiphertext)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{WrapperContext, open_wrapper};

    async fn kek(dir: &Path, name: &str) -> LocalKek {
        LocalKek::open_or_create(dir, name)
            .await
            .expect("open local KEK")
    }

    #[tokio::test]
    async fn wrap_then_unwrap_returns_the_plaintext() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kek = kek(dir.path(), "storage").await;
        let secret = b"split A of some keyset";
        let wrapped = kek.wrap(secret).await.expect("wrap");
        assert_ne!(&wrapped[1 + NONCE_LEN..][..secret.len()], secret.as_slice());
        assert_eq!(
            kek.unwrap(&wrapped).await.expect("unwrap").as_slice(),
            secret
        );
        // A fresh nonce each time: the same plaintext never wraps the same way.
        assert_ne!(kek.wrap(secret).await.expect("wrap"), wrapped);
        kek.probe().await.expect("probe");
    }

    #[tokio::test]
    async fn the_key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keks = dir.path().join("keks");
        let first = kek(&keks, "storage").await;
        let wrapped = first.wrap(b"secret").await.expect("wrap");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
            assert_eq!(mode(first.path()), 0o600);
            assert_eq!(mode(&keks), 0o700);
        }
        assert_eq!(std::fs::read(first.path()).expect("read").len(), KEY_LEN);
        let reopened = kek(&keks, "storage").await;
        assert_eq!(
            reopened.unwrap(&wrapped).await.expect("unwrap").as_slice(),
            b"secret"
        );
    }

    #[tokio::test]
    async fn a_different_key_cannot_unwrap() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = kek(dir.path(), "a").await;
        let b = kek(dir.path(), "b").await;
        let wrapped = a.wrap(b"secret").await.expect("wrap");
        assert!(matches!(
            b.unwrap(&wrapped).await,
            Err(WrapError::InvalidCiphertext)
        ));
    }

    #[tokio::test]
    async fn tampered_or_truncated_ciphertexts_fail_cleanly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kek = kek(dir.path(), "storage").await;
        let wrapped = kek.wrap(b"secret").await.expect("wrap");
        for i in 0..wrapped.len() {
            for bit in [0x01u8, 0x80] {
                let mut flipped = wrapped.clone();
                flipped[i] ^= bit;
                assert!(
                    matches!(
                        kek.unwrap(&flipped).await,
                        Err(WrapError::InvalidCiphertext)
                    ),
                    "bit flip at byte {i} was accepted"
                );
            }
        }
        for len in [0, 1, 12, 1 + NONCE_LEN + TAG_LEN - 1, wrapped.len() - 1] {
            assert!(matches!(
                kek.unwrap(&wrapped[..len]).await,
                Err(WrapError::InvalidCiphertext)
            ));
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_key_file_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let kek = kek(dir.path(), "storage").await;
        std::fs::set_permissions(kek.path(), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        let err = LocalKek::open_or_create(dir.path(), "storage")
            .await
            .expect_err("refused");
        assert!(err.to_string().contains("mode 644"), "{err}");
    }

    #[tokio::test]
    async fn a_key_file_of_the_wrong_length_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kek = kek(dir.path(), "storage").await;
        let path = kek.path().to_owned();
        let mut key = std::fs::read(&path).expect("read");
        key.push(0);
        std::fs::write(&path, &key).expect("write");
        let err = LocalKek::open_or_create(dir.path(), "storage")
            .await
            .expect_err("refused");
        assert!(err.to_string().contains("exactly 32 bytes"), "{err}");
    }

    #[tokio::test]
    async fn the_factory_refuses_local_keks_outside_dev() {
        let dir = tempfile::tempdir().expect("tempdir");
        let uri: KekUri = "local-kek://storage".parse().expect("uri");
        let mut ctx = WrapperContext {
            local_kek_dir: dir.path().to_owned(),
            allow_local: false,
            endpoint: None,
        };
        assert!(matches!(
            open_wrapper(&uri, &ctx).await,
            Err(WrapError::Misconfigured(_))
        ));
        ctx.allow_local = true;
        let wrapper = open_wrapper(&uri, &ctx)
            .await
            .expect("dev allows local KEKs");
        assert_eq!(wrapper.kek_uri(), &uri);
    }

    #[cfg(feature = "aws")]
    #[tokio::test]
    async fn the_factory_opens_cloud_keks_with_ambient_credentials_without_calling_them() {
        // Opening makes no network call: credentials are looked up at the
        // first wrap, so this works with no cloud anywhere.
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = WrapperContext {
            local_kek_dir: dir.path().to_owned(),
            allow_local: false,
            endpoint: Some("http://127.0.0.1:9".into()),
        };
        let aws: KekUri = "aws-kms://arn:aws:kms:eu-west-3:111122223333:key/k"
            .parse()
            .expect("uri");
        let wrapper = open_wrapper(&aws, &ctx).await.expect("opens");
        assert_eq!(wrapper.kek_uri(), &aws);
    }
}
