//! API keys: read from a file (a mounted Secret, one key per line) and from
//! [`ENV_API_KEYS`] (comma-separated), presented in `X-API-Key` or `Authorization: Bearer`.
//!
//! Keys are kept only as SHA-256 digests, and a presented key's digest is compared with every
//! configured one in constant time, so neither a key nor its length leaks through timing.
//! Keys are never logged. The file is read again every [`RELOAD_INTERVAL`], so a rotated Secret
//! takes effect without a restart; a file that becomes unreadable or empty keeps the keys it
//! had, so auth is never switched off by accident.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use super::response::ApiError;

/// The environment variable with comma-separated API keys.
pub const ENV_API_KEYS: &str = "TRIBUTARY_GATEWAY_API_KEYS";
/// The header that carries a key (besides `Authorization: Bearer`).
pub const API_KEY_HEADER: &str = "x-api-key";
/// How often the key file is read again.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(10);

/// A set of API keys, as digests.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ApiKeys {
    digests: Vec<[u8; 32]>,
}

// Only the count: digests of short keys could be guessed from a log.
impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} keys)", self.digests.len())
    }
}

impl ApiKeys {
    /// Keys from these strings, trimmed; empty ones are skipped.
    pub fn new<'a>(keys: impl IntoIterator<Item = &'a str>) -> Self {
        let mut digests: Vec<[u8; 32]> = keys
            .into_iter()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(|k| Sha256::digest(k.as_bytes()).into())
            .collect();
        digests.sort_unstable();
        digests.dedup();
        Self { digests }
    }

    /// One key per line.
    pub fn from_lines(text: &str) -> Self {
        Self::new(text.lines())
    }

    /// Comma-separated keys.
    pub fn from_comma_separated(text: &str) -> Self {
        Self::new(text.split(','))
    }

    /// Both sets.
    pub fn union(mut self, other: &Self) -> Self {
        self.digests.extend_from_slice(&other.digests);
        self.digests.sort_unstable();
        self.digests.dedup();
        self
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// No keys.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Whether `presented` is one of the keys. Every digest is compared, in constant time.
    pub fn contains(&self, presented: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        let mut found = Choice::from(0);
        for known in &self.digests {
            found |= known[..].ct_eq(&digest[..]);
        }
        found.into()
    }
}

/// Where the keys come from.
#[derive(Clone, Default)]
pub struct KeySource {
    /// A file with one key per line.
    pub file: Option<PathBuf>,
    /// Comma-separated keys (the value of [`ENV_API_KEYS`]).
    pub inline: Option<String>,
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySource")
            .field("file", &self.file)
            .field("inline", &self.inline.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The keys cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file cannot be read.
    #[error("cannot read the API key file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file has no keys: starting would accept every request.
    #[error(
        "the API key file {0} has no keys (one per line); without --api-keys-file and \
         {ENV_API_KEYS} the gateway runs without authentication"
    )]
    Empty(PathBuf),
}

fn read_file(path: &Path) -> Result<ApiKeys, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })?;
    let keys = ApiKeys::from_lines(&text);
    if keys.is_empty() {
        return Err(KeyError::Empty(path.to_owned()));
    }
    Ok(keys)
}

impl KeySource {
    /// Read the keys. Empty when neither source is set: no authentication.
    pub fn load(&self) -> Result<ApiKeys, KeyError> {
        let inline = self
            .inline
            .as_deref()
            .map(ApiKeys::from_comma_separated)
            .unwrap_or_default();
        match &self.file {
            Some(path) => Ok(read_file(path)?.union(&inline)),
            None => Ok(inline),
        }
    }
}

/// Why a request is not authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthError {
    /// It presents no key.
    Missing,
    /// It presents a key that is not configured.
    Invalid,
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Missing => ApiError::unauthorized(
                "missing API key: send it in the X-API-Key header or as Authorization: Bearer <key>",
            ),
            AuthError::Invalid => ApiError::unauthorized("the API key is not valid"),
        }
    }
}

/// The key a request presents: `X-API-Key`, else an `Authorization: Bearer` token.
pub fn presented_key(headers: &HeaderMap) -> Option<&[u8]> {
    if let Some(key) = headers.get(API_KEY_HEADER) {
        return Some(key.as_bytes());
    }
    let authorization = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, token) = authorization.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| token.trim_ascii())
}

/// The gateway's key check: the current keys, replaced when the file changes.
#[derive(Debug)]
pub struct Authenticator {
    keys: RwLock<Arc<ApiKeys>>,
}

impl Authenticator {
    /// A check against `keys`; no keys: every request passes.
    pub fn new(keys: ApiKeys) -> Self {
        Self {
            keys: RwLock::new(Arc::new(keys)),
        }
    }

    fn current(&self) -> Arc<ApiKeys> {
        self.keys
            .read()
            .expect("the key lock is never poisoned")
            .clone()
    }

    /// Whether requests need a key.
    pub fn enabled(&self) -> bool {
        !self.current().is_empty()
    }

    /// Check a request's headers.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), AuthError> {
        let keys = self.current();
        if keys.is_empty() {
            return Ok(());
        }
        let presented = presented_key(headers).ok_or(AuthError::Missing)?;
        if keys.contains(presented) {
            Ok(())
        } else {
            Err(AuthError::Invalid)
        }
    }

    /// Use `keys` from now on.
    pub fn replace(&self, keys: ApiKeys) {
        *self.keys.write().expect("the key lock is never poisoned") = Arc::new(keys);
    }

    /// Read `source` again every `interval` and take its keys when they changed; an error
    /// keeps the current keys. Runs until dropped.
    pub async fn reload_every(&self, source: &KeySource, interval: Duration) {
        if source.file.is_none() {
            return std::future::pending().await;
        }
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            match source.load() {
                Ok(keys) if keys != *self.current() => {
                    tracing::info!(keys = keys.len(), "API keys reloaded");
                    self.replace(keys);
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "keeping the current API keys");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn keys_come_from_lines_and_commas() {
        let file = ApiKeys::from_lines("alpha\n\n  beta  \r\nalpha\n");
        assert_eq!(file.len(), 2);
        let env = ApiKeys::from_comma_separated("gamma, beta,");
        assert_eq!(file.clone().union(&env).len(), 3);
        assert!(file.contains(b"beta"));
        assert!(!file.contains(b"gamma"));
        assert!(!file.contains(b""));
        assert_eq!(format!("{file:?}"), "ApiKeys(2 keys)");
    }

    #[test]
    fn a_key_is_taken_from_either_header() {
        let auth = Authenticator::new(ApiKeys::new(["s3cret"]));
        assert_eq!(auth.check(&headers(&[("x-api-key", "s3cret")])), Ok(()));
        assert_eq!(
            auth.check(&headers(&[("authorization", "Bearer s3cret")])),
            Ok(())
        );
        assert_eq!(
            auth.check(&headers(&[("authorization", "bearer  s3cret ")])),
            Ok(())
        );
    }

    #[test]
    fn a_missing_or_wrong_key_is_refused() {
        let auth = Authenticator::new(ApiKeys::new(["s3cret"]));
        assert_eq!(auth.check(&HeaderMap::new()), Err(AuthError::Missing));
        assert_eq!(
            auth.check(&headers(&[("authorization", "Basic czNjcmV0")])),
            Err(AuthError::Missing)
        );
        assert_eq!(
            auth.check(&headers(&[("x-api-key", "s3cre")])),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            auth.check(&headers(&[("authorization", "Bearer S3CRET")])),
            Err(AuthError::Invalid)
        );
        let error = ApiError::from(AuthError::Missing);
        assert_eq!((error.status.as_u16(), error.error_code), (401, 40101));
        assert!(error.message.contains("X-API-Key"));
        let error = ApiError::from(AuthError::Invalid);
        assert_eq!(error.error_code, 40101);
        assert!(!error.message.contains("s3cre"));
    }

    #[test]
    fn without_keys_every_request_passes() {
        let auth = Authenticator::new(ApiKeys::default());
        assert!(!auth.enabled());
        assert_eq!(auth.check(&HeaderMap::new()), Ok(()));
    }

    #[test]
    fn the_file_is_required_to_hold_keys_and_is_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, "\n  \n").unwrap();
        let source = KeySource {
            file: Some(path.clone()),
            inline: Some("from-env".into()),
        };
        assert!(matches!(source.load(), Err(KeyError::Empty(_))));
        assert!(!format!("{source:?}").contains("from-env"));

        std::fs::write(&path, "one\ntwo\n").unwrap();
        let keys = source.load().unwrap();
        assert_eq!(keys.len(), 3);
        let auth = Authenticator::new(keys);
        std::fs::write(&path, "three\n").unwrap();
        auth.replace(source.load().unwrap());
        assert_eq!(auth.check(&headers(&[("x-api-key", "three")])), Ok(()));
        assert_eq!(
            auth.check(&headers(&[("x-api-key", "one")])),
            Err(AuthError::Invalid)
        );

        let missing = KeySource {
            file: Some(dir.path().join("absent")),
            inline: None,
        };
        assert!(
            missing
                .load()
                .unwrap_err()
                .to_string()
                .starts_with("cannot read the API key file")
        );
    }

    #[tokio::test]
    async fn a_rotated_file_takes_effect_and_an_emptied_one_keeps_the_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, "old\n").unwrap();
        let source = KeySource {
            file: Some(path.clone()),
            inline: None,
        };
        let auth = Arc::new(Authenticator::new(source.load().unwrap()));
        let reloading = {
            let auth = auth.clone();
            tokio::spawn(async move {
                auth.reload_every(&source, Duration::from_millis(20)).await;
            })
        };
        let accepts = |key: &str| auth.check(&headers(&[("x-api-key", key)])).is_ok();
        std::fs::write(&path, "new\n").unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            accepts("new") && !accepts("old"),
            "the rotated key is taken"
        );
        std::fs::write(&path, "").unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(accepts("new"), "an emptied file keeps the keys");
        reloading.abort();
    }
}
