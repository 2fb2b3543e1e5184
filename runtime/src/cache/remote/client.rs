//! The store itself: an `object_store` backend (S3 or a local directory)
//! behind blocking calls with deadlines, and a breaker that stops asking an
//! unreachable store until a backoff has passed, so that nothing waits on
//! a store that is down more than once per backoff period.

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, RetryConfig};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a lookup may take before the store counts as unreachable.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an upload may take.
pub const UPLOAD_TIMEOUT: Duration = Duration::from_secs(10);
/// First wait before asking an unreachable store again; doubles up to
/// [`MAX_BACKOFF`] while it stays down.
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What a store operation can end in, apart from success.
#[derive(Debug)]
pub enum StoreError {
    /// The store did not answer in time or could not be reached (or is
    /// being left alone after that); the cache works locally meanwhile.
    Unavailable(String),
    /// The store answered with an error (permission, bad request, ...).
    Failed(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Unavailable(m) | StoreError::Failed(m) => f.write_str(m),
        }
    }
}

/// An object listed in the store.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ListedObject {
    /// The cache key digest the object is stored under.
    pub digest: String,
    /// Object size in bytes.
    pub size: u64,
}

#[derive(Default)]
struct Health {
    /// While set and in the future, calls fail at once.
    down_until: Option<Instant>,
    backoff: Duration,
}

/// A connection to one store URL.
pub struct StoreClient {
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    runtime: tokio::runtime::Runtime,
    health: Mutex<Health>,
    pub(super) lookup_timeout: Duration,
    pub(super) upload_timeout: Duration,
}

impl std::fmt::Debug for StoreClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreClient")
            .field("url", &self.url)
            .finish()
    }
}

impl StoreClient {
    /// Connects to `s3://bucket/prefix` (endpoint, credentials and region
    /// from the usual `AWS_*` variables) or `file:///path`. Nothing is
    /// contacted yet.
    pub fn open(url: &str) -> Result<Self, String> {
        let (store, prefix): (Arc<dyn ObjectStore>, String) = if let Some(rest) =
            url.strip_prefix("s3://")
        {
            // `?endpoint=URL` overrides `AWS_ENDPOINT_URL` for this store.
            let (rest, endpoint) = match rest.split_once("?endpoint=") {
                Some((r, e)) => (r, Some(e)),
                None => (rest, None),
            };
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(format!("{url}: no bucket"));
            }
            let allow_http = std::env::var("AWS_ALLOW_HTTP")
                .is_ok_and(|v| matches!(v.trim(), "1" | "true" | "TRUE" | "True"));
            let client = ClientOptions::new()
                .with_allow_http(allow_http)
                .with_connect_timeout(LOOKUP_TIMEOUT)
                .with_timeout(UPLOAD_TIMEOUT);
            let mut builder = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_client_options(client)
                // Our own deadlines bound every call; a retry inside
                // one would only spend it.
                .with_retry(RetryConfig {
                    max_retries: 1,
                    retry_timeout: UPLOAD_TIMEOUT,
                    ..RetryConfig::default()
                });
            if let Some(e) = endpoint {
                builder = builder.with_endpoint(e);
            }
            if std::env::var_os("AWS_REGION").is_none() {
                builder = builder.with_region("us-east-1");
            }
            let s3 = builder.build().map_err(|e| format!("{url}: {e}"))?;
            (Arc::new(s3), prefix.to_string())
        } else if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(format!("{url}: a file:// store needs an absolute path"));
            }
            std::fs::create_dir_all(path).map_err(|e| format!("{url}: {e}"))?;
            let fs = LocalFileSystem::new_with_prefix(path).map_err(|e| format!("{url}: {e}"))?;
            (Arc::new(fs), String::new())
        } else {
            return Err(format!(
                "{url}: not a store URL (s3://bucket/prefix or file:///path)"
            ));
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("evmc-store")
            .enable_all()
            .build()
            .map_err(|e| format!("store client runtime: {e}"))?;
        Ok(Self {
            url: url.trim_end_matches('/').to_string(),
            store,
            prefix: ObjectPath::from(prefix.trim_matches('/')),
            runtime,
            health: Mutex::default(),
            lookup_timeout: LOOKUP_TIMEOUT,
            upload_timeout: UPLOAD_TIMEOUT,
        })
    }

    /// The URL it was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL of the object for `digest` (for messages).
    pub fn object_url(&self, digest: &str) -> String {
        match self.url.split_once('?') {
            Some((base, query)) => format!("{base}/{digest}?{query}"),
            None => format!("{}/{digest}", self.url),
        }
    }

    fn path(&self, digest: &str) -> ObjectPath {
        self.prefix.clone().join(digest)
    }

    /// Runs `op` under `deadline` unless the store is being left alone;
    /// failures to reach it open the breaker.
    fn call<T>(
        &self,
        what: &str,
        deadline: Duration,
        op: impl std::future::Future<Output = Result<T, object_store::Error>>,
    ) -> Result<Result<T, object_store::Error>, StoreError> {
        {
            let h = self.health.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(until) = h.down_until {
                let now = Instant::now();
                if until > now {
                    return Err(StoreError::Unavailable(format!(
                        "store {} unreachable; next try in {} s",
                        self.url,
                        (until - now).as_secs() + 1
                    )));
                }
            }
        }
        // The timer is made inside the runtime, which owns the clock.
        match self
            .runtime
            .block_on(async move { tokio::time::timeout(deadline, op).await })
        {
            Err(_) => Err(self.down(format!(
                "{what}: no answer from store {} within {} ms",
                self.url,
                deadline.as_millis()
            ))),
            // Connection refused, reset, server errors after the retry:
            // the store is not usable now.
            Ok(Err(object_store::Error::Generic { source, .. })) => Err(self.down(format!(
                "{what}: store {} failed: {}",
                self.url,
                error_chain(&*source)
            ))),
            Ok(r) => {
                let mut h = self.health.lock().unwrap_or_else(|p| p.into_inner());
                if h.down_until.take().is_some() {
                    tracing::warn!("artefact store {} reachable again", self.url);
                }
                h.backoff = Duration::ZERO;
                Ok(r)
            }
        }
    }

    /// Opens the breaker (one warning per outage) and returns the error.
    fn down(&self, reason: String) -> StoreError {
        let mut h = self.health.lock().unwrap_or_else(|p| p.into_inner());
        // Calls that were in flight together fail together: one outage.
        if h.down_until.is_some_and(|until| until > Instant::now()) {
            return StoreError::Unavailable(reason);
        }
        let first = h.backoff.is_zero();
        h.backoff = if first {
            FIRST_BACKOFF
        } else {
            (h.backoff * 2).min(MAX_BACKOFF)
        };
        h.down_until = Some(Instant::now() + h.backoff);
        if first {
            tracing::warn!(
                "{reason}; using the local cache only, trying the store again in {} s",
                h.backoff.as_secs()
            );
        }
        StoreError::Unavailable(reason)
    }

    /// The object stored under `digest`, if any (at most `max_size` bytes).
    pub fn get(&self, digest: &str, max_size: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path(digest);
        let store = self.store.clone();
        let r = self.call("lookup", self.lookup_timeout, async move {
            let got = store.get(&path).await?;
            if got.meta.size > max_size {
                return Ok(Err(got.meta.size));
            }
            Ok(Ok(got.bytes().await?))
        })?;
        match r {
            Ok(Ok(bytes)) => Ok(Some(bytes.to_vec())),
            Ok(Err(size)) => Err(StoreError::Failed(format!(
                "object of {size} bytes is larger than any artefact"
            ))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(StoreError::Failed(format!("lookup: {}", error_chain(&e)))),
        }
    }

    /// Stores `bytes` under `digest` unless an object is there already
    /// (`Ok(false)`): of two publishers of one key, one wins, whole.
    pub fn put_if_absent(&self, digest: &str, bytes: Vec<u8>) -> Result<bool, StoreError> {
        let path = self.path(digest);
        let store = self.store.clone();
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self.call("upload", self.upload_timeout, async move {
            store.put_opts(&path, bytes.into(), opts).await
        })? {
            Ok(_) => Ok(true),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(false),
            Err(e) => Err(StoreError::Failed(format!("upload: {}", error_chain(&e)))),
        }
    }

    /// Every object under the prefix.
    pub fn list(&self) -> Result<Vec<ListedObject>, StoreError> {
        let store = self.store.clone();
        let prefix = (!self.prefix.as_ref().is_empty()).then(|| self.prefix.clone());
        let listed = self.call("list", self.upload_timeout, async move {
            store.list_with_delimiter(prefix.as_ref()).await
        })?;
        let listed =
            listed.map_err(|e| StoreError::Failed(format!("list: {}", error_chain(&e))))?;
        let mut out: Vec<ListedObject> = listed
            .objects
            .into_iter()
            .filter_map(|m| {
                let digest = m.location.filename()?.to_string();
                // Only names a cache key can have; anything else is not ours.
                (digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit())).then_some(
                    ListedObject {
                        digest,
                        size: m.size,
                    },
                )
            })
            .collect();
        out.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(out)
    }

    /// Removes the object under `digest`.
    pub fn delete(&self, digest: &str) -> Result<(), StoreError> {
        let path = self.path(digest);
        let store = self.store.clone();
        match self.call("delete", self.upload_timeout, async move {
            store.delete(&path).await
        })? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StoreError::Failed(format!("delete: {}", error_chain(&e)))),
        }
    }
}

/// An error with its causes, on one line.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_msg = s.to_string();
        if !msg.contains(&s_msg) {
            msg.push_str(": ");
            msg.push_str(&s_msg);
        }
        source = s.source();
    }
    msg
}
