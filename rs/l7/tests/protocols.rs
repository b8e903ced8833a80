//! Each protocol on made-up connections, cut at several places: DNS,
//! Memcached, Kafka, MongoDB, PostgreSQL, MySQL, HTTP/2 and gRPC; and each
//! parser on any bytes.

use proptest::prelude::*;

use super::*;

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
    // A datagram that is no DNS message, between the answers: skipped
    // alone, the query still waiting keeps its pairing.
    let junk = vec![0xffu8; 5];
    let (mut send, mut recv) = (0, 0);
    let mut events = vec![udp_open()];
    for (ts, msg, dir) in [
        (10, &a, NetDataDirection::Send),
        (11, &aaaa, NetDataDirection::Send),
        (20, &answer_aaaa, NetDataDirection::Recv),
        (25, &junk, NetDataDirection::Recv),
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
        assert_eq!(exchange(requests, responses, cut), want, "cut at {cut}");
    }
}

/// Quiet meta requests (`q`) answer only when not the common case: a
/// response pairs with the one whose key or opaque it echoes, MN with mn,
/// and the quiet ones it passed end without a response; a response that
/// several quiet ones could have caused pairs with none and is counted.
#[test]
fn memcached_quiet_meta_requests_pair_by_what_their_responses_echo() {
    let requests: &[u8] = b"mg a v q k\r\nmg b v q k\r\nmg c v q Oxyz\r\nmn\r\n\
mg d v q\r\nmg e v q\r\nget f\r\nmg g v q\r\nmg h v q\r\nmn\r\n";
    // b hit (echoes kb), c failed as a miss would not: it echoes its
    // opaque; a and d, e miss (nothing). g or h hit: which, nothing says.
    let responses: &[u8] = b"VA 1 kb\r\nx\r\nNS Oxyz\r\nMN\r\nEND\r\nVA 1\r\ny\r\nMN\r\n";
    let m = |command: &str, key: &str, response: Option<&str>| {
        (
            Protocol::Memcached,
            format!(r#"{{"command":"{command}","key":{key},"keys":{}}}"#, if key == "null" { 0 } else { 1 }),
            response.map(String::from),
        )
    };
    let want = vec![
        m("mg", r#""a""#, None),
        m("mg", r#""b""#, Some(r#"{"status":"VA","values":1}"#)),
        m("mg", r#""c""#, Some(r#"{"status":"NS","values":0}"#)),
        m("mn", "null", Some(r#"{"status":"MN","values":0}"#)),
        m("mg", r#""d""#, None),
        m("mg", r#""e""#, None),
        m("get", r#""f""#, Some(r#"{"status":"END","values":0}"#)),
        m("mg", r#""g""#, None),
        m("mg", r#""h""#, None),
        m("mn", "null", Some(r#"{"status":"MN","values":0}"#)),
    ];
    for cut in [1, 9, 30, 61, 90] {
        let mut events = vec![open(ConnOpenRole::Client)];
        events.extend(segments(NetDataDirection::Send, requests, &[cut], 10));
        events.extend(segments(NetDataDirection::Recv, responses, &[cut], 20));
        let mut t = Tracker::new();
        let mut out = Vec::new();
        for e in &events {
            t.feed(e, &mut out);
        }
        assert_eq!(summaries(&out), want, "cut at {cut}");
        assert_eq!(t.evictions().ambiguous_responses, 1, "g's or h's VA");
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
        let got = exchange(&requests, &responses, cut);
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
        assert_eq!(
            exchange(&requests, &responses, cut),
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
        let _ = (memcached::parse_request(&bytes), memcached::parse_response(&bytes, &mut Default::default()), memcached::looks_like_request(&bytes));
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
        assert_eq!(exchange(&requests, &responses, cut), want, "cut at {cut}");
    }
}

proptest! {
    #[test]
    fn postgres_parsing_takes_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        let _ = (postgres::parse_request(&bytes), postgres::looks_like_request(&bytes));
        let _ = postgres::parse_response(&bytes, postgres::Reply::Messages, &mut Default::default());
        let _ = postgres::parse_response(&bytes, postgres::Reply::Byte, &mut Default::default());
    }
}

/// Segments of `bytes` of `each` bytes, each captured only up to `cap`
/// (the rest of it a capture cut), at their stream positions.
fn capped(direction: NetDataDirection, bytes: &[u8], each: usize, cap: usize, ts: u64) -> Vec<Event> {
    (0..bytes.len())
        .step_by(each)
        .map(|at| {
            let end = (at + each).min(bytes.len());
            let mut e = data(ts, direction, at as u64, &bytes[at..end.min(at + cap)], (end - at) as u64);
            if let Event::NetData(d) = &mut e {
                d.truncated = end - at > cap;
            }
            e
        })
        .collect()
}

/// Result sets larger than the bytes kept per direction (64 KiB), and one
/// with a capture cut inside a long row, still pair, with their whole size
/// and every row counted; the request after them pairs too.
#[test]
fn postgres_and_mysql_result_sets_of_any_size_pair() {
    // PostgreSQL: 3000 rows of 100 bytes, one of 30000.
    let row = pg(b'D', &[b'r'; 96]);
    let long = pg(b'D', &[b'l'; 29996]);
    let set = |rows: &[&[u8]]| {
        [&pg(b'T', b"\0\x01a\0")[..], &rows.concat(), &pg(b'C', b"SELECT 3001\0"), &pg(b'Z', b"I")].concat()
    };
    let mut rows: Vec<&[u8]> = vec![&row; 3000];
    rows.insert(1500, &long);
    let big = set(&rows);
    let small = set(&[&row]);
    let requests = [pg(b'Q', b"select big\0"), pg(b'Q', b"select small\0")].concat();
    let responses = [big.clone(), small.clone()].concat();
    let long_at = big.len() - (1500 * row.len() + pg(b'C', b"SELECT 3001\0").len() + 6 + long.len());
    let shift = |events: Vec<Event>, by: usize| {
        events.into_iter().map(move |mut e| {
            if let Event::NetData(d) = &mut e {
                d.pos += by as u64;
            }
            e
        })
    };
    for (each, cut) in [(8192, false), (4000, false), (8192, true)] {
        let mut events = vec![open(ConnOpenRole::Client)];
        events.extend(segments(NetDataDirection::Send, &requests, &[], 10));
        if cut {
            // One 20000-byte read inside the long row, captured up to the
            // 16 KiB cap; the others whole.
            let (a, b) = (long_at + 5000, long_at + 25000);
            events.extend(capped(NetDataDirection::Recv, &responses[..a], each, each, 20));
            events.extend(shift(capped(NetDataDirection::Recv, &responses[a..b], 20000, 16384, 21), a));
            events.extend(shift(capped(NetDataDirection::Recv, &responses[b..], each, each, 22), b));
        } else {
            events.extend(capped(NetDataDirection::Recv, &responses, each, 16384, 20));
        }
        let records = run(&events);
        let got: Vec<_> = records
            .iter()
            .map(|r| match &r.response {
                Some(Response::Postgres(p)) => (p.rows, r.response_bytes, r.truncated),
                other => panic!("{each}/{cut}: {other:?}"),
            })
            .collect();
        assert_eq!(got, [(Some(3001), big.len() as u64, cut), (Some(1), small.len() as u64, false)], "{each}/{cut}");
    }

    // MySQL: 2 columns, 2000 rows of 80 bytes, the older protocol's EOFs.
    let column = my(2, &[&[3][..], b"def", &[0u8; 20]].concat());
    let eof = my(4, &[0xfe, 0, 0, 2, 0]);
    let mrow = my(5, &[&[79][..], &[b'v'; 79]].concat());
    let mset = [&my(1, &[2])[..], &column, &column, &eof, &vec![mrow; 2000].concat(), &eof].concat();
    let ok = my(1, &[0, 0, 0, 2, 0, 0, 0]);
    let requests = [my(0, b"\x03select big"), my(0, b"\x03select 1")].concat();
    let responses = [mset.clone(), ok.clone()].concat();
    for each in [7000, 16384] {
        let mut events = vec![open(ConnOpenRole::Client)];
        events.extend(segments(NetDataDirection::Send, &requests, &[], 10));
        events.extend(capped(NetDataDirection::Recv, &responses, each, 16384, 20));
        let got: Vec<_> = run(&events)
            .iter()
            .map(|r| match &r.response {
                Some(Response::Mysql(p)) => (p.rows, r.response_bytes),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(got, [(Some(2000), mset.len() as u64), (None, ok.len() as u64)], "{each}");
    }
}

/// A memcached value of 200 KB, read 20000 bytes at a time and captured up
/// to 16 KiB of each: the retrieval still pairs, with every value counted
/// and its whole size; the next command pairs too.
#[test]
fn memcached_values_of_any_size_pair() {
    let requests: &[u8] = b"get big other\r\nget x\r\n";
    let first =
        [&b"VALUE big 0 200000\r\n"[..], &vec![b'b'; 200_000], b"\r\nVALUE other 0 3\r\nabc\r\nEND\r\n"].concat();
    let responses = [&first[..], b"END\r\n"].concat();
    for (each, cap) in [(20000, 16384), (8192, 8192)] {
        let mut events = vec![open(ConnOpenRole::Client)];
        events.extend(segments(NetDataDirection::Send, requests, &[], 10));
        events.extend(capped(NetDataDirection::Recv, &responses, each, cap, 20));
        let got: Vec<_> = run(&events)
            .iter()
            .map(|r| match &r.response {
                Some(Response::Memcached(m)) => (m.status.clone(), m.values, r.response_bytes, r.truncated),
                other => panic!("{other:?}"),
            })
            .collect();
        let cut = each > cap;
        assert_eq!(got, [("END".to_string(), 2, first.len() as u64, cut), ("END".into(), 0, 5, false)], "{each}/{cap}");
    }
}

/// A MySQL OK packet (the answer to "select 3" above).
fn ok_again() -> Vec<u8> {
    my(1, &[0, 0, 0, 2, 0, 0, 0])
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
        my(0, b"\x16select ? from t where b = ?"), // COM_STMT_PREPARE
        my(0, b"\x16select 1"),
        my(0, b"\x03select 3"),
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
        column.clone(),
        row(b"2"),
        my(4, &[0xfe, 0, 0, 2, 0, 0, 0]),
        // COM_STMT_PREPARE_OK: statement 1, 1 column, 2 parameters; their
        // definitions, each group with its EOF.
        my(1, &[0, 1, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0]),
        column.clone(),
        column.clone(),
        my(4, &[0xfe, 0, 0, 2, 0]),
        column.clone(),
        my(6, &[0xfe, 0, 0, 2, 0]),
        // CLIENT_DEPRECATE_EOF: no EOFs; 1 column, no parameters.
        my(1, &[0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
        column,
        ok_again(),
    ]
    .concat();
    let want: Vec<(Protocol, String, Option<String>)> = [
        (r#"{"query":"login"}"#, r#"{"status":"ok"}"#),
        (r#"{"query":"select a from t"}"#, r#"{"status":"ok","rows":2}"#),
        (r#"{"query":"bad"}"#, r#"{"status":"error","error":"You have an error"}"#),
        (r#"{"query":"select 2"}"#, r#"{"status":"ok","rows":1}"#),
        (r#"{"query":"select ? from t where b = ?"}"#, r#"{"status":"ok"}"#),
        (r#"{"query":"select 1"}"#, r#"{"status":"ok"}"#),
        (r#"{"query":"select 3"}"#, r#"{"status":"ok"}"#),
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
        let _ = (mysql::parse_request(&bytes), mysql::parse_response(&bytes, mysql::Reply::Command, &mut Default::default()), mysql::parse_response(&bytes, mysql::Reply::Auth, &mut Default::default()), mysql::parse_response(&bytes, mysql::Reply::Prepare, &mut Default::default()), mysql::looks_like_request(&bytes));
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
        let got = exchange(&requests, &responses, cut);
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

/// A connection traced from its middle: no preface, and header table
/// entries made before the join. Its frames are recognised; a field that
/// referred to an unknown entry is null, the others are right; the record
/// says mid_stream.
#[test]
fn http2_joined_mid_stream_is_recognised_and_flagged() {
    // Blocks as an encoder that indexes pseudo-headers (Python's hpack,
    // nghttp2) makes them. Before the join it had inserted ":authority:
    // h:80" (then index 62). After it, the first block inserts ":path:
    // /pkg.Svc/Call" (0x44: incremental indexing, name :path), which moves
    // the authority to 63 (0xbf), unknown here; the second block refers to
    // both (0xbe, 0xbf). 0x83 is the static ":method: POST".
    let call = [&[0x83, 0x44, 13][..], b"/pkg.Svc/Call", &[0xbf]].concat();
    let again = [0x83, 0xbe, 0xbf];
    // The server's status from an entry of before the join, then a
    // static one.
    let created = [0xbe];
    let ok = [0x88];
    let requests = [
        // The tail of a DATA frame of before the join, in its own segment.
        vec![b'q'; 7],
        h2_frame(1, 0x4, 5, &call),
        h2_frame(0, 0x1, 5, b"\0\0\0\0\x02hi"),
        h2_frame(8, 0, 0, &[0, 0, 1, 0]),
        h2_frame(1, 0x4 | 0x1, 7, &again),
    ];
    let responses = [h2_frame(1, 0x4 | 0x1, 5, &created), h2_frame(1, 0x4 | 0x1, 7, &ok)].concat();
    let mut events = vec![open(ConnOpenRole::Client)];
    let mut at = 0;
    for (i, r) in requests.iter().enumerate() {
        events.extend(segments(NetDataDirection::Send, r, &[], 10 + i as u64).into_iter().map(|mut e| {
            if let Event::NetData(d) = &mut e {
                d.pos += at;
            }
            e
        }));
        at += r.len() as u64;
    }
    events.extend(segments(NetDataDirection::Recv, &responses, &[], 20));
    assert_eq!(
        summaries(&run(&events)),
        vec![
            (
                Protocol::Http2,
                r#"{"method":"POST","path":"/pkg.Svc/Call","host":null,"stream_id":5,"mid_stream":true}"#.into(),
                Some(r#"{"status":null}"#.into())
            ),
            (
                Protocol::Http2,
                r#"{"method":"POST","path":"/pkg.Svc/Call","host":null,"stream_id":7,"mid_stream":true}"#.into(),
                Some(r#"{"status":200}"#.into())
            ),
        ]
    );
    // Random bytes, and the frames of other binary protocols, are not it.
    assert!(!http2::looks_like_frames(b"\x00\x00\x00\x54\x00\x03\x00\x00user\0postgres\0\0"));
    assert!(!http2::looks_like_frames(&[0x21, 0, 0, 0, 3, b's', b'e', b'l', b'e', b'c', b't']));
    assert!(!http2::looks_like_frames(&h2_frame(0, 0x1, 5, b"data only")));
    assert!(http2::looks_like_frames(&h2_frame(1, 0x4, 5, &call)));
}

proptest! {
    #[test]
    fn random_bytes_are_not_http2_frames(bytes in proptest::collection::vec(any::<u8>(), 9..400)) {
        // A valid HEADERS frame header by chance is about 1 in 10^9.
        prop_assert!(!http2::looks_like_frames(&bytes));
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
    assert!(matches!(
        memcached::parse_response(b"VALUE k 0 18446744073709551615\r\n", &mut Default::default()),
        Parse::Invalid
    ));
}
