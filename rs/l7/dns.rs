//! DNS over UDP (one message per datagram) and TCP (each message after a
//! two-byte length), decoded by hickory-proto; queries and responses pair
//! by their id, so answers that come back out of order (a resolver's A and
//! AAAA queries) still find their question.

use hickory_proto::op::{Message, MessageType};

use super::{Framed, Parse};

/// Answers kept per response (the rest are counted in `answer_count`).
const ANSWERS_KEPT: usize = 16;
/// The largest DNS message (and TCP frame).
const MESSAGE_MAX: usize = 65535;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Request {
    pub id: u16,
    /// The first question's name, as written (`example.com.`).
    pub qname: String,
    /// Its type, as a number (1: A, 28: AAAA, ...).
    pub qtype: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Response {
    pub id: u16,
    /// The response code, as a number (0: NOERROR, 3: NXDOMAIN, ...).
    pub rcode: u16,
    /// The answer records' data, as text (`93.184.216.34`, `alias.example.`).
    pub answers: Vec<String>,
    pub answer_count: usize,
}

/// A query or a response.
pub(crate) enum Msg {
    Query(Request),
    Response(Response),
}

/// How a connection carries its messages.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Transport {
    /// Each datagram is one message: all the bytes given.
    Datagram,
    /// Each message follows its length, two bytes big-endian.
    Stream,
}

/// The message at the start of `b`.
pub(crate) fn parse(b: &[u8], transport: Transport) -> Parse<Msg> {
    let (body, offset, size) = match transport {
        Transport::Datagram => (b, 0, b.len()),
        Transport::Stream => {
            let Some(len) = b.get(..2).map(|l| usize::from(u16::from_be_bytes([l[0], l[1]]))) else {
                return Parse::NeedMore;
            };
            if len < 12 {
                return Parse::Invalid;
            }
            match b.get(2..2 + len) {
                Some(body) => (body, 2, len),
                None => return Parse::NeedMore,
            }
        }
    };
    if body.len() < 12 || body.len() > MESSAGE_MAX {
        return Parse::Invalid;
    }
    let Ok(m) = Message::from_vec(body) else { return Parse::Invalid };
    let msg = match m.metadata.message_type {
        MessageType::Query => {
            let Some(q) = m.queries.first() else { return Parse::Invalid };
            Msg::Query(Request { id: m.metadata.id, qname: q.name().to_string(), qtype: q.query_type().into() })
        }
        MessageType::Response => Msg::Response(Response {
            id: m.metadata.id,
            rcode: m.metadata.response_code.into(),
            answers: m.answers.iter().take(ANSWERS_KEPT).map(|r| r.data.to_string()).collect(),
            answer_count: m.answers.len(),
        }),
    };
    Parse::Message(Framed { msg, len: offset + size, more: 0, size: (offset + size) as u64 })
}

/// Does `b` start like a standard query: opcode 0, one question, no
/// answers or authorities, at most one additional record (EDNS), a valid
/// question name? Checked on the header and the question only, so a
/// capture cut after them still counts.
pub(crate) fn looks_like_query(b: &[u8], transport: Transport) -> bool {
    let b = match transport {
        Transport::Datagram => b,
        Transport::Stream => match b.get(2..) {
            Some(rest) => rest,
            None => return false,
        },
    };
    let Some(h) = b.get(..12) else { return false };
    let word = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
    let flags = word(2);
    let standard_query = flags & 0xf800 == 0 && flags & 0x0070 == 0; // QR 0, opcode 0, Z 0
    if !standard_query || word(4) != 1 || word(6) != 0 || word(8) != 0 || word(10) > 1 {
        return false;
    }
    // The question name: labels of 1..63 bytes, then a zero, type and class.
    let mut at = 12;
    loop {
        let Some(&len) = b.get(at) else { return false };
        if len == 0 {
            break;
        }
        if len > 63 || at > 12 + 255 {
            return false;
        }
        at += 1 + usize::from(len);
    }
    let Some(tail) = b.get(at + 1..at + 5) else { return false };
    let class = u16::from_be_bytes([tail[2], tail[3]]);
    matches!(class, 1 | 3 | 4 | 255) // IN, CH, HS, ANY
}
