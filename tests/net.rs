//! TCP and UDP connections of traced processes, against the real kernel:
//! seen at their first message with the role their handshake gave (connect:
//! client, accept: server), closed at the socket's last close with the
//! exact bytes moved; IPv4, IPv6 and
//! IPv4-mapped addresses; ids unique; in raw mode the bytes of every data
//! syscall at their stream position, cut at the cap with the cut flagged;
//! a connection given up on counted, not copied.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use proctap::{Config, ConnClose, ConnCloseProtocol, ConnCloseRole, ConnOpen, Event, NetData, NetDataDirection};

const TIMEOUT: Duration = Duration::from_secs(10);

/// (label, client port, server port) of a TCP pair the fixture made.
type TcpPair = (String, u16, u16);

/// What the fixture did (its stdout).
struct Run {
    pid: u32,
    tcp: Vec<TcpPair>,
    /// (local port, peer port) of the UDP socket.
    udp: (u16, u16),
    /// (client pid, client port, server port) of the big transfer.
    big: (u32, u16, u16),
}

fn run_fixture() -> Run {
    // Built once: tests run in parallel, and a binary being rewritten cannot run.
    static EXE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let exe = EXE.get_or_init(|| common::fixture::build_c("netpair.c", "ptnetpair"));
    let file =
        std::env::temp_dir().join(format!("proctap-sendfile-{}-{:?}", std::process::id(), std::thread::current().id()));
    let child = Command::new(exe).arg(&file).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_file(&file);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut run = Run { pid, tcp: Vec::new(), udp: (0, 0), big: (0, 0, 0) };
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        match f[0] {
            "tcp" => run.tcp.push((f[1].to_string(), f[2].parse().unwrap(), f[3].parse().unwrap())),
            "udp" => run.udp = (f[1].parse().unwrap(), f[2].parse().unwrap()),
            "big" => run.big = (f[1].parse().unwrap(), f[2].parse().unwrap(), f[3].parse().unwrap()),
            _ => {} // mmsg, sendfile: their bytes say which they are
        }
    }
    run
}

fn addr(text: &str) -> Option<SocketAddr> {
    Some(text.parse().unwrap())
}

#[test]
fn connections_open_and_close_with_their_ends_and_exact_bytes() {
    let config = Config::new().exec(false).exit(false).connections().comm_prefix("ptnetpair");
    let Some(tracer) = common::start(&config) else { return };
    let Run { pid, tcp, udp, .. } = run_fixture();
    // 3 TCP pairs (2 opens and 2 closes each), 1 UDP socket (1 and 1), the
    // big transfer's server end (1 and 1; its client is a child), the mmsg
    // UDP pair (2 and 2) and the sendfile TCP pair (2 and 2).
    let want = 3 * 4 + 2 + 2 + 4 + 4;
    let ours = |e: &Event<&[u8]>| matches!(e, Event::ConnOpen(_) | Event::ConnClose(_)) && e.pid() == pid;
    let mut got = common::collect_until(&tracer, TIMEOUT, ours, |g| g.len() >= want);
    got.extend(common::collect_until(&tracer, Duration::from_millis(300), ours, |_| false));
    let opens: Vec<&ConnOpen> =
        got.iter().filter_map(|e| if let Event::ConnOpen(o) = e { Some(o) } else { None }).collect();
    let closes: Vec<&ConnClose> =
        got.iter().filter_map(|e| if let Event::ConnClose(c) = e { Some(c) } else { None }).collect();
    assert_eq!((opens.len(), closes.len()), (12, 12), "{got:?}");
    // Every id is new, and each close names an open's id.
    let ids: HashSet<u64> = opens.iter().map(|o| o.conn_id).collect();
    assert_eq!(ids.len(), 12);
    assert!(closes.iter().all(|c| ids.contains(&c.conn_id)));
    let loopback = |label: &str, port: u16| match label {
        "ipv6" => addr(&format!("[::1]:{port}")),
        _ => addr(&format!("127.0.0.1:{port}")), // mapped ones show as IPv4
    };
    for (label, client, server) in &tcp {
        let (c, s) = (loopback(label, *client), loopback(label, *server));
        let client_open = opens.iter().find(|o| o.local == c).unwrap_or_else(|| panic!("{label}: {opens:?}"));
        let server_open = opens.iter().find(|o| o.local == s && o.remote == c).unwrap();
        assert_eq!((client_open.role.name(), client_open.remote), ("client", s), "{label}");
        assert_eq!(server_open.role.name(), "server", "{label}");
        assert_eq!(client_open.family.name(), if label == "ipv6" { "ipv6" } else { "ipv4" }, "{label}");
        assert_eq!(client_open.protocol.name(), "tcp");
        let close_of = |id: u64| closes.iter().find(|c| c.conn_id == id).unwrap();
        let (cc, sc) = (close_of(client_open.conn_id), close_of(server_open.conn_id));
        // The client sent "hello" and read "world!"; the server the reverse.
        assert_eq!((cc.sent_bytes, cc.received_bytes, cc.role), (5, 6, ConnCloseRole::Client), "{label}");
        assert_eq!((sc.sent_bytes, sc.received_bytes, sc.role), (6, 5, ConnCloseRole::Server), "{label}");
        assert_eq!((cc.local, cc.remote, cc.fd), (c, s, client_open.fd));
    }
    let udp_open = opens.iter().find(|o| o.local.map(|a| a.port()) == Some(udp.0)).unwrap();
    assert_eq!((udp_open.local, udp_open.remote), (loopback("ipv4", udp.0), loopback("ipv4", udp.1)));
    let udp_close = closes.iter().find(|c| c.conn_id == udp_open.conn_id).unwrap();
    assert_eq!((udp_close.protocol, udp_close.sent_bytes, udp_close.received_bytes), (ConnCloseProtocol::Udp, 3, 0));
    assert!(opens.iter().all(|o| o.comm.as_bytes() == b"ptnetpair"));
    let stats = tracer.stats();
    assert_eq!(stats.conn_open().counter("not_followed"), Some(0));
}

#[test]
fn the_tracers_own_connections_are_left_out() {
    let Some(tracer) = common::start(&Config::new().exec(false).exit(false).connections()) else { return };
    let me = std::process::id();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut own = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(&mut own, b"x").unwrap();
    drop(own);
    drop(listener);
    // A child's connection is seen; none of this process' own.
    let Run { pid: child, tcp, .. } = run_fixture();
    let seen = common::collect_until(
        &tracer,
        TIMEOUT,
        |e| matches!(e, Event::ConnOpen(_)) && (e.pid() == me || e.pid() == child),
        |g| g.iter().filter(|e| e.pid() == child).count() >= 2 * tcp.len(),
    );
    assert!(seen.iter().any(|e| e.pid() == child), "the child's connections");
    assert!(seen.iter().all(|e| e.pid() != me), "the tracer's own: {seen:?}");
}

#[test]
fn conn_open_and_conn_close_come_together() {
    let err = Config::new().event(proctap::EventKind::ConnOpen, true).validate().unwrap_err();
    assert!(err.to_string().contains("conn_open and conn_close come together"), "{err}");
    let err = Config::new().event(proctap::EventKind::NetData, true).validate().unwrap_err();
    assert!(err.to_string().contains("net_data needs conn_open and conn_close"), "{err}");
    assert!(Config::new().net_data().net_data_max(1 << 20).validate().is_ok());
}

/// Byte i of the big transfer.
fn big_byte(i: u64) -> u8 {
    (i * 7 % 251) as u8
}

#[test]
fn raw_mode_gives_every_data_syscalls_bytes_at_their_stream_position() {
    let config = Config::new().exec(false).exit(false).net_data().comm_prefix("ptnetpair");
    let Some(tracer) = common::start(&config) else { return };
    let run = run_fixture();
    let (client, ..) = run.big;
    let ours = |e: &Event<&[u8]>| {
        matches!(e, Event::NetData(_) | Event::ConnOpen(_)) && (e.pid() == run.pid || e.pid() == client)
    };
    let received = |g: &[Event]| {
        g.iter()
            .filter_map(|e| if let Event::NetData(d) = e { Some(d) } else { None })
            .filter(|d| d.len > 6 && d.direction == NetDataDirection::Recv)
            .map(|d| d.len)
            .sum::<u64>()
    };
    let mut got = common::collect_until(&tracer, TIMEOUT, ours, |g| received(g) >= 200_000);
    got.extend(common::collect_until(&tracer, Duration::from_millis(300), ours, |_| false));
    let data: Vec<&NetData> =
        got.iter().filter_map(|e| if let Event::NetData(d) = e { Some(d) } else { None }).collect();
    // The small pairs: "hello" one way, "world!" the other, each at 0.
    let small = |dir: NetDataDirection, text: &[u8]| {
        data.iter().filter(|d| d.pid == run.pid && d.direction == dir && d.data == text && d.pos == 0).count()
    };
    assert_eq!(small(NetDataDirection::Send, b"hello"), 3, "{data:?}");
    assert_eq!(small(NetDataDirection::Recv, b"hello"), 3);
    assert_eq!(small(NetDataDirection::Send, b"world!"), 3);
    assert_eq!(small(NetDataDirection::Recv, b"world!"), 3);
    assert_eq!(small(NetDataDirection::Send, b"udp"), 1);
    // sendmmsg and recvmmsg: each message its own event, in stream order.
    let msgs = |dir: NetDataDirection| -> Vec<(u64, &[u8])> {
        let mut m: Vec<(u64, &[u8])> = data
            .iter()
            .filter(|d| d.direction == dir && (d.data == b"ab" || d.data == b"cde"))
            .map(|d| (d.pos, &d.data[..]))
            .collect();
        m.sort();
        m
    };
    assert_eq!(msgs(NetDataDirection::Send), [(0, &b"ab"[..]), (2, b"cde")]);
    assert_eq!(msgs(NetDataDirection::Recv), [(0, &b"ab"[..]), (2, b"cde")]);
    // sendfile: no bytes to read, so a flagged gap of its length.
    let sendfile = data.iter().find(|d| d.len == 1000 && d.direction == NetDataDirection::Send).unwrap();
    assert_eq!((sendfile.pos, sendfile.data.len(), sendfile.truncated), (0, 0, true));
    let read_back: Vec<&&NetData> = data
        .iter()
        .filter(|d| d.direction == NetDataDirection::Recv && !d.data.is_empty() && d.data.iter().all(|&b| b == b'f'))
        .collect();
    assert_eq!(read_back.iter().map(|d| d.data.len()).sum::<usize>(), 1000, "the file's bytes, read");
    // The big transfer: one sendmsg of 200000 bytes, cut at 16 KiB.
    let sent: Vec<&&NetData> = data.iter().filter(|d| d.pid == client).collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (sent[0].direction, sent[0].pos, sent[0].len, sent[0].truncated),
        (NetDataDirection::Send, 0, 200_000, true)
    );
    assert!(sent[0].data.iter().enumerate().all(|(i, &b)| b == big_byte(i as u64)) && sent[0].data.len() == 16384);
    // The server's end: accepted on the big transfer's port.
    let big_server = got
        .iter()
        .find_map(|e| match e {
            Event::ConnOpen(o) if o.local.map(|a| a.port()) == Some(run.big.2) && o.role.name() == "server" => {
                Some(o.conn_id)
            }
            _ => None,
        })
        .expect("the big transfer's accept");
    // Received by readv and recvmsg in turn: contiguous, each with its own
    // first bytes (up to the cap), cut ones flagged.
    let mut recvs: Vec<&&NetData> = data
        .iter()
        .filter(|d| d.pid == run.pid && d.conn_id == big_server && d.direction == NetDataDirection::Recv)
        .collect();
    recvs.sort_by_key(|d| d.pos);
    let mut pos = 0;
    for d in &recvs {
        assert_eq!(d.pos, pos, "no gap: {recvs:?}");
        let kept = d.len.min(16384);
        assert_eq!((d.data.len() as u64, d.truncated, d.data_lost), (kept, d.len > kept, false));
        assert!(d.data.iter().enumerate().all(|(i, &b)| b == big_byte(pos + i as u64)), "bytes at {pos}");
        pos += d.len;
    }
    assert_eq!(pos, 200_000);
    assert!(recvs.len() >= 4, "at most 64 KiB per call: {}", recvs.len());
}

/// A real HTTP/1.1 server (Python's http.server) and its client, in one
/// process: three requests pipelined in one write, then a 200 KB response.
/// Both ends are traced, so each exchange gives two records.
#[test]
fn l7_records_of_a_real_http_server_from_both_ends() {
    let config = Config::new().exec(false).exit(false).net_data().comm_prefix("python");
    let Some(tracer) = common::start(&config) else { return };
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/l7http.py");
    let child = Command::new("python3").arg(&script).stdout(std::process::Stdio::piped()).spawn().expect("python3");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("done"), "{out:?}");
    let mut l7 = proctap::l7::Tracker::new();
    let mut records = Vec::new();
    let net =
        |e: &Event<&[u8]>| matches!(e, Event::ConnOpen(_) | Event::NetData(_) | Event::ConnClose(_)) && e.pid() == pid;
    let events = common::collect_until(&tracer, TIMEOUT, net, |g| {
        g.iter().filter(|e| matches!(e, Event::ConnClose(_))).count() >= 2
    });
    for e in &events {
        l7.feed(e, &mut records);
    }
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
    let deadline = std::time::Instant::now() + TIMEOUT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "redis-server did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/l7redis.py");
    let client = Command::new("python3").arg(&script).arg(port.to_string()).output().unwrap();
    assert!(client.status.success() && String::from_utf8_lossy(&client.stdout).contains("done"), "{client:?}");
    let records_of = |tracer: &proctap::Tracer, role: &str| {
        let mut l7 = proctap::l7::Tracker::new();
        let mut records = Vec::new();
        let net = |e: &Event<&[u8]>| matches!(e, Event::ConnOpen(_) | Event::NetData(_) | Event::ConnClose(_));
        let done = |g: &[Event]| {
            g.iter().filter(|e| matches!(e, Event::NetData(_))).count() >= 4
                && g.iter().any(|e| matches!(e, Event::ConnClose(_)))
        };
        for e in common::collect_until(tracer, TIMEOUT, net, done) {
            l7.feed(&e, &mut records);
        }
        records
            .into_iter()
            .filter(|r| r.role == role)
            .map(|r| match (r.request, r.response) {
                (Some(proctap::l7::Request::Redis(q)), Some(proctap::l7::Response::Redis(p))) => {
                    (q.command.join(" "), p.kind, p.value.to_string())
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

/// A child that waits for a line on stdin, connects to itself, sends 100
/// bytes, waits for another line, sends 200 more and closes.
const GIVE_UP_CHILD: &str = "
import socket, sys
sys.stdin.readline()
l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(1)
c = socket.create_connection(l.getsockname()); s, _ = l.accept()
c.sendall(b'\\x16' * 100); s.recv(100)
print(c.getsockname()[1], flush=True); sys.stdin.readline()
c.sendall(b'\\x16' * 200)
got = 0
while got < 200: got += len(s.recv(200))
c.close(); s.close()
";

#[test]
fn a_connection_given_up_on_is_counted_but_not_copied() {
    use std::io::{BufRead, BufReader, Write};
    let mut child = Command::new("python3")
        .args(["-c", GIVE_UP_CHILD])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (./dev.sh test installs it)");
    let mut stdin = child.stdin.take().unwrap();
    let config = Config::new().exec(false).exit(false).net_data().pid(child.id());
    let Some(tracer) = common::start(&config) else {
        let _ = child.kill();
        let _ = child.wait();
        return;
    };
    stdin.write_all(b"go\n").unwrap();
    let mut port = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut port).unwrap();
    let port: u16 = port.trim().parse().unwrap();
    let client = |e: &Event<&[u8]>| matches!(e, Event::ConnOpen(o) if o.local.map(|a| a.port()) == Some(port));
    let opened = common::collect_until(&tracer, TIMEOUT, client, |g| !g.is_empty());
    let Some(Event::ConnOpen(open)) = opened.first() else { panic!("the client's conn_open: {opened:?}") };
    let id = open.conn_id;
    tracer.give_up_connection(id).unwrap();
    stdin.write_all(b"go\n").unwrap();
    let ours = |e: &Event<&[u8]>| match e {
        Event::NetData(d) => d.conn_id == id,
        Event::ConnClose(c) => c.conn_id == id,
        _ => false,
    };
    let got = common::collect_until(&tracer, TIMEOUT, ours, |g| g.iter().any(|e| matches!(e, Event::ConnClose(_))));
    assert!(child.wait().unwrap().success());
    // The first 100 bytes came before the give-up; none after it.
    let sent: Vec<(u64, u64)> =
        got.iter().filter_map(|e| if let Event::NetData(d) = e { Some((d.pos, d.len)) } else { None }).collect();
    assert!(sent.iter().all(|&(pos, _)| pos < 100), "{sent:?}");
    let Some(Event::ConnClose(close)) = got.last() else { panic!("conn_close: {got:?}") };
    assert_eq!((close.sent_bytes, close.received_bytes), (300, 0));
    // Giving up needs net_data.
    let Some(plain) = common::start(&Config::new().exec(false).exit(false).connections()) else { return };
    assert!(plain.give_up_connection(id).unwrap_err().to_string().contains("net_data is off"));
}

/// Our own DNS responder and its client over UDP (answers out of order, an
/// NXDOMAIN), then a binary protocol on TCP: DNS records from both ends,
/// paired by id, and no record from the binary bytes.
#[test]
fn l7_records_of_dns_over_udp_pair_by_id_and_binary_bytes_give_none() {
    use proctap::l7::{Request, Response};
    let config = Config::new().exec(false).exit(false).net_data().comm_prefix("python");
    let Some(tracer) = common::start(&config) else { return };
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/l7dns.py");
    let child = Command::new("python3").arg(&script).stdout(std::process::Stdio::piped()).spawn().expect("python3");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("done"), "{out:?}");
    let net =
        |e: &Event<&[u8]>| matches!(e, Event::ConnOpen(_) | Event::NetData(_) | Event::ConnClose(_)) && e.pid() == pid;
    // Two UDP sockets and two TCP ones close.
    let events = common::collect_until(&tracer, TIMEOUT, net, |g| {
        g.iter().filter(|e| matches!(e, Event::ConnClose(_))).count() >= 4
    });
    let mut l7 = proctap::l7::Tracker::new();
    let mut records = Vec::new();
    for e in &events {
        l7.feed(e, &mut records);
    }
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
    let deadline = std::time::Instant::now() + TIMEOUT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "memcached did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/l7wire.py");
    let child = Command::new("python3")
        .arg(&script)
        .arg(port.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("done"), "{out:?}");
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

/// 3000 short connections to itself, each one byte each way.
const SHORT_CONNECTIONS: &str = "
import socket
l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(64)
for i in range(3000):
    c = socket.create_connection(l.getsockname()); s, _ = l.accept()
    c.sendall(b'q'); s.recv(1); s.sendall(b'a'); c.recv(1)
    c.close(); s.close()
l.close()
";

#[test]
fn thousands_of_short_connections_get_distinct_ids_and_leave_nothing_behind() {
    let config = Config::new().exec(false).exit(false).net_data().comm_prefix("python");
    let Some(tracer) = common::start(&config) else { return };
    let mut child = Command::new("python3").args(["-c", SHORT_CONNECTIONS]).spawn().expect("python3");
    let pid = child.id();
    // Read while it runs: 24000 events outgrow the channel's batches.
    let net =
        |e: &Event<&[u8]>| matches!(e, Event::ConnOpen(_) | Event::NetData(_) | Event::ConnClose(_)) && e.pid() == pid;
    let events = common::collect_until(&tracer, Duration::from_secs(30), net, |g| {
        g.iter().filter(|e| matches!(e, Event::ConnClose(_))).count() >= 6000
    });
    assert!(child.wait().unwrap().success());
    let opens: Vec<u64> =
        events.iter().filter_map(|e| if let Event::ConnOpen(o) = e { Some(o.conn_id) } else { None }).collect();
    let closes: HashSet<u64> =
        events.iter().filter_map(|e| if let Event::ConnClose(c) = e { Some(c.conn_id) } else { None }).collect();
    let distinct: HashSet<u64> = opens.iter().copied().collect();
    let stats = tracer.stats();
    assert_eq!((opens.len(), distinct.len(), closes.len()), (6000, 6000, 6000), "{stats:?}");
    assert_eq!(distinct, closes, "every connection seen is seen closed");
    // The L7 side keeps nothing of closed connections (and gives up on
    // these one-byte exchanges without a record).
    let mut l7 = proctap::l7::Tracker::new();
    let mut records = Vec::new();
    for e in &events {
        l7.feed(e, &mut records);
    }
    assert_eq!((l7.connections(), records.len()), (0, 0));
    assert_eq!(stats.conn_open().counter("not_followed"), Some(0));
    assert_eq!(stats.net_data().counter("truncated"), Some(0));
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
/// query with rows and one with an error, from both ends.
#[test]
fn l7_records_of_a_real_postgres_server_and_psql() {
    let psql_config = Config::new().exec(false).exit(false).net_data().comm_prefix("psql");
    let server_config = Config::new().exec(false).exit(false).net_data().comm_prefix("postgres");
    let Some(psql_tracer) = common::start(&psql_config) else { return };
    let Some(server_tracer) = common::start(&server_config) else { return };
    let pg = Postgres::start();
    let out = Command::new("psql")
        .args(["-X", "-h", "127.0.0.1", "-p", &pg.port.to_string(), "-U", "postgres", "-d", "postgres"])
        .args(["-c", "select generate_series(1,3)", "-c", "selec"])
        .output()
        .expect("psql");
    assert!(String::from_utf8_lossy(&out.stdout).contains("(3 rows)"), "{out:?}");
    let want = |role: &'static str| -> Vec<(&'static str, String, String)> {
        [
            (r#"{"query":"ssl"}"#, r#"{"status":"ok"}"#),
            (r#"{"query":"startup"}"#, r#"{"status":"ok"}"#),
            (r#"{"query":"select generate_series(1,3)"}"#, r#"{"status":"ok","rows":3}"#),
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
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/l7h2.py");
    let child = Command::new("python3").arg(&script).stdout(std::process::Stdio::piped()).spawn().expect("python3");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("done"),
        "{out:?} (h2: ./dev.sh test installs it)"
    );
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

/// A child that waits for a line, then receives a 100-byte datagram into a
/// 4-byte buffer with MSG_TRUNC (which returns the whole length).
const TRUNC_CHILD: &str = "
import socket, sys
sys.stdin.readline()
a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.bind(('127.0.0.1', 0))
b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); b.connect(a.getsockname())
b.send(b'x' * 100)
a.recvfrom(4, socket.MSG_TRUNC)
a.close(); b.close()
";

#[test]
fn a_receive_with_msg_trunc_copies_only_the_callers_buffer() {
    use std::io::Write;
    let mut child =
        Command::new("python3").args(["-c", TRUNC_CHILD]).stdin(std::process::Stdio::piped()).spawn().expect("python3");
    let mut stdin = child.stdin.take().unwrap();
    let config = Config::new().exec(false).exit(false).net_data().pid(child.id());
    let Some(tracer) = common::start(&config) else {
        let _ = child.kill();
        let _ = child.wait();
        return;
    };
    stdin.write_all(b"go\n").unwrap();
    let recv = |e: &Event<&[u8]>| matches!(e, Event::NetData(d) if d.direction == NetDataDirection::Recv);
    let got = common::collect_until(&tracer, TIMEOUT, recv, |g| !g.is_empty());
    assert!(child.wait().unwrap().success());
    let Some(Event::NetData(d)) = got.first() else { panic!("the receive: {got:?}") };
    // The kernel says 100 bytes; the caller's buffer held 4.
    assert_eq!((d.len, d.data.as_slice(), d.truncated), (100, &b"xxxx"[..], true));
}
