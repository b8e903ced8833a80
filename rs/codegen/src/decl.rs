//! The shape of a declaration file (`c/events/<kind>.toml`), as serde reads
//! it. Nothing here is checked; [`crate::registry`] turns it into the model.

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KindDecl {
    pub(crate) kind: String,
    pub(crate) id: u16,
    #[serde(default)]
    pub(crate) c_name: Option<String>,
    #[serde(default)]
    pub(crate) rust: Option<String>,
    pub(crate) family: String,
    pub(crate) doc: String,
    #[serde(default)]
    pub(crate) hidden: bool,
    #[serde(default)]
    pub(crate) header: Vec<String>,
    #[serde(default)]
    pub(crate) programs: Vec<String>,
    #[serde(default)]
    pub(crate) wake: Option<String>,
    /// "loader": the loader makes its records (from a ring of its own), not
    /// a kernel program, though a config enables it like any other kind.
    #[serde(default)]
    pub(crate) source: Option<String>,
    #[serde(default)]
    pub(crate) filtered: bool,
    #[serde(default, rename = "field")]
    pub(crate) fields: Vec<FieldDecl>,
    #[serde(default, rename = "data")]
    pub(crate) data: Vec<DataDecl>,
    #[serde(default, rename = "flag")]
    pub(crate) flags: Vec<FlagDecl>,
    #[serde(default, rename = "counter")]
    pub(crate) counters: Vec<CounterDecl>,
    /// A user-declared tracepoint's "CATEGORY:NAME" (never from TOML).
    #[serde(skip)]
    pub(crate) tracepoint: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FieldDecl {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) ty: String,
    pub(crate) doc: String,
    #[serde(default)]
    pub(crate) rust: Option<String>,
    #[serde(default = "yes")]
    pub(crate) json: bool,
    #[serde(default)]
    pub(crate) since: Option<String>,
    #[serde(default, rename = "value")]
    pub(crate) values: Vec<ValueDecl>,
    /// A tracepoint attribute, shown under "args" (never from TOML).
    #[serde(skip)]
    pub(crate) arg: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ValueDecl {
    pub(crate) name: String,
    pub(crate) value: u32,
    pub(crate) doc: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DataDecl {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) ty: String,
    pub(crate) doc: String,
    pub(crate) cap: CapDecl,
    #[serde(default = "yes")]
    pub(crate) json: bool,
    #[serde(default)]
    pub(crate) after: Option<String>,
    #[serde(default)]
    pub(crate) pieces: bool,
    /// A tracepoint attribute, shown under "args" (never from TOML).
    #[serde(skip)]
    pub(crate) arg: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum CapDecl {
    Bytes(u32),
    Knob { knob: String, default: u32, min: u32, max: u32 },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FlagDecl {
    pub(crate) name: String,
    pub(crate) doc: String,
    #[serde(default)]
    pub(crate) counter: bool,
    #[serde(default)]
    pub(crate) json: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CounterDecl {
    pub(crate) name: String,
    pub(crate) doc: String,
}

fn yes() -> bool {
    true
}
