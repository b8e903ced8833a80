//! L7: requests and responses found in the bytes of followed connections
//! (the `conn_open`, `net_data` and `conn_close` events of
//! [`Config::net_data`](crate::Config::net_data)), paired into one
//! [`Record`](crate::l7::Record) each.
//!
//! A connection's protocol is inferred from its first bytes and then kept;
//! one that matches nothing is given up on. Requests wait in a queue per
//! connection, so pipelined requests (several in one syscall, or several
//! before the first response) pair with their responses in order. A gap in
//! the bytes (a lost event, a message larger than what is kept) drops only
//! what it covers: the requests waiting then are reported without a
//! response, and parsing starts over at the next syscall's bytes. Pure:
//! no I/O, no unsafe. Protocols so far: HTTP/1.x and Redis (RESP2/3).
//!
//! ```no_run
//! # fn main() -> Result<(), proctap::Error> {
//! let tracer = proctap::Tracer::start(&proctap::Config::new().net_data())?;
//! let mut l7 = proctap::l7::Tracker::new();
//! let mut records = Vec::new();
//! for batch in tracer.events().clone() {
//!     for event in &batch {
//!         l7.feed(&event, &mut records);
//!     }
//!     for r in records.drain(..) {
//!         println!("{}", serde_json::to_string(&r).unwrap());
//!     }
//! }
//! # Ok(())
//! # }
//! ```

pub mod http1;
pub mod redis;
mod stream;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use serde::Serialize;

use crate::{ConnOpen, Event, NetData, NetDataDirection};
use stream::{Continuity, Direction};

/// A parser's answer for the bytes at a message boundary.
pub(crate) enum Parse<M> {
    Message(Framed<M>),
    NeedMore,
    Invalid,
}

/// A message and its framing.
pub(crate) struct Framed<M> {
    pub(crate) msg: M,
    /// Its bytes among those given.
    pub(crate) len: usize,
    /// Its bytes still to come (u64::MAX: until the connection closes).
    pub(crate) more: u64,
    /// Its whole size.
    pub(crate) size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Http1,
    Redis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Request {
    Http1(http1::Request),
    Redis(redis::Request),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Response {
    Http1(http1::Response),
    Redis(redis::Response),
}

/// One request and its response (None: none came before the connection
/// closed, or a gap lost it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub protocol: Protocol,
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    pub conn_id: u64,
    /// "client" or "server": which end of the connection this process is.
    pub role: &'static str,
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
    pub start_ns: u64,
    pub end_ns: u64,
    pub latency_ns: u64,
    pub request: Option<Request>,
    pub response: Option<Response>,
    /// Whole sizes, from the syscalls' lengths, captured or not.
    pub request_bytes: u64,
    pub response_bytes: u64,
    /// Some of their bytes were not captured (the cap, or lost data).
    pub truncated: bool,
}

/// Limits on what the tracker keeps.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub connections: usize,
    pub pending_per_connection: usize,
    /// Bytes looked at before a connection that matches no protocol is given up.
    pub inference_bytes: u64,
    /// A request waiting longer than this (by the events' clock) is
    /// reported without a response.
    pub response_timeout_ns: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            connections: 65536,
            pending_per_connection: 1024,
            inference_bytes: 4096,
            response_timeout_ns: 30_000_000_000,
        }
    }
}

/// What the tracker dropped to stay within its limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evictions {
    /// Connections forgotten because the table was full (oldest first).
    pub connections: u64,
    /// Requests dropped because a connection had too many waiting.
    pub requests: u64,
}

struct Waiting {
    request: Request,
    start_ns: u64,
    bytes: u64,
    truncated: bool,
    /// The method, for HTTP (a response to HEAD has no body).
    method: Option<String>,
}

struct Conn {
    pid: u32,
    tid: u32,
    comm: String,
    role: Option<&'static str>,
    local: Option<SocketAddr>,
    remote: Option<SocketAddr>,
    protocol: Option<Protocol>,
    /// The direction requests go (send for a client, recv for a server).
    requests: Option<NetDataDirection>,
    given_up: bool,
    seen: u64,
    send: Direction,
    recv: Direction,
    /// Per direction (send, recv): a message whose head is parsed and whose
    /// body is still coming; it counts once its last byte has passed.
    in_flight: [Option<InFlight>; 2],
    waiting: VecDeque<Waiting>,
    /// Responses still owed to requests reported unanswered (timed out):
    /// they must not pair with the requests after them.
    orphans: u64,
    opened: u64,
}

/// A message waiting for the rest of its body.
struct InFlight {
    msg: Either,
    size: u64,
    start_ns: u64,
    truncated: bool,
}

/// Turns net events into [`Record`]s.
pub struct Tracker {
    limits: Limits,
    conns: HashMap<u64, Conn>,
    evicted: Evictions,
    /// When expire looks at the waiting requests next.
    next_expiry: u64,
}

impl Default for Tracker {
    fn default() -> Tracker {
        Tracker::with_limits(Limits::default())
    }
}

impl Tracker {
    pub fn new() -> Tracker {
        Tracker::default()
    }

    pub fn with_limits(limits: Limits) -> Tracker {
        Tracker { limits, conns: HashMap::new(), evicted: Evictions::default(), next_expiry: 0 }
    }

    /// What was dropped to stay within the limits.
    pub fn evictions(&self) -> Evictions {
        self.evicted
    }

    /// Connections followed now.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Takes one event; records it completes go to `out`.
    pub fn feed<B: AsRef<[u8]>>(&mut self, event: &Event<B>, out: &mut Vec<Record>) {
        self.expire(event.ts_ns(), out);
        match event {
            Event::ConnOpen(o) => self.opened(o),
            Event::NetData(d) => self.data(d, out),
            Event::ConnClose(c) => {
                if let Some(conn) = self.conns.remove(&c.conn_id) {
                    flush(c.conn_id, conn, c.ts_ns, out);
                }
            }
            _ => {}
        }
    }

    /// Reports, without a response, the requests that waited longer than
    /// the timeout by `now_ns` (the events' CLOCK_MONOTONIC): at most once
    /// per tenth of the timeout, so it costs nothing per event.
    pub fn expire(&mut self, now_ns: u64, out: &mut Vec<Record>) {
        let timeout = self.limits.response_timeout_ns;
        if now_ns < self.next_expiry {
            return;
        }
        self.next_expiry = now_ns.saturating_add(timeout / 10);
        for (&id, conn) in &mut self.conns {
            while conn.waiting.front().is_some_and(|w| now_ns.saturating_sub(w.start_ns) > timeout) {
                if let Some(w) = conn.waiting.pop_front() {
                    conn.orphans += 1;
                    out.push(record(id, conn, w, None));
                }
            }
        }
    }

    fn room(&mut self) {
        if self.conns.len() >= self.limits.connections {
            if let Some(&oldest) = self.conns.iter().min_by_key(|(_, c)| c.opened).map(|(id, _)| id) {
                self.conns.remove(&oldest);
                self.evicted.connections += 1;
            }
        }
    }

    fn opened(&mut self, o: &ConnOpen) {
        let role = match o.role.name() {
            "client" => Some("client"),
            "server" => Some("server"),
            _ => None,
        };
        self.room();
        let conn = new_conn(o.pid, o.tid, String::from_utf8_lossy(o.comm.as_bytes()).into_owned(), o.ts_ns);
        let conn = self.conns.entry(o.conn_id).or_insert(conn);
        conn.role = role;
        conn.local = o.local;
        conn.remote = o.remote;
        conn.requests = role.map(|r| if r == "client" { NetDataDirection::Send } else { NetDataDirection::Recv });
    }

    fn data<B: AsRef<[u8]>>(&mut self, d: &NetData<B>, out: &mut Vec<Record>) {
        if !self.conns.contains_key(&d.conn_id) {
            self.room();
            self.conns.insert(
                d.conn_id,
                new_conn(d.pid, d.tid, String::from_utf8_lossy(d.comm.as_bytes()).into_owned(), d.ts_ns),
            );
        }
        let limits = self.limits;
        let Some(conn) = self.conns.get_mut(&d.conn_id) else { return };
        if conn.given_up {
            return;
        }
        let bytes = d.data.as_ref();
        let cut = d.truncated || d.data_lost;
        let dir = match d.direction {
            NetDataDirection::Send => &mut conn.send,
            _ => &mut conn.recv,
        };
        // Bytes went missing before these: the requests waiting cannot be
        // paired any more (how many answers the gap held is unknown); this
        // direction starts over here, the other goes on.
        if dir.push(d.pos, d.len, bytes) == Continuity::Broken {
            drain(d.conn_id, conn, d.ts_ns, out);
        }
        if conn.protocol.is_none() && !infer(conn, d.direction, limits) {
            return;
        }
        if conn.requests.is_none() || conn.protocol.is_none() {
            return;
        }
        conn.pid = d.pid;
        conn.tid = d.tid;
        parse(d.conn_id, conn, d.direction, d.ts_ns, cut, limits, &mut self.evicted, out);
    }
}

fn new_conn(pid: u32, tid: u32, comm: String, ts_ns: u64) -> Conn {
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
        seen: 0,
        send: Direction::default(),
        recv: Direction::default(),
        in_flight: [None, None],
        waiting: VecDeque::new(),
        orphans: 0,
        opened: ts_ns,
    }
}

/// Locks the protocol in from the first bytes of a direction; false while
/// undecided (or given up).
fn infer(conn: &mut Conn, dir: NetDataDirection, limits: Limits) -> bool {
    let b = match dir {
        NetDataDirection::Send => &conn.send.pending,
        _ => &conn.recv.pending,
    };
    let found = if http1::looks_like_request(b) && b.len() >= 4 {
        Some(Protocol::Http1)
    } else if redis::looks_like_request(b) && b.len() >= 4 {
        Some(Protocol::Redis)
    } else {
        None
    };
    match found {
        // The requests' direction is what the role says, or this one.
        Some(p) if conn.requests.is_none_or(|r| r == dir) => {
            conn.protocol = Some(p);
            conn.requests = Some(dir);
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
fn parse(
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
        let b = &stream.pending[..];
        let parsed = match (conn.protocol, is_request) {
            (Some(Protocol::Http1), true) => map(http1::parse_request(b), Request::Http1),
            (Some(Protocol::Http1), false) => map(http1::parse_response(b, method.as_deref()), Response::Http1),
            (Some(Protocol::Redis), true) => map(redis::parse_request(b), Request::Redis),
            (Some(Protocol::Redis), false) => map(redis::parse_response(b), Response::Redis),
            (None, _) => return,
        };
        let framed = match parsed {
            Parse::Message(f) => f,
            Parse::NeedMore => return,
            Parse::Invalid => {
                stream.desync();
                return;
            }
        };
        stream.cut = false;
        stream.consume(framed.len, framed.more);
        let truncated = cut && (framed.more > 0 || std::mem::take(&mut stream.cut));
        if framed.more == u64::MAX {
            // Until the connection closes: counted now, as far as it is known.
            done(id, conn, framed.msg, framed.size, ts_ns, ts_ns, true, limits, evicted, out);
            return;
        }
        let flight = InFlight { msg: framed.msg, size: framed.size, start_ns: ts_ns, truncated };
        conn.in_flight[slot] = Some(flight);
    }
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
                Request::Redis(_) => None,
            };
            conn.waiting.push_back(Waiting { request, start_ns, bytes: size, truncated, method });
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
            if conn.orphans > 0 {
                conn.orphans -= 1; // the late answer of a request reported already
                return;
            }
            if let Some(w) = conn.waiting.pop_front() {
                out.push(record(id, conn, w, Some((response, end_ns, size, truncated))));
            }
        }
    }
}

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
        protocol: match w.request {
            Request::Http1(_) => Protocol::Http1,
            Request::Redis(_) => Protocol::Redis,
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
fn drain(id: u64, conn: &mut Conn, _ts_ns: u64, out: &mut Vec<Record>) {
    while let Some(w) = conn.waiting.pop_front() {
        out.push(record(id, conn, w, None));
    }
    conn.orphans = 0; // after a gap, nothing is owed that can be told apart
}

fn flush(id: u64, mut conn: Conn, ts_ns: u64, out: &mut Vec<Record>) {
    drain(id, &mut conn, ts_ns, out);
}
