//! The tables of the event kinds, generated from the registry (c/events)
//! by proctap-codegen at build time (rs/codegen/src/arrow.rs): per kind a
//! struct of column builders, its schema, and the code that appends an
//! event as a row.

// A registry may leave some builder types unused (user tracepoints add kinds).
#![allow(unused_imports)]

use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, BinaryBuilder, BooleanBuilder, Int32Builder, Int64Builder, UInt16Builder, UInt32Builder,
    UInt64Builder, UInt8Builder,
};
use arrow_array::{ArrayRef, RecordBatch, StructArray};
use arrow_schema::{ArrowError, DataType as ArrowType, Fields, Schema, SchemaRef};

use super::columns::{
    field, table_metadata, AddrColumn, ArgvColumn, Column, NamesColumn, Shown, StackColumn, TimeColumn,
};
use crate::event::{self as ev, Event, EventKind};

include!(concat!(env!("OUT_DIR"), "/arrow.rs"));
