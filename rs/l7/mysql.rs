//! MySQL's (and MariaDB's) client/server protocol: packets of a 3-byte
//! little-endian length and a sequence number. A request is a command
//! packet (COM_QUERY and the others), the login (the client's handshake
//! response) or a further authentication packet; its response is one
//! packet (OK, ERR, an authentication step) or a whole result set (column
//! count, column definitions, rows, terminator). The server's greeting
//! answers nothing. Parsed by hand: the framing is two fields, and the few
//! payloads read (the query, the error, the terminators) are short.

use super::{Framed, Parse, Partial};

/// Bytes kept of a query or an error message.
const TEXT_KEPT: usize = 1024;
/// A payload this long continues in the next packet.
const PAYLOAD_MAX: usize = 0xff_ffff;
const COM_QUIT: u8 = 0x01;
const COM_INIT_DB: u8 = 0x02;
const COM_QUERY: u8 = 0x03;
const COM_PING: u8 = 0x0e;
const COM_STMT_PREPARE: u8 = 0x16;
const COM_STMT_EXECUTE: u8 = 0x17;
const COM_STMT_SEND_LONG_DATA: u8 = 0x18;
const COM_STMT_CLOSE: u8 = 0x19;
/// CLIENT_PROTOCOL_41: every client since 4.1 sets it in its login.
const CLIENT_PROTOCOL_41: u32 = 0x200;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Request {
    /// The SQL of a query or a prepare; otherwise the command: "login",
    /// "auth", "ping", "init_db", "execute", "command 0xNN".
    pub query: String,
    /// The command gets no response (COM_QUIT, COM_STMT_CLOSE, ...).
    #[serde(skip)]
    pub(crate) silent: bool,
    /// What its response looks like.
    #[serde(skip)]
    pub(crate) expects: Reply,
}

/// The shape of a response, which only its request tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Reply {
    /// OK, ERR, or a result set.
    #[default]
    Command,
    /// A login's or an authentication step's: 0x01 packets carry more
    /// authentication data (elsewhere they start a one-column result set).
    Auth,
    /// COM_STMT_PREPARE's: OK with the statement's parameter and column
    /// counts, then their definitions.
    Prepare,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Response {
    /// "ok" or "error".
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Rows of a result set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// The server's greeting, which answers no request.
    #[serde(skip)]
    pub(crate) greeting: bool,
}

/// The packet at `at`: (sequence number, payload, bytes it takes).
fn packet(b: &[u8], at: usize) -> Option<(u8, &[u8], usize)> {
    let h = b.get(at..at + 4)?;
    let len = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
    let payload = b.get(at + 4..at + 4 + len)?;
    Some((h[3], payload, 4 + len))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(TEXT_KEPT)]).into_owned()
}

/// Whether the payload is a login (handshake response 41): capability
/// flags with CLIENT_PROTOCOL_41, then max packet size, charset and 23
/// filler bytes, zero but the last 4 (MariaDB's extended capabilities).
fn is_login(p: &[u8]) -> bool {
    p.len() >= 32
        && u32::from_le_bytes([p[0], p[1], p[2], p[3]]) & CLIENT_PROTOCOL_41 != 0
        && p[9..28].iter().all(|&c| c == 0)
}

pub(crate) fn parse_request(b: &[u8]) -> Parse<Request> {
    let Some((seq, p, used)) = packet(b, 0) else {
        return if b.len() >= 4 && b.len() > PAYLOAD_MAX { Parse::Invalid } else { Parse::NeedMore };
    };
    let Some(&command) = p.first() else { return Parse::Invalid };
    let (query, silent, expects) = if seq == 1 && is_login(p) {
        ("login".to_string(), false, Reply::Auth)
    } else if seq != 0 {
        ("auth".to_string(), false, Reply::Auth)
    } else {
        match command {
            COM_QUERY => (text(&p[1..]), false, Reply::Command),
            COM_STMT_PREPARE => (text(&p[1..]), false, Reply::Prepare),
            COM_PING => ("ping".into(), false, Reply::Command),
            COM_INIT_DB => ("init_db".into(), false, Reply::Command),
            COM_STMT_EXECUTE => ("execute".into(), false, Reply::Command),
            COM_QUIT | COM_STMT_CLOSE | COM_STMT_SEND_LONG_DATA => ("quit".into(), true, Reply::Command),
            c if c < 0x20 => (format!("command {c:#04x}"), false, Reply::Command),
            _ => return Parse::Invalid,
        }
    };
    Parse::Message(Framed { msg: Request { query, silent, expects }, len: used, more: 0, size: used as u64 })
}

/// A length-encoded integer's value, if the payload starts with one.
fn lenenc(p: &[u8]) -> Option<u64> {
    let n = |k: usize| p.get(1..1 + k).map(|v| v.iter().rev().fold(0u64, |a, &x| a << 8 | u64::from(x)));
    match *p.first()? {
        x @ 0..=0xfa => Some(u64::from(x)),
        0xfc => n(2),
        0xfd => n(3),
        0xfe => n(8),
        _ => None,
    }
}

fn one(msg: Response, used: usize) -> Parse<Response> {
    Parse::Message(Framed { msg, len: used, more: 0, size: used as u64 })
}

/// The response at the start of `b`, to a request that `expects` it (after
/// the steps in `partial`, for a result set taken in steps).
pub(crate) fn parse_response(b: &[u8], expects: Reply, partial: &mut Partial) -> Parse<Response> {
    if partial.phase != 0 {
        return result_set(b, 0, partial);
    }
    let Some((_, p, used)) = packet(b, 0) else { return Parse::NeedMore };
    let Some(&first) = p.first() else { return Parse::Invalid };
    let ok = Response { status: "ok", error: None, rows: None, greeting: false };
    match first {
        0x00 if expects == Reply::Prepare && p.len() >= 12 => prepared(b, p, used),
        // OK, EOF, or an authentication step (switch, more data): one
        // packet. (A result set's first packet is its column count alone.)
        0x00 | 0xfe => one(ok, used),
        0x01 if expects == Reply::Auth => one(ok, used),
        0x0a if p.len() > 30 => one(Response { greeting: true, ..ok }, used),
        // ERR: code, then '#' and a 5-byte SQL state (4.1), then the message.
        0xff => {
            let message = match p.get(3) {
                Some(b'#') => p.get(9..).unwrap_or_default(),
                _ => p.get(3..).unwrap_or_default(),
            };
            one(Response { status: "error", error: Some(text(message)), ..ok }, used)
        }
        _ => match lenenc(p).filter(|&n| (1..=4096).contains(&n)) {
            Some(columns) => {
                partial.phase = COLUMNS;
                partial.left = columns;
                result_set(b, used, partial)
            }
            None => Parse::Invalid,
        },
    }
}

/// COM_STMT_PREPARE_OK: status, statement id, column and parameter
/// counts; then the parameters' definitions and the columns', each group
/// closed by an EOF before CLIENT_DEPRECATE_EOF.
fn prepared(b: &[u8], p: &[u8], mut at: usize) -> Parse<Response> {
    let columns = u16::from_le_bytes([p[5], p[6]]);
    let params = u16::from_le_bytes([p[7], p[8]]);
    for group in [params, columns].into_iter().filter(|&n| n > 0) {
        for _ in 0..group {
            let Some((_, _, used)) = packet(b, at) else { return Parse::NeedMore };
            at += used;
        }
        // An EOF (0xfe, at most 4 more bytes) closes the group, if the
        // client did not ask to deprecate it. A definition starts with its
        // catalog ("def"), never 0xfe.
        match packet(b, at) {
            Some((_, [0xfe, rest @ ..], used)) if rest.len() <= 4 => at += used,
            Some(_) => {}
            // Part of a packet: this response's EOF, or the next response.
            // (Nothing after: a server writes a response whole, so an EOF
            // would have come with it.)
            None if (1..4).contains(&(b.len() - at)) || b.get(at + 4) == Some(&0xfe) => return Parse::NeedMore,
            None => {}
        }
    }
    let msg = Response { status: "ok", error: None, rows: None, greeting: false };
    Parse::Message(Framed { msg, len: at, more: 0, size: at as u64 })
}

/// Result set phases (in `Partial::phase`): column definitions (`left`
/// of them to come), then rows, right after the columns or not.
const COLUMNS: u8 = 1;
const ROWS_FIRST: u8 = 2;
const ROWS: u8 = 3;

/// A result set from `at`, its column count taken: the column definitions,
/// maybe an EOF (before CLIENT_DEPRECATE_EOF), the rows, the terminator
/// (EOF, or OK with a 0xfe header); an ERR in place of a row ends it too.
/// MariaDB may add a metadata flag after the count. Taken in steps: whole
/// packets as they come, and a row longer than the bytes here is passed.
fn result_set(b: &[u8], mut at: usize, partial: &mut Partial) -> Parse<Response> {
    loop {
        let Some((_, p, used)) = packet(b, at) else { return step(b, at, partial) };
        at += used;
        if partial.phase == COLUMNS {
            partial.left -= 1;
            if partial.left == 0 {
                partial.phase = ROWS_FIRST;
            }
            continue;
        }
        match p.first() {
            // An EOF right after the columns (the older protocol) opens the
            // rows; anywhere else 0xfe ends them.
            Some(0xfe) if p.len() < PAYLOAD_MAX => {
                if partial.phase == ROWS_FIRST && p.len() == 5 {
                    partial.phase = ROWS;
                    continue;
                }
                let msg =
                    Response { status: "ok", error: None, rows: Some(partial.rows.unwrap_or(0)), greeting: false };
                return Parse::Message(Framed { msg, len: at, more: 0, size: partial.passed + at as u64 });
            }
            Some(0xff) => {
                let msg = Response {
                    status: "error",
                    error: Some(text(p.get(9..).unwrap_or_default())),
                    rows: Some(partial.rows.unwrap_or(0)),
                    greeting: false,
                };
                return Parse::Message(Framed { msg, len: at, more: 0, size: partial.passed + at as u64 });
            }
            _ => {
                *partial.rows.get_or_insert(0) += 1;
                partial.phase = ROWS;
            }
        }
    }
}

/// The whole packets before `at` are taken; the one at `at` is not all
/// here. A column definition, or a row (not a terminator, which is short
/// and comes whole), whose header and first byte are here is passed over
/// whole.
fn step(b: &[u8], at: usize, partial: &mut Partial) -> Parse<Response> {
    if let (Some(h), Some(&first)) = (b.get(at..at + 4), b.get(at + 4)) {
        let whole = 4 + (u64::from(h[0]) | u64::from(h[1]) << 8 | u64::from(h[2]) << 16);
        let more = whole - (b.len() - at) as u64;
        if partial.phase == COLUMNS {
            partial.left -= 1;
            if partial.left == 0 {
                partial.phase = ROWS_FIRST;
            }
            return Parse::Progress { len: b.len(), more };
        }
        if first != 0xfe && first != 0xff {
            *partial.rows.get_or_insert(0) += 1;
            partial.phase = ROWS;
            return Parse::Progress { len: b.len(), more };
        }
    }
    if at > 0 {
        Parse::Progress { len: at, more: 0 }
    } else {
        Parse::NeedMore
    }
}

/// Does `b` start with a login or a query, as a client sends them?
pub(crate) fn looks_like_request(b: &[u8]) -> bool {
    match packet(b, 0) {
        Some((1, p, _)) => is_login(p),
        Some((0, p, _)) => {
            p.len() > 1 && p[0] == COM_QUERY && p[1..].iter().all(|&c| c.is_ascii_graphic() || c.is_ascii_whitespace())
        }
        _ => false,
    }
}
