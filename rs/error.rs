//! Typed errors. Each says what went wrong and what to do about it.

use crate::binding::{c_text, sys};

/// Everything that can go wrong starting or running a [`Tracer`](crate::Tracer).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A config field is out of range; `field` names it.
    #[error("invalid config field `{field}`: {reason}")]
    InvalidConfig { field: String, reason: String },

    /// The process may not load BPF programs.
    #[error("missing privilege: {message}")]
    Privilege { message: String },

    /// The kernel has no BTF, which CO-RE and tp_btf programs need.
    #[error("{message}")]
    NoBtf { message: String },

    /// The kernel (usually the verifier) refused a program or map.
    #[error("kernel refused to load proctap's BPF programs: {message} (errno {errno})")]
    Load { errno: i32, message: String },

    /// Attaching one BPF program failed.
    #[error("attaching BPF program `{program}` failed: {message} (errno {errno}); does this kernel have the tracepoint and BTF?")]
    Attach { program: String, errno: i32, message: String },

    /// The running kernel lacks what an enabled kind needs; `feature`
    /// names it (a tracepoint, a helper). Leave that kind out on this
    /// kernel, or run a newer one.
    #[error("this kernel lacks {feature}: {message}")]
    Unsupported { feature: String, message: String },

    /// Another system call failed.
    #[error("{message} (errno {errno})")]
    System { errno: i32, message: String },

    /// A profiler target could not be added or removed; `target` names it
    /// (a pid or a command-name prefix).
    #[error("profiler target {target}: {message}")]
    Target { target: String, errno: i32, message: String },

    /// The handler given to [`Tracer::start_with_handler`](crate::Tracer::start_with_handler)
    /// panicked. The tracer stopped polling then; the batch it was handling
    /// and later records are counted (undelivered, abandoned), not lost silently.
    #[error("the event handler panicked: {message}")]
    HandlerPanicked { message: String },

    /// The poll thread could not be spawned.
    #[error("spawning the poll thread: {0}")]
    Thread(#[from] std::io::Error),
}

impl Error {
    pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> Error {
        Error::InvalidConfig { field: field.to_string(), reason: reason.into() }
    }

    pub(crate) fn from_c(err: &sys::proctap_error) -> Error {
        let message = c_text(&err.message);
        let errno = err.errnum;
        match err.code as u32 {
            sys::PROCTAP_E_CONFIG => Error::InvalidConfig { field: c_text(&err.field), reason: message },
            sys::PROCTAP_E_PRIVILEGE => Error::Privilege { message },
            sys::PROCTAP_E_NO_BTF => Error::NoBtf { message },
            sys::PROCTAP_E_LOAD => Error::Load { errno, message },
            sys::PROCTAP_E_ATTACH => Error::Attach { program: c_text(&err.program), errno, message },
            sys::PROCTAP_E_UNSUPPORTED => Error::Unsupported { feature: c_text(&err.field), message },
            _ => Error::System { errno, message },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c_error(code: u32, field: &str, message: &str) -> sys::proctap_error {
        let mut err = sys::proctap_error { code: code as i32, errnum: 95, ..Default::default() };
        for (dst, src) in err.field.iter_mut().zip(field.bytes()) {
            *dst = src as _;
        }
        for (dst, src) in err.message.iter_mut().zip(message.bytes()) {
            *dst = src as _;
        }
        err
    }

    #[test]
    fn a_missing_kernel_feature_is_named() {
        let err = Error::from_c(&c_error(sys::PROCTAP_E_UNSUPPORTED, "tracepoint sock_send_length", "no such"));
        match &err {
            Error::Unsupported { feature, message } => {
                assert_eq!((feature.as_str(), message.as_str()), ("tracepoint sock_send_length", "no such"))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(err.to_string(), "this kernel lacks tracepoint sock_send_length: no such");
    }
}
