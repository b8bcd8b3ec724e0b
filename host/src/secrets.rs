//! Account secrets at rest: sealed with ChaCha20-Poly1305 under a master key
//! from `MDMHUB_MASTER_KEY` or a key file created with mode 0600 in the data
//! directory. The account id is the associated data, so a sealed blob copied
//! onto another account does not open.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use crate::account::Secret;

/// The environment variable holding a base64 master key (32 bytes).
pub const MASTER_KEY_ENV: &str = "MDMHUB_MASTER_KEY";
/// The key file's name inside the data directory.
pub const KEY_FILE: &str = "master.key";
/// Format tag of sealed blobs, so the scheme can change later.
const VERSION: &str = "v1:";

/// Why secrets could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The master key is malformed.
    #[error("{0}")]
    BadKey(String),
    /// The key file could not be read or created.
    #[error("master key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A sealed blob did not open: wrong master key, or tampered data.
    #[error(
        "stored secrets do not open with this master key (was MDMHUB_MASTER_KEY or {KEY_FILE} changed?)"
    )]
    Open,
}

/// The key that seals every account's secrets.
pub struct MasterKey(Key);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

impl MasterKey {
    /// The key from `MDMHUB_MASTER_KEY`, else from `<data_dir>/master.key`,
    /// creating that file (mode 0600) with a random key on first use unless
    /// `shared` (a database several machines use needs one key for all of
    /// them, so it must come from the environment).
    pub fn load(data_dir: &Path, shared: bool) -> Result<Self, SecretsError> {
        if let Ok(text) = std::env::var(MASTER_KEY_ENV) {
            return Self::parse(&text)
                .map_err(|e| SecretsError::BadKey(format!("{MASTER_KEY_ENV}: {e}")));
        }
        if shared && !data_dir.join(KEY_FILE).exists() {
            return Err(SecretsError::BadKey(format!(
                "with PostgreSQL every replica must use the same master key: set {MASTER_KEY_ENV} \
                 (e.g. from `openssl rand -base64 32`) on each"
            )));
        }
        let path = data_dir.join(KEY_FILE);
        let io = |source| SecretsError::KeyFile {
            path: path.clone(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text)
                .map_err(|e| SecretsError::BadKey(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir).map_err(io)?;
                let key = ChaCha20Poly1305::generate_key(&mut OsRng);
                match write_private(&path, &format!("{}\n", B64.encode(key))) {
                    Ok(()) => Ok(Self(key)),
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::load(data_dir, shared)
                    }
                    Err(e) => Err(io(e)),
                }
            }
            Err(e) => Err(io(e)),
        }
    }

    /// A key from its base64 text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bytes = B64
            .decode(text.trim())
            .map_err(|e| format!("not base64: {e}"))?;
        if bytes.len() != 32 {
            return Err(format!(
                "a master key is 32 bytes, this one is {} (make one with `openssl rand -base64 32`)",
                bytes.len()
            ));
        }
        Ok(Self(*Key::from_slice(&bytes)))
    }

    /// A keyed SHA-256 of `data` in hex: a fingerprint that cannot be
    /// brute-forced back to short secrets in it (a PIN) without the key.
    pub fn fingerprint(&self, data: &[u8]) -> String {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(b"mdmhub-fingerprint\0");
        h.update(self.0.as_slice());
        h.update(data);
        hex::encode(h.finalize())
    }

    /// Seals `secrets` for the account `account_id`.
    pub fn seal(&self, account_id: &str, secrets: &BTreeMap<String, Secret>) -> String {
        let plain: BTreeMap<&str, &str> = secrets
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose()))
            .collect();
        let plain = serde_json::to_vec(&plain).expect("a string map serializes");
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = ChaCha20Poly1305::new(&self.0)
            .encrypt(
                &nonce,
                Payload {
                    msg: &plain,
                    aad: account_id.as_bytes(),
                },
            )
            .expect("encryption into a Vec cannot fail");
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&sealed);
        format!("{VERSION}{}", B64.encode(blob))
    }

    /// Opens what [`seal`](Self::seal) made for `account_id`.
    pub fn open(
        &self,
        account_id: &str,
        sealed: &str,
    ) -> Result<BTreeMap<String, Secret>, SecretsError> {
        let blob = sealed
            .strip_prefix(VERSION)
            .and_then(|b| B64.decode(b).ok())
            .filter(|b| b.len() > 12)
            .ok_or(SecretsError::Open)?;
        let (nonce, data) = blob.split_at(12);
        let plain = ChaCha20Poly1305::new(&self.0)
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: data,
                    aad: account_id.as_bytes(),
                },
            )
            .map_err(|_| SecretsError::Open)?;
        let map: BTreeMap<String, String> =
            serde_json::from_slice(&plain).map_err(|_| SecretsError::Open)?;
        Ok(map.into_iter().map(|(k, v)| (k, Secret::new(v))).collect())
    }
}

/// Creates `path` with `contents`, readable only by its owner. The file is
/// written under a temporary name and then linked into place, so a process
/// starting at the same time never reads a half-written key; if `path`
/// exists already this fails with `AlreadyExists`.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    linked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> BTreeMap<String, Secret> {
        [("api_token".to_string(), Secret::new("tok-123"))].into()
    }

    #[test]
    fn sealed_secrets_open_only_for_their_account_and_key() {
        let key = MasterKey::parse(&B64.encode([7u8; 32])).unwrap();
        let sealed = key.seal("acc1", &secrets());
        assert!(!sealed.contains("tok-123"));
        assert_ne!(
            sealed,
            key.seal("acc1", &secrets()),
            "fresh nonce each time"
        );
        let opened = key.open("acc1", &sealed).unwrap();
        assert_eq!(opened["api_token"].expose(), "tok-123");
        assert!(matches!(key.open("acc2", &sealed), Err(SecretsError::Open)));
        let other = MasterKey::parse(&B64.encode([8u8; 32])).unwrap();
        assert!(matches!(
            other.open("acc1", &sealed),
            Err(SecretsError::Open)
        ));
        assert!(MasterKey::parse("c2hvcnQ=").is_err());
    }

    #[test]
    fn the_key_file_is_created_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("mdmhub-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // Only meaningful when the environment does not supply the key.
        if std::env::var(MASTER_KEY_ENV).is_ok() {
            return;
        }
        assert!(
            MasterKey::load(&dir, true).is_err(),
            "no key for a shared database"
        );
        let a = MasterKey::load(&dir, false).unwrap();
        let b = MasterKey::load(&dir, true).unwrap();
        let sealed = a.seal("x", &secrets());
        assert!(b.open("x", &sealed).is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
