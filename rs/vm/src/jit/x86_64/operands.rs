//! The operands of the encoder: registers, memory operands, widths,
//! condition codes and the arithmetic and shift groups.

/// A general-purpose register, by its hardware number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reg(pub u8);

#[allow(missing_docs)]
impl Reg {
    pub const RAX: Reg = Reg(0);
    pub const RCX: Reg = Reg(1);
    pub const RDX: Reg = Reg(2);
    pub const RBX: Reg = Reg(3);
    pub const RSP: Reg = Reg(4);
    pub const RBP: Reg = Reg(5);
    pub const RSI: Reg = Reg(6);
    pub const RDI: Reg = Reg(7);
    pub const R8: Reg = Reg(8);
    pub const R9: Reg = Reg(9);
    pub const R10: Reg = Reg(10);
    pub const R11: Reg = Reg(11);
    pub const R12: Reg = Reg(12);
    pub const R13: Reg = Reg(13);
    pub const R14: Reg = Reg(14);
    pub const R15: Reg = Reg(15);

    pub(super) fn low(self) -> u8 {
        self.0 & 7
    }
    pub(super) fn high(self) -> bool {
        self.0 >= 8
    }
}

/// A memory operand: `[base + index * scale + disp]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mem {
    /// The base register.
    pub base: Reg,
    /// An index register and its scale (1, 2, 4 or 8).
    pub index: Option<(Reg, u8)>,
    /// The displacement.
    pub disp: i32,
}

impl Mem {
    /// `[base + disp]`.
    pub fn at(base: Reg, disp: i32) -> Mem {
        Mem { base, index: None, disp }
    }
    /// `[base + index + disp]`.
    pub fn indexed(base: Reg, index: Reg, disp: i32) -> Mem {
        Mem { base, index: Some((index, 1)), disp }
    }
}

/// A register or memory operand (the r/m field of an instruction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rm {
    /// A register.
    R(Reg),
    /// Memory.
    M(Mem),
}

/// Operand width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// 8 bits.
    B,
    /// 16 bits.
    H,
    /// 32 bits (writes zero-extend to 64).
    W,
    /// 64 bits.
    Q,
}

impl Width {
    /// The width of a `bytes`-byte access (1, 2, 4 or 8).
    pub fn of_bytes(bytes: usize) -> Width {
        match bytes {
            1 => Width::B,
            2 => Width::H,
            4 => Width::W,
            _ => Width::Q,
        }
    }
}

/// Condition codes of `jcc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Cond {
    B = 2,
    Ae = 3,
    E = 4,
    Ne = 5,
    Be = 6,
    A = 7,
    L = 0xc,
    Ge = 0xd,
    Le = 0xe,
    G = 0xf,
}

/// The two-operand arithmetic group (`op r/m, reg` and `op r/m, imm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Alu {
    Add = 0,
    Or = 1,
    And = 4,
    Sub = 5,
    Xor = 6,
    Cmp = 7,
}

/// Shifts and rotates (the `/digit` of C1 and D3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Shift {
    Rol = 0,
    Ror = 1,
    Shl = 4,
    Shr = 5,
    Sar = 7,
}
