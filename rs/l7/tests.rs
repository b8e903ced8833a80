//! The tracker on made-up connections: pipelined requests pair in order
//! however the bytes are split, a gap drops only what it covers, a cut
//! capture still gives its record, hostile bytes never panic.

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
    let got: Vec<(Vec<String>, &str, serde_json::Value)> = records
        .iter()
        .map(|r| match (&r.request, &r.response) {
            (Some(Request::Redis(q)), Some(Response::Redis(p))) => (q.command.clone(), p.kind, p.value.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        [
            (vec!["GET".to_string(), "k".into()], "null", serde_json::Value::Null),
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
    assert_eq!(t.evictions(), Evictions { connections: 6, requests: 10 });
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

/// A DNS message: a query for `name` of `qtype`, or (with `answer`) its
/// response carrying one A record.
fn dns_message(id: u16, name: &str, qtype: u16, answer: Option<[u8; 4]>) -> Vec<u8> {
    let flags: u16 = if answer.is_some() { 0x8180 } else { 0x0100 };
    let mut m = Vec::new();
    for word in [id, flags, 1, u16::from(answer.is_some()), 0, 0] {
        m.extend(word.to_be_bytes());
    }
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend(label.as_bytes());
    }
    m.push(0);
    m.extend(qtype.to_be_bytes());
    m.extend(1u16.to_be_bytes());
    if let Some(addr) = answer {
        m.extend([0xc0, 12]); // the question's name
        m.extend([0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        m.extend(addr);
    }
    m
}

fn udp_open() -> Event {
    let Event::ConnOpen(mut o) = open(ConnOpenRole::Client) else { unreachable!() };
    o.protocol = ConnOpenProtocol::Udp;
    Event::ConnOpen(o)
}

#[test]
fn dns_over_udp_pairs_by_id_whatever_the_order_of_the_answers() {
    let (a, aaaa) = (dns_message(0x1111, "example.com", 1, None), dns_message(0x2222, "example.com", 28, None));
    // The second query's answer comes first.
    let answer_aaaa = dns_message(0x2222, "example.com", 28, Some([0, 0, 0, 0]));
    let answer_a = dns_message(0x1111, "example.com", 1, Some([93, 184, 216, 34]));
    let (mut send, mut recv) = (0, 0);
    let mut events = vec![udp_open()];
    for (ts, msg, dir) in [
        (10, &a, NetDataDirection::Send),
        (11, &aaaa, NetDataDirection::Send),
        (20, &answer_aaaa, NetDataDirection::Recv),
        (30, &answer_a, NetDataDirection::Recv),
    ] {
        let pos = if dir == NetDataDirection::Send { &mut send } else { &mut recv };
        events.push(data(ts, dir, *pos, msg, msg.len() as u64));
        *pos += msg.len() as u64;
    }
    let records = run(&events);
    let pairs: Vec<_> = records
        .iter()
        .map(|r| match (&r.request, &r.response) {
            (Some(Request::Dns(q)), Some(Response::Dns(p))) => (q.id, q.qtype, p.id, p.answers.clone(), r.latency_ns),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        pairs,
        vec![
            (0x2222, 28, 0x2222, vec!["0.0.0.0".to_string()], 9),
            (0x1111, 1, 0x1111, vec!["93.184.216.34".into()], 20)
        ]
    );
    let json = serde_json::to_value(&records[1]).unwrap();
    assert_eq!(json["protocol"], "dns");
    assert_eq!(json["request"], serde_json::json!({"id": 0x1111, "qname": "example.com.", "qtype": 1}));
    assert_eq!(json["response"]["rcode"], 0);
}

#[test]
fn dns_over_tcp_is_framed_by_its_lengths_however_split() {
    let framed = |m: Vec<u8>| [(m.len() as u16).to_be_bytes().to_vec(), m].concat();
    let queries = [framed(dns_message(7, "a.example", 1, None)), framed(dns_message(8, "b.example", 1, None))].concat();
    let answers = [
        framed(dns_message(7, "a.example", 1, Some([10, 0, 0, 1]))),
        framed(dns_message(8, "b.example", 1, Some([10, 0, 0, 2]))),
    ]
    .concat();
    for cut in [1, 2, 5, 14, queries.len() / 2] {
        let mut events = vec![open(ConnOpenRole::Client)];
        events.extend(segments(NetDataDirection::Send, &queries, &[cut], 10));
        events.extend(segments(NetDataDirection::Recv, &answers, &[cut.min(answers.len() - 1)], 20));
        let got: Vec<_> = run(&events)
            .iter()
            .map(|r| match (&r.request, &r.response) {
                (Some(Request::Dns(q)), Some(Response::Dns(p))) => (q.qname.clone(), p.answers.clone()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("a.example.".to_string(), vec!["10.0.0.1".to_string()]),
                ("b.example.".into(), vec!["10.0.0.2".into()])
            ],
            "cut at {cut}"
        );
    }
}

proptest! {
    #[test]
    fn dns_parsing_takes_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        for transport in [dns::Transport::Datagram, dns::Transport::Stream] {
            let _ = dns::parse(&bytes, transport);
            let _ = dns::looks_like_query(&bytes, transport);
        }
    }
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

#[test]
fn memcached_pipelined_commands_pair_in_order_and_noreply_stands_alone() {
    let requests: &[u8] =
        b"set k 0 0 5\r\nhello\r\nget k\r\nget missing other\r\nset q 0 0 1 noreply\r\nx\r\ndelete k\r\nmg k v\r\n";
    let responses: &[u8] = b"STORED\r\nVALUE k 0 5\r\nhello\r\nEND\r\nEND\r\nDELETED\r\nEN\r\n";
    let want = vec![
        (Protocol::Memcached, r#"{"command":"set","key":"q","keys":1}"#.to_string(), None),
        (
            Protocol::Memcached,
            r#"{"command":"set","key":"k","keys":1}"#.into(),
            Some(r#"{"status":"STORED","values":0}"#.into()),
        ),
        (
            Protocol::Memcached,
            r#"{"command":"get","key":"k","keys":1}"#.into(),
            Some(r#"{"status":"END","values":1}"#.into()),
        ),
        (
            Protocol::Memcached,
            r#"{"command":"get","key":"missing","keys":2}"#.into(),
            Some(r#"{"status":"END","values":0}"#.into()),
        ),
        (
            Protocol::Memcached,
            r#"{"command":"delete","key":"k","keys":1}"#.into(),
            Some(r#"{"status":"DELETED","values":0}"#.into()),
        ),
        (
            Protocol::Memcached,
            r#"{"command":"mg","key":"k","keys":1}"#.into(),
            Some(r#"{"status":"EN","values":0}"#.into()),
        ),
    ];
    for cut in [1, 7, 15, 20, 33, 60] {
        let mut events = vec![open(ConnOpenRole::Client)];
        events.extend(segments(NetDataDirection::Send, requests, &[cut], 10));
        events.extend(segments(NetDataDirection::Recv, responses, &[cut], 20));
        assert_eq!(summaries(&run(&events)), want, "cut at {cut}");
    }
}

fn kafka_request(api_key: i16, version: i16, correlation: i32, client: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(api_key.to_be_bytes());
    body.extend(version.to_be_bytes());
    body.extend(correlation.to_be_bytes());
    body.extend((client.len() as i16).to_be_bytes());
    body.extend(client.as_bytes());
    body.extend([0u8; 9]); // the request's own fields
    [(body.len() as i32).to_be_bytes().to_vec(), body].concat()
}

fn kafka_response(correlation: i32, body: usize) -> Vec<u8> {
    let mut m = ((4 + body) as i32).to_be_bytes().to_vec();
    m.extend(correlation.to_be_bytes());
    m.extend(vec![0u8; body]);
    m
}

#[test]
fn kafka_pairs_by_correlation_id_even_out_of_order() {
    let requests = [kafka_request(3, 12, 5, "cli"), kafka_request(18, 3, 6, "cli")].concat();
    let responses = [kafka_response(6, 40), kafka_response(5, 300)].concat();
    for cut in [2, 9, 13, 30] {
        let mut events = vec![open(ConnOpenRole::Client)];
        events.extend(segments(NetDataDirection::Send, &requests, &[cut], 10));
        events.extend(segments(NetDataDirection::Recv, &responses, &[cut], 20));
        let got = summaries(&run(&events));
        assert_eq!(
            got,
            vec![
                (
                    Protocol::Kafka,
                    r#"{"api_key":18,"api_version":3,"correlation_id":6,"client_id":"cli"}"#.to_string(),
                    Some(r#"{"correlation_id":6}"#.to_string())
                ),
                (
                    Protocol::Kafka,
                    r#"{"api_key":3,"api_version":12,"correlation_id":5,"client_id":"cli"}"#.into(),
                    Some(r#"{"correlation_id":5}"#.into())
                ),
            ],
            "cut at {cut}"
        );
    }
}

/// A MongoDB OP_MSG (opcode 2013) whose body is the document `fields`
/// (already encoded elements).
fn mongo_msg(request_id: i32, response_to: i32, fields: &[u8]) -> Vec<u8> {
    let doc = [((4 + fields.len() + 1) as i32).to_le_bytes().to_vec(), fields.to_vec(), vec![0]].concat();
    let body = [0u32.to_le_bytes().to_vec(), vec![0], doc].concat();
    let mut m = ((16 + body.len()) as i32).to_le_bytes().to_vec();
    m.extend(request_id.to_le_bytes());
    m.extend(response_to.to_le_bytes());
    m.extend(2013i32.to_le_bytes());
    m.extend(body);
    m
}

/// BSON elements: a string field, a double field.
fn bson_string(name: &str, value: &str) -> Vec<u8> {
    [
        vec![0x02],
        name.as_bytes().to_vec(),
        vec![0],
        ((value.len() + 1) as i32).to_le_bytes().to_vec(),
        value.as_bytes().to_vec(),
        vec![0],
    ]
    .concat()
}

fn bson_double(name: &str, value: f64) -> Vec<u8> {
    [vec![0x01], name.as_bytes().to_vec(), vec![0], value.to_le_bytes().to_vec()].concat()
}

#[test]
fn mongodb_pairs_replies_with_their_requests_by_response_to() {
    let find = mongo_msg(100, 0, &[bson_string("find", "coll"), bson_string("$db", "test")].concat());
    let ping = mongo_msg(101, 0, &[bson_double("ping", 1.0), bson_string("$db", "admin")].concat());
    let requests = [find, ping].concat();
    let responses = [
        mongo_msg(7, 101, &bson_double("ok", 1.0)),
        mongo_msg(8, 100, &[bson_string("errmsg", "no"), bson_double("ok", 0.0)].concat()),
    ]
    .concat();
    for cut in [3, 17, 40] {
        let mut events = vec![open(ConnOpenRole::Client)];
        events.extend(segments(NetDataDirection::Send, &requests, &[cut], 10));
        events.extend(segments(NetDataDirection::Recv, &responses, &[cut], 20));
        assert_eq!(
            summaries(&run(&events)),
            vec![
                (
                    Protocol::Mongodb,
                    r#"{"op":"msg","command":"ping","request_id":101}"#.to_string(),
                    Some(r#"{"op":"msg","response_to":101,"ok":1.0}"#.to_string())
                ),
                (
                    Protocol::Mongodb,
                    r#"{"op":"msg","command":"find","request_id":100}"#.into(),
                    Some(r#"{"op":"msg","response_to":100,"ok":0.0}"#.into())
                ),
            ],
            "cut at {cut}"
        );
    }
}

proptest! {
    #[test]
    fn binary_protocol_parsers_take_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        let _ = (kafka::parse_request(&bytes), kafka::parse_response(&bytes), kafka::looks_like_request(&bytes));
        let _ = (mongodb::parse_request(&bytes), mongodb::parse_response(&bytes), mongodb::looks_like_request(&bytes));
        let _ = (memcached::parse_request(&bytes), memcached::parse_response(&bytes), memcached::looks_like_request(&bytes));
    }
}

/// A PostgreSQL typed message.
fn pg(t: u8, body: &[u8]) -> Vec<u8> {
    [vec![t], ((body.len() + 4) as i32).to_be_bytes().to_vec(), body.to_vec()].concat()
}

#[test]
fn postgres_requests_pair_with_everything_up_to_ready_for_query() {
    let startup = [&17i32.to_be_bytes()[..], &196_608i32.to_be_bytes(), b"user\0u\0\0\0"].concat();
    let requests = [
        [8i32.to_be_bytes(), 80_877_103i32.to_be_bytes()].concat(), // SSLRequest
        startup[..17].to_vec(),
        pg(b'Q', b"select 1; select 2\0"),
        [pg(b'P', b"\0select $1\0\0\0"), pg(b'B', b"\0\0\0\0\0\0\0\0"), pg(b'E', b"\0\0\0\0\0"), pg(b'S', b"")]
            .concat(),
        pg(b'Q', b"selec\0"),
        pg(b'X', b""),
    ]
    .concat();
    let row = pg(b'D', b"\0\x01\0\0\0\x011");
    let ready = pg(b'Z', b"I");
    let responses = [
        b"N".to_vec(),
        pg(b'R', &[0, 0, 0, 0]),
        pg(b'S', b"a\0b\0"),
        ready.clone(),
        pg(b'T', b"\0\x01x\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"),
        row.clone(),
        pg(b'C', b"SELECT 1\0"),
        row.clone(),
        pg(b'C', b"SELECT 1\0"),
        ready.clone(),
        pg(b'1', b""),
        pg(b'2', b""),
        row,
        pg(b'C', b"SELECT 1\0"),
        ready.clone(),
        pg(b'E', b"SERROR\0C42601\0Msyntax error at or near \"selec\"\0\0"),
        ready,
    ]
    .concat();
    let want: Vec<(Protocol, String, Option<String>)> = [
        (r#"{"query":"ssl"}"#, r#"{"status":"ok"}"#),
        (r#"{"query":"startup"}"#, r#"{"status":"ok"}"#),
        (r#"{"query":"select 1; select 2"}"#, r#"{"status":"ok","rows":2}"#),
        (r#"{"query":"select $1"}"#, r#"{"status":"ok","rows":1}"#),
        (r#"{"query":"selec"}"#, r#"{"status":"error","error":"syntax error at or near \"selec\""}"#),
    ]
    .iter()
    .map(|(q, p)| (Protocol::Postgres, q.to_string(), Some(p.to_string())))
    .collect();
    for cut in [1, 8, 9, 30, 60] {
        let mut events = vec![open(ConnOpenRole::Client)];
        events.extend(segments(NetDataDirection::Send, &requests, &[cut], 10));
        events.extend(segments(NetDataDirection::Recv, &responses, &[cut], 20));
        assert_eq!(summaries(&run(&events)), want, "cut at {cut}");
    }
}

proptest! {
    #[test]
    fn postgres_parsing_takes_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        let _ = (postgres::parse_request(&bytes), postgres::looks_like_request(&bytes));
        let _ = postgres::parse_response(&bytes, postgres::Reply::Messages);
        let _ = postgres::parse_response(&bytes, postgres::Reply::Byte);
    }
}

/// A MySQL packet.
fn my(seq: u8, payload: &[u8]) -> Vec<u8> {
    let n = payload.len();
    [vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq], payload.to_vec()].concat()
}

#[test]
fn mysql_login_queries_and_result_sets_pair_in_order() {
    let greeting = my(0, &[&[0x0a][..], b"10.11.6-MariaDB\0", &[0u8; 40]].concat());
    let login = my(1, &[&[0x0d, 0xa2, 0x3a, 0x00][..], &[0, 0, 0, 1, 0x21], &[0u8; 23], b"root\0\0"].concat());
    let requests = [
        login,
        my(0, b"\x03select a from t"),
        my(0, b"\x03bad"),
        my(0, b"\x03select 2"),
        my(0, &[0x01]), // COM_QUIT
    ]
    .concat();
    let greeting_len = greeting.len();
    let ok = my(2, &[0, 0, 0, 2, 0, 0, 0]);
    let column = my(2, &[&[3][..], b"def", &[0u8; 20]].concat());
    let eof = my(3, &[0xfe, 0, 0, 2, 0]);
    let row = |v: &[u8]| my(4, &[&[v.len() as u8][..], v].concat());
    let responses = [
        greeting,
        ok,
        // The older protocol: an EOF after the columns and at the end.
        my(1, &[1]),
        column.clone(),
        eof.clone(),
        row(b"x"),
        row(b"y"),
        eof,
        my(1, &[&[0xff, 0x28, 0x04][..], b"#42000", b"You have an error"].concat()),
        // CLIENT_DEPRECATE_EOF: no EOF after the columns, an OK with 0xfe
        // last; MariaDB's metadata flag after the column count.
        my(1, &[1, 1]),
        column,
        row(b"2"),
        my(4, &[0xfe, 0, 0, 2, 0, 0, 0]),
    ]
    .concat();
    let want: Vec<(Protocol, String, Option<String>)> = [
        (r#"{"query":"login"}"#, r#"{"status":"ok"}"#),
        (r#"{"query":"select a from t"}"#, r#"{"status":"ok","rows":2}"#),
        (r#"{"query":"bad"}"#, r#"{"status":"error","error":"You have an error"}"#),
        (r#"{"query":"select 2"}"#, r#"{"status":"ok","rows":1}"#),
    ]
    .iter()
    .map(|(q, p)| (Protocol::Mysql, q.to_string(), Some(p.to_string())))
    .collect();
    for cut in [1, 4, 20, 50, 70] {
        let mut events = vec![open(ConnOpenRole::Client)];
        // The greeting comes before the login.
        let (first, rest) = responses.split_at(greeting_len);
        events.extend(segments(NetDataDirection::Recv, first, &[cut], 5));
        events.extend(segments(NetDataDirection::Send, &requests, &[cut], 10));
        let mut tail = segments(NetDataDirection::Recv, rest, &[cut], 20);
        for e in &mut tail {
            if let Event::NetData(d) = e {
                d.pos += first.len() as u64;
            }
        }
        events.extend(tail);
        assert_eq!(summaries(&run(&events)), want, "cut at {cut}");
    }
}

proptest! {
    #[test]
    fn mysql_parsing_takes_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        let _ = (mysql::parse_request(&bytes), mysql::parse_response(&bytes, false), mysql::parse_response(&bytes, true), mysql::looks_like_request(&bytes));
    }
}

/// An HTTP/2 frame.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let n = payload.len();
    [vec![(n >> 16) as u8, (n >> 8) as u8, n as u8, kind, flags], stream.to_be_bytes().to_vec(), payload.to_vec()]
        .concat()
}

#[test]
fn http2_and_grpc_streams_pair_by_id_through_the_hpack_tables() {
    let mut client = loona_hpack::Encoder::new();
    let mut server = loona_hpack::Encoder::new();
    let hdr = |e: &mut loona_hpack::Encoder, h: &[(&str, &str)]| {
        e.encode(h.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
    };
    let get = hdr(&mut client, &[(":method", "GET"), (":path", "/a?x=1"), (":authority", "h:80"), (":scheme", "http")]);
    // Indexed from the table the first block filled.
    let call = hdr(
        &mut client,
        &[
            (":method", "POST"),
            (":path", "/pkg.Svc/Call"),
            (":authority", "h:80"),
            ("content-type", "application/grpc"),
        ],
    );
    let ok = hdr(&mut server, &[(":status", "200"), ("content-type", "application/grpc")]);
    let trailers = hdr(&mut server, &[("grpc-status", "5")]);
    let not_found = hdr(&mut server, &[(":status", "404")]);
    let requests = [
        crate::l7::http2::PREFACE.to_vec(),
        h2_frame(4, 0, 0, &[]),
        h2_frame(1, 0x4 | 0x1, 1, &get),
        // A block split into HEADERS and CONTINUATION.
        h2_frame(1, 0, 3, &call[..3]),
        h2_frame(9, 0x4, 3, &call[3..]),
        h2_frame(0, 0x1, 3, b"\0\0\0\0\x02hi"),
    ]
    .concat();
    let responses = [
        h2_frame(4, 0, 0, &[]),
        h2_frame(1, 0x4, 3, &ok),
        h2_frame(0, 0, 3, b"\0\0\0\0\x01!"),
        h2_frame(1, 0x4 | 0x1, 3, &trailers),
        h2_frame(1, 0x4, 1, &not_found),
        h2_frame(0, 0x1, 1, &[b'z'; 300]),
    ]
    .concat();
    for cut in [5, 24, 30, 40, 61] {
        let mut events = vec![open(ConnOpenRole::Client)];
        events.extend(segments(NetDataDirection::Send, &requests, &[cut], 10));
        events.extend(segments(NetDataDirection::Recv, &responses, &[cut], 20));
        let got = summaries(&run(&events));
        assert_eq!(
            got,
            vec![
                (
                    Protocol::Grpc,
                    r#"{"method":"POST","path":"/pkg.Svc/Call","host":"h:80","stream_id":3}"#.to_string(),
                    Some(r#"{"status":200,"grpc_status":5}"#.to_string())
                ),
                (
                    Protocol::Http2,
                    r#"{"method":"GET","path":"/a?x=1","host":"h:80","stream_id":1}"#.into(),
                    Some(r#"{"status":404}"#.into())
                ),
            ],
            "cut at {cut}"
        );
    }
}

proptest! {
    #[test]
    fn http2_takes_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..700), client in any::<bool>()) {
        let mut c = http2::Connection::default();
        let mut out = Vec::new();
        let (used, _) = c.feed(client, &bytes, 1, false, &mut out);
        prop_assert!(used <= bytes.len());
    }
}

#[test]
fn memcached_sizes_beyond_the_item_limit_are_not_the_protocol() {
    for line in
        [&b"set k 0 0 18446744073709551615\r\n"[..], b"ms k 99999999999999999999\r\n", b"set k 0 0 1073741825\r\n"]
    {
        assert!(matches!(memcached::parse_request(line), Parse::Invalid), "{}", String::from_utf8_lossy(line));
    }
    assert!(matches!(memcached::parse_response(b"VALUE k 0 18446744073709551615\r\n"), Parse::Invalid));
}
