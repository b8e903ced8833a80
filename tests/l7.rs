//! L7 records from the real kernel: real servers started and stopped by
//! the tests on loopback (Python's HTTP server, redis, memcached,
//! PostgreSQL, MariaDB, a DNS responder of our own) and protocol bytes over
//! real sockets (Kafka, MongoDB, HTTP/2 and gRPC through Python's h2), each
//! traced from both ends; a binary protocol gives no record.

mod common;

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use proctap::{Config, Event};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Runs tests/fixtures/NAME with python3 to its end ("done" on stdout);
/// its pid.
fn python_fixture(name: &str, args: &[&str]) -> u32 {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    let child = Command::new("python3")
        .arg(&script)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (./dev.sh test installs it, and h2, redis, memcached, ...)");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("done"), "{name}: {out:?}");
    pid
}

/// A real HTTP/1.1 server (Python's http.server) and its client, in one
/// process: three requests pipelined in one write, then a 200 KB response.
/// Both ends are traced, so each exchange gives two records.
#[test]
fn l7_records_of_a_real_http_server_from_both_ends() {
    let config = Config::new().exec(false).exit(false).net_data().comm_prefix("python");
    let Some(tracer) = common::start(&config) else { return };
    let pid = python_fixture("l7http.py", &[]);
    let records = l7_records_of(&tracer, pid, 2);
    let got: Vec<(&str, String, u16, u64, u64, bool)> = records
        .iter()
        .map(|r| match (&r.request, &r.response) {
            (Some(proctap::l7::Request::Http1(q)), Some(proctap::l7::Response::Http1(p))) => {
                (r.role, q.path.clone(), p.status, r.request_bytes, r.response_bytes, r.truncated)
            }
            other => panic!("{other:?}"),
        })
        .collect();
    for role in ["client", "server"] {
        let mine: Vec<_> = got.iter().filter(|g| g.0 == role).map(|g| (g.1.as_str(), g.2, g.3, g.4, g.5)).collect();
        assert_eq!(
            mine,
            [
                ("/a?x=1", 200, 32, 92, false),
                ("/b", 201, 53, 99, false),
                ("/c", 200, 28, 92, false),
                // 200000 bytes of body, cut at the 16 KiB capture cap.
                ("/big", 200, 30, 200_092, true),
            ],
            "{role}: {records:?}"
        );
    }
    assert!(records.iter().all(|r| r.pid == pid && r.latency_ns == r.end_ns - r.start_ns));
}

/// A real redis-server, started on loopback by the test, and a client that
/// pipelines four commands in one write: both views, in order.
#[test]
fn l7_records_of_a_real_redis_server_pair_pipelined_commands() {
    let client_config = Config::new().exec(false).exit(false).net_data().comm_prefix("python");
    let server_config = Config::new().exec(false).exit(false).net_data().comm_prefix("redis-server");
    let Some(client_tracer) = common::start(&client_config) else { return };
    let Some(server_tracer) = common::start(&server_config) else { return };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server (./dev.sh test installs it)");
    wait_listening(port, "redis-server");
    let ours = [python_fixture("l7redis.py", &[&port.to_string()]), server.id()];
    let records_of = |tracer: &proctap::Tracer, role: &str| {
        let mut l7 = proctap::l7::Tracker::new();
        let mut records = Vec::new();
        let net = |e: &Event<&[u8]>| {
            matches!(e, Event::ConnOpen(_) | Event::NetData(_) | Event::ConnClose(_)) && ours.contains(&e.pid())
        };
        let done = |g: &[Event]| {
            g.iter().filter(|e| matches!(e, Event::NetData(_))).count() >= 4
                && g.iter().any(|e| matches!(e, Event::ConnClose(_)))
        };
        for e in common::collect_until(tracer, TIMEOUT, net, done) {
            l7.feed(&e, &mut records);
        }
        records
            .into_iter()
            // The client tracer sees every python process: other tests of
            // this program run theirs at the same time.
            .filter(|r| r.role == role && ours.contains(&r.pid))
            .map(|r| match (r.request, r.response) {
                (Some(proctap::l7::Request::Redis(q)), Some(proctap::l7::Response::Redis(p))) => {
                    (q.command.join(" "), p.kind, serde_json::to_string(&p.value).unwrap())
                }
                other => panic!("{other:?}"),
            })
            .collect::<Vec<_>>()
    };
    let want = [
        ("SET k v".to_string(), "string", "\"OK\"".to_string()),
        ("GET k".into(), "bulk", "\"v\"".into()),
        ("INCR n".into(), "integer", "1".into()),
        ("PING".into(), "string", "\"PONG\"".into()),
        ("GET missing".into(), "null", "null".into()),
    ];
    assert_eq!(records_of(&client_tracer, "client"), want, "the client's view");
    assert_eq!(records_of(&server_tracer, "server"), want, "the server's view");
    let _ = server.kill();
    let _ = server.wait();
}

/// Our own DNS responder and its client over UDP (answers out of order, an
/// NXDOMAIN), then a binary protocol on TCP: DNS records from both ends,
/// paired by id, and no record from the binary bytes.
#[test]
fn l7_records_of_dns_over_udp_pair_by_id_and_binary_bytes_give_none() {
    use proctap::l7::{Request, Response};
    let config = Config::new().exec(false).exit(false).net_data().comm_prefix("python");
    let Some(tracer) = common::start(&config) else { return };
    let pid = python_fixture("l7dns.py", &[]);
    // Two UDP sockets and two TCP ones close.
    let records = l7_records_of(&tracer, pid, 4);
    type Seen<'a> = (&'a str, u16, String, u16, u16, Vec<String>);
    let got: Vec<Seen> = records
        .iter()
        .map(|r| match (&r.request, &r.response) {
            (Some(Request::Dns(q)), Some(Response::Dns(p))) if q.id == p.id => {
                (r.role, q.id, q.qname.clone(), q.qtype, p.rcode, p.answers.clone())
            }
            other => panic!("{other:?}"),
        })
        .collect();
    for role in ["client", "server"] {
        let mine: Vec<_> =
            got.iter().filter(|g| g.0 == role).map(|g| (g.1, g.2.as_str(), g.3, g.4, g.5.clone())).collect();
        assert_eq!(
            mine,
            [
                (0x2222, "example.test.", 28, 0, vec![]),
                (0x1111, "example.test.", 1, 0, vec!["10.1.2.3".to_string()]),
                (0x3333, "nx.example.test.", 1, 3, vec![]),
            ],
            "{role}: {records:?}"
        );
    }
    // Each record's sizes are its datagrams'.
    assert!(records.iter().all(|r| r.request_bytes >= 30 && r.response_bytes >= r.request_bytes && !r.truncated));
}

/// The L7 records of process `pid`, from its net events until `closes`
/// of its sockets closed.
fn l7_records_of(tracer: &proctap::Tracer, pid: u32, closes: usize) -> Vec<proctap::l7::Record> {
    let net =
        |e: &Event<&[u8]>| matches!(e, Event::ConnOpen(_) | Event::NetData(_) | Event::ConnClose(_)) && e.pid() == pid;
    let events = common::collect_until(tracer, TIMEOUT, net, |g| {
        g.iter().filter(|e| matches!(e, Event::ConnClose(_))).count() >= closes
    });
    let mut l7 = proctap::l7::Tracker::new();
    let mut records = Vec::new();
    for e in &events {
        l7.feed(e, &mut records);
    }
    records
}

/// A real memcached (started here), and generated Kafka and MongoDB bytes
/// over real sockets: pipelined requests pair in order (memcached) or by
/// id with answers out of order (Kafka, MongoDB), from both ends.
#[test]
fn l7_records_of_memcached_kafka_and_mongodb() {
    let config = Config::new().exec(false).exit(false).net_data().comm_prefix("python");
    let Some(tracer) = common::start(&config) else { return };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = Command::new("memcached")
        .args(["-p", &port.to_string(), "-l", "127.0.0.1", "-U", "0", "-u", "root"])
        .spawn()
        .expect("memcached (./dev.sh test installs it)");
    wait_listening(port, "memcached");
    let pid = python_fixture("l7wire.py", &[&port.to_string()]);
    let _ = server.kill();
    let _ = server.wait();
    // The memcached client's socket, and two ends each of Kafka and MongoDB.
    let records = l7_records_of(&tracer, pid, 5);
    let seen = |protocol: &str, role: &str| -> Vec<(String, String)> {
        records
            .iter()
            .filter(|r| serde_json::to_value(r.protocol).unwrap() == protocol && r.role == role)
            .map(|r| {
                let q = serde_json::to_string(&r.request).unwrap();
                (q, r.response.as_ref().map_or("null".into(), |p| serde_json::to_string(p).unwrap()))
            })
            .collect()
    };
    let pairs = |want: &[(&str, &str)]| -> Vec<(String, String)> {
        want.iter().map(|(q, p)| (q.to_string(), p.to_string())).collect()
    };
    assert_eq!(
        seen("memcached", "client"),
        pairs(&[
            (r#"{"command":"set","key":"k","keys":1}"#, r#"{"status":"STORED","values":0}"#),
            (r#"{"command":"get","key":"k","keys":1}"#, r#"{"status":"END","values":1}"#),
            (r#"{"command":"get","key":"missing","keys":1}"#, r#"{"status":"END","values":0}"#),
            (r#"{"command":"delete","key":"k","keys":1}"#, r#"{"status":"DELETED","values":0}"#),
        ]),
        "{records:?}"
    );
    for role in ["client", "server"] {
        assert_eq!(
            seen("kafka", role),
            pairs(&[
                (
                    r#"{"api_key":18,"api_version":3,"correlation_id":6,"client_id":"pt-client"}"#,
                    r#"{"correlation_id":6}"#
                ),
                (
                    r#"{"api_key":3,"api_version":12,"correlation_id":5,"client_id":"pt-client"}"#,
                    r#"{"correlation_id":5}"#
                ),
            ]),
            "{role}: {records:?}"
        );
        assert_eq!(
            seen("mongodb", role),
            pairs(&[
                (r#"{"op":"msg","command":"ping","request_id":101}"#, r#"{"op":"msg","response_to":101,"ok":1.0}"#),
                (r#"{"op":"msg","command":"find","request_id":100}"#, r#"{"op":"msg","response_to":100,"ok":0.0}"#),
            ]),
            "{role}: {records:?}"
        );
    }
}

/// (role, request JSON, response JSON) of each record.
type Summary = Vec<(&'static str, String, String)>;

/// The L7 records (of `protocol`) of the connection whose far end is port
/// `peer` (a client's to the server port, the server's to the client's
/// port: not a test's readiness probe), once it closed; and its local port.
fn records_with_peer(tracer: &proctap::Tracer, peer: u16, protocol: proctap::l7::Protocol) -> (Summary, u16) {
    let keep = |e: &Event<&[u8]>| match e {
        Event::ConnOpen(o) => o.remote.map(|a| a.port()) == Some(peer),
        Event::NetData(_) | Event::ConnClose(_) => true,
        _ => false,
    };
    let events = common::collect_until(tracer, TIMEOUT, keep, |g| {
        let ours: HashSet<u64> =
            g.iter().filter_map(|e| if let Event::ConnOpen(o) = e { Some(o.conn_id) } else { None }).collect();
        g.iter().any(|e| matches!(e, Event::ConnClose(c) if ours.contains(&c.conn_id)))
    });
    let mut l7 = proctap::l7::Tracker::new();
    let mut records = Vec::new();
    for e in &events {
        l7.feed(e, &mut records);
    }
    let open = events.iter().find_map(|e| if let Event::ConnOpen(o) = e { Some(*o) } else { None });
    let open = open.expect("the connection's conn_open");
    let records = records
        .iter()
        .filter(|r| r.conn_id == open.conn_id && r.protocol == protocol)
        .map(|r| {
            let q = serde_json::to_string(&r.request).unwrap();
            (r.role, q, r.response.as_ref().map_or("null".into(), |p| serde_json::to_string(p).unwrap()))
        })
        .collect();
    (records, open.local.map_or(0, |a| a.port()))
}

/// Waits until something listens on the loopback port.
fn wait_listening(port: u16, what: &str) {
    let deadline = std::time::Instant::now() + TIMEOUT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A PostgreSQL server of its own (initdb in a temporary directory, trust
/// authentication, loopback only), stopped and removed when dropped.
struct Postgres {
    server: std::process::Child,
    dir: std::path::PathBuf,
    port: u16,
}

impl Postgres {
    fn start() -> Postgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("postgresql (./dev.sh test installs it)")
            .flatten()
            .map(|e| e.path().join("bin"))
            .find(|b| b.join("initdb").exists())
            .expect("initdb under /usr/lib/postgresql/*/bin");
        let dir = std::env::temp_dir().join(format!("proctap-pg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(Command::new("chown").arg("postgres").arg(&dir).status().unwrap().success());
        let data = dir.join("data");
        let init = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["--auth=trust", "-U", "postgres"])
            .output()
            .unwrap();
        assert!(init.status.success(), "initdb: {init:?}");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let server = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(&dir)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_listening(port, "postgres");
        Postgres { server, dir, port }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGTERM: a smart shutdown; the postmaster stops its children.
        let _ = Command::new("kill").args(["-TERM", &self.server.id().to_string()]).status();
        let _ = Command::new("pkill").args(["-TERM", "-f", &self.dir.display().to_string()]).status();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A real PostgreSQL and psql: the encryption request, the startup, a
/// query with rows, one with 300 KB of them (more than the tracker keeps:
/// taken in steps) and one with an error, from both ends. The whole
/// syscall is captured (psql reads more than 16 KiB at once).
#[test]
fn l7_records_of_a_real_postgres_server_and_psql() {
    let psql_config = Config::new().exec(false).exit(false).net_data().net_data_max(1 << 20).comm_prefix("psql");
    let server_config = Config::new().exec(false).exit(false).net_data().net_data_max(1 << 20).comm_prefix("postgres");
    let Some(psql_tracer) = common::start(&psql_config) else { return };
    let Some(server_tracer) = common::start(&server_config) else { return };
    let pg = Postgres::start();
    let out = Command::new("psql")
        .args(["-X", "-h", "127.0.0.1", "-p", &pg.port.to_string(), "-U", "postgres", "-d", "postgres"])
        .args(["-c", "select generate_series(1,3)", "-c", "select repeat('x', 100) from generate_series(1, 3000)"])
        .args(["-c", "selec"])
        .output()
        .expect("psql");
    assert!(String::from_utf8_lossy(&out.stdout).contains("(3 rows)"), "{out:?}");
    let want = |role: &'static str| -> Vec<(&'static str, String, String)> {
        [
            (r#"{"query":"ssl"}"#, r#"{"status":"ok"}"#),
            (r#"{"query":"startup"}"#, r#"{"status":"ok"}"#),
            (r#"{"query":"select generate_series(1,3)"}"#, r#"{"status":"ok","rows":3}"#),
            (r#"{"query":"select repeat('x', 100) from generate_series(1, 3000)"}"#, r#"{"status":"ok","rows":3000}"#),
            (r#"{"query":"selec"}"#, r#"{"status":"error","error":"syntax error at or near \"selec\""}"#),
        ]
        .iter()
        .map(|(q, p)| (role, q.to_string(), p.to_string()))
        .collect()
    };
    let (client, client_port) = records_with_peer(&psql_tracer, pg.port, proctap::l7::Protocol::Postgres);
    assert_eq!(client, want("client"));
    assert_eq!(records_with_peer(&server_tracer, client_port, proctap::l7::Protocol::Postgres).0, want("server"));
}

/// A MariaDB server of its own (mariadb-install-db in a temporary
/// directory, no grant tables, loopback only), stopped and removed when
/// dropped.
struct Mariadb {
    server: std::process::Child,
    dir: std::path::PathBuf,
    port: u16,
}

impl Mariadb {
    fn start() -> Mariadb {
        let dir = std::env::temp_dir().join(format!("proctap-mariadb-{}", std::process::id()));
        let data = dir.join("data");
        std::fs::create_dir_all(&dir).unwrap();
        let init = Command::new("mariadb-install-db")
            .arg(format!("--datadir={}", data.display()))
            .args(["--user=root", "--auth-root-authentication-method=normal"])
            .output()
            .expect("mariadb-install-db (./dev.sh test installs mariadb-server)");
        assert!(init.status.success(), "mariadb-install-db: {init:?}");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let server = Command::new("mariadbd")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", dir.join("sock").display()))
            .arg(format!("--pid-file={}", dir.join("pid").display()))
            .arg(format!("--port={port}"))
            .args(["--bind-address=127.0.0.1", "--user=root", "--skip-grant-tables", "--skip-log-bin"])
            .args(["--innodb-buffer-pool-size=16M"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_listening(port, "mariadbd");
        Mariadb { server, dir, port }
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.server.id().to_string()]).status();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A real MariaDB and its client: the login, a query with rows and one
/// with an error, from both ends.
#[test]
fn l7_records_of_a_real_mariadb_server_and_client() {
    // Each tracer's stream is read once: one per end ("mariadb" also
    // names the server, mariadbd; the peer port tells them apart).
    let client_config = Config::new().exec(false).exit(false).net_data().comm_prefix("mariadb");
    let server_config = Config::new().exec(false).exit(false).net_data().comm_prefix("mariadbd");
    let Some(client_tracer) = common::start(&client_config) else { return };
    let Some(server_tracer) = common::start(&server_config) else { return };
    let db = Mariadb::start();
    let out = Command::new("mariadb")
        .args(["-h", "127.0.0.1", "-P", &db.port.to_string(), "-u", "root"])
        .args(["-e", "select 1 union select 2; selec"])
        .output()
        .expect("mariadb");
    assert!(String::from_utf8_lossy(&out.stderr).contains("ERROR 1064"), "{out:?}");
    let (client, client_port) = records_with_peer(&client_tracer, db.port, proctap::l7::Protocol::Mysql);
    let (server, _) = records_with_peer(&server_tracer, client_port, proctap::l7::Protocol::Mysql);
    for (role, got) in [("client", client), ("server", server)] {
        let short: Vec<(&str, String, String)> =
            got.iter().map(|(r, q, p)| (*r, q.clone(), p.chars().take(60).collect())).collect();
        assert_eq!(
            short,
            [
                (role, r#"{"query":"login"}"#.to_string(), r#"{"status":"ok"}"#.to_string()),
                (role, r#"{"query":"select 1 union select 2"}"#.into(), r#"{"status":"ok","rows":2}"#.into()),
                (
                    role,
                    r#"{"query":"selec"}"#.into(),
                    r#"{"status":"error","error":"You have an error in your SQL syn"#.into()
                ),
            ],
            "{role}"
        );
    }
}

/// HTTP/2 and gRPC, framed and HPACK-encoded by Python's h2 over a real
/// socket: streams pair by id (the second answered first), gRPC's status
/// from the trailers, from both ends.
#[test]
fn l7_records_of_http2_and_grpc_from_both_ends() {
    let config = Config::new().exec(false).exit(false).net_data().comm_prefix("python");
    let Some(tracer) = common::start(&config) else { return };
    let pid = python_fixture("l7h2.py", &[]);
    let records = l7_records_of(&tracer, pid, 2);
    for role in ["client", "server"] {
        let got: Vec<(String, String, String)> = records
            .iter()
            .filter(|r| r.role == role)
            .map(|r| {
                (
                    serde_json::to_value(r.protocol).unwrap().as_str().unwrap().to_string(),
                    serde_json::to_string(&r.request).unwrap(),
                    serde_json::to_string(&r.response).unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "grpc".to_string(),
                    r#"{"method":"POST","path":"/pkg.Svc/Call","host":"h","stream_id":3}"#.to_string(),
                    r#"{"status":200,"grpc_status":5}"#.to_string()
                ),
                (
                    "http2".into(),
                    r#"{"method":"GET","path":"/a?x=1","host":"h","stream_id":1}"#.into(),
                    r#"{"status":404}"#.into()
                ),
            ],
            "{role}: {records:?}"
        );
    }
}

/// HTTP/2 traced from the middle of a connection (the tracer starts after
/// its first exchange): recognised from its frames, records flagged
/// mid_stream, and the fields the client's encoder sent as references to
/// header table entries made before the join (the repeated path, the
/// authority) are null, not guessed.
#[test]
fn l7_records_of_http2_joined_mid_stream() {
    use std::io::{BufRead, Write};
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/l7h2.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .arg("--join")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (./dev.sh test installs it, and h2)");
    let pid = child.id();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let config = Config::new().exec(false).exit(false).net_data().pid(pid);
    let Some(tracer) = common::start(&config) else {
        let _ = child.kill();
        let _ = child.wait();
        return;
    };
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert!(child.wait().unwrap().success() && line == "done\n", "{line:?}");
    let records = l7_records_of(&tracer, pid, 2);
    let mut got: Vec<(String, String, String)> = records
        .iter()
        .map(|r| {
            (
                serde_json::to_value(r.protocol).unwrap().as_str().unwrap().to_string(),
                serde_json::to_string(&r.request).unwrap(),
                serde_json::to_string(&r.response).unwrap(),
            )
        })
        .collect();
    got.sort();
    let want = [
        (
            "http2".to_string(),
            r#"{"method":"GET","path":null,"host":null,"stream_id":3,"mid_stream":true}"#.to_string(),
            r#"{"status":404}"#.to_string(),
        ),
        (
            "grpc".into(),
            r#"{"method":"POST","path":"/pkg.Svc/Call","host":null,"stream_id":5,"mid_stream":true}"#.into(),
            r#"{"status":200,"grpc_status":5}"#.into(),
        ),
    ];
    // Both ends: the client's and the server's socket, each joined.
    let mut want = [want.clone(), want].concat();
    want.sort();
    assert_eq!(got, want, "{records:?}");
}
