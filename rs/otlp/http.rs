//! One OTLP/HTTP request: POST a protobuf body to `{endpoint}/v1/logs`,
//! and what its answer means for the records in it.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use prost::Message;

use super::OtlpError;

/// What became of one request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A 2xx answer; the receiver may still have refused some records
    /// (partial success), with a message saying why.
    Delivered { rejected: u64, message: Option<String> },
    /// Worth trying again: no connection, a timeout, 429, 502, 503, 504.
    /// `after`: the receiver's Retry-After.
    Retry { error: String, after: Option<Duration> },
    /// Refused for good: any other status.
    Rejected { error: String },
}

/// The HTTP side of an exporter.
pub(crate) struct Client {
    agent: ureq::Agent,
    url: String,
}

impl Client {
    /// A client for the receiver at `endpoint` (scheme, host, port, and
    /// an optional path prefix; `/v1/logs` is added).
    pub(crate) fn new(endpoint: &str) -> Result<Client, OtlpError> {
        let url = logs_url(endpoint)?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(concat!("proctap/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Client { agent: config.into(), url })
    }

    /// Sends `body` (an encoded ExportLogsServiceRequest), waiting at most
    /// `timeout` for the whole exchange.
    pub(crate) fn post(&self, body: &[u8], timeout: Duration) -> Outcome {
        let sent = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/x-protobuf")
            .config()
            .timeout_global(Some(timeout))
            .build()
            .send(body);
        let mut response = match sent {
            Ok(response) => response,
            Err(err) => return Outcome::Retry { error: format!("POST {}: {err}", self.url), after: None },
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // A receiver's answer is small; a body that does not read or
        // decode changes nothing about a 2xx.
        let answer = response.body_mut().with_config().limit(1 << 20).read_to_vec().unwrap_or_default();
        classify(status, &answer, retry_after, &self.url)
    }
}

/// The records' fate by the answer's status and body.
pub(crate) fn classify(status: u16, body: &[u8], retry_after: Option<Duration>, url: &str) -> Outcome {
    match status {
        200..=299 => delivered(body),
        429 | 502 | 503 | 504 => Outcome::Retry { error: format!("POST {url}: HTTP {status}"), after: retry_after },
        _ => Outcome::Rejected { error: format!("POST {url}: HTTP {status}: {}", status_text(body)) },
    }
}

/// A 2xx answer: its ExportLogsServiceResponse's partial success, if any.
fn delivered(body: &[u8]) -> Outcome {
    let partial = ExportLogsServiceResponse::decode(body).ok().and_then(|r| r.partial_success);
    match partial {
        Some(p) if p.rejected_log_records > 0 || !p.error_message.is_empty() => Outcome::Delivered {
            rejected: u64::try_from(p.rejected_log_records).unwrap_or(0),
            message: Some(format!("receiver: {} records rejected: {}", p.rejected_log_records, p.error_message)),
        },
        _ => Outcome::Delivered { rejected: 0, message: None },
    }
}

/// What an error answer says, briefly (receivers send a google.rpc.Status
/// or text; only text is shown).
fn status_text(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    if text.chars().all(|c| !c.is_control() || c.is_whitespace()) {
        text.trim().to_owned()
    } else {
        format!("{} bytes of body", body.len())
    }
}

/// `{endpoint}/v1/logs`, once `endpoint` is a plausible http(s) base URL.
pub(crate) fn logs_url(endpoint: &str) -> Result<String, OtlpError> {
    let invalid = || OtlpError::InvalidEndpoint { endpoint: endpoint.to_owned() };
    let base = endpoint.trim_end_matches('/');
    let rest = base.strip_prefix("http://").or_else(|| base.strip_prefix("https://")).ok_or_else(invalid)?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || host.ends_with(':') || base.ends_with("/v1/logs") || base.contains(char::is_whitespace) {
        return Err(invalid());
    }
    let url = format!("{base}/v1/logs");
    url.parse::<ureq::http::Uri>().map_err(|_| invalid())?;
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logs_path_is_added_to_a_base_url_and_anything_else_is_refused() {
        assert_eq!(logs_url("http://127.0.0.1:4318").unwrap(), "http://127.0.0.1:4318/v1/logs");
        assert_eq!(logs_url("https://otel.example/prefix/").unwrap(), "https://otel.example/prefix/v1/logs");
        for bad in ["127.0.0.1:4318", "http://", "ftp://x", "http://x:4318/v1/logs", "http://a b", "http://x:"] {
            assert!(matches!(logs_url(bad), Err(OtlpError::InvalidEndpoint { .. })), "{bad}");
        }
    }

    #[test]
    fn statuses_map_to_delivered_retried_or_rejected() {
        let url = "http://x/v1/logs";
        assert_eq!(classify(200, &[], None, url), Outcome::Delivered { rejected: 0, message: None });
        assert!(matches!(classify(204, b"junk", None, url), Outcome::Delivered { rejected: 0, .. }));
        for status in [429, 502, 503, 504] {
            assert!(matches!(classify(status, &[], None, url), Outcome::Retry { .. }), "{status}");
        }
        for status in [400, 401, 404, 413, 500, 501] {
            assert!(matches!(classify(status, b"bad", None, url), Outcome::Rejected { .. }), "{status}");
        }
        let after = Some(Duration::from_secs(1));
        assert!(matches!(classify(503, &[], after, url), Outcome::Retry { after: a, .. } if a == after));
    }

    #[test]
    fn a_partial_success_counts_its_rejected_records() {
        use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsPartialSuccess;
        let answer = ExportLogsServiceResponse {
            partial_success: Some(ExportLogsPartialSuccess {
                rejected_log_records: 3,
                error_message: "too old".into(),
            }),
        };
        match classify(200, &answer.encode_to_vec(), None, "u") {
            Outcome::Delivered { rejected: 3, message: Some(m) } => assert!(m.contains("too old"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
