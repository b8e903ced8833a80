//! L7 records to OTLP log records: pure, no I/O.
//!
//! The connection's ends become `server.*` and `client.*` by the traced
//! process's role (a client's local end is the client), and
//! `network.local.*` / `network.peer.*` whatever the role; each protocol's
//! request and response fields use the semantic conventions' HTTP,
//! database, messaging, RPC and DNS names where they have one.

use std::net::SocketAddr;

use opentelemetry_proto::tonic::logs::v1::{LogRecord, SeverityNumber};

use super::attr::Attrs;
use super::encode::record;
use super::ProcessContext;
use crate::l7::{Protocol, Record, Request, Response};
use crate::WallTime;

/// The log record (`proctap.l7`) of a request and its response, stamped
/// with the request's start; `realtime_offset_ns` is CLOCK_REALTIME -
/// CLOCK_MONOTONIC, as any event's `time.unix_ns - ts_ns` gives it.
pub fn l7_log_record(r: &Record, process: &ProcessContext, realtime_offset_ns: i64) -> LogRecord {
    let mut attrs = Attrs::new();
    attrs
        .int("process.pid", r.pid)
        .int("thread.id", r.tid)
        .str("thread.name", r.comm.as_str())
        .str("proctap.l7.protocol", protocol_name(r.protocol))
        .str("proctap.l7.role", r.role)
        .uint("proctap.l7.conn_id", r.conn_id)
        .uint("proctap.l7.request_bytes", r.request_bytes)
        .uint("proctap.l7.response_bytes", r.response_bytes);
    if r.response.is_some() {
        attrs.uint("proctap.l7.latency_ns", r.latency_ns);
    }
    if r.truncated {
        attrs.bool("proctap.l7.truncated", true);
    }
    endpoints(&mut attrs, r);
    protocol(&mut attrs, r.protocol);
    if let Some(request) = &r.request {
        self::request(&mut attrs, request, r.protocol);
    }
    if let Some(response) = &r.response {
        self::response(&mut attrs, response);
    }
    attrs.process_context(process);
    let time = WallTime::from_monotonic(r.start_ns, realtime_offset_ns);
    record("l7", time, SeverityNumber::Info, attrs)
}

/// The record's protocol as its JSON says it.
fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Http1 => "http1",
        Protocol::Http2 => "http2",
        Protocol::Grpc => "grpc",
        Protocol::Redis => "redis",
        Protocol::Dns => "dns",
        Protocol::Memcached => "memcached",
        Protocol::Kafka => "kafka",
        Protocol::Mongodb => "mongodb",
        Protocol::Postgres => "postgres",
        Protocol::Mysql => "mysql",
    }
}

fn endpoints(attrs: &mut Attrs, r: &Record) {
    address(attrs, "network.local", r.local);
    address(attrs, "network.peer", r.remote);
    let (client, server) = match r.role {
        "client" => (r.local, r.remote),
        "server" => (r.remote, r.local),
        _ => return,
    };
    address(attrs, "client", client);
    address(attrs, "server", server);
}

/// `{prefix}.address` and `{prefix}.port`.
fn address(attrs: &mut Attrs, prefix: &str, addr: Option<SocketAddr>) {
    if let Some(addr) = addr {
        attrs.str(&format!("{prefix}.address"), addr.ip().to_string()).int(&format!("{prefix}.port"), addr.port());
    }
}

/// The attributes that name the protocol itself.
fn protocol(attrs: &mut Attrs, protocol: Protocol) {
    match protocol {
        Protocol::Http1 => attrs.str("network.protocol.name", "http").str("network.protocol.version", "1.1"),
        Protocol::Http2 => attrs.str("network.protocol.name", "http").str("network.protocol.version", "2"),
        Protocol::Grpc => {
            attrs.str("network.protocol.name", "http").str("network.protocol.version", "2").str("rpc.system", "grpc")
        }
        Protocol::Redis => attrs.str("db.system.name", "redis"),
        Protocol::Memcached => attrs.str("db.system.name", "memcached"),
        Protocol::Mongodb => attrs.str("db.system.name", "mongodb"),
        Protocol::Postgres => attrs.str("db.system.name", "postgresql"),
        Protocol::Mysql => attrs.str("db.system.name", "mysql"),
        Protocol::Kafka => attrs.str("messaging.system", "kafka"),
        Protocol::Dns => attrs.str("network.protocol.name", "dns"),
    };
}

fn request(attrs: &mut Attrs, request: &Request, protocol: Protocol) {
    match request {
        Request::Http1(q) => http_request(attrs, Some(&q.method), Some(&q.path), q.host.as_deref()),
        Request::Http2(q) => {
            http_request(attrs, q.method.as_deref(), q.path.as_deref(), q.host.as_deref());
            if protocol == Protocol::Grpc {
                grpc_method(attrs, q.path.as_deref());
            }
        }
        Request::Redis(q) => {
            if let Some(command) = q.command.first() {
                attrs.str("db.operation.name", command.as_str());
            }
            attrs.str("db.query.text", q.command.join(" "));
        }
        Request::Memcached(q) => {
            attrs.str("db.operation.name", q.command.as_str()).opt_str("proctap.l7.memcached.key", q.key.as_deref());
        }
        Request::Postgres(q) => {
            attrs.str("db.query.text", q.query.as_str());
        }
        Request::Mysql(q) => {
            attrs.str("db.query.text", q.query.as_str());
        }
        Request::Mongodb(q) => {
            attrs.opt_str("db.operation.name", q.command.as_deref()).str("proctap.l7.mongodb.op", q.op);
        }
        Request::Kafka(q) => {
            attrs
                .int("proctap.l7.kafka.api_key", q.api_key)
                .int("proctap.l7.kafka.api_version", q.api_version)
                .int("proctap.l7.kafka.correlation_id", q.correlation_id)
                .opt_str("messaging.client.id", q.client_id.as_deref());
        }
        Request::Dns(q) => {
            attrs.str("dns.question.name", q.qname.as_str()).int("proctap.l7.dns.qtype", q.qtype);
        }
    }
}

/// Method, path and query (split at `?`), and the Host header.
fn http_request(attrs: &mut Attrs, method: Option<&str>, target: Option<&str>, host: Option<&str>) {
    attrs.opt_str("http.request.method", method);
    if let Some(target) = target {
        let (path, query) = target.split_once('?').map_or((target, None), |(p, q)| (p, Some(q)));
        attrs.str("url.path", path).opt_str("url.query", query);
    }
    if let Some(host) = host {
        attrs.str_array("http.request.header.host", std::iter::once(host.as_bytes()));
    }
}

/// `/package.Service/Method` as rpc.service and rpc.method.
fn grpc_method(attrs: &mut Attrs, path: Option<&str>) {
    let parts = path.and_then(|p| p.strip_prefix('/')).and_then(|p| p.split_once('/'));
    if let Some((service, method)) = parts {
        attrs.str("rpc.service", service).str("rpc.method", method);
    }
}

fn response(attrs: &mut Attrs, response: &Response) {
    match response {
        Response::Http1(s) => {
            attrs.int("http.response.status_code", s.status);
        }
        Response::Http2(s) => {
            attrs.opt_int("http.response.status_code", s.status).opt_int("rpc.grpc.status_code", s.grpc_status);
        }
        Response::Redis(s) => {
            attrs.str("proctap.l7.redis.reply_type", s.kind);
        }
        Response::Memcached(s) => {
            attrs.str("proctap.l7.memcached.status", s.status.as_str());
        }
        Response::Postgres(s) => sql_response(attrs, s.status, s.error.as_deref(), s.rows),
        Response::Mysql(s) => sql_response(attrs, s.status, s.error.as_deref(), s.rows),
        Response::Mongodb(s) => {
            attrs.str("proctap.l7.mongodb.reply_op", s.op);
            if let Some(ok) = s.ok {
                attrs.double("proctap.l7.mongodb.ok", ok);
            }
        }
        Response::Kafka(_) => {}
        Response::Dns(s) => {
            attrs
                .int("proctap.l7.dns.rcode", s.rcode)
                .str_array("dns.answers", s.answers.iter().map(|a| a.as_bytes()))
                .uint("proctap.l7.dns.answer_count", s.answer_count as u64);
        }
    }
}

fn sql_response(attrs: &mut Attrs, status: &str, error: Option<&str>, rows: Option<u64>) {
    attrs.str("proctap.l7.status", status).opt_str("proctap.l7.error", error);
    if let Some(rows) = rows {
        attrs.uint("db.response.returned_rows", rows);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map, Value};

    use super::*;
    use crate::l7::{http1, http2, postgres, redis};
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;

    fn attrs(record: &LogRecord) -> Map<String, Value> {
        let value = |v: Option<&Any>| match v {
            Some(Any::StringValue(s)) => json!(s),
            Some(Any::IntValue(i)) => json!(i),
            Some(Any::BoolValue(b)) => json!(b),
            Some(Any::ArrayValue(a)) => json!(a.values.len()),
            other => panic!("{other:?}"),
        };
        record
            .attributes
            .iter()
            .map(|kv| (kv.key.clone(), value(kv.value.as_ref().and_then(|v| v.value.as_ref()))))
            .collect()
    }

    fn record(protocol: Protocol, role: &'static str, request: Request, response: Option<Response>) -> Record {
        Record {
            kind: "l7",
            protocol,
            pid: 4,
            tid: 5,
            comm: "client".into(),
            conn_id: 77,
            role,
            local: Some("10.0.0.1:40000".parse().unwrap()),
            remote: Some("10.0.0.2:80".parse().unwrap()),
            start_ns: 1_000,
            end_ns: 3_000,
            latency_ns: 2_000,
            request: Some(request),
            response,
            request_bytes: 40,
            response_bytes: 100,
            truncated: false,
        }
    }

    #[test]
    fn an_http_exchange_of_a_client_uses_the_http_and_network_names() {
        let request =
            Request::Http1(http1::Request { method: "GET".into(), path: "/a?x=1".into(), host: Some("h".into()) });
        let r = record(Protocol::Http1, "client", request, Some(Response::Http1(http1::Response { status: 404 })));
        let log = l7_log_record(&r, &ProcessContext::default(), 10);
        assert_eq!((log.event_name.as_str(), log.time_unix_nano), ("proctap.l7", 1_010));
        let expected = json!({
            "process.pid": 4, "thread.id": 5, "thread.name": "client", "proctap.l7.protocol": "http1",
            "proctap.l7.role": "client", "proctap.l7.conn_id": 77, "proctap.l7.request_bytes": 40,
            "proctap.l7.response_bytes": 100, "proctap.l7.latency_ns": 2_000,
            "network.local.address": "10.0.0.1", "network.local.port": 40000,
            "network.peer.address": "10.0.0.2", "network.peer.port": 80,
            "client.address": "10.0.0.1", "client.port": 40000, "server.address": "10.0.0.2", "server.port": 80,
            "network.protocol.name": "http", "network.protocol.version": "1.1",
            "http.request.method": "GET", "url.path": "/a", "url.query": "x=1", "http.request.header.host": 1,
            "http.response.status_code": 404,
        });
        assert_eq!(Value::Object(attrs(&log)), expected);
    }

    #[test]
    fn a_server_side_record_swaps_client_and_server() {
        let request = Request::Http1(http1::Request { method: "GET".into(), path: "/".into(), host: None });
        let log = l7_log_record(&record(Protocol::Http1, "server", request, None), &ProcessContext::default(), 0);
        let a = attrs(&log);
        assert_eq!((&a["server.port"], &a["client.port"]), (&json!(40000), &json!(80)));
        assert!(!a.contains_key("proctap.l7.latency_ns"), "no response, no latency");
    }

    #[test]
    fn database_and_grpc_requests_use_the_db_and_rpc_names() {
        let query = "SELECT 1";
        let pg = Request::Postgres(postgres::Request { query: query.into(), expects: postgres::Reply::Messages });
        let a = attrs(&l7_log_record(&record(Protocol::Postgres, "client", pg, None), &ProcessContext::default(), 0));
        assert_eq!((&a["db.system.name"], &a["db.query.text"]), (&json!("postgresql"), &json!(query)));
        let set = Request::Redis(redis::Request { command: vec!["SET".into(), "k".into(), "v".into()] });
        let a = attrs(&l7_log_record(&record(Protocol::Redis, "client", set, None), &ProcessContext::default(), 0));
        assert_eq!((&a["db.operation.name"], &a["db.query.text"]), (&json!("SET"), &json!("SET k v")));
        let call = Request::Http2(http2::Request {
            method: Some("POST".into()),
            path: Some("/pkg.Greeter/Hello".into()),
            host: None,
            stream_id: 1,
            mid_stream: false,
            grpc: true,
        });
        let answer = Response::Http2(http2::Response { status: Some(200), grpc_status: Some(5) });
        let a =
            attrs(&l7_log_record(&record(Protocol::Grpc, "client", call, Some(answer)), &ProcessContext::default(), 0));
        assert_eq!(
            (&a["rpc.system"], &a["rpc.service"], &a["rpc.method"]),
            (&json!("grpc"), &json!("pkg.Greeter"), &json!("Hello"))
        );
        assert_eq!(a["rpc.grpc.status_code"], json!(5));
    }
}
