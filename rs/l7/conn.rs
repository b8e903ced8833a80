//! One connection's state: what each direction is parsing, the requests
//! waiting for their responses, and the pairing of the two.

use std::collections::VecDeque;
use std::net::SocketAddr;

use super::stream::Direction;
use super::{
    dns, http1, http2, kafka, memcached, mongodb, mysql, postgres, redis, Evictions, Framed, Limits, Parse, Partial,
    Protocol, Record, Request, Response,
};
use crate::NetDataDirection;

struct Waiting {
    request: Request,
    /// What its response names it by (a DNS id), for protocols that pair
    /// by key rather than in order.
    key: Option<u64>,
    start_ns: u64,
    bytes: u64,
    truncated: bool,
    /// The method, for HTTP (a response to HEAD has no body).
    method: Option<String>,
}

pub(super) struct Conn {
    pub(super) pid: u32,
    pub(super) tid: u32,
    pub(super) comm: String,
    pub(super) role: Option<&'static str>,
    pub(super) local: Option<SocketAddr>,
    pub(super) remote: Option<SocketAddr>,
    pub(super) protocol: Option<Protocol>,
    /// The direction requests go (send for a client, recv for a server).
    pub(super) requests: Option<NetDataDirection>,
    pub(super) given_up: bool,
    /// HTTP/2's frames, header tables and streams.
    h2: Option<Box<http2::Connection>>,
    /// Datagrams (UDP: a message per syscall) or a byte stream (TCP).
    pub(super) transport: dns::Transport,
    seen: u64,
    pub(super) send: Direction,
    pub(super) recv: Direction,
    /// Per direction (send, recv): a message whose head is parsed and whose
    /// body is still coming; it counts once its last byte has passed.
    in_flight: [Option<InFlight>; 2],
    /// Per direction: the long message being parsed in steps.
    partial: [Partial; 2],
    waiting: VecDeque<Waiting>,
    /// Responses still owed to requests reported unanswered (timed out):
    /// they must not pair with the requests after them.
    orphans: u64,
    pub(super) opened: u64,
}

/// A message waiting for the rest of its body.
struct InFlight {
    msg: Either,
    size: u64,
    start_ns: u64,
    truncated: bool,
}

pub(super) fn new_conn(pid: u32, tid: u32, comm: String, ts_ns: u64) -> Conn {
    Conn {
        pid,
        tid,
        comm,
        role: None,
        local: None,
        remote: None,
        protocol: None,
        requests: None,
        given_up: false,
        h2: None,
        transport: dns::Transport::Stream,
        seen: 0,
        send: Direction::default(),
        recv: Direction::default(),
        in_flight: [None, None],
        partial: [Partial::default(), Partial::default()],
        waiting: VecDeque::new(),
        orphans: 0,
        opened: ts_ns,
    }
}

/// Locks the protocol in from the first bytes of a direction (`latest`:
/// how many of them the last segment added); false while undecided (or
/// given up).
pub(super) fn infer(conn: &mut Conn, dir: NetDataDirection, latest: usize, limits: Limits) -> bool {
    let b = match dir {
        NetDataDirection::Send => &conn.send.pending,
        _ => &conn.recv.pending,
    };
    let preface = b.len() >= 14 && http2::PREFACE.starts_with(&b[..b.len().min(http2::PREFACE.len())]);
    // HTTP/2 joined in its middle: the frames start at the waiting bytes, or
    // at the last segment (earlier ones may have ended inside a frame).
    let joined_at = || {
        let last = b.len() - latest.min(b.len());
        [0, last].into_iter().find(|&at| at < b.len() && http2::looks_like_frames(&b[at..]))
    };
    let mut joined = None;
    let found = if preface {
        Some(Protocol::Http2)
    } else if http1::looks_like_request(b) && b.len() >= 4 {
        Some(Protocol::Http1)
    } else if redis::looks_like_request(b) && b.len() >= 4 {
        Some(Protocol::Redis)
    } else if postgres::looks_like_request(b) {
        Some(Protocol::Postgres)
    } else if mysql::looks_like_request(b) {
        Some(Protocol::Mysql)
    } else if memcached::looks_like_request(b) {
        Some(Protocol::Memcached)
    } else if mongodb::looks_like_request(b) {
        Some(Protocol::Mongodb)
    } else if kafka::looks_like_request(b) {
        Some(Protocol::Kafka)
    } else if dns::looks_like_query(b, conn.transport) {
        Some(Protocol::Dns)
    } else if let Some(at) = joined_at() {
        joined = Some(at);
        Some(Protocol::Http2)
    } else {
        None
    };
    match found {
        // The requests' direction is what the role says, or this one.
        Some(p) if conn.requests.is_none_or(|r| r == dir) => {
            conn.protocol = Some(p);
            conn.requests = Some(dir);
            if let Some(at) = joined {
                conn.h2 = Some(Box::new(http2::Connection::new(true)));
                // The other direction's bytes so far may end inside a
                // frame: it starts at its next segment.
                let (this, other) = match dir {
                    NetDataDirection::Send => (&mut conn.send, &mut conn.recv),
                    _ => (&mut conn.recv, &mut conn.send),
                };
                this.consume(at, 0);
                other.restart();
            }
            true
        }
        _ => {
            conn.seen += b.len() as u64;
            if conn.seen > limits.inference_bytes {
                conn.given_up = true;
                conn.send.desync();
                conn.recv.desync();
            }
            false
        }
    }
}

/// Parses every whole message waiting in `dir`.
#[allow(clippy::too_many_arguments)]
pub(super) fn parse(
    id: u64,
    conn: &mut Conn,
    dir: NetDataDirection,
    ts_ns: u64,
    cut: bool,
    limits: Limits,
    evicted: &mut Evictions,
    out: &mut Vec<Record>,
) {
    let is_request = conn.requests == Some(dir);
    if conn.protocol == Some(Protocol::Http2) {
        return parse_http2(id, conn, dir, is_request, ts_ns, evicted, out);
    }
    let slot = usize::from(dir != NetDataDirection::Send);
    loop {
        let stream = if dir == NetDataDirection::Send { &mut conn.send } else { &mut conn.recv };
        if stream.skip > 0 {
            return; // the body of the message in flight is still coming
        }
        if let Some(f) = conn.in_flight[slot].take() {
            let truncated = f.truncated || std::mem::take(&mut stream.cut);
            done(id, conn, f.msg, f.size, f.start_ns, ts_ns, truncated, limits, evicted, out);
            continue;
        }
        if stream.pending.is_empty() {
            return;
        }
        let method = conn.waiting.front().and_then(|w| w.method.clone());
        let partial = &mut conn.partial[slot];
        let b = &stream.pending[..];
        let parsed = match (conn.protocol, is_request) {
            (Some(Protocol::Http1), true) => map(http1::parse_request(b), Request::Http1),
            (Some(Protocol::Http1), false) => map(http1::parse_response(b, method.as_deref()), Response::Http1),
            (Some(Protocol::Redis), true) => map(redis::parse_request(b), Request::Redis),
            (Some(Protocol::Redis), false) => map(redis::parse_response(b), Response::Redis),
            // Queries and responses tell themselves apart.
            (Some(Protocol::Dns), _) => map(dns::parse(b, conn.transport), |m| match m {
                dns::Msg::Query(q) => Either::Request(Request::Dns(q)),
                dns::Msg::Response(r) => Either::Response(Response::Dns(r)),
            }),
            (Some(Protocol::Memcached), true) => map(memcached::parse_request(b), Request::Memcached),
            (Some(Protocol::Memcached), false) => map(memcached::parse_response(b, partial), Response::Memcached),
            (Some(Protocol::Kafka), true) => map(kafka::parse_request(b), Request::Kafka),
            (Some(Protocol::Kafka), false) => map(kafka::parse_response(b), Response::Kafka),
            (Some(Protocol::Mongodb), true) => map(mongodb::parse_request(b), Request::Mongodb),
            (Some(Protocol::Mongodb), false) => map(mongodb::parse_response(b), Response::Mongodb),
            (Some(Protocol::Mysql), true) => map(mysql::parse_request(b), Request::Mysql),
            (Some(Protocol::Mysql), false) => {
                let expects = match method.as_deref() {
                    Some(MYSQL_AUTH) => mysql::Reply::Auth,
                    Some(MYSQL_PREPARE) => mysql::Reply::Prepare,
                    _ => mysql::Reply::Command,
                };
                map(mysql::parse_response(b, expects, partial), Response::Mysql)
            }
            (Some(Protocol::Postgres), true) => map(postgres::parse_request(b), Request::Postgres),
            (Some(Protocol::Postgres), false) => {
                let expects = if method.as_deref() == Some(PG_ENCRYPTION) {
                    postgres::Reply::Byte
                } else {
                    postgres::Reply::Messages
                };
                map(postgres::parse_response(b, expects, partial), Response::Postgres)
            }
            // HTTP/2 took its own path above.
            (None | Some(Protocol::Http2 | Protocol::Grpc), _) => return,
        };
        let framed = match parsed {
            Parse::Message(f) => f,
            Parse::Progress { len, more } => {
                // A cut passed over since the last step (while skipping)
                // or in this one belongs to the message in steps.
                let partial = &mut conn.partial[slot];
                partial.truncated |= std::mem::take(&mut stream.cut);
                stream.consume(len, more);
                partial.passed += len as u64 + more;
                partial.truncated |= std::mem::take(&mut stream.cut) || (cut && more > 0);
                continue;
            }
            Parse::NeedMore => return,
            // A datagram stands alone: a bad one is passed over, and the
            // queries waiting keep their pairing. In a stream the framing
            // is lost from here.
            Parse::Invalid if conn.transport == dns::Transport::Datagram => {
                stream.restart();
                return;
            }
            Parse::Invalid => {
                stream.desync();
                return;
            }
        };
        if conn.partial[slot].passed > 0 {
            conn.partial[slot].truncated |= stream.cut; // passed over since its last step
        }
        stream.cut = false;
        stream.consume(framed.len, framed.more);
        let truncated = cut && (framed.more > 0 || std::mem::take(&mut stream.cut));
        // Its earlier steps, if it came in steps.
        let truncated = truncated || std::mem::take(&mut conn.partial[slot]).truncated;
        if framed.more == u64::MAX {
            // Until the connection closes: counted now, as far as it is known.
            done(id, conn, framed.msg, framed.size, ts_ns, ts_ns, true, limits, evicted, out);
            return;
        }
        let flight = InFlight { msg: framed.msg, size: framed.size, start_ns: ts_ns, truncated };
        conn.in_flight[slot] = Some(flight);
    }
}

/// HTTP/2: whole frames of the direction go to the connection's state;
/// streams that ended give their records.
fn parse_http2(
    id: u64,
    conn: &mut Conn,
    dir: NetDataDirection,
    client: bool,
    ts_ns: u64,
    evicted: &mut Evictions,
    out: &mut Vec<Record>,
) {
    let stream = if dir == NetDataDirection::Send { &mut conn.send } else { &mut conn.recv };
    if stream.skip > 0 {
        return; // a DATA payload still passing
    }
    let h2 = conn.h2.get_or_insert_with(Default::default);
    let mut ended = Vec::new();
    let (used, more) = h2.feed(client, &stream.pending, ts_ns, stream.hole > 0, &mut ended);
    if client {
        h2.started(ts_ns);
    }
    stream.consume(used, more);
    stream.cut = false;
    evicted.requests += std::mem::take(&mut h2.dropped);
    for d in ended {
        out.push(http2_record(id, conn, d));
    }
}

/// The record of an HTTP/2 stream that ended (with its response, if one
/// came).
fn http2_record(id: u64, conn: &Conn, d: http2::Done) -> Record {
    let response = d.response.map(|(r, bytes)| (Response::Http2(r), d.end_ns, bytes, d.truncated));
    let w = Waiting {
        request: Request::Http2(d.request),
        key: None,
        start_ns: d.start_ns,
        bytes: d.request_bytes,
        truncated: d.truncated,
        method: None,
    };
    record(id, conn, w, response)
}

/// A whole message: a request waits for its response, a response pairs.
#[allow(clippy::too_many_arguments)]
fn done(
    id: u64,
    conn: &mut Conn,
    msg: Either,
    size: u64,
    start_ns: u64,
    end_ns: u64,
    truncated: bool,
    limits: Limits,
    evicted: &mut Evictions,
    out: &mut Vec<Record>,
) {
    match msg {
        Either::Request(request) => {
            if conn.waiting.len() >= limits.pending_per_connection {
                conn.waiting.pop_front();
                evicted.requests += 1;
            }
            let method = match &request {
                Request::Http1(r) => Some(r.method.clone()),
                Request::Postgres(q) if q.expects == postgres::Reply::Byte => Some(PG_ENCRYPTION.to_string()),
                Request::Mysql(q) if q.expects == mysql::Reply::Auth => Some(MYSQL_AUTH.to_string()),
                Request::Mysql(q) if q.expects == mysql::Reply::Prepare => Some(MYSQL_PREPARE.to_string()),
                _ => None,
            };
            // PostgreSQL's Terminate, MySQL's COM_QUIT: nothing to report.
            if matches!(&request, Request::Postgres(q) if q.expects == postgres::Reply::None)
                || matches!(&request, Request::Mysql(q) if q.silent)
            {
                return;
            }
            let key = match &request {
                Request::Dns(q) => Some(u64::from(q.id)),
                Request::Kafka(q) => Some(q.correlation_id as u64),
                Request::Mongodb(q) => Some(q.request_id as u64),
                _ => None,
            };
            // No response will come: reported alone at once.
            if matches!(&request, Request::Memcached(q) if q.noreply) {
                let w = Waiting { request, key, start_ns, bytes: size, truncated, method };
                out.push(record(id, conn, w, None));
                return;
            }
            conn.waiting.push_back(Waiting { request, key, start_ns, bytes: size, truncated, method });
        }
        Either::Response(response) => {
            // An interim HTTP response (100 Continue) answers nothing yet.
            if let Response::Http1(r) = &response {
                if (100..200).contains(&r.status) {
                    if r.status == 101 {
                        conn.given_up = true; // another protocol from here
                    }
                    return;
                }
            }
            // MySQL's greeting answers no request.
            if matches!(&response, Response::Mysql(r) if r.greeting) {
                return;
            }
            // Memcached's quiet meta requests may get no response: which
            // waiting one this answers, the quiet ones before it ending
            // without one.
            if let Response::Memcached(r) = &response {
                if conn.waiting.iter().any(quiet) {
                    let Some(i) = memcached_answered(&conn.waiting, r) else {
                        evicted.ambiguous_responses += 1;
                        return;
                    };
                    for w in conn.waiting.drain(..i).collect::<Vec<_>>() {
                        out.push(record(id, conn, w, None));
                    }
                    if let Some(w) = conn.waiting.pop_front() {
                        out.push(record(id, conn, w, Some((response, end_ns, size, truncated))));
                    }
                    return;
                }
            }
            let key = match &response {
                Response::Dns(r) => Some(u64::from(r.id)),
                Response::Kafka(r) => Some(r.correlation_id as u64),
                Response::Mongodb(r) => Some(r.response_to as u64),
                _ => None,
            };
            let at = match key {
                // A late answer finds no request waiting: it pairs with nothing.
                Some(k) => conn.waiting.iter().position(|w| w.key == Some(k)),
                None if conn.orphans > 0 => {
                    conn.orphans -= 1; // the late answer of a request reported already
                    return;
                }
                None => (!conn.waiting.is_empty()).then_some(0),
            };
            if let Some(w) = at.and_then(|i| conn.waiting.remove(i)) {
                out.push(record(id, conn, w, Some((response, end_ns, size, truncated))));
            }
        }
    }
}

/// A memcached meta request with the `q` flag (it may get no response).
fn quiet(w: &Waiting) -> bool {
    matches!(&w.request, Request::Memcached(q) if q.quiet)
}

/// Which waiting request (an index) a memcached response answers, when
/// quiet ones wait: the one whose key or opaque token it echoes; else the
/// first that is not quiet, if the response has its shape (MN answers mn;
/// a classic line a classic command); else the only candidate. None when
/// several could have caused it.
fn memcached_answered(waiting: &VecDeque<Waiting>, r: &memcached::Response) -> Option<usize> {
    let requests = waiting.iter().map(|w| match &w.request {
        Request::Memcached(q) => Some(q),
        _ => None,
    });
    let loud = waiting.iter().position(|w| !quiet(w));
    let candidates = loud.map_or(waiting.len(), |i| i + 1);
    let echoed = requests.take(candidates).position(|q| {
        q.is_some_and(|q| {
            (r.opaque.is_some() && r.opaque == q.opaque) || (r.key.is_some() && r.key == q.key && q.quiet)
        })
    });
    if echoed.is_some() {
        return echoed;
    }
    let meta_shaped = r.status.len() == 2 && r.status.bytes().all(|c| c.is_ascii_uppercase());
    match (loud, &waiting.get(loud.unwrap_or(usize::MAX)).map(|w| &w.request)) {
        (Some(i), Some(Request::Memcached(q))) if r.status == "MN" && q.command == "mn" => Some(i),
        (Some(i), Some(Request::Memcached(q))) if !meta_shaped && q.command.len() != 2 => Some(i),
        _ if candidates == 1 => Some(0),
        _ => None,
    }
}

/// The `method` of a PostgreSQL encryption request, whose answer is one byte.
const PG_ENCRYPTION: &str = "postgres:encryption";

/// The `method` of a MySQL login or authentication step.
const MYSQL_AUTH: &str = "mysql:auth";

/// The `method` of a MySQL COM_STMT_PREPARE.
const MYSQL_PREPARE: &str = "mysql:prepare";

/// A request or a response, as a parser of either gives it.
enum Either {
    Request(Request),
    Response(Response),
}

impl From<Request> for Either {
    fn from(r: Request) -> Either {
        Either::Request(r)
    }
}

impl From<Response> for Either {
    fn from(r: Response) -> Either {
        Either::Response(r)
    }
}

fn map<M, T: Into<Either>>(p: Parse<M>, f: impl FnOnce(M) -> T) -> Parse<Either> {
    match p {
        Parse::Message(m) => Parse::Message(Framed { msg: f(m.msg).into(), len: m.len, more: m.more, size: m.size }),
        Parse::Progress { len, more } => Parse::Progress { len, more },
        Parse::NeedMore => Parse::NeedMore,
        Parse::Invalid => Parse::Invalid,
    }
}

fn record(id: u64, conn: &Conn, w: Waiting, response: Option<(Response, u64, u64, bool)>) -> Record {
    let (response, end_ns, response_bytes, cut) = match response {
        Some((r, end, bytes, cut)) => (Some(r), end, bytes, cut),
        None => (None, w.start_ns, 0, false),
    };
    Record {
        kind: "l7",
        protocol: match &w.request {
            Request::Http1(_) => Protocol::Http1,
            Request::Http2(q) if q.grpc => Protocol::Grpc,
            Request::Http2(_) => Protocol::Http2,
            Request::Redis(_) => Protocol::Redis,
            Request::Dns(_) => Protocol::Dns,
            Request::Memcached(_) => Protocol::Memcached,
            Request::Kafka(_) => Protocol::Kafka,
            Request::Mongodb(_) => Protocol::Mongodb,
            Request::Postgres(_) => Protocol::Postgres,
            Request::Mysql(_) => Protocol::Mysql,
        },
        pid: conn.pid,
        tid: conn.tid,
        comm: conn.comm.clone(),
        conn_id: id,
        role: conn.role.unwrap_or(if conn.requests == Some(NetDataDirection::Send) { "client" } else { "server" }),
        local: conn.local,
        remote: conn.remote,
        start_ns: w.start_ns,
        end_ns,
        latency_ns: end_ns.saturating_sub(w.start_ns),
        request: Some(w.request),
        response,
        request_bytes: w.bytes,
        response_bytes,
        truncated: w.truncated || cut,
    }
}

/// Reports every request still waiting, without a response.
pub(super) fn drain(id: u64, conn: &mut Conn, out: &mut Vec<Record>) {
    while let Some(w) = conn.waiting.pop_front() {
        out.push(record(id, conn, w, None));
    }
    if let Some(mut h2) = conn.h2.take() {
        let mut ended = Vec::new();
        h2.drain(conn.opened, &mut ended);
        conn.h2 = Some(h2);
        for d in ended {
            out.push(http2_record(id, conn, d));
        }
    }
    conn.orphans = 0; // after a gap, nothing is owed that can be told apart
    conn.partial = [Partial::default(), Partial::default()];
}

/// Reports, without a response, the requests waiting longer than
/// `timeout` by `now_ns`; their late answers must then pair with nothing.
pub(super) fn expire(id: u64, conn: &mut Conn, now_ns: u64, timeout: u64, out: &mut Vec<Record>) {
    while conn.waiting.front().is_some_and(|w| now_ns.saturating_sub(w.start_ns) > timeout) {
        if let Some(w) = conn.waiting.pop_front() {
            conn.orphans += 1;
            out.push(record(id, conn, w, None));
        }
    }
}
