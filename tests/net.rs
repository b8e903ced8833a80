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
    // recvmmsg with a timeout: its first message's bytes; a later call's
    // first message (which one it is cannot be told from a continuing call)
    // a flagged gap of its length, never another buffer's bytes.
    let udp_recv = |pos: u64| {
        data.iter().find(|d| d.pid == run.pid && d.direction == NetDataDirection::Recv && d.pos == pos && d.len <= 3)
    };
    assert_eq!(udp_recv(5).map(|d| &d.data[..]), Some(&b"xy"[..]), "{data:?}");
    let zzz = udp_recv(7).expect("the second timed call's message");
    assert!(zzz.len == 3 && (zzz.data == b"zzz" || (zzz.data.is_empty() && zzz.truncated)), "{zzz:?}");
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

/// A python3 child running `script`, which first waits for a line on
/// stdin, and a raw-mode tracer of it alone; the line is sent.
fn traced_python(script: &str) -> Option<(std::process::Child, std::process::ChildStdin, proctap::Tracer)> {
    use std::io::Write;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (./dev.sh test installs it)");
    let mut stdin = child.stdin.take().unwrap();
    let config = Config::new().exec(false).exit(false).net_data().pid(child.id());
    let Some(tracer) = common::start(&config) else {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    };
    stdin.write_all(b"go\n").unwrap();
    Some((child, stdin, tracer))
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
    let Some((mut child, mut stdin, tracer)) = traced_python(GIVE_UP_CHILD) else { return };
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
    let Some((mut child, _stdin, tracer)) = traced_python(TRUNC_CHILD) else { return };
    let recv = |e: &Event<&[u8]>| matches!(e, Event::NetData(d) if d.direction == NetDataDirection::Recv);
    let got = common::collect_until(&tracer, TIMEOUT, recv, |g| !g.is_empty());
    assert!(child.wait().unwrap().success());
    let Some(Event::NetData(d)) = got.first() else { panic!("the receive: {got:?}") };
    // The kernel says 100 bytes; the caller's buffer held 4.
    assert_eq!((d.len, d.data.as_slice(), d.truncated), (100, &b"xxxx"[..], true));
}

/// With a cgroup filter, the connections of a process in the cgroup (or
/// below) are seen and those of the same program elsewhere are not.
#[test]
fn a_cgroup_filter_keeps_only_the_cgroups_connections() {
    use common::cgroup::V2Cgroup;
    use std::io::{BufRead, Write};
    let cgroup = V2Cgroup::new("proctap-netcg");
    let Some(tracer) = common::start(&Config::new().exec(false).exit(false).connections().cgroup(&cgroup.dir)) else {
        return;
    };
    // Connects to itself and sends 4 bytes once told to; prints its client port.
    let script = "import socket, sys
sys.stdin.readline()
l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(1)
c = socket.create_connection(l.getsockname()); s, _ = l.accept()
c.sendall(b'ping'); s.recv(4)
print(c.getsockname()[1], flush=True)";
    let spawn = |join: Option<&V2Cgroup>| {
        let join = join.map(|g| format!("echo $$ > {} && ", g.procs().display())).unwrap_or_default();
        Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("{join}exec python3 -c \"{script}\""))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 (./dev.sh test installs it)")
    };
    let (inside, outside) = (spawn(Some(&cgroup)), spawn(None));
    let port = |mut child: std::process::Child| {
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert!(child.wait().unwrap().success());
        (child.id(), line.trim().parse::<u16>().unwrap())
    };
    let ((pin, port_in), (pout, _)) = (port(inside), port(outside));
    let of_children = |e: &Event<&[u8]>| matches!(e, Event::ConnOpen(_)) && (e.pid() == pin || e.pid() == pout);
    let mut got = common::collect_until(&tracer, TIMEOUT, of_children, |g| g.len() >= 2);
    got.extend(common::collect_until(&tracer, Duration::from_millis(300), of_children, |_| false));
    assert!(got.iter().all(|e| e.pid() == pin), "only the cgroup's process: {got:?}");
    let client = got.iter().find_map(|e| match e {
        Event::ConnOpen(o) if o.local.map(|a| a.port()) == Some(port_in) => Some(o),
        _ => None,
    });
    assert!(client.is_some_and(|o| o.role.name() == "client"), "{got:?}");
    assert_eq!(got.len(), 2, "both ends of the cgroup's connection: {got:?}");
}
