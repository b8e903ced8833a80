//! Building OTLP attribute lists.
//!
//! Byte strings the kernel gave (paths, argv, command names) need not be
//! UTF-8; OTLP strings must be, so invalid sequences become U+FFFD.

use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, ArrayValue, KeyValue};

use super::ProcessContext;

/// An attribute list under construction.
#[derive(Default)]
pub(crate) struct Attrs(Vec<KeyValue>);

impl Attrs {
    pub(crate) fn new() -> Attrs {
        Attrs::default()
    }

    pub(crate) fn into_vec(self) -> Vec<KeyValue> {
        self.0
    }

    fn push(&mut self, key: &str, value: Value) -> &mut Self {
        self.0.push(KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value: Some(value) }),
            ..KeyValue::default()
        });
        self
    }

    pub(crate) fn int(&mut self, key: &str, value: impl Into<i64>) -> &mut Self {
        self.push(key, Value::IntValue(value.into()))
    }

    /// A u64 that may exceed i64 (OTLP ints are signed): saturated.
    pub(crate) fn uint(&mut self, key: &str, value: u64) -> &mut Self {
        self.int(key, i64::try_from(value).unwrap_or(i64::MAX))
    }

    pub(crate) fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        self.push(key, Value::BoolValue(value))
    }

    pub(crate) fn str(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.push(key, Value::StringValue(value.into()))
    }

    pub(crate) fn bytes_str(&mut self, key: &str, value: &[u8]) -> &mut Self {
        self.str(key, String::from_utf8_lossy(value))
    }

    pub(crate) fn str_array<'a>(&mut self, key: &str, values: impl Iterator<Item = &'a [u8]>) -> &mut Self {
        let values = values
            .map(|v| AnyValue { value: Some(Value::StringValue(String::from_utf8_lossy(v).into_owned())) })
            .collect();
        self.push(key, Value::ArrayValue(ArrayValue { values }))
    }

    pub(crate) fn opt_str(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        if let Some(value) = value {
            self.str(key, value);
        }
        self
    }

    pub(crate) fn opt_int(&mut self, key: &str, value: Option<impl Into<i64>>) -> &mut Self {
        if let Some(value) = value {
            self.int(key, value);
        }
        self
    }

    /// The context's attributes, those it has.
    pub(crate) fn process_context(&mut self, process: &ProcessContext) -> &mut Self {
        self.opt_str("proctap.exec_id", process.exec_id)
            .opt_str("proctap.parent_exec_id", process.parent_exec_id)
            .opt_str("container.id", process.container_id)
            .opt_str("k8s.pod.uid", process.pod_uid)
            .opt_str("process.linux.cgroup", process.cgroup)
    }
}

impl Attrs {
    pub(crate) fn double(&mut self, key: &str, value: f64) -> &mut Self {
        self.push(key, Value::DoubleValue(value))
    }
}
