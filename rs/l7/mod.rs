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
//! no I/O, no unsafe. Protocols so far: HTTP/2 and gRPC (paired by
//! stream, from the connection's preface on); HTTP/1.x, Redis (RESP2/3),
//! Memcached (text and meta), PostgreSQL and MySQL, paired in order; DNS over UDP and TCP, Kafka
//! and MongoDB, paired by id.
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

mod conn;
pub mod dns;
mod hpack;
pub mod http1;
pub mod http2;
pub mod kafka;
pub mod memcached;
pub mod mongodb;
pub mod mysql;
pub mod postgres;
pub mod redis;
mod stream;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::SocketAddr;

use serde::Serialize;

use crate::{ConnOpen, Event, NetData, NetDataDirection};
use conn::{drain, expire, infer, new_conn, parse, Conn};
use stream::Continuity;

/// A parser's answer for the bytes at a message boundary.
pub(crate) enum Parse<M> {
    Message(Framed<M>),
    /// `len` bytes here, and `more` still to come, belong to a message
    /// whose end is further on: its parser kept what it needs of them in
    /// the direction's [`Partial`], and they can go (a response larger than
    /// the bytes kept, or with a capture cut inside, still pairs).
    Progress {
        len: usize,
        more: u64,
    },
    NeedMore,
    Invalid,
}

/// What a parser keeps of a long message between [`Parse::Progress`]
/// steps (a PostgreSQL or MySQL result set): reset when it ends, or at a
/// gap.
#[derive(Debug, Default)]
pub(crate) struct Partial {
    /// Bytes of the message already passed.
    pub(crate) passed: u64,
    /// A capture cut fell inside them.
    pub(crate) truncated: bool,
    /// Rows counted so far.
    pub(crate) rows: Option<u64>,
    pub(crate) error: Option<String>,
    /// Where the parser is in the message (its own numbering), and items
    /// of that part still to come.
    pub(crate) phase: u8,
    pub(crate) left: u64,
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
    Http2,
    Grpc,
    Redis,
    Dns,
    Memcached,
    Kafka,
    Mongodb,
    Postgres,
    Mysql,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Request {
    Http1(http1::Request),
    Http2(http2::Request),
    Redis(redis::Request),
    Dns(dns::Request),
    Memcached(memcached::Request),
    Kafka(kafka::Request),
    Mongodb(mongodb::Request),
    Postgres(postgres::Request),
    Mysql(mysql::Request),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Response {
    Http1(http1::Response),
    Http2(http2::Response),
    Redis(redis::Response),
    Dns(dns::Response),
    Memcached(memcached::Response),
    Kafka(kafka::Response),
    Mongodb(mongodb::Response),
    Postgres(postgres::Response),
    Mysql(mysql::Response),
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Evictions {
    /// Connections forgotten because the table was full (oldest first).
    pub connections: u64,
    /// Requests dropped because a connection had too many waiting (or,
    /// HTTP/2, too many streams open).
    pub requests: u64,
    /// Responses that could not be told apart: a memcached meta response
    /// that any of several quiet requests may have caused, without the key
    /// or opaque token that would say which.
    pub ambiguous_responses: u64,
}

/// Given-up connections kept for [`Tracker::take_given_up`] at most.
const GIVEN_UP_KEPT: usize = 4096;

/// Turns net events into [`Record`]s.
pub struct Tracker {
    limits: Limits,
    conns: HashMap<u64, Conn>,
    evicted: Evictions,
    /// When expire looks at the waiting requests next.
    next_expiry: u64,
    /// Connections given up on since take_given_up last took them.
    given_up: Vec<u64>,
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
        Tracker { limits, conns: HashMap::new(), evicted: Evictions::default(), next_expiry: 0, given_up: Vec::new() }
    }

    /// What was dropped to stay within the limits.
    pub fn evictions(&self) -> Evictions {
        self.evicted
    }

    /// The connections given up on since the last call (they matched no
    /// protocol, or switched to one not parsed): pass them to
    /// [`crate::Tracer::give_up_connection`] so the kernel stops copying
    /// their bytes.
    pub fn take_given_up(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.given_up)
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
                if let Some(mut conn) = self.conns.remove(&c.conn_id) {
                    drain(c.conn_id, &mut conn, out);
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
            expire(id, conn, now_ns, timeout, out);
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
        conn.transport = match o.protocol {
            crate::ConnOpenProtocol::Udp => dns::Transport::Datagram,
            _ => dns::Transport::Stream,
        };
        conn.requests = role.map(|r| if r == "client" { NetDataDirection::Send } else { NetDataDirection::Recv });
    }

    fn data<B: AsRef<[u8]>>(&mut self, d: &NetData<B>, out: &mut Vec<Record>) {
        let was = self.conns.get(&d.conn_id).is_some_and(|c| c.given_up);
        self.parse_data(d, out);
        // Bounded for a caller that never takes them: the rest only cost
        // copies in the kernel.
        if !was && self.conns.get(&d.conn_id).is_some_and(|c| c.given_up) && self.given_up.len() < GIVEN_UP_KEPT {
            self.given_up.push(d.conn_id);
        }
    }

    fn parse_data<B: AsRef<[u8]>>(&mut self, d: &NetData<B>, out: &mut Vec<Record>) {
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
        let before = dir.pending.len();
        let broken = dir.push(d.pos, d.len, bytes) == Continuity::Broken;
        // The bytes this segment added at the end of the waiting ones.
        let latest = if broken { dir.pending.len() } else { dir.pending.len().saturating_sub(before) };
        if broken {
            drain(d.conn_id, conn, out);
        }
        if conn.protocol.is_none() && !infer(conn, d.direction, latest, limits) {
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
