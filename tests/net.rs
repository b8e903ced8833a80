//! TCP and UDP connections of traced processes, against the real kernel:
//! opened by connect (client), accept (server) or first use, closed at the
//! socket's last close with the exact bytes moved; IPv4, IPv6 and
//! IPv4-mapped addresses; ids unique.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use proctap::{Config, ConnClose, ConnCloseProtocol, ConnCloseRole, ConnOpen, Event};

const TIMEOUT: Duration = Duration::from_secs(10);

/// (label, client port, server port) of a TCP pair the fixture made.
type TcpPair = (String, u16, u16);

/// The fixture's pid, and what it printed: its TCP pairs, and (local port,
/// peer port) of its UDP socket.
fn run_fixture() -> (u32, Vec<TcpPair>, (u16, u16)) {
    // Built once: tests run in parallel, and a binary being rewritten cannot run.
    static EXE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let exe = EXE.get_or_init(|| common::fixture::build_c("netpair.c", "ptnetpair"));
    let child = Command::new(exe).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut tcp = Vec::new();
    let mut udp = (0, 0);
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        match f[0] {
            "tcp" => tcp.push((f[1].to_string(), f[2].parse().unwrap(), f[3].parse().unwrap())),
            _ => udp = (f[1].parse().unwrap(), f[2].parse().unwrap()),
        }
    }
    (pid, tcp, udp)
}

fn addr(text: &str) -> Option<SocketAddr> {
    Some(text.parse().unwrap())
}

#[test]
fn connections_open_and_close_with_their_ends_and_exact_bytes() {
    let config = Config::new().exec(false).exit(false).connections().comm_prefix("ptnetpair");
    let Some(tracer) = common::start(&config) else { return };
    let (pid, tcp, udp) = run_fixture();
    // 3 TCP pairs (2 opens and 2 closes each) and 1 UDP socket (1 and 1).
    let want = 3 * 4 + 2;
    let ours = |e: &Event<&[u8]>| matches!(e, Event::ConnOpen(_) | Event::ConnClose(_)) && e.pid() == pid;
    let mut got = common::collect_until(&tracer, TIMEOUT, ours, |g| g.len() >= want);
    got.extend(common::collect_until(&tracer, Duration::from_millis(300), ours, |_| false));
    let opens: Vec<&ConnOpen> =
        got.iter().filter_map(|e| if let Event::ConnOpen(o) = e { Some(o) } else { None }).collect();
    let closes: Vec<&ConnClose> =
        got.iter().filter_map(|e| if let Event::ConnClose(c) = e { Some(c) } else { None }).collect();
    assert_eq!((opens.len(), closes.len()), (7, 7), "{got:?}");
    // Every id is new, and each close names an open's id.
    let ids: HashSet<u64> = opens.iter().map(|o| o.conn_id).collect();
    assert_eq!(ids.len(), 7);
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
    let udp_open = opens.iter().find(|o| o.protocol.name() == "udp").unwrap();
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
    let (child, tcp, _) = run_fixture();
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
}
