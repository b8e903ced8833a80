//! [`Debuginfod`]: separate debug files fetched by build id from debuginfod
//! servers, for binaries shipped stripped.
//!
//! The servers are the ones elfutils' client reads from `DEBUGINFOD_URLS`
//! (space-separated base URLs); each is asked `GET {url}/buildid/{hex}/debuginfo`
//! in turn until one has the file. What comes back is kept in a cache
//! directory as `{cache}/{hex}/debuginfo`, the layout elfutils' client uses:
//!
//! * a download goes to a temporary file in the same directory, then is
//!   renamed into place, so a crash never leaves a partial file under the
//!   final name;
//! * the file is kept only when its own GNU build id is the one asked for
//!   (a server that answers with another file is treated as not having it);
//! * a miss (every server answered 404 or failed) leaves an empty
//!   `debuginfo` file, a negative entry: its modification time says when,
//!   and the build id is not asked again before [`miss_ttl`](Debuginfod::miss_ttl)
//!   has passed (a real debug file is never empty);
//! * in memory, each build id is asked at most once per [`Debuginfod`].
//!
//! Every request has a [`timeout`](Debuginfod::timeout) for each step
//! (name resolution, connecting, each read), a download at most
//! [`TRANSFER_LIMIT`] in all, and at most [`max_size`](Debuginfod::max_size) bytes.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::elf;
use crate::BuildId;

/// Default [`Debuginfod::timeout`]: for each step of a request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default [`Debuginfod::miss_ttl`]: how long a miss is remembered on disk.
pub const DEFAULT_MISS_TTL: Duration = Duration::from_secs(600);
/// Default [`Debuginfod::max_size`]: 1 GiB.
pub const DEFAULT_MAX_SIZE: u64 = 1 << 30;
/// The longest one download may take, whatever its progress.
pub const TRANSFER_LIMIT: Duration = Duration::from_secs(600);

/// Why a debug file could not be had from debuginfod.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DebuginfodError {
    /// The request failed: name resolution, connection, TLS, timeout, or the
    /// connection broke during the download.
    #[error("{url}: {message}")]
    Transport { url: String, message: String },

    /// The server does not have the build id (HTTP 404).
    #[error("{url}: not found")]
    NotFound { url: String },

    /// The server answered with another status.
    #[error("{url}: HTTP status {status}")]
    Status { url: String, status: u16 },

    /// The file is larger than [`Debuginfod::max_size`]; nothing was kept.
    #[error("{url}: the debug file is larger than the {limit}-byte limit")]
    TooLarge { url: String, limit: u64 },

    /// The file served is not an ELF file with the build id asked for;
    /// nothing was kept.
    #[error("{url}: the file served does not have the build id asked for")]
    BuildIdMismatch { url: String },

    /// The cache directory could not be written.
    #[error("debuginfod cache {}: {source}", path.display())]
    Cache {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// No server had the file; `failures` says what each one answered, in
    /// the order asked (empty when no URL is configured).
    #[error("no debuginfod server has build id {build_id}{}", summary(failures))]
    Missed { build_id: String, failures: Vec<DebuginfodError> },

    /// The build id missed recently (in this [`Debuginfod`], or on disk less
    /// than [`Debuginfod::miss_ttl`] ago): no server was asked.
    #[error("build id {build_id} missed recently; not asked again yet")]
    CachedMiss { build_id: String },
}

fn summary(failures: &[DebuginfodError]) -> String {
    failures.iter().map(|f| format!("; {f}")).collect()
}

/// A debuginfod client with an on-disk cache. See the [module docs](self).
///
/// ```no_run
/// use proctap::profile::{Debuginfod, Symbolizer};
/// let client = Debuginfod::new("https://debuginfod.example.org").miss_ttl(std::time::Duration::from_secs(3600));
/// let symbolizer = Symbolizer::new().debuginfod(Some(client));
/// ```
pub struct Debuginfod {
    urls: Vec<String>,
    cache: PathBuf,
    miss_ttl: Duration,
    timeout: Duration,
    max_size: u64,
    /// Built at the first request, with the timeouts then set.
    agent: Option<ureq::Agent>,
    /// Build ids asked by this client: the file, or `None` for a miss.
    asked: HashMap<BuildId, Option<PathBuf>>,
    requests: u64,
}

impl std::fmt::Debug for Debuginfod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Debuginfod")
            .field("urls", &self.urls)
            .field("cache", &self.cache)
            .field("requests", &self.requests)
            .finish()
    }
}

/// Where cached files go: `$DEBUGINFOD_CACHE_PATH`, else
/// `$XDG_CACHE_HOME/proctap/debuginfod`, else `~/.cache/proctap/debuginfod`
/// (with no home either, `proctap-debuginfod` in the temp directory).
/// Empty variables count as unset.
pub fn default_cache_dir() -> PathBuf {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("DEBUGINFOD_CACHE_PATH") {
        return dir;
    }
    let cache_home = var("XDG_CACHE_HOME").or_else(|| var("HOME").map(|home| home.join(".cache")));
    match cache_home {
        Some(dir) => dir.join("proctap").join("debuginfod"),
        None => std::env::temp_dir().join("proctap-debuginfod"),
    }
}

impl Debuginfod {
    /// A client for these servers: base URLs separated by whitespace, as in
    /// `DEBUGINFOD_URLS`; caching in [`default_cache_dir`].
    pub fn new(urls: &str) -> Debuginfod {
        Debuginfod {
            urls: urls.split_whitespace().map(|u| u.trim_end_matches('/').to_string()).collect(),
            cache: default_cache_dir(),
            miss_ttl: DEFAULT_MISS_TTL,
            timeout: DEFAULT_TIMEOUT,
            max_size: DEFAULT_MAX_SIZE,
            agent: None,
            asked: HashMap::new(),
            requests: 0,
        }
    }

    /// A client for the servers in `DEBUGINFOD_URLS`, or `None` when it is
    /// unset or names none.
    pub fn from_env() -> Option<Debuginfod> {
        let urls = std::env::var("DEBUGINFOD_URLS").ok()?;
        let client = Debuginfod::new(&urls);
        (!client.urls.is_empty()).then_some(client)
    }

    /// Caches files in this directory instead.
    pub fn cache_dir(mut self, dir: PathBuf) -> Debuginfod {
        self.cache = dir;
        self
    }

    /// How long a miss recorded on disk holds ([`DEFAULT_MISS_TTL`]); within
    /// one client a miss holds for good.
    pub fn miss_ttl(mut self, ttl: Duration) -> Debuginfod {
        self.miss_ttl = ttl;
        self
    }

    /// The time each step of a request may take ([`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Debuginfod {
        self.timeout = timeout;
        self.agent = None;
        self
    }

    /// The largest debug file downloaded, in bytes ([`DEFAULT_MAX_SIZE`]).
    pub fn max_size(mut self, bytes: u64) -> Debuginfod {
        self.max_size = bytes;
        self
    }

    /// The servers' base URLs, in the order they are asked.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// HTTP requests made so far.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// The debug file for a build id: from this client's memory, the cache
    /// directory, or the servers, in that order.
    pub fn fetch(&mut self, build_id: &BuildId) -> Result<PathBuf, DebuginfodError> {
        let hex = build_id.to_string();
        if let Some(known) = self.asked.get(build_id) {
            return known.clone().ok_or(DebuginfodError::CachedMiss { build_id: hex });
        }
        let result = self.lookup(build_id, &hex);
        self.asked.insert(*build_id, result.as_ref().ok().cloned());
        result
    }

    fn lookup(&mut self, build_id: &BuildId, hex: &str) -> Result<PathBuf, DebuginfodError> {
        let dir = self.cache.join(hex);
        let dest = dir.join("debuginfo");
        match cached(&dest, build_id, self.miss_ttl) {
            Cached::File => return Ok(dest),
            Cached::RecentMiss => return Err(DebuginfodError::CachedMiss { build_id: hex.to_string() }),
            Cached::Nothing => {}
        }
        let mut failures = Vec::new();
        for i in 0..self.urls.len() {
            let url = format!("{}/buildid/{hex}/debuginfo", self.urls[i]);
            match self.download(&url, build_id, &dir, &dest) {
                Ok(()) => return Ok(dest),
                Err(e) => failures.push(e),
            }
        }
        // Only an answer says the file does not exist: a failure of the
        // network, a server or the cache may pass, and is not remembered on
        // disk (in memory it is, for this client).
        let answered = |e: &DebuginfodError| {
            matches!(e, DebuginfodError::NotFound { .. } | DebuginfodError::BuildIdMismatch { .. })
        };
        if failures.iter().all(answered) {
            mark_miss(&dir, &dest);
        }
        Err(DebuginfodError::Missed { build_id: hex.to_string(), failures })
    }

    fn agent(&mut self) -> &ureq::Agent {
        let timeout = Some(self.timeout);
        self.agent.get_or_insert_with(|| {
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_resolve(timeout)
                .timeout_connect(timeout)
                .timeout_recv_response(timeout)
                .timeout_per_read(timeout)
                .timeout_global(Some(TRANSFER_LIMIT))
                .user_agent(concat!("proctap/", env!("CARGO_PKG_VERSION")))
                .build()
                .into()
        })
    }

    /// Downloads one server's file to `dest`, checked.
    fn download(&mut self, url: &str, build_id: &BuildId, dir: &Path, dest: &Path) -> Result<(), DebuginfodError> {
        self.requests += 1;
        let transport =
            |e: &dyn std::fmt::Display| DebuginfodError::Transport { url: url.into(), message: e.to_string() };
        let mut response = self.agent().get(url).call().map_err(|e| transport(&e))?;
        match response.status().as_u16() {
            200 => {}
            404 => return Err(DebuginfodError::NotFound { url: url.into() }),
            status => return Err(DebuginfodError::Status { url: url.into(), status }),
        }
        let limit = self.max_size;
        if response.body().content_length().is_some_and(|len| len > limit) {
            return Err(DebuginfodError::TooLarge { url: url.into(), limit });
        }
        let tmp = temp_path(dir);
        let result = save(&mut response.body_mut().as_reader(), url, dir, &tmp, limit)
            .and_then(|()| verify(&tmp, build_id, url))
            .and_then(|()| fs::rename(&tmp, dest).map_err(|e| cache_error(dest, e)));
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

/// What the cache directory holds for a build id.
enum Cached {
    File,
    RecentMiss,
    Nothing,
}

/// Looks at `{cache}/{hex}/debuginfo`: a file with the build id, a recent
/// negative entry, or nothing usable (a file with another build id is removed).
fn cached(path: &Path, build_id: &BuildId, miss_ttl: Duration) -> Cached {
    let Ok(meta) = fs::metadata(path) else { return Cached::Nothing };
    if meta.len() == 0 {
        let age = meta.modified().ok().and_then(|t| t.elapsed().ok());
        return if age.is_some_and(|age| age < miss_ttl) { Cached::RecentMiss } else { Cached::Nothing };
    }
    if elf::has_build_id(path, build_id) {
        return Cached::File;
    }
    let _ = fs::remove_file(path);
    Cached::Nothing
}

/// Leaves the negative entry: an empty file, modified now, put in place by
/// a rename (which replaces whatever is at `dest`, a link included, rather
/// than writing through it). Best effort: without it the miss still holds
/// in memory.
fn mark_miss(dir: &Path, dest: &Path) {
    if fs::symlink_metadata(dest).is_ok_and(|m| m.is_file() && m.len() > 0) {
        return; // another process fetched it meanwhile
    }
    let tmp = temp_path(dir);
    let marked = create_private(dir, &tmp).and_then(|_| fs::rename(&tmp, dest));
    if marked.is_err() {
        let _ = fs::remove_file(&tmp);
    }
}

/// Creates `dir` (owner-only when new) and a new file in it that must not
/// exist yet: a link planted at that name makes it fail instead of being
/// followed (the cache may be in a shared temporary directory).
fn create_private(dir: &Path, path: &Path) -> io::Result<File> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

/// A temporary file name in `dir`, unique in this process and across processes.
fn temp_path(dir: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".debuginfo.{}.{n}.tmp", std::process::id()))
}

fn cache_error(path: &Path, source: io::Error) -> DebuginfodError {
    DebuginfodError::Cache { path: path.to_path_buf(), source }
}

/// Writes the body to `tmp` (at most `limit` bytes) and syncs it.
fn save(body: &mut impl Read, url: &str, dir: &Path, tmp: &Path, limit: u64) -> Result<(), DebuginfodError> {
    let mut file = create_private(dir, tmp).map_err(|e| cache_error(tmp, e))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(DebuginfodError::Transport { url: url.into(), message: e.to_string() }),
        };
        total += n as u64;
        if total > limit {
            return Err(DebuginfodError::TooLarge { url: url.into(), limit });
        }
        file.write_all(&buf[..n]).map_err(|e| cache_error(tmp, e))?;
    }
    file.sync_all().map_err(|e| cache_error(tmp, e))
}

fn verify(tmp: &Path, build_id: &BuildId, url: &str) -> Result<(), DebuginfodError> {
    if elf::has_build_id(tmp, build_id) {
        Ok(())
    } else {
        Err(DebuginfodError::BuildIdMismatch { url: url.into() })
    }
}
