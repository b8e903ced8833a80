//! THE differential property: random valid programs give the same r0 (or
//! the same fault), the same context bytes and the same map values in the
//! interpreter and in the JIT, on random context bytes.
//!
//! The programs: registers initialized first (r6 keeps the context
//! pointer, r8 is the loop counter, the others hold random values), then
//! random ALU64/ALU32 operations (division, shifts, movsx and byte swaps
//! included), loads and stores on the stack (through r10 and through
//! another register) and the context (some out of bounds, which fault),
//! map values in and across their slots, loads through registers holding
//! arbitrary values (which fault), stack atomics, calls to ktime_get_ns, get_prandom_u32 and
//! get_smp_processor_id (a fake OS makes them deterministic), BPF-to-BPF
//! calls and bpf_loop over a random subprogram, forward jumps and jmp32s
//! over whole snippets, and bounded loops. They all
//! finish within the budget: the JIT counts the budget per block (see
//! `proctap_vm::jit`), so only runs that finish are compared for it.

mod jit_support;
mod support;

use jit_support::{both, load, Setup};
use proctap_vm::consts::{alu, atomic, class, helper, jmp, src};
use proctap_vm::map::MapTable;
use proctap_vm::program::Insn;
use proptest::prelude::*;
use support::asm::*;
use support::fake_map::FakeArray;

/// Registers random values live in (r6 = ctx, r8 = loop counter, r10 = frame).
const DATA: [u8; 8] = [0, 1, 2, 3, 4, 5, 7, 9];
const CTX_LEN: i16 = 24;
/// Map 0: 4 values of 12 bytes, each its own slot.
const MAP_LEN: i16 = 48;

fn one_map() -> MapTable {
    let mut m = MapTable::new();
    m.insert(Box::new(FakeArray::new(12, 4, 0)));
    m
}

#[derive(Debug, Clone)]
enum Snippet {
    Alu {
        wide: bool,
        op: u8,
        x: bool,
        dst: u8,
        src: u8,
        imm: i32,
        variant: u8,
    },
    LdImm {
        dst: u8,
        value: u64,
    },
    Stack {
        size: u8,
        off: i16,
        access: Access,
        via: Option<u8>,
    },
    Ctx {
        size: u8,
        off: i16,
        access: Access,
    },
    Wild {
        size: u8,
        base: u8,
        off: i16,
        dst: u8,
    },
    /// An access to map 0's values (12-byte slots) through register `via`.
    MapVal {
        size: u8,
        off: i16,
        access: Access,
        via: u8,
    },
    Atomic {
        wide: bool,
        op: i32,
        src: u8,
        off: i16,
        via: Option<u8>,
    },
    Call {
        id: u32,
        reinit: [i32; 5],
    },
    /// A BPF-to-BPF call to the subprogram with r1-r5 as they are.
    CallSub {
        reinit: [i32; 5],
    },
    /// bpf_loop over the subprogram: `n` iterations, the stack at r10-8
    /// as the callback's context.
    LoopSub {
        n: i32,
        reinit: [i32; 5],
    },
}

/// The placeholder of a subprogram's pc-relative offset, patched once
/// the program is laid out.
const TO_SUB: i32 = i32::MIN;

#[derive(Debug, Clone)]
enum Access {
    Load { dst: u8, signed: bool },
    StoreReg { src: u8 },
    StoreImm { imm: i32 },
}

#[derive(Debug, Clone)]
enum Item {
    Simple(Snippet),
    Jump { wide: bool, op: u8, x: bool, dst: u8, src: u8, imm: i32, skip: usize },
}

#[derive(Debug, Clone)]
enum Top {
    Item(Item),
    Loop { n: i32, body: Vec<Item> },
}

fn reg() -> impl Strategy<Value = u8> {
    prop::sample::select(DATA.to_vec())
}

fn size() -> impl Strategy<Value = u8> {
    prop::sample::select(vec![B, H, W, DW])
}

fn bytes(size: u8) -> i16 {
    match size {
        B => 1,
        H => 2,
        W => 4,
        _ => 8,
    }
}

fn interesting_imm() -> impl Strategy<Value = i32> {
    prop_oneof![any::<i32>(), -3i32..4, Just(i32::MIN), Just(i32::MAX), Just(-1)]
}

fn access() -> impl Strategy<Value = Access> {
    prop_oneof![
        (reg(), any::<bool>()).prop_map(|(dst, signed)| Access::Load { dst, signed }),
        reg().prop_map(|src| Access::StoreReg { src }),
        interesting_imm().prop_map(|imm| Access::StoreImm { imm }),
    ]
}

fn snippet() -> impl Strategy<Value = Snippet> {
    let ops = vec![
        alu::ADD,
        alu::SUB,
        alu::MUL,
        alu::DIV,
        alu::OR,
        alu::AND,
        alu::LSH,
        alu::RSH,
        alu::NEG,
        alu::MOD,
        alu::XOR,
        alu::MOV,
        alu::ARSH,
        alu::END,
    ];
    let alu = (any::<bool>(), prop::sample::select(ops), any::<bool>(), reg(), reg(), interesting_imm(), 0u8..4)
        .prop_map(|(wide, op, x, dst, src, imm, variant)| Snippet::Alu { wide, op, x, dst, src, imm, variant });
    let stack = size().prop_flat_map(|sz| {
        (Just(sz), -512i16..=-bytes(sz), access(), prop::option::of(reg()))
            .prop_map(|(size, off, access, via)| Snippet::Stack { size, off, access, via })
    });
    let ctx_off = prop_oneof![6 => 0i16..CTX_LEN - 8, 1 => -8i16..CTX_LEN + 8];
    let ctx = (size(), ctx_off, access()).prop_map(|(size, off, access)| Snippet::Ctx { size, off, access });
    let map_off = prop_oneof![4 => 0i16..MAP_LEN, 1 => -8i16..MAP_LEN + 8];
    let map = (size(), map_off, access(), reg()).prop_map(|(size, off, access, via)| Snippet::MapVal {
        size,
        off,
        access,
        via,
    });
    let wild =
        (size(), reg(), any::<i16>(), reg()).prop_map(|(size, base, off, dst)| Snippet::Wild { size, base, off, dst });
    let atomic_ops = vec![
        atomic::ADD,
        atomic::OR,
        atomic::AND,
        atomic::XOR,
        atomic::ADD | atomic::FETCH,
        atomic::OR | atomic::FETCH,
        atomic::AND | atomic::FETCH,
        atomic::XOR | atomic::FETCH,
        atomic::XCHG,
        atomic::CMPXCHG,
    ];
    let atom = (any::<bool>(), prop::sample::select(atomic_ops), reg(), -64i16..=-8, prop::option::of(reg()))
        .prop_map(|(wide, op, src, off, via)| Snippet::Atomic { wide, op, src, off, via });
    let call = (
        prop::sample::select(vec![helper::KTIME_GET_NS, helper::GET_PRANDOM_U32, helper::GET_SMP_PROCESSOR_ID]),
        any::<[i32; 5]>(),
    )
        .prop_map(|(id, reinit)| Snippet::Call { id, reinit });
    prop_oneof![
        10 => alu,
        2 => (reg(), any::<u64>()).prop_map(|(dst, value)| Snippet::LdImm { dst, value }),
        4 => stack,
        4 => ctx,
        1 => wild,
        3 => map,
        3 => atom,
        1 => call,
        1 => any::<[i32; 5]>().prop_map(|reinit| Snippet::CallSub { reinit }),
        1 => (0i32..4, any::<[i32; 5]>()).prop_map(|(n, reinit)| Snippet::LoopSub { n, reinit }),
    ]
}

/// Snippets a subprogram may have: no context (r6 is not its pointer
/// there) and no calls.
fn sub_snippet() -> impl Strategy<Value = Snippet> {
    snippet().prop_filter("no ctx or calls in the subprogram", |s| {
        !matches!(s, Snippet::Ctx { .. } | Snippet::Call { .. } | Snippet::CallSub { .. } | Snippet::LoopSub { .. })
    })
}

fn sub_item() -> impl Strategy<Value = Item> {
    prop_oneof![6 => sub_snippet().prop_map(Item::Simple), 1 => item().prop_filter("jumps only", |i| matches!(i, Item::Jump { .. }))]
}

/// The subprogram: r1 and r2 are its inputs (arguments, or bpf_loop's
/// index and context), the other registers set first (r6 too, which the
/// caller must get back); it returns r0.
fn subprogram() -> impl Strategy<Value = (Vec<u64>, Vec<Item>)> {
    (prop::collection::vec(any::<u64>(), 6), prop::collection::vec(sub_item(), 0..8))
}

fn item() -> impl Strategy<Value = Item> {
    let ops = vec![
        jmp::JEQ,
        jmp::JNE,
        jmp::JGT,
        jmp::JGE,
        jmp::JLT,
        jmp::JLE,
        jmp::JSET,
        jmp::JSGT,
        jmp::JSGE,
        jmp::JSLT,
        jmp::JSLE,
        jmp::JA,
    ];
    let jump = (any::<bool>(), prop::sample::select(ops), any::<bool>(), reg(), reg(), interesting_imm(), 0usize..4)
        .prop_map(|(wide, op, x, dst, src, imm, skip)| Item::Jump { wide, op, x, dst, src, imm, skip });
    prop_oneof![6 => snippet().prop_map(Item::Simple), 2 => jump]
}

fn top() -> impl Strategy<Value = Top> {
    prop_oneof![
        8 => item().prop_map(Top::Item),
        1 => (1i32..5, prop::collection::vec(item(), 1..6)).prop_map(|(n, body)| Top::Loop { n, body }),
    ]
}

/// The instructions of one snippet.
fn lower_snippet(s: &Snippet) -> Vec<Insn> {
    match *s {
        Snippet::Alu { wide, op, x, dst, src: s, imm, variant } => vec![alu_insn(wide, op, x, dst, s, imm, variant)],
        Snippet::LdImm { dst, value } => ld_imm64(dst, value).to_vec(),
        Snippet::Stack { size, off, ref access, via } => match via {
            Some(p) => {
                let mut v = prog![mov64_reg(p, 10), alu64_imm(ADD, p, off as i32)];
                v.push(mem_insn(size, p, 0, access));
                v
            }
            None => vec![mem_insn(size, 10, off, access)],
        },
        Snippet::Ctx { size, off, ref access } => vec![mem_insn(size, 6, off, access)],
        Snippet::Wild { size, base, off, dst } => vec![ldx(size, dst, base, off)],
        Snippet::MapVal { size, off, ref access, via } => {
            let mut v = ld_map_value(via, 0, 0).to_vec();
            v.push(alu64_imm(ADD, via, off as i32));
            v.push(mem_insn(size, via, 0, access));
            v
        }
        Snippet::Atomic { wide, op, src: s, off, via } => {
            let sz = if wide { DW } else { W };
            match via.filter(|&p| p != s) {
                Some(p) => prog![mov64_reg(p, 10), alu64_imm(ADD, p, off as i32), atomic_op(sz, p, s, 0, op)],
                None => vec![atomic_op(sz, 10, s, off, op)],
            }
        }
        Snippet::Call { id, reinit } => with_reinit(vec![call(id)], reinit),
        Snippet::CallSub { reinit } => with_reinit(vec![call_local(TO_SUB)], reinit),
        Snippet::LoopSub { n, reinit } => {
            let mut v =
                prog![mov64_imm(1, n), ld_func(2, TO_SUB), mov64_reg(3, 10), alu64_imm(ADD, 3, -8), mov64_imm(4, 0)];
            v.push(call(helper::LOOP));
            with_reinit(v, reinit)
        }
    }
}

/// `v`, then r1-r5 set again (a call leaves them unset).
fn with_reinit(mut v: Vec<Insn>, reinit: [i32; 5]) -> Vec<Insn> {
    v.extend((1..=5).map(|r| mov64_imm(r, reinit[r as usize - 1])));
    v
}

/// Appends the subprogram and points every call and ld_func at it.
fn link_subprogram(mut main: Vec<Insn>, sub: &(Vec<u64>, Vec<Item>)) -> Vec<Insn> {
    let start = main.len();
    let (values, items) = sub;
    for (r, v) in [0u8, 3, 4, 5, 6, 7, 9].iter().zip(values.iter().chain([&0])) {
        main.extend(ld_imm64(*r, *v));
    }
    main.push(mov64_imm(8, 0));
    main.extend(lower_items(items));
    main.push(exit());
    let (call_op, func_op) = (call_local(0).op, ld_func(0, 0)[0].op);
    for (pc, i) in main[..start].iter_mut().enumerate() {
        if i.imm == TO_SUB && (i.op == call_op || i.op == func_op) {
            i.imm = start as i32 - pc as i32 - 1;
        }
    }
    main
}

fn mem_insn(size: u8, base: u8, off: i16, access: &Access) -> Insn {
    match *access {
        Access::Load { dst, signed: true } if size != DW => ldsx(size, dst, base, off),
        Access::Load { dst, .. } => ldx(size, dst, base, off),
        Access::StoreReg { src } => stx(size, base, src, off),
        Access::StoreImm { imm } => st(size, base, off, imm),
    }
}

/// One valid ALU instruction: shift counts in range, no constant
/// division by zero, END widths and movsx offsets that exist.
fn alu_insn(wide: bool, op: u8, x: bool, dst: u8, s: u8, imm: i32, variant: u8) -> Insn {
    let class = if wide { class::ALU64 } else { class::ALU };
    let bits = if wide { 64 } else { 32 };
    let width = [16, 32, 64][variant as usize % 3];
    let (x, imm, off) = match op {
        alu::END => return insn(class | alu::END | if x && !wide { src::X } else { src::K }, dst, 0, 0, width),
        alu::NEG => (false, 0, 0),
        alu::LSH | alu::RSH | alu::ARSH if !x => (false, imm.rem_euclid(bits), 0),
        alu::DIV | alu::MOD => (x, if imm == 0 { 3 } else { imm }, (variant & 1) as i16),
        alu::MOV if x => (x, 0, [0, 8, 16, if wide { 32 } else { 0 }][variant as usize]),
        _ => (x, imm, 0),
    };
    let srcbit = if x { src::X } else { src::K };
    insn(class | op | srcbit, dst, if x { s } else { 0 }, off, if x { 0 } else { imm })
}

fn jump_insn(wide: bool, op: u8, x: bool, dst: u8, s: u8, imm: i32, skip: i16) -> Insn {
    match (op, wide) {
        (jmp::JA, true) => ja(skip),
        (jmp::JA, false) => gotol(skip as i32),
        _ => {
            let class = if wide { class::JMP } else { class::JMP32 };
            let srcbit = if x { src::X } else { src::K };
            insn(class | op | srcbit, dst, if x { s } else { 0 }, skip, if x { 0 } else { imm })
        }
    }
}

/// A list of items: each jump skips the next `skip` items (at most to the end).
fn lower_items(items: &[Item]) -> Vec<Insn> {
    let lowered: Vec<Vec<Insn>> = items
        .iter()
        .map(|i| match i {
            Item::Simple(s) => lower_snippet(s),
            Item::Jump { .. } => vec![exit()],
        })
        .collect();
    let mut out = Vec::new();
    for (k, it) in items.iter().enumerate() {
        match *it {
            Item::Simple(_) => out.extend(lowered[k].iter().copied()),
            Item::Jump { wide, op, x, dst, src: s, imm, skip } => {
                let end = (k + 1 + skip).min(items.len());
                let over: usize = (k + 1..end).map(|j| lowered[j].len()).sum();
                out.push(jump_insn(wide, op, x, dst, s, imm, over as i16));
            }
        }
    }
    out
}

fn lower(prelude: &[u64; 8], tops: &[Top]) -> Vec<Insn> {
    let mut out = prog![mov64_reg(6, 1), mov64_imm(8, 0)];
    for (r, v) in DATA.iter().zip(prelude) {
        out.extend(ld_imm64(*r, *v));
    }
    let items: Vec<Item> = tops
        .iter()
        .map(|t| match t {
            Top::Item(i) => i.clone(),
            Top::Loop { .. } => Item::Simple(Snippet::LdImm { dst: 0, value: 0 }),
        })
        .collect();
    // Loops are whole: a jump skips all of one or none of it. A jump's
    // own slot is one instruction (a placeholder while lengths are summed).
    let mut lowered_tops: Vec<Vec<Insn>> = Vec::new();
    for t in tops {
        lowered_tops.push(match t {
            Top::Item(Item::Simple(s)) => lower_snippet(s),
            Top::Item(Item::Jump { .. }) => vec![exit()],
            Top::Loop { n, body } => {
                let b = lower_items(body);
                let mut v = vec![mov64_imm(8, *n)];
                v.extend(b.iter().copied());
                v.push(alu64_imm(SUB, 8, 1));
                v.push(jmp_imm(JNE, 8, 0, -(b.len() as i16 + 2)));
                v
            }
        });
    }
    for (k, it) in items.iter().enumerate() {
        match *it {
            Item::Jump { wide, op, x, dst, src: s, imm, skip } => {
                let end = (k + 1 + skip).min(items.len());
                let over: usize = (k + 1..end).map(|j| lowered_tops[j].len()).sum();
                out.push(jump_insn(wide, op, x, dst, s, imm, over as i16));
            }
            Item::Simple(_) => out.extend(lowered_tops[k].iter().copied()),
        }
    }
    out.push(exit());
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_interpreter_and_the_jit_agree(prelude: [u64; 8], tops in prop::collection::vec(top(), 1..24),
            sub in subprogram(), ctx in prop::collection::vec(any::<u8>(), CTX_LEN as usize),
            writable in prop::bool::weighted(0.8)) {
        let insns = link_subprogram(lower(&prelude, &tops), &sub);
        let setup = Setup { ctx, writable, maps: &one_map, ..Setup::default() };
        let prog = load(insns, &setup);
        let (interp, jit) = both(&prog, &setup);
        prop_assert!(!matches!(interp.r0, Err(proctap_vm::retcode::Fault::Budget { .. })), "the generator's programs finish");
        prop_assert_eq!(interp, jit);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Under a small budget: a run the interpreter completes, the JIT
    /// completes the same way; one that exhausts the budget exhausts it in
    /// the JIT too; a fault within the budget is the same fault, or a
    /// budget fault when the fault's block would end past the budget (the
    /// JIT counts whole blocks at their start).
    #[test]
    fn the_budget_agrees_up_to_block_granularity(prelude: [u64; 8], tops in prop::collection::vec(top(), 1..24),
            sub in subprogram(), ctx in prop::collection::vec(any::<u8>(), CTX_LEN as usize), budget in 0u64..200) {
        use proctap_vm::retcode::Fault;
        let insns = link_subprogram(lower(&prelude, &tops), &sub);
        let setup = Setup { ctx, budget, maps: &one_map, ..Setup::default() };
        let prog = load(insns, &setup);
        let (interp, jit) = both(&prog, &setup);
        match (&interp.r0, &jit.r0) {
            (Ok(_), _) => prop_assert_eq!(interp, jit),
            (Err(Fault::Budget { .. }), j) => prop_assert!(matches!(j, Err(Fault::Budget { .. })), "JIT: {:?}", j),
            (Err(_), Err(Fault::Budget { .. })) => {}
            (Err(_), _) => prop_assert_eq!(interp, jit),
        }
    }
}
