//! Builders of the columns whose values are not plain integers, bytes or
//! booleans (wall time, argv, stacks, socket addresses, names from a fixed
//! list), and the field metadata that says how JSON shows a column. The
//! generated tables (rs/codegen/src/arrow.rs) are made of these and of
//! arrow's own builders.

use std::collections::HashMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, BinaryBuilder, BooleanBuilder, GenericByteBuilder, ListBuilder, PrimitiveBuilder, StringBuilder,
    TimestampNanosecondBuilder, UInt64Builder, UInt8Builder,
};
use arrow_array::types::{ArrowPrimitiveType, ByteArrayType, UInt8Type};
use arrow_array::{
    Array, ArrayRef, BooleanArray, DictionaryArray, GenericByteArray, ListArray, PrimitiveArray, StringArray,
    TimestampNanosecondArray,
};
use arrow_schema::{DataType as ArrowType, Field, FieldRef, TimeUnit};

use crate::event::{Argv, WallTime};

/// Field metadata key: how the JSON object shows the column, when not
/// always (`if_set`: only when true or not null; `hidden`: never).
pub const JSON_METADATA: &str = "proctap.json";

/// Schema metadata key: the JSON `type` of the table's events.
pub const TYPE_METADATA: &str = "proctap.type";

/// How the JSON object shows a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shown {
    /// Always, under the column's name.
    Always,
    /// Only when set: a flag that is true, an errno that is there.
    IfSet,
    /// Never: a field declared `json = false`, the raw exit status.
    Hidden,
}

/// A field of a table's schema, with its [`JSON_METADATA`].
pub(crate) fn field(name: &str, data_type: ArrowType, nullable: bool, shown: Shown) -> Field {
    let field = Field::new(name, data_type, nullable);
    let value = match shown {
        Shown::Always => return field,
        Shown::IfSet => "if_set",
        Shown::Hidden => "hidden",
    };
    field.with_metadata(HashMap::from([(JSON_METADATA.to_string(), value.to_string())]))
}

/// A table's schema metadata: its events' JSON `type`.
pub(crate) fn table_metadata(json_type: &str) -> HashMap<String, String> {
    HashMap::from([(TYPE_METADATA.to_string(), json_type.to_string())])
}

/// A column's builder. Its rows become an array that takes the buffers
/// with it, and the builder starts over with room for as many rows and
/// bytes: the next batch of a steady stream fills it without regrowing.
pub(crate) trait Column {
    type Array: Array + 'static;

    fn take(&mut self) -> Self::Array;
}

impl<T: ArrowPrimitiveType> Column for PrimitiveBuilder<T> {
    type Array = PrimitiveArray<T>;

    fn take(&mut self) -> PrimitiveArray<T> {
        let next = PrimitiveBuilder::with_capacity(self.len());
        std::mem::replace(self, next).finish()
    }
}

impl Column for BooleanBuilder {
    type Array = BooleanArray;

    fn take(&mut self) -> BooleanArray {
        let next = BooleanBuilder::with_capacity(self.len());
        std::mem::replace(self, next).finish()
    }
}

impl<T: ByteArrayType> Column for GenericByteBuilder<T> {
    type Array = GenericByteArray<T>;

    fn take(&mut self) -> GenericByteArray<T> {
        let next = GenericByteBuilder::with_capacity(self.len(), self.values_slice().len());
        std::mem::replace(self, next).finish()
    }
}

/// The time zone of wall times.
const UTC: &str = "UTC";

/// Wall time: Timestamp(ns, UTC).
pub(crate) struct TimeColumn(TimestampNanosecondBuilder);

impl Default for TimeColumn {
    fn default() -> TimeColumn {
        TimeColumn(TimestampNanosecondBuilder::new().with_timezone(UTC))
    }
}

impl TimeColumn {
    pub(crate) fn data_type() -> ArrowType {
        ArrowType::Timestamp(TimeUnit::Nanosecond, Some(UTC.into()))
    }

    #[inline]
    pub(crate) fn append(&mut self, time: WallTime) {
        self.0.append_value(time.unix_ns);
    }
}

impl Column for TimeColumn {
    type Array = TimestampNanosecondArray;

    fn take(&mut self) -> TimestampNanosecondArray {
        let next = TimestampNanosecondBuilder::with_capacity(self.0.len()).with_timezone(UTC);
        std::mem::replace(&mut self.0, next).finish()
    }
}

/// A list's item field (items are never null).
fn item(data_type: ArrowType) -> FieldRef {
    Arc::new(Field::new("item", data_type, false))
}

/// argv: `List<Binary>`, one element per argument (bytes, not always UTF-8).
pub(crate) struct ArgvColumn(ListBuilder<BinaryBuilder>);

impl Default for ArgvColumn {
    fn default() -> ArgvColumn {
        ArgvColumn(ListBuilder::new(BinaryBuilder::new()).with_field(item(ArrowType::Binary)))
    }
}

impl ArgvColumn {
    pub(crate) fn data_type() -> ArrowType {
        ArrowType::List(item(ArrowType::Binary))
    }

    #[inline]
    pub(crate) fn append<B: AsRef<[u8]>>(&mut self, argv: &Argv<B>) {
        for arg in argv.iter() {
            self.0.values().append_value(arg);
        }
        self.0.append(true);
    }
}

impl Column for ArgvColumn {
    type Array = ListArray;

    fn take(&mut self) -> ListArray {
        let args = self.0.values_ref();
        let args = BinaryBuilder::with_capacity(args.len(), args.values_slice().len());
        let next = ListBuilder::with_capacity(args, self.0.len()).with_field(item(ArrowType::Binary));
        std::mem::replace(&mut self.0, next).finish()
    }
}

/// A stack: `List<UInt64>`, return addresses innermost first.
pub(crate) struct StackColumn(ListBuilder<UInt64Builder>);

impl Default for StackColumn {
    fn default() -> StackColumn {
        StackColumn(ListBuilder::new(UInt64Builder::new()).with_field(item(ArrowType::UInt64)))
    }
}

impl StackColumn {
    pub(crate) fn data_type() -> ArrowType {
        ArrowType::List(item(ArrowType::UInt64))
    }

    #[inline]
    pub(crate) fn append(&mut self, addresses: impl Iterator<Item = u64>) {
        for address in addresses {
            self.0.values().append_value(address);
        }
        self.0.append(true);
    }
}

impl Column for StackColumn {
    type Array = ListArray;

    fn take(&mut self) -> ListArray {
        let addresses = UInt64Builder::with_capacity(self.0.values_ref().len());
        let next = ListBuilder::with_capacity(addresses, self.0.len()).with_field(item(ArrowType::UInt64));
        std::mem::replace(&mut self.0, next).finish()
    }
}

/// A socket address as JSON prints it (`"127.0.0.1:80"`, `"[::1]:80"`),
/// null when there is none.
#[derive(Default)]
pub(crate) struct AddrColumn(StringBuilder);

impl AddrColumn {
    #[inline]
    pub(crate) fn append(&mut self, addr: Option<SocketAddr>) {
        match addr {
            // Written into the column's buffer: no String per row.
            Some(addr) => {
                let _ = write!(self.0, "{addr}");
                self.0.append_value("");
            }
            None => self.0.append_null(),
        }
    }
}

impl Column for AddrColumn {
    type Array = StringArray;

    fn take(&mut self) -> StringArray {
        self.0.take()
    }
}

/// Names from a fixed list (an enum's values, the event kinds):
/// `Dictionary<UInt8, Utf8>` whose dictionary is the whole list, the same in
/// every batch (an IPC file cannot replace a dictionary).
pub(crate) struct NamesColumn {
    keys: UInt8Builder,
    names: ArrayRef,
}

impl NamesColumn {
    /// At most 256 names (the generator checks).
    pub(crate) fn new(names: &[&str]) -> NamesColumn {
        NamesColumn { keys: UInt8Builder::new(), names: Arc::new(StringArray::from(names.to_vec())) }
    }

    pub(crate) fn data_type() -> ArrowType {
        ArrowType::Dictionary(Box::new(ArrowType::UInt8), Box::new(ArrowType::Utf8))
    }

    /// The name at `index` in the list.
    #[inline]
    pub(crate) fn append(&mut self, index: usize) {
        self.keys.append_value(index as u8);
    }
}

impl Column for NamesColumn {
    type Array = DictionaryArray<UInt8Type>;

    fn take(&mut self) -> DictionaryArray<UInt8Type> {
        // Every key is an index into the list: the generator made both.
        DictionaryArray::new(self.keys.take(), Arc::clone(&self.names))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_keeps_every_argument_as_bytes() {
        let mut c = ArgvColumn::default();
        c.append(&Argv(b"ls\0-l\0\xff\0".as_slice()));
        c.append(&Argv(b"".as_slice()));
        let list = c.take();
        assert_eq!(list.value_length(0), 3);
        assert_eq!(list.value_length(1), 0);
        let args = list.value(0);
        let args = args.as_any().downcast_ref::<arrow_array::BinaryArray>().unwrap();
        assert_eq!(args.value(2), b"\xff");
        assert_eq!(list.data_type(), &ArgvColumn::data_type());
    }

    #[test]
    fn names_share_one_dictionary_across_batches() {
        let mut c = NamesColumn::new(&["a", "b"]);
        c.append(1);
        let first = c.take();
        c.append(0);
        let second = c.take();
        assert!(Arc::ptr_eq(first.values(), second.values()));
        assert_eq!(first.keys().value(0), 1);
        assert_eq!(second.keys().value(0), 0);
    }

    #[test]
    fn addresses_print_as_json_does() {
        let mut c = AddrColumn::default();
        c.append(Some("[::1]:80".parse().unwrap()));
        c.append(None);
        c.append(Some("10.0.0.1:53".parse().unwrap()));
        let a = c.take();
        assert_eq!((a.value(0), a.is_null(1), a.value(2)), ("[::1]:80", true, "10.0.0.1:53"));
    }
}
