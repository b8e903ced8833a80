//! The tracker on made-up connections: pipelined requests pair in order
//! however the bytes are split, a gap drops only what it covers, a cut
//! capture still gives its record, hostile bytes never panic. Each
//! protocol's own pairing is in `protocols`.

use proptest::prelude::*;

use super::*;
use crate::{
    Comm, ConnClose, ConnCloseFamily, ConnCloseProtocol, ConnCloseRole, ConnOpenFamily, ConnOpenProtocol, ConnOpenRole,
    WallTime,
};

const CONN: u64 = 7;

fn open(role: ConnOpenRole) -> Event {
    Event::ConnOpen(ConnOpen {
        ts_ns: 1,
        time: WallTime::default(),
        pid: 10,
        tid: 11,
        proc_start_ns: 0,
        comm: Comm::new(b"srv"),
        fd: 3,
        conn_id: CONN,
        role,
        protocol: ConnOpenProtocol::Tcp,
        family: ConnOpenFamily::Ipv4,
        local: "127.0.0.1:80".parse().ok(),
        remote: "127.0.0.1:5000".parse().ok(),
    })
}

fn close() -> Event {
    Event::ConnClose(ConnClose {
        ts_ns: 1_000_000,
        time: WallTime::default(),
        pid: 10,
        tid: 11,
        proc_start_ns: 0,
        comm: Comm::new(b"srv"),
        fd: 3,
        conn_id: CONN,
        role: ConnCloseRole::Server,
        protocol: ConnCloseProtocol::Tcp,
        family: ConnCloseFamily::Ipv4,
        local: None,
        remote: None,
        sent_bytes: 0,
        received_bytes: 0,
    })
}

/// A data event of `len` bytes at `pos`, the first `cap` captured.
fn data(ts_ns: u64, direction: NetDataDirection, pos: u64, bytes: &[u8], len: u64) -> Event {
    Event::NetData(NetData {
        ts_ns,
        time: WallTime::default(),
        pid: 10,
        tid: 11,
        proc_start_ns: 0,
        comm: Comm::new(b"srv"),
        fd: 3,
        conn_id: CONN,
        direction,
        pos,
        len,
        data: bytes.to_vec(),
        truncated: (bytes.len() as u64) < len,
        data_lost: false,
    })
}

/// Feeds a stream's bytes cut at `cuts` (positions), as events.
fn segments(direction: NetDataDirection, bytes: &[u8], cuts: &[usize], ts: u64) -> Vec<Event> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.push(0);
    points.push(bytes.len());
    points.sort();
    points.dedup();
    points.windows(2).map(|w| data(ts, direction, w[0] as u64, &bytes[w[0]..w[1]], (w[1] - w[0]) as u64)).collect()
}

fn run(events: &[Event]) -> Vec<Record> {
    let mut t = Tracker::new();
    let mut out = Vec::new();
    for e in events {
        t.feed(e, &mut out);
    }
    out
}

const REQUESTS: &[u8] = b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloHEAD /c HTTP/1.1\r\n\r\n";
const RESPONSES: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\n";

fn summary(records: &[Record]) -> Vec<(String, String, u16, u64, u64)> {
    records
        .iter()
        .map(|r| match (&r.request, &r.response) {
            (Some(Request::Http1(q)), Some(Response::Http1(p))) => {
                (q.method.clone(), q.path.clone(), p.status, r.request_bytes, r.response_bytes)
            }
            (Some(Request::Http1(q)), None) => (q.method.clone(), q.path.clone(), 0, r.request_bytes, 0),
            other => panic!("not http: {other:?}"),
        })
        .collect()
}

fn http_expected() -> Vec<(String, String, u16, u64, u64)> {
    vec![
        ("GET".into(), "/a?x=1".into(), 200, 32, 41),
        ("POST".into(), "/b".into(), 201, 53, 64),
        // A response to HEAD has no body, whatever its Content-Length says.
        ("HEAD".into(), "/c".into(), 404, 20, 45),
    ]
}

#[test]
fn pipelined_http_requests_in_one_write_pair_in_order() {
    let mut events = vec![open(ConnOpenRole::Server)];
    events.push(data(5, NetDataDirection::Recv, 0, REQUESTS, REQUESTS.len() as u64));
    events.push(data(9, NetDataDirection::Send, 0, RESPONSES, RESPONSES.len() as u64));
    let records = run(&events);
    assert_eq!(summary(&records), http_expected());
    let r = &records[0];
    assert_eq!((r.role, r.start_ns, r.end_ns, r.latency_ns, r.truncated), ("server", 5, 9, 4, false));
    let json = serde_json::to_string(&records[0]).unwrap();
    assert!(json.starts_with(r#"{"type":"l7","protocol":"http1","pid":10,"tid":11,"comm":"srv","conn_id":7,"role":"server","local":"127.0.0.1:80","remote":"127.0.0.1:5000""#), "{json}");
    assert!(
        json.contains(r#""request":{"method":"GET","path":"/a?x=1","host":"h"},"response":{"status":200}"#),
        "{json}"
    );
}

proptest! {
    /// However the syscalls cut the two streams, the same records come out.
    #[test]
    fn any_split_of_the_streams_gives_the_same_records(
        req_cuts in proptest::collection::vec(any::<usize>(), 0..8),
        res_cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut events = vec![open(ConnOpenRole::Server)];
        events.extend(segments(NetDataDirection::Recv, REQUESTS, &req_cuts, 5));
        events.extend(segments(NetDataDirection::Send, RESPONSES, &res_cuts, 9));
        prop_assert_eq!(summary(&run(&events)), http_expected());
    }

    /// Bytes nobody sent as HTTP or RESP: no record, and no panic.
    #[test]
    fn hostile_bytes_give_no_record_and_no_panic(
        a in proptest::collection::vec(any::<u8>(), 0..600),
        b in proptest::collection::vec(any::<u8>(), 0..600),
        role in 0u8..3,
    ) {
        let role = [ConnOpenRole::Unknown, ConnOpenRole::Client, ConnOpenRole::Server][role as usize];
        let events = vec![
            open(role),
            data(2, NetDataDirection::Send, 0, &a, a.len() as u64),
            data(3, NetDataDirection::Recv, 0, &b, b.len() as u64),
            close(),
        ];
        let records = run(&events);
        // Only bytes that begin like a request can make one.
        if !http1::looks_like_request(&a) && !http1::looks_like_request(&b) && !redis::looks_like_request(&a)
            && !redis::looks_like_request(&b) {
            prop_assert!(records.is_empty());
        }
    }
}

#[test]
fn a_cut_capture_still_gives_the_record_flagged_with_whole_sizes() {
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n";
    let total = head.len() as u64 + 200_000;
    let mut first = head.to_vec();
    first.extend(vec![b'x'; 16384 - head.len()]);
    let events = vec![
        open(ConnOpenRole::Client),
        data(1, NetDataDirection::Send, 0, b"GET /big HTTP/1.1\r\n\r\n", 21),
        // 65536 bytes moved, 16 KiB captured; then the rest, none captured.
        data(2, NetDataDirection::Recv, 0, &first, 65536),
        data(3, NetDataDirection::Recv, 65536, b"", total - 65536),
        data(4, NetDataDirection::Send, 21, b"GET /next HTTP/1.1\r\n\r\n", 22),
        data(5, NetDataDirection::Recv, total, b"HTTP/1.1 204 No Content\r\n\r\n", 27),
    ];
    let records = run(&events);
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!((records[0].response_bytes, records[0].truncated), (total, true));
    assert_eq!((summary(&records[1..])[0].2, records[1].truncated), (204, false), "the next one parses");
}

#[test]
fn a_gap_drops_only_what_it_covers() {
    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let events = vec![
        open(ConnOpenRole::Client),
        // A POST whose body is partly lost: the gap falls inside it, so
        // nothing that matters is.
        data(1, NetDataDirection::Send, 0, b"POST /1 HTTP/1.1\r\nContent-Length: 10\r\n\r\nab", 42),
        data(2, NetDataDirection::Send, 46, b"cdefGET /2 HTTP/1.1\r\n\r\n", 23),
        data(3, NetDataDirection::Recv, 0, ok, 38),
        // The response to /2 is lost (a gap of 38 bytes): how many responses
        // it held is unknown, so /2 is reported without one.
        data(4, NetDataDirection::Recv, 76, ok, 38),
        // Traffic after the gap pairs again.
        data(5, NetDataDirection::Send, 69, b"GET /3 HTTP/1.1\r\n\r\n", 19),
        data(6, NetDataDirection::Recv, 114, b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", 44),
    ];
    let s = summary(&run(&events));
    assert_eq!((s[0].1.as_str(), s[0].2, s[0].3), ("/1", 200, 50), "the body's gap lost nothing");
    assert_eq!((s[1].1.as_str(), s[1].2), ("/2", 0), "no response: the gap lost it");
    assert_eq!((s[2].1.as_str(), s[2].2), ("/3", 202));
    assert_eq!(s.len(), 3);
}

#[test]
fn a_request_without_response_by_close_is_reported_alone() {
    let events =
        vec![open(ConnOpenRole::Client), data(1, NetDataDirection::Send, 0, b"GET /x HTTP/1.1\r\n\r\n", 19), close()];
    let records = run(&events);
    assert_eq!(records.len(), 1);
    assert!(records[0].response.is_none());
    assert!(serde_json::to_string(&records[0]).unwrap().contains(r#""response":null"#));
}

#[test]
fn pipelined_redis_commands_pair_in_order() {
    let requests = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\nPING\r\n";
    let responses = b"$-1\r\n+OK\r\n+PONG\r\n";
    let mut events = vec![open(ConnOpenRole::Unknown)];
    events.extend(segments(NetDataDirection::Send, requests, &[5, 17], 1));
    events.extend(segments(NetDataDirection::Recv, responses, &[3], 2));
    let records = run(&events);
    let got: Vec<(Vec<String>, &str, super::redis::Value)> = records
        .iter()
        .map(|r| match (&r.request, &r.response) {
            (Some(Request::Redis(q)), Some(Response::Redis(p))) => (q.command.clone(), p.kind, p.value.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        [
            (vec!["GET".to_string(), "k".into()], "null", super::redis::Value::Null),
            (vec!["SET".into(), "k".into(), "v".into()], "string", "OK".into()),
            (vec!["PING".into()], "string", "PONG".into()),
        ]
    );
    assert_eq!(records[0].role, "client", "the role is inferred from who sent the commands");
}

#[test]
fn memory_stays_bounded_and_evictions_are_counted() {
    let limits = Limits { connections: 4, pending_per_connection: 2, inference_bytes: 64, ..Limits::default() };
    let mut t = Tracker::with_limits(limits);
    let mut out = Vec::new();
    for id in 0..10u64 {
        let mut e = data(
            id,
            NetDataDirection::Send,
            0,
            b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n",
            48,
        );
        if let Event::NetData(d) = &mut e {
            d.conn_id = id;
        }
        t.feed(&e, &mut out);
    }
    assert_eq!(t.connections(), 4);
    assert_eq!(t.evictions(), Evictions { connections: 6, requests: 10, ambiguous_responses: 0 });
}

#[test]
fn a_request_unanswered_past_the_timeout_is_reported_alone() {
    let limits = Limits { response_timeout_ns: 1000, ..Limits::default() };
    let mut t = Tracker::with_limits(limits);
    let mut out = Vec::new();
    t.feed(&open(ConnOpenRole::Client), &mut out);
    t.feed(&data(10, NetDataDirection::Send, 0, b"GET /slow HTTP/1.1\r\n\r\n", 22), &mut out);
    t.expire(500, &mut out);
    assert!(out.is_empty(), "not yet");
    t.expire(2000, &mut out);
    assert_eq!(out.len(), 1);
    assert!(out[0].response.is_none());
    // Its late answer does not pair with the request after it.
    t.feed(&data(2100, NetDataDirection::Send, 22, b"GET /next HTTP/1.1\r\n\r\n", 22), &mut out);
    t.feed(&data(3000, NetDataDirection::Recv, 0, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 38), &mut out);
    assert_eq!(out.len(), 1);
    t.feed(&data(3100, NetDataDirection::Recv, 38, b"HTTP/1.1 204 No Content\r\n\r\n", 27), &mut out);
    let last = out.last().unwrap();
    assert!(
        matches!((&last.request, &last.response), (Some(Request::Http1(q)), Some(Response::Http1(p))) if q.path == "/next" && p.status == 204)
    );
}

#[test]
fn resp_commands_are_recognised_from_their_first_bytes() {
    assert!(redis::looks_like_request(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"));
    assert!(redis::looks_like_request(b"*1\r\n$4\r\nPING\r\n"));
    assert!(redis::looks_like_request(b"*2\r\n$"), "as far as the bytes go");
    assert!(!redis::looks_like_request(b"*\r\n"));
    assert!(!redis::looks_like_request(b"*2\r\n+OK\r\n"));
    assert!(!redis::looks_like_request(b"GET / HTTP/1.1\r\n"));
}

#[test]
fn a_connection_that_matches_nothing_is_given_up_once() {
    let limits = Limits { inference_bytes: 64, ..Limits::default() };
    let mut tracker = Tracker::with_limits(limits);
    let mut out = Vec::new();
    tracker.feed(&open(ConnOpenRole::Client), &mut out);
    let noise = [0x16u8, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, 0x42];
    let mut pos = 0;
    let mut given_up = Vec::new();
    for ts in 0..20 {
        tracker.feed(&data(ts, NetDataDirection::Send, pos, &noise, noise.len() as u64), &mut out);
        pos += noise.len() as u64;
        given_up.extend(tracker.take_given_up());
    }
    assert!(out.is_empty(), "{out:?}");
    // Once, after more than 64 bytes, never again.
    assert_eq!(given_up, vec![CONN]);
}

/// (protocol, request summary, response summary) of each record.
fn summaries(records: &[Record]) -> Vec<(Protocol, String, Option<String>)> {
    records
        .iter()
        .map(|r| {
            let q = serde_json::to_string(&r.request).unwrap();
            (r.protocol, q, r.response.as_ref().map(|p| serde_json::to_string(p).unwrap()))
        })
        .collect()
}

/// The records of a client connection whose requests and responses come
/// each in two segments, cut at `cut`.
fn exchange(requests: &[u8], responses: &[u8], cut: usize) -> Vec<(Protocol, String, Option<String>)> {
    let mut events = vec![open(ConnOpenRole::Client)];
    events.extend(segments(NetDataDirection::Send, requests, &[cut], 10));
    events.extend(segments(NetDataDirection::Recv, responses, &[cut], 20));
    summaries(&run(&events))
}

mod protocols;
