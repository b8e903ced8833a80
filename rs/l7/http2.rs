//! HTTP/2 from the connection's bytes, and gRPC over it: frames (a 9-byte
//! header, then the payload), header blocks decoded by an HPACK decoder
//! per direction (loona-hpack) from the connection's preface on, and
//! streams paired by their id: a stream's request is its client HEADERS
//! (method, path, authority), its response the server's (status), with
//! gRPC's status from the trailers. A record is made when the response
//! ends its stream, or the stream is reset.
//!
//! HPACK is stateful: a header block that was not captured whole leaves
//! that direction's table unknown, so decoding stops there (the streams
//! open then are reported without their response).
//!
//! A connection traced from its middle (no preface) is recognised by its
//! frames (`looks_like_frames`) and decoded with a table that knows it is
//! partial (`hpack::Partial`): its records say `mid_stream`, and a field
//! that referred to a header table entry made before the join is null,
//! never guessed.

use std::collections::HashMap;

use loona_hpack::Decoder;

use super::hpack;

/// The client's connection preface.
pub(crate) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const PUSH_PROMISE: u8 = 5;
const CONTINUATION: u8 = 9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
const PRIORITY_FRAME: u8 = 2;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const WINDOW_UPDATE: u8 = 8;
const ACK: u8 = 0x1;
/// SETTINGS_MAX_FRAME_SIZE's initial value: the largest frame a join is
/// recognised by.
const FRAME_MAX: usize = 16 << 10;
/// Streams followed at once per connection (the rest are counted).
const STREAMS_MAX: usize = 1024;
/// The largest header block assembled (a bigger one stops decoding).
const BLOCK_MAX: usize = 256 << 10;
/// Bytes kept of a path or an authority.
const TEXT_KEPT: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Request {
    /// None when it was not known (see `mid_stream`).
    pub method: Option<String>,
    pub path: Option<String>,
    pub host: Option<String>,
    /// HTTP/2's stream id.
    pub stream_id: u32,
    /// The connection was traced from its middle: fields that referred to
    /// header table entries made before are null.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub mid_stream: bool,
    #[serde(skip)]
    pub(crate) grpc: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Response {
    /// None when it was not known (a connection traced from its middle).
    pub status: Option<u16>,
    /// gRPC's status (trailers, or headers of a trailers-only response).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_status: Option<u32>,
}

/// A stream whose request was seen.
struct Stream {
    request: Request,
    start_ns: u64,
    request_bytes: u64,
    response: Option<Response>,
    response_bytes: u64,
    truncated: bool,
}

/// A direction's HPACK table: known from the connection's start, or
/// partly, from a join in its middle.
enum Table {
    Whole(Decoder<'static>),
    Joined(hpack::Partial),
}

/// One direction: its HPACK table, and a header block in assembly.
struct Side {
    table: Table,
    /// (stream, the block so far).
    block: Option<(u32, Vec<u8>)>,
    /// The table is unknown from here: no more decoding.
    lost: bool,
}

impl Side {
    fn new(mid_stream: bool) -> Side {
        let table = if mid_stream { Table::Joined(hpack::Partial::default()) } else { Table::Whole(Decoder::new()) };
        Side { table, block: None, lost: false }
    }

    /// Decodes a whole block: its fields, and how many were unknown.
    fn decode(&mut self, block: &[u8]) -> Option<hpack::Block> {
        match &mut self.table {
            Table::Whole(d) => d.decode(block).ok().map(|fields| hpack::Block { fields, unknown: 0 }),
            Table::Joined(t) => t.decode(block).ok(),
        }
    }
}

/// A stream that ended: its request, its response if one came.
pub(crate) struct Done {
    pub(crate) request: Request,
    pub(crate) start_ns: u64,
    pub(crate) request_bytes: u64,
    pub(crate) response: Option<(Response, u64)>,
    pub(crate) end_ns: u64,
    pub(crate) truncated: bool,
}

/// A connection's HTTP/2 state: [client, server] sides and the streams.
pub(crate) struct Connection {
    sides: [Side; 2],
    preface_left: usize,
    mid_stream: bool,
    streams: HashMap<u32, Stream>,
    /// Streams not followed because STREAMS_MAX were open (the tracker
    /// adds them to its evicted requests).
    pub(crate) dropped: u64,
}

impl Default for Connection {
    fn default() -> Connection {
        Connection::new(false)
    }
}

/// Does `b`, the first bytes seen of a connection's requests, look like
/// HTTP/2 frames from a client, joined in the middle of the connection?
/// Every whole frame must be a valid client frame (type, flags, stream,
/// length), at least one a HEADERS frame of a client stream, and the last
/// one may be cut. Strict on purpose: random bytes must not pass.
pub(crate) fn looks_like_frames(b: &[u8]) -> bool {
    let mut at = 0;
    let mut headers = false;
    while let Some((kind, flags, stream, len)) = frame_header(&b[at..]) {
        if b[at + 5] & 0x80 != 0 || len > FRAME_MAX || !client_frame(kind, flags, stream, len) {
            return false;
        }
        headers |= kind == HEADERS;
        at += 9 + len;
        if at >= b.len() {
            break;
        }
    }
    headers && at >= b.len().min(9)
}

/// Is this frame header one a client may send (RFC 9113, section 6)?
fn client_frame(kind: u8, flags: u8, stream: u32, len: usize) -> bool {
    let on_stream = stream != 0;
    match kind {
        DATA => on_stream && flags & !(END_STREAM | PADDED) == 0,
        HEADERS => stream % 2 == 1 && flags & !(END_STREAM | END_HEADERS | PADDED | PRIORITY) == 0,
        PRIORITY_FRAME => on_stream && len == 5 && flags == 0,
        RST_STREAM => on_stream && len == 4 && flags == 0,
        SETTINGS => !on_stream && len.is_multiple_of(6) && (flags == 0 || (flags == ACK && len == 0)),
        PING => !on_stream && len == 8 && flags & !ACK == 0,
        GOAWAY => !on_stream && len >= 8 && flags == 0,
        WINDOW_UPDATE => len == 4 && flags == 0,
        CONTINUATION => on_stream && flags & !END_HEADERS == 0,
        _ => false, // PUSH_PROMISE comes from servers; others are unknown
    }
}

/// The frame at the start of `b`: (type, flags, stream, payload length).
fn frame_header(b: &[u8]) -> Option<(u8, u8, u32, usize)> {
    let h = b.get(..9)?;
    let len = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
    let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
    Some((h[3], h[4], stream, len))
}

/// A HEADERS payload without its padding and priority fields.
fn header_fragment(flags: u8, p: &[u8]) -> Option<&[u8]> {
    let (pad, mut at) = if flags & PADDED != 0 { (usize::from(*p.first()?), 1) } else { (0, 0) };
    if flags & PRIORITY != 0 {
        at += 5;
    }
    p.get(at..p.len().checked_sub(pad)?)
}

fn text(v: &[u8]) -> String {
    String::from_utf8_lossy(&v[..v.len().min(TEXT_KEPT)]).into_owned()
}

impl Connection {
    /// A connection's state from its preface on, or (`mid_stream`) from
    /// wherever it was joined, at a frame boundary of each direction.
    pub(crate) fn new(mid_stream: bool) -> Connection {
        Connection {
            sides: [Side::new(mid_stream), Side::new(mid_stream)],
            preface_left: if mid_stream { 0 } else { PREFACE.len() },
            mid_stream,
            streams: HashMap::new(),
            dropped: 0,
        }
    }

    /// Takes the bytes of one side (`client`: the requests' side) at a
    /// frame boundary: returns how many it used and how many more of the
    /// last frame (a DATA payload) are to be passed over, with the streams
    /// that ended. `cut`: the capture lacks bytes right after `b`.
    pub(crate) fn feed(&mut self, client: bool, b: &[u8], ts_ns: u64, cut: bool, out: &mut Vec<Done>) -> (usize, u64) {
        let mut at = 0;
        if client && self.preface_left > 0 {
            let n = self.preface_left.min(b.len());
            at = n;
            self.preface_left -= n;
        }
        loop {
            let Some((kind, flags, stream, len)) = frame_header(&b[at..]) else { return (at, 0) };
            let whole = 9 + len;
            let here = b.len() - at;
            if here < whole {
                // A DATA payload is passed over; other frames are waited for,
                // unless the capture lost their end.
                if kind == DATA || cut {
                    if kind != DATA {
                        self.sides[usize::from(!client)].lost = true;
                    }
                    self.count(client, stream, whole as u64, flags, ts_ns, true, out);
                    return (b.len(), (whole - here) as u64);
                }
                return (at, 0);
            }
            let payload = &b[at + 9..at + whole];
            at += whole;
            match kind {
                HEADERS | CONTINUATION | PUSH_PROMISE => self.header_frame(client, kind, flags, stream, payload),
                RST_STREAM => {
                    if let Some(s) = self.streams.remove(&stream) {
                        out.push(done(s, ts_ns));
                    }
                    continue;
                }
                _ => {}
            }
            if stream != 0 && kind != PUSH_PROMISE {
                self.count(client, stream, whole as u64, flags, ts_ns, false, out);
            }
        }
    }

    /// A frame's bytes on its stream; END_STREAM from the server ends it.
    #[allow(clippy::too_many_arguments)]
    fn count(&mut self, client: bool, stream: u32, bytes: u64, flags: u8, ts_ns: u64, cut: bool, out: &mut Vec<Done>) {
        let Some(s) = self.streams.get_mut(&stream) else { return };
        s.truncated |= cut;
        if client {
            s.request_bytes += bytes;
            return;
        }
        s.response_bytes += bytes;
        if flags & END_STREAM != 0 {
            if let Some(s) = self.streams.remove(&stream) {
                out.push(done(s, ts_ns));
            }
        }
    }

    /// A HEADERS, CONTINUATION or PUSH_PROMISE frame: assembles the block,
    /// decodes it when it ends.
    fn header_frame(&mut self, client: bool, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        let side = &mut self.sides[usize::from(!client)];
        if side.lost {
            return;
        }
        let fragment = match kind {
            HEADERS => header_fragment(flags, payload),
            // A promise's block is decoded too (it changes the table): after
            // its promised stream id.
            PUSH_PROMISE => header_fragment(flags & PADDED, payload).and_then(|p| p.get(4..)),
            _ => Some(payload),
        };
        let Some(fragment) = fragment else {
            side.lost = true;
            return;
        };
        match (kind, side.block.as_mut()) {
            (CONTINUATION, Some((s, block))) if *s == stream && block.len() + fragment.len() <= BLOCK_MAX => {
                block.extend_from_slice(fragment)
            }
            (HEADERS | PUSH_PROMISE, None) => side.block = Some((stream, fragment.to_vec())),
            _ => {
                side.lost = true;
                return;
            }
        }
        if flags & END_HEADERS == 0 {
            return;
        }
        let Some((stream, block)) = side.block.take() else { return };
        let Some(decoded) = side.decode(&block) else {
            side.lost = true;
            return;
        };
        if kind != PUSH_PROMISE {
            self.headers(client, stream, &decoded);
        }
    }

    /// A decoded header block of a stream.
    fn headers(&mut self, client: bool, stream: u32, block: &hpack::Block) {
        let get = |name: &[u8]| block.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice());
        if client {
            if self.streams.contains_key(&stream) {
                return; // the request's trailers
            }
            if self.streams.len() >= STREAMS_MAX {
                self.dropped += 1;
                return;
            }
            let request = Request {
                method: get(b":method").map(text),
                path: get(b":path").map(text),
                host: get(b":authority").or(get(b"host")).map(text),
                stream_id: stream,
                mid_stream: self.mid_stream,
                grpc: get(b"content-type").is_some_and(|c| c.starts_with(b"application/grpc")),
            };
            let s =
                Stream { request, start_ns: 0, request_bytes: 0, response: None, response_bytes: 0, truncated: false };
            self.streams.insert(stream, s);
            return;
        }
        let Some(s) = self.streams.get_mut(&stream) else { return };
        let grpc_status = get(b"grpc-status").and_then(|v| std::str::from_utf8(v).ok()?.parse().ok());
        match (&mut s.response, get(b":status").and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())) {
            // Informational (1xx) headers answer nothing yet.
            (_, Some(status)) if (100..200).contains(&status) => {}
            (None, Some(status)) => s.response = Some(Response { status: Some(status), grpc_status }),
            (Some(r), _) => r.grpc_status = grpc_status.or(r.grpc_status),
            // The status came from a table entry of before the join.
            (None, None) if block.unknown > 0 => s.response = Some(Response { status: None, grpc_status }),
            (None, None) => {}
        }
    }

    /// Marks when streams began: the first request bytes of a stream seen.
    pub(crate) fn started(&mut self, ts_ns: u64) {
        for s in self.streams.values_mut() {
            if s.start_ns == 0 {
                s.start_ns = ts_ns;
            }
        }
    }

    /// Every stream still open, ended without its response (at close, or
    /// at a gap: the header tables are unknown after one, so decoding
    /// stops for good; the connection is never taken for a new one).
    pub(crate) fn drain(&mut self, ts_ns: u64, out: &mut Vec<Done>) {
        for (_, mut s) in self.streams.drain() {
            s.response = None;
            out.push(done(s, ts_ns));
        }
        self.preface_left = 0;
        for side in &mut self.sides {
            side.lost = true;
            side.block = None;
        }
    }
}

fn done(s: Stream, end_ns: u64) -> Done {
    Done {
        request: s.request,
        start_ns: s.start_ns,
        request_bytes: s.request_bytes,
        response: s.response.map(|r| (r, s.response_bytes)),
        end_ns,
        truncated: s.truncated,
    }
}
