//! [`StackError`]: why a sample's stack is missing or cut short, typed.
//!
//! The kernel side's reasons ride on each sample record (its
//! `kernel_stack_error` and `user_stack_error` errnos, its `data_lost` flag),
//! so every failed walk reaches the stream as the very event it concerns,
//! with its pid, tid and time. Unwinding a copied stack happens here, in
//! userspace, and can stop short too ([`UnwindStop`]). [`Profile::add`]
//! returns all of a sample's reasons as [`SampleErrors`], and the profile
//! counts them ([`Profile::stack_errors`]).
//!
//! [`Profile::add`]: super::Profile::add
//! [`Profile::stack_errors`]: super::Profile::stack_errors

use std::fmt;

pub use super::unwind::UnwindStop;
use crate::Errno;

/// One reason a sample's stack is missing or incomplete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StackError {
    /// The kernel could not walk the kernel stack.
    KernelStack(Errno),
    /// The kernel could not walk (frame pointers) or copy the user stack.
    UserStack(Errno),
    /// The sample reached the consumer without its stacks: the data pages
    /// were full.
    DataLost,
    /// Unwinding the copied user stack stopped before its outermost frame.
    Unwind(UnwindStop),
}

impl StackError {
    /// Which part failed: `kernel_stack`, `user_stack`, `data_lost` or `unwind`.
    pub fn part(&self) -> &'static str {
        match self {
            StackError::KernelStack(_) => "kernel_stack",
            StackError::UserStack(_) => "user_stack",
            StackError::DataLost => "data_lost",
            StackError::Unwind(_) => "unwind",
        }
    }

    /// Why, in a word: the errno's name (`EFAULT`), or the unwinding's stop
    /// (`end_of_copy`, `depth`, `no_unwind_rule`, `no_modules`); empty for
    /// [`DataLost`](Self::DataLost).
    pub fn reason(&self) -> String {
        match self {
            StackError::KernelStack(e) | StackError::UserStack(e) => errno_name(*e),
            StackError::DataLost => String::new(),
            StackError::Unwind(stop) => stop.name().to_string(),
        }
    }
}

impl fmt::Display for StackError {
    /// `part:reason`, or `data_lost`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StackError::DataLost => f.write_str(self.part()),
            _ => write!(f, "{}:{}", self.part(), self.reason()),
        }
    }
}

/// Everything that went wrong with one sample's stacks (usually nothing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SampleErrors {
    pub kernel_stack: Option<Errno>,
    pub user_stack: Option<Errno>,
    pub data_lost: bool,
    pub unwind: Option<UnwindStop>,
}

impl SampleErrors {
    /// Nothing went wrong: both stacks arrived and unwound whole.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// Each reason, typed.
    pub fn iter(&self) -> impl Iterator<Item = StackError> {
        [
            self.data_lost.then_some(StackError::DataLost),
            self.kernel_stack.map(StackError::KernelStack),
            self.user_stack.map(StackError::UserStack),
            self.unwind.map(StackError::Unwind),
        ]
        .into_iter()
        .flatten()
    }
}

/// `EFAULT` and friends, for placeholder frames and [`StackError::reason`].
pub(super) fn errno_name(err: Errno) -> String {
    let name = match err.errno.unsigned_abs() {
        1 => "EPERM",
        2 => "ENOENT",
        7 => "E2BIG",
        12 => "ENOMEM",
        14 => "EFAULT",
        16 => "EBUSY",
        22 => "EINVAL",
        28 => "ENOSPC",
        95 => "EOPNOTSUPP",
        n => return format!("errno {n}"),
    };
    name.to_string()
}
