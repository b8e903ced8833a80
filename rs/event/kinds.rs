//! The event types generated from the registry (c/events, one declaration
//! per kind) by proctap-codegen at build time; see the `event` module.

#![allow(unused_imports)]

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::bytes::{Argv, ByteStr, Comm};
use super::stack::{Errno, KernelStack, UserStack};
use super::time::WallTime;
use super::wire::{Data, Fixed, Hdr, RecordEncoder};

include!(concat!(env!("OUT_DIR"), "/kinds.rs"));
