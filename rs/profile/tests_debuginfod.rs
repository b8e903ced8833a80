//! Debug files from debuginfod: elfutils' server (`debuginfod -F`) serving
//! a split debug file, and a fake server that answers with the wrong file.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::tests::{compile, function_file_offset, readelf_build_id, run, temp_dir, HOT_LINES};
use super::*;
use crate::{BuildId, UserFrame};

/// `debuginfod` is installed; under CI=true its absence fails the test,
/// elsewhere the test is skipped with a message.
fn have_debuginfod() -> bool {
    let found = Command::new("debuginfod").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "debuginfod is not installed; CI must run this test (./dev.sh setup installs it)"
        );
        eprintln!("skipping: debuginfod is not installed (apt-get install debuginfod)");
    }
    found
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running `debuginfod -F`, killed when dropped.
struct Server {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts debuginfod scanning `scan` and waits until it serves `id`'s
    /// debug file (a port taken meanwhile by someone else: tried again).
    fn start(scan: &Path, work: &Path, id: &BuildId) -> Server {
        for attempt in 0..3 {
            let port = free_port();
            let log = work.join(format!("debuginfod-{attempt}.log"));
            let child = Command::new("debuginfod")
                .args(["-F", "-c", "1", "-g", "0", "--disable-source-scan", "-p", &port.to_string(), "-d"])
                .arg(work.join(format!("debuginfod-{attempt}.sqlite")))
                .arg(scan)
                .env_remove("DEBUGINFOD_URLS") // no federation
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(fs::File::create(&log).unwrap())
                .spawn()
                .expect("cannot start debuginfod");
            let mut server = Server { child, url: format!("http://127.0.0.1:{port}"), log };
            if server.wait_until_serving(id) {
                return server;
            }
        }
        panic!("debuginfod exited three times at start");
    }

    /// Polls `GET /buildid/{hex}/debuginfo` until it answers 200 (the first
    /// scan takes a moment); false when the server exited.
    fn wait_until_serving(&mut self, id: &BuildId) -> bool {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(2)))
            .proxy(None)
            .build()
            .into();
        let url = format!("{}/buildid/{id}/debuginfo", self.url);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                eprintln!("debuginfod exited: {}", fs::read_to_string(&self.log).unwrap_or_default());
                return false;
            }
            if agent.get(&url).call().is_ok_and(|r| r.status() == 200) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("debuginfod did not serve {url} within 30 s: {}", fs::read_to_string(&self.log).unwrap_or_default());
    }
}

/// Symbolizes a frame of the stripped binary with no debug directory, only
/// this client.
fn symbolize(stripped: &Path, id: BuildId, offset: u64, client: Debuginfod) -> std::sync::Arc<Location> {
    let mut symbolizer = Symbolizer::new().debug_dirs(vec![]).debuginfod(Some(client));
    assert_eq!(symbolizer.index_mut().learn_file(stripped), Some(id));
    symbolizer.symbolize_user(1, UserFrame::FileOffset { build_id: id, file_offset: offset }, false)
}

fn assert_hot_loop(location: &Location) {
    assert_eq!(location.function(), "proctap_hot_loop", "{location:?}");
    let f = location.frames.last().unwrap();
    assert!(f.file.as_deref().unwrap().ends_with("prog.c") && HOT_LINES.contains(&f.line.unwrap()), "{f:?}");
}

/// What each server answered, when no server had the file.
fn failures(result: Result<PathBuf, DebuginfodError>) -> Vec<DebuginfodError> {
    match result {
        Err(DebuginfodError::Missed { failures, .. }) => failures,
        other => panic!("expected a miss, got {other:?}"),
    }
}

#[test]
fn stripped_binary_resolves_through_debuginfod() {
    if !have_debuginfod() {
        return;
    }
    let dir = temp_dir("debuginfod");
    let binary = compile(&dir);
    let (offset, _) = function_file_offset(&binary, "proctap_hot_loop");
    let stripped = dir.join("prog.stripped");
    run("strip", &["--strip-all", "-o", stripped.to_str().unwrap(), binary.to_str().unwrap()]);
    let id = readelf_build_id(&stripped);
    let scan = dir.join("served");
    fs::create_dir_all(&scan).unwrap();
    run("objcopy", &["--only-keep-debug", binary.to_str().unwrap(), scan.join("prog.debug").to_str().unwrap()]);
    fs::remove_file(&binary).unwrap();

    let server = Server::start(&scan, &dir, &id);
    let cache = dir.join("cache");
    let client = |cache: &Path| Debuginfod::new(&server.url).cache_dir(cache.to_path_buf());

    // Fetched, kept as {cache}/{hex}/debuginfo, and used.
    assert_hot_loop(&symbolize(&stripped, id, offset + 1, client(&cache)));
    let kept = cache.join(id.to_string()).join("debuginfo");
    assert!(elf::has_build_id(&kept, &id), "{kept:?}");

    // An unknown build id: one request (a 404), then none, in this client
    // and (through the empty marker) in another one, until the marker expires.
    let unknown = BuildId([0xcd; 20]);
    let mut first = client(&cache);
    assert!(matches!(&failures(first.fetch(&unknown))[..], [DebuginfodError::NotFound { .. }]));
    assert!(matches!(first.fetch(&unknown), Err(DebuginfodError::CachedMiss { .. })));
    assert_eq!(first.requests(), 1);
    let marker = cache.join(unknown.to_string()).join("debuginfo");
    assert_eq!(fs::metadata(&marker).unwrap().len(), 0);
    let mut second = client(&cache);
    assert!(matches!(second.fetch(&unknown), Err(DebuginfodError::CachedMiss { .. })));
    assert_eq!(second.requests(), 0);
    let mut expired = client(&cache).miss_ttl(Duration::ZERO);
    assert!(matches!(&failures(expired.fetch(&unknown))[..], [DebuginfodError::NotFound { .. }]));
    assert_eq!(expired.requests(), 1);

    // Over the size cap: refused, nothing kept, and no miss on disk (the
    // cap is this client's; the server has the file).
    let small_cache = dir.join("cache-small");
    let mut small = client(&small_cache).max_size(64);
    assert!(matches!(&failures(small.fetch(&id))[..], [DebuginfodError::TooLarge { limit: 64, .. }]));
    let entry = small_cache.join(id.to_string());
    assert!(fs::read_dir(&entry).map_or(true, |mut files| files.next().is_none()), "{entry:?} holds something");

    // The server gone, the cache alone resolves it.
    drop(server);
    let mut offline = Debuginfod::new("http://127.0.0.1:9").cache_dir(cache.clone());
    assert_eq!(offline.fetch(&id).unwrap(), kept);
    assert_eq!(offline.requests(), 0);
    assert_hot_loop(&symbolize(&stripped, id, offset + 1, Debuginfod::new("http://127.0.0.1:9").cache_dir(cache)));
    let _ = fs::remove_dir_all(dir);
}

/// Answers one HTTP request with `body` and returns the request line.
fn serve_once(listener: TcpListener, body: Vec<u8>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut byte = [0u8; 1];
        while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
            request.push(byte[0]);
        }
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&body).unwrap();
        String::from_utf8_lossy(&request).lines().next().unwrap_or_default().to_string()
    })
}

#[test]
fn debuginfod_rejects_a_file_with_another_build_id() {
    let dir = temp_dir("debuginfod-hostile");
    let other = fs::read(compile(&dir)).unwrap(); // a real ELF file, with its own build id
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let hostile = format!("http://{}", listener.local_addr().unwrap());
    let server = serve_once(listener, other);
    // A server that is down first: the next one is asked.
    let urls = format!("http://127.0.0.1:{} {hostile}/", free_port());
    let wanted = BuildId([0xcd; 20]);
    let mut client = Debuginfod::new(&urls).cache_dir(dir.join("cache"));
    assert_eq!(client.urls()[1], hostile);

    let answers = failures(client.fetch(&wanted));
    assert!(
        matches!(&answers[..], [DebuginfodError::Transport { .. }, DebuginfodError::BuildIdMismatch { .. }]),
        "{answers:?}"
    );
    assert_eq!(client.requests(), 2);
    assert_eq!(server.join().unwrap(), format!("GET /buildid/{}/debuginfo HTTP/1.1", "cd".repeat(20)));
    // Nothing kept: no file, no temporary file, and no miss on disk (one
    // server did not answer; it may have the file next time).
    let entry = dir.join("cache").join(wanted.to_string());
    assert!(fs::read_dir(&entry).unwrap().next().is_none());
    // A server that answers with the wrong file only: a miss, on disk.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let only = format!("http://{}", listener.local_addr().unwrap());
    let server = serve_once(listener, fs::read(compile(&dir)).unwrap());
    let mut client = Debuginfod::new(&only).cache_dir(dir.join("cache"));
    assert!(matches!(&failures(client.fetch(&wanted))[..], [DebuginfodError::BuildIdMismatch { .. }]));
    server.join().unwrap();
    let names: Vec<_> = fs::read_dir(&entry).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["debuginfo"]);
    assert_eq!(fs::metadata(entry.join("debuginfo")).unwrap().len(), 0);
    let _ = fs::remove_dir_all(dir);
}
