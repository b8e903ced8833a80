//! A row of a kind's Arrow table as the JSON object of its event, by the
//! rules of the `arrow` module docs (the same as tests/fixtures/arrow_check.py):
//! bytes as JSON strings or `{"hex"}`, stacks in hex, times as RFC 3339,
//! keys left out as the `proctap.json` metadata says.

use proctap::arrow::arrow_array::cast::AsArray;
use proctap::arrow::arrow_array::types::{
    Int32Type, Int64Type, TimestampNanosecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use proctap::arrow::arrow_array::{Array, RecordBatch};
use proctap::arrow::arrow_schema::{DataType, Field, Fields};
use proctap::arrow::JSON_METADATA;
use proctap::WallTime;
use serde_json::{json, Map, Value};

/// Bytes as JSON shows them.
fn byte_str(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(text) => json!(text),
        Err(_) => json!({ "hex": bytes.iter().map(|b| format!("{b:02x}")).collect::<String>() }),
    }
}

/// The value at `row` of a column, as JSON shows it.
fn value(array: &dyn Array, row: usize) -> Value {
    if array.is_null(row) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::UInt8 => json!(array.as_primitive::<UInt8Type>().value(row)),
        DataType::UInt16 => json!(array.as_primitive::<UInt16Type>().value(row)),
        DataType::UInt32 => json!(array.as_primitive::<UInt32Type>().value(row)),
        DataType::UInt64 => json!(array.as_primitive::<UInt64Type>().value(row)),
        DataType::Int32 => json!(array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => json!(array.as_primitive::<Int64Type>().value(row)),
        DataType::Boolean => json!(array.as_boolean().value(row)),
        DataType::Utf8 => json!(array.as_string::<i32>().value(row)),
        DataType::Binary => byte_str(array.as_binary::<i32>().value(row)),
        DataType::Timestamp(..) => {
            let unix_ns = array.as_primitive::<TimestampNanosecondType>().value(row);
            json!(WallTime { unix_ns }.to_string())
        }
        DataType::Dictionary(..) => {
            let names = array.as_dictionary::<UInt8Type>();
            let key = names.keys().value(row) as usize;
            json!(names.values().as_string::<i32>().value(key))
        }
        DataType::List(item) => {
            let items = array.as_list::<i32>().value(row);
            let hex = matches!(item.data_type(), DataType::UInt64);
            Value::Array(
                (0..items.len())
                    .map(|i| match hex {
                        true => json!(format!("{:#x}", items.as_primitive::<UInt64Type>().value(i))),
                        false => value(&items, i),
                    })
                    .collect(),
            )
        }
        DataType::Struct(fields) => {
            let s = array.as_struct();
            object(fields, |i| value(s.column(i), row))
        }
        other => panic!("a column type the arrow module does not make: {other}"),
    }
}

fn shown(field: &Field) -> &str {
    field.metadata().get(JSON_METADATA).map_or("always", String::as_str)
}

/// The JSON object of `fields` whose values `value(i)` gives.
fn object(fields: &Fields, value: impl Fn(usize) -> Value) -> Value {
    let mut out = Map::new();
    for (i, f) in fields.iter().enumerate() {
        let v = value(i);
        let unset = v.is_null() || v == json!(false);
        match shown(f) {
            "hidden" => {}
            "if_set" if unset => {}
            _ => {
                out.insert(f.name().clone(), v);
            }
        }
    }
    Value::Object(out)
}

/// The row as its event's JSON object (without `type`).
pub fn row_json(batch: &RecordBatch, row: usize) -> Value {
    object(batch.schema().fields(), |i| value(batch.column(i), row))
}

/// The event's JSON as a row holds it: without `type`, an errno object as
/// its number.
pub fn comparable(mut json: Value) -> Value {
    if let Value::Object(m) = &mut json {
        m.remove("type");
    }
    errno_numbers(json)
}

fn errno_numbers(json: Value) -> Value {
    match json {
        Value::Object(m) if m.len() == 1 && m.contains_key("errno") => m["errno"].clone(),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, errno_numbers(v))).collect()),
        Value::Array(a) => Value::Array(a.into_iter().map(errno_numbers).collect()),
        other => other,
    }
}
