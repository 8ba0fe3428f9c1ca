//! ferrojit's AArch64 (A64) instruction encoder: only the forms the code generator emits, each
//! checked against capstone in the tests. Every instruction is one 32-bit word; each encoder
//! function shows its word's fields, high bit first.

pub use ferrojit_asm_core::{AsmError, CallLink, CountPoint, Label, NextCounter, Veneer};
use ferrojit_asm_core::{CodeBuffer, Counting};
use std::fmt;

/// A 64-bit general register: X0..X30, the stack pointer, or the zero register. SP and XZR
/// both encode as 31; each instruction says which it accepts and panics on the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reg(u8);

macro_rules! xregs {
    ($($name:ident = $n:expr),*) => { impl Reg { $(#[doc = concat!("Register x", stringify!($n), ".")] pub const $name: Reg = Reg($n);)* } };
}
xregs!(
    X0 = 0,
    X1 = 1,
    X2 = 2,
    X3 = 3,
    X4 = 4,
    X5 = 5,
    X6 = 6,
    X7 = 7,
    X8 = 8,
    X9 = 9,
    X10 = 10,
    X11 = 11,
    X12 = 12,
    X13 = 13,
    X14 = 14,
    X15 = 15,
    X16 = 16,
    X17 = 17,
    X18 = 18,
    X19 = 19,
    X20 = 20,
    X21 = 21,
    X22 = 22,
    X23 = 23,
    X24 = 24,
    X25 = 25,
    X26 = 26,
    X27 = 27,
    X28 = 28,
    X29 = 29,
    X30 = 30
);

impl Reg {
    /// The frame pointer, x29.
    pub const FP: Reg = Reg(29);
    /// The link register, x30.
    pub const LR: Reg = Reg(30);
    /// The stack pointer (encoding 31 where SP is meant).
    pub const SP: Reg = Reg(31);
    /// The zero register (encoding 31 where XZR is meant).
    pub const XZR: Reg = Reg(32);

    /// General register `n` (0..=30).
    pub fn x(n: u8) -> Reg {
        assert!(n <= 30, "x{n} is not a general register");
        Reg(n)
    }

    /// The register's number (SP and XZR are 31 and 32 here, 31 in encodings).
    pub fn index(self) -> u8 {
        self.0
    }

    /// The 5-bit field for operands that accept XZR (not SP).
    fn zr(self) -> u32 {
        assert!(self != Reg::SP, "sp is not allowed here");
        self.0.min(31) as u32
    }

    /// The 5-bit field for operands that accept SP (not XZR).
    fn sp(self) -> u32 {
        assert!(self != Reg::XZR, "xzr is not allowed here");
        (self.0 & 31) as u32
    }
}

impl fmt::Display for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            31 => f.write_str("sp"),
            32 => f.write_str("xzr"),
            n => write!(f, "x{n}"),
        }
    }
}

/// Condition codes in encoding order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Cond {
    Eq = 0,
    Ne,
    Hs,
    Lo,
    Mi,
    Pl,
    Vs,
    Vc,
    Hi,
    Ls,
    Ge,
    Lt,
    Gt,
    Le,
    Al,
}

impl Cond {
    /// The opposite condition (pairs differ in the low bit; AL has none).
    pub fn invert(self) -> Cond {
        const ALL: [Cond; 14] = [
            Cond::Eq,
            Cond::Ne,
            Cond::Hs,
            Cond::Lo,
            Cond::Mi,
            Cond::Pl,
            Cond::Vs,
            Cond::Vc,
            Cond::Hi,
            Cond::Ls,
            Cond::Ge,
            Cond::Lt,
            Cond::Gt,
            Cond::Le,
        ];
        assert!(self != Cond::Al, "AL has no inverse");
        ALL[(self as usize) ^ 1]
    }
}

/// Fix-up kinds.
const FIX_B26: u8 = 0;
const FIX_B19: u8 = 1;
const FIX_ADR21: u8 = 2;
const FIX_B14: u8 = 3;

/// Scalar-double FP data-processing operations (`0 00 11110 01 1 Rm opcode 10 Rn Rd`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FpOp {
    Mul = 0x1E60_0800,
    Add = 0x1E60_2800,
    Sub = 0x1E60_3800,
}

/// An AArch64 assembler.
#[derive(Default)]
pub struct Assembler {
    buf: CodeBuffer,
    /// Constants that need at least this many `mov`/`movk` come from a pool after the code
    /// (see [`Assembler::set_literal_pool`]); None: none do.
    pool_from: Option<usize>,
    /// Adjacent 64-bit loads or stores become one `ldp`/`stp` (see
    /// [`Assembler::set_pair_loads_stores`]).
    pairing: bool,
    /// The last instruction, when it is a 64-bit load or store a next one may pair with.
    last_access: Option<Access>,
    /// The code's count points (see [`Assembler::set_counting`]).
    counting: Counting,
    /// Calls emitted by [`Assembler::call_linked`], to be linked at install.
    links: Vec<CallLink>,
}

/// A 64-bit `ldr`/`str` with an immediate offset, as emitted at `at`.
#[derive(Clone, Copy, Debug)]
struct Access {
    at: usize,
    load: bool,
    rt: Reg,
    base: Reg,
    offset: i32,
}

impl Assembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// With `on`, a constant that would take three or four instructions is one `ldr` from
    /// the literal pool (8 bytes per distinct value, after the code, within the `ldr`'s reach
    /// of +-1 MiB), and [`Assembler::call_abs`] loads its target the same way.
    pub fn set_literal_pool(&mut self, on: bool) {
        self.pool_from = on.then_some(3);
    }

    /// With the literal pool on, constants that take a `mov`/`movk` pair are one `ldr` from
    /// it too: one instruction instead of two, for a load from the pool's cache line.
    pub fn set_literal_pool_pairs(&mut self, on: bool) {
        if let Some(from) = &mut self.pool_from {
            *from = if on { 2 } else { 3 };
        }
    }

    /// With `on`, a 64-bit `ldr` (`str`) right after another one from (to) the same base
    /// register, at the next or previous eight bytes, with no label between them, merges
    /// with it into one `ldp` (`stp`). Loads stay apart when the first one writes the base
    /// register or both write the same register.
    pub fn set_pair_loads_stores(&mut self, on: bool) {
        self.pairing = on;
    }

    /// With `next`, the code counts its own execution (`FERROJIT_COUNT_INSTRUCTIONS`): a
    /// count point at every label and after every conditional branch (and wherever
    /// [`Assembler::count_point`] is called: the entry) adds one to a fresh counter from
    /// `next`, keeping every register and the flags (`stp x16, x17, [sp, #-16]!`, the
    /// counter's address into x16 without the pool, `ldr`/`add`/`str` through x17, `ldp`).
    pub fn set_counting(&mut self, next: Option<NextCounter>) {
        self.counting.set(next);
    }

    /// A count point here, when the code counts itself (see [`Assembler::set_counting`]).
    pub fn count_point(&mut self) {
        let Some(counter) = self.counting.counter() else {
            return;
        };
        let begin = self.offset();
        self.stp_pre(Reg::X16, Reg::X17, Reg::SP, -16);
        let pool = self.pool_from.take();
        self.mov_imm(Reg::X16, counter as u64);
        self.pool_from = pool;
        self.ldr(Reg::X17, Reg::X16, 0);
        self.add_ri(Reg::X17, Reg::X17, 1);
        self.str(Reg::X17, Reg::X16, 0);
        self.ldp_post(Reg::X16, Reg::X17, Reg::SP, 16);
        self.last_access = None;
        let start = self.offset();
        self.counting.record(counter, begin, start);
    }

    /// The count points emitted so far, in code order.
    pub fn count_points(&self) -> &[CountPoint] {
        self.counting.points()
    }

    pub fn offset(&self) -> usize {
        self.buf.offset()
    }

    pub fn new_label(&mut self) -> Label {
        self.buf.new_label()
    }

    /// Binds `l` here; panics if it was bound already.
    pub fn bind(&mut self, l: Label) {
        // A branch may land between two accesses: they stay two instructions.
        self.last_access = None;
        self.buf.bind(l).expect("label bound twice");
        self.count_point();
    }

    pub fn label_offset(&self, l: Label) -> Option<usize> {
        self.buf.label_offset(l)
    }

    /// The code with every branch resolved; a target out of a branch's range is an error.
    pub fn finish(self) -> Result<Vec<u8>, AsmError> {
        self.finish_code().map(|(bytes, _)| bytes)
    }

    /// The code with every branch resolved, and where its instructions end (the literal pool,
    /// if any, follows).
    pub fn finish_code(mut self) -> Result<(Vec<u8>, usize), AsmError> {
        let code_len = self.buf.place_literals(0);
        let bytes = self.buf.finish(|bytes, fix, target| {
            let distance = target as i64 - fix.at as i64;
            let (bits, shift, lo) = match fix.kind {
                FIX_B26 => (26, 2, 0),
                FIX_B19 => (19, 2, 5),
                FIX_B14 => (14, 2, 5),
                _ => (21, 0, 0),
            };
            let units = distance >> shift;
            let limit = 1i64 << (bits - 1);
            if units < -limit || units >= limit {
                return Err(AsmError::OutOfRange {
                    at: fix.at,
                    label: fix.label,
                    distance,
                });
            }
            let mut word = u32::from_le_bytes(bytes[fix.at..fix.at + 4].try_into().unwrap());
            let field = (units as u32) & ((1u32 << bits) - 1);
            if fix.kind == FIX_ADR21 {
                // ADR: immlo in bits 29..30, immhi in bits 5..23.
                word |= (field & 3) << 29 | (field >> 2) << 5;
            } else {
                word |= field << lo;
            }
            bytes[fix.at..fix.at + 4].copy_from_slice(&word.to_le_bytes());
            Ok(())
        })?;
        Ok((bytes, code_len))
    }

    fn put(&mut self, word: u32) {
        self.last_access = None;
        self.buf.put_u32_le(word);
    }

    // ---- moves ---------------------------------------------------------------------------

    /// `mov dst, src`: `ORR dst, XZR, src` (`1 01 01010 00 0 Rm 000000 11111 Rd`), or
    /// `ADD dst, src, #0` when either is SP.
    pub fn mov_rr(&mut self, dst: Reg, src: Reg) {
        if dst == Reg::SP || src == Reg::SP {
            self.add_ri(dst, src, 0);
        } else {
            self.put(0xAA00_03E0 | src.zr() << 16 | dst.zr());
        }
    }

    /// `mov dst, #imm` with the shortest of: MOVZ+MOVKs, MOVN+MOVKs, ORR with a logical
    /// immediate. MOVZ/MOVN/MOVK: `1 opc(2) 100101 hw(2) imm16 Rd`.
    pub fn mov_imm(&mut self, dst: Reg, imm: u64) {
        let d = dst.zr();
        let halves: Vec<u32> = (0..4)
            .map(|i| ((imm >> (16 * i)) & 0xffff) as u32)
            .collect();
        let nonzero = halves.iter().filter(|h| **h != 0).count().max(1);
        let nonones = halves.iter().filter(|h| **h != 0xffff).count().max(1);
        if Self::logical_imm_fits(imm) && nonzero > 1 && nonones > 1 {
            self.orr_ri(dst, Reg::XZR, imm);
            return;
        }
        if self
            .pool_from
            .is_some_and(|from| nonzero.min(nonones) >= from)
        {
            self.ldr_literal(dst, imm);
            return;
        }
        if nonones < nonzero {
            // MOVN writes !(imm16 << shift); then MOVK the remaining halves.
            let first = halves.iter().position(|h| *h != 0xffff).unwrap_or(0);
            self.put(0x9280_0000 | (first as u32) << 21 | (!halves[first] & 0xffff) << 5 | d);
            for (i, h) in halves.iter().enumerate() {
                if i != first && *h != 0xffff {
                    self.put(0xF280_0000 | (i as u32) << 21 | h << 5 | d);
                }
            }
        } else {
            let first = halves.iter().position(|h| *h != 0).unwrap_or(0);
            self.put(0xD280_0000 | (first as u32) << 21 | halves[first] << 5 | d);
            for (i, h) in halves.iter().enumerate() {
                if i != first && *h != 0 {
                    self.put(0xF280_0000 | (i as u32) << 21 | h << 5 | d);
                }
            }
        }
    }

    // ---- loads and stores ----------------------------------------------------------------

    /// Whether `[base, #offset]` for an access of `size` bytes has an encoding: the scaled
    /// unsigned 12-bit form or the unscaled signed 9-bit form.
    pub fn mem_offset_fits(size: u32, offset: i32) -> bool {
        let scaled = offset >= 0 && offset % size as i32 == 0 && offset / (size as i32) < 4096;
        scaled || (-256..=255).contains(&offset)
    }

    /// Loads and stores with an immediate offset. Unsigned offset:
    /// `size(2) 111 0 01 opc(2) imm12 Rn Rt`; unscaled (LDUR/STUR): `size(2) 111 0 00 opc(2) 0 imm9 00 Rn Rt`.
    fn ldst(&mut self, size_bits: u32, load: bool, rt: Reg, base: Reg, offset: i32) {
        let size = 1u32 << size_bits;
        let opc = load as u32;
        let (t, n) = (rt.zr(), base.sp());
        if offset >= 0 && offset % size as i32 == 0 && offset / (size as i32) < 4096 {
            let imm12 = (offset as u32) / size;
            self.put(size_bits << 30 | 0x3900_0000 | opc << 22 | imm12 << 10 | n << 5 | t);
        } else if (-256..=255).contains(&offset) {
            let imm9 = (offset as u32) & 0x1ff;
            self.put(size_bits << 30 | 0x3800_0000 | opc << 22 | imm9 << 12 | n << 5 | t);
        } else {
            panic!("offset {offset} cannot be encoded for a {size}-byte access");
        }
    }

    /// A 64-bit load or store: paired with the one before it when it can be (see
    /// [`Assembler::set_pair_loads_stores`]), else one `ldr`/`str`.
    fn access64(&mut self, load: bool, rt: Reg, base: Reg, offset: i32) {
        let this = Access {
            at: self.offset(),
            load,
            rt,
            base,
            offset,
        };
        if let Some(prev) = self.last_access.filter(|_| self.pairing) {
            if let Some((first, second)) = pair_of(prev, this) {
                self.buf.truncate(prev.at);
                self.pair(0b010, load, first.rt, second.rt, base, first.offset);
                return;
            }
        }
        self.ldst(3, load, rt, base, offset);
        self.last_access = Some(this);
    }

    /// `ldr rt, [base, #offset]` (64-bit).
    pub fn ldr(&mut self, rt: Reg, base: Reg, offset: i32) {
        self.access64(true, rt, base, offset);
    }

    /// `ldr wt, [base, #offset]` (32-bit, zero-extends).
    pub fn ldr_w(&mut self, rt: Reg, base: Reg, offset: i32) {
        self.ldst(2, true, rt, base, offset);
    }

    /// `ldrb wt, [base, #offset]`.
    pub fn ldrb(&mut self, rt: Reg, base: Reg, offset: i32) {
        self.ldst(0, true, rt, base, offset);
    }

    /// `str rt, [base, #offset]` (64-bit).
    pub fn str(&mut self, rt: Reg, base: Reg, offset: i32) {
        self.access64(false, rt, base, offset);
    }

    /// `str wt, [base, #offset]`.
    pub fn str_w(&mut self, rt: Reg, base: Reg, offset: i32) {
        self.ldst(2, false, rt, base, offset);
    }

    /// `strb wt, [base, #offset]`.
    pub fn strb(&mut self, rt: Reg, base: Reg, offset: i32) {
        self.ldst(0, false, rt, base, offset);
    }

    /// Load/store pair, 64-bit: `10 101 0 mode(3) L imm7 Rt2 Rn Rt`.
    fn pair(&mut self, mode: u32, load: bool, rt1: Reg, rt2: Reg, base: Reg, offset: i32) {
        assert!(
            offset % 8 == 0 && (-512..=504).contains(&offset),
            "pair offset {offset} out of range"
        );
        let imm7 = ((offset / 8) as u32) & 0x7f;
        self.put(
            0xA800_0000
                | mode << 23
                | (load as u32) << 22
                | imm7 << 15
                | rt2.zr() << 10
                | base.sp() << 5
                | rt1.zr(),
        );
    }

    /// `stp rt1, rt2, [base, #offset]!`.
    pub fn stp_pre(&mut self, rt1: Reg, rt2: Reg, base: Reg, offset: i32) {
        self.pair(0b011, false, rt1, rt2, base, offset);
    }

    /// `ldp rt1, rt2, [base], #offset`.
    pub fn ldp_post(&mut self, rt1: Reg, rt2: Reg, base: Reg, offset: i32) {
        self.pair(0b001, true, rt1, rt2, base, offset);
    }

    /// `stp rt1, rt2, [base, #offset]`.
    pub fn stp(&mut self, rt1: Reg, rt2: Reg, base: Reg, offset: i32) {
        self.pair(0b010, false, rt1, rt2, base, offset);
    }

    /// `ldp rt1, rt2, [base, #offset]`.
    pub fn ldp(&mut self, rt1: Reg, rt2: Reg, base: Reg, offset: i32) {
        self.pair(0b010, true, rt1, rt2, base, offset);
    }

    // ---- arithmetic and logic, shifted-register forms: `sf opc(2) 01011 shift 0 Rm imm6 Rn Rd`

    fn rrr(&mut self, base: u32, d: Reg, n: Reg, m: Reg) {
        self.put(base | m.zr() << 16 | n.zr() << 5 | d.zr());
    }

    /// `add d, n, m`.
    pub fn add_rrr(&mut self, d: Reg, n: Reg, m: Reg) {
        self.rrr(0x8B00_0000, d, n, m);
    }

    /// `sub d, n, m`.
    pub fn sub_rrr(&mut self, d: Reg, n: Reg, m: Reg) {
        self.rrr(0xCB00_0000, d, n, m);
    }

    /// `adds d, n, m`.
    pub fn adds_rrr(&mut self, d: Reg, n: Reg, m: Reg) {
        self.rrr(0xAB00_0000, d, n, m);
    }

    /// `subs d, n, m`.
    pub fn subs_rrr(&mut self, d: Reg, n: Reg, m: Reg) {
        self.rrr(0xEB00_0000, d, n, m);
    }

    /// `and d, n, m`.
    pub fn and_rrr(&mut self, d: Reg, n: Reg, m: Reg) {
        self.rrr(0x8A00_0000, d, n, m);
    }

    /// `orr d, n, m`.
    pub fn orr_rrr(&mut self, d: Reg, n: Reg, m: Reg) {
        self.rrr(0xAA00_0000, d, n, m);
    }

    /// `eor d, n, m`.
    pub fn eor_rrr(&mut self, d: Reg, n: Reg, m: Reg) {
        self.rrr(0xCA00_0000, d, n, m);
    }

    /// `mul d, n, m`: `MADD d, n, m, XZR` (`1 00 11011 000 Rm 0 11111 Rn Rd`).
    pub fn mul(&mut self, d: Reg, n: Reg, m: Reg) {
        self.rrr(0x9B00_7C00, d, n, m);
    }

    /// `fmov d<d>, n`: the 64 bits of general register `n` into FP register `d<d>`.
    pub fn fmov_dx(&mut self, d: u8, n: Reg) {
        assert!(d < 32);
        self.put(0x9E67_0000 | n.zr() << 5 | u32::from(d));
    }

    /// `fmov d, d<n>`: the 64 bits of FP register `d<n>` into general register `d`.
    pub fn fmov_xd(&mut self, d: Reg, n: u8) {
        assert!(n < 32);
        self.put(0x9E66_0000 | u32::from(n) << 5 | d.zr());
    }

    /// `fadd/fsub/fmul d<d>, d<n>, d<m>` (scalar doubles).
    pub fn fp_d(&mut self, op: FpOp, d: u8, n: u8, m: u8) {
        assert!(d < 32 && n < 32 && m < 32);
        self.put(op as u32 | u32::from(m) << 16 | u32::from(n) << 5 | u32::from(d));
    }

    /// `fcmp d<n>, d<m>`: the flags as for `n - m` on doubles; unordered (a NaN) sets C and
    /// V, so `mi` (less), `ls` (less or equal), `eq` and `ne` are false, false, false, true.
    pub fn fcmp_d(&mut self, n: u8, m: u8) {
        assert!(n < 32 && m < 32);
        self.put(0x1E60_2000 | u32::from(m) << 16 | u32::from(n) << 5);
    }

    /// `smulh d, n, m` (`1 00 11011 010 Rm 0 11111 Rn Rd`).
    pub fn smulh(&mut self, d: Reg, n: Reg, m: Reg) {
        self.rrr(0x9B40_7C00, d, n, m);
    }

    /// `cmp n, m`: `SUBS XZR, n, m`.
    pub fn cmp_rr(&mut self, n: Reg, m: Reg) {
        self.subs_rrr(Reg::XZR, n, m);
    }

    /// `cmp wn, wm` (32-bit).
    pub fn cmp_w_rr(&mut self, n: Reg, m: Reg) {
        self.rrr(0x6B00_0000, Reg::XZR, n, m);
    }

    /// `tst n, m`: `ANDS XZR, n, m`.
    pub fn tst_rr(&mut self, n: Reg, m: Reg) {
        self.rrr(0xEA00_0000, Reg::XZR, n, m);
    }

    /// `neg d, m`: `SUB d, XZR, m`.
    pub fn neg(&mut self, d: Reg, m: Reg) {
        self.sub_rrr(d, Reg::XZR, m);
    }

    // ---- add/sub immediate: `sf op S 100010 sh imm12 Rn Rd` ---------------------------------

    /// Whether `imm` fits the 12-bit immediate, optionally shifted left by 12.
    pub fn add_imm_fits(imm: u64) -> bool {
        imm < 4096 || (imm & 0xfff == 0 && imm >> 12 < 4096)
    }

    fn addsub_imm(&mut self, base: u32, d: u32, n: Reg, imm: u64) {
        assert!(
            Self::add_imm_fits(imm),
            "immediate {imm:#x} does not fit add/sub"
        );
        let (sh, imm12) = if imm < 4096 {
            (0, imm as u32)
        } else {
            (1, (imm >> 12) as u32)
        };
        self.put(base | sh << 22 | imm12 << 10 | n.sp() << 5 | d);
    }

    /// `add d, n, #imm` (d and n may be SP).
    pub fn add_ri(&mut self, d: Reg, n: Reg, imm: u64) {
        self.addsub_imm(0x9100_0000, d.sp(), n, imm);
    }

    /// `sub d, n, #imm` (d and n may be SP).
    pub fn sub_ri(&mut self, d: Reg, n: Reg, imm: u64) {
        self.addsub_imm(0xD100_0000, d.sp(), n, imm);
    }

    /// `adds d, n, #imm`.
    pub fn adds_ri(&mut self, d: Reg, n: Reg, imm: u64) {
        self.addsub_imm(0xB100_0000, d.zr(), n, imm);
    }

    /// `subs d, n, #imm`.
    pub fn subs_ri(&mut self, d: Reg, n: Reg, imm: u64) {
        self.addsub_imm(0xF100_0000, d.zr(), n, imm);
    }

    /// `cmp n, #imm`.
    pub fn cmp_ri(&mut self, n: Reg, imm: u64) {
        self.subs_ri(Reg::XZR, n, imm);
    }

    /// `cmn n, #imm`.
    pub fn cmn_ri(&mut self, n: Reg, imm: u64) {
        self.adds_ri(Reg::XZR, n, imm);
    }

    /// `cmp wn, #imm` (32-bit).
    pub fn cmp_w_ri(&mut self, n: Reg, imm: u64) {
        self.addsub_imm(0x7100_0000, 31, n, imm);
    }

    // ---- logical immediate: `sf opc(2) 100100 N immr(6) imms(6) Rn Rd` ------------------------

    /// The (N, immr, imms) fields of a bitmask immediate, if `imm` is one: a rotated run of
    /// ones inside an element of 2, 4, ..., 64 bits, repeated across the register.
    fn bitmask_fields(imm: u64) -> Option<(u32, u32, u32)> {
        if imm == 0 || imm == u64::MAX {
            return None;
        }
        let mut size = 64u32;
        while size > 2 {
            let half = size / 2;
            let mask = (1u64 << half) - 1;
            if (imm & mask) != ((imm >> half) & mask) {
                break;
            }
            size = half;
        }
        let mask = if size == 64 {
            u64::MAX
        } else {
            (1u64 << size) - 1
        };
        let elem = imm & mask;
        let ones = elem.count_ones();
        let run = if ones == 64 {
            u64::MAX
        } else {
            (1u64 << ones) - 1
        };
        // Find the right-rotation that turns the run of low ones into the element.
        let rotr = |v: u64, r: u32| {
            if r == 0 {
                v
            } else {
                ((v >> r) | (v << (size - r))) & mask
            }
        };
        let immr = (0..size).find(|r| rotr(run, *r) == elem)?;
        let n = (size == 64) as u32;
        let imms = ((!(size - 1) << 1) & 0x3f) | (ones - 1);
        Some((n, immr, imms))
    }

    /// Whether `imm` is encodable as a logical (bitmask) immediate.
    pub fn logical_imm_fits(imm: u64) -> bool {
        Self::bitmask_fields(imm).is_some()
    }

    fn logical_imm(&mut self, base: u32, d: u32, n: Reg, imm: u64) {
        let (nbit, immr, imms) = Self::bitmask_fields(imm)
            .unwrap_or_else(|| panic!("{imm:#x} is not a bitmask immediate"));
        self.put(base | nbit << 22 | immr << 16 | imms << 10 | n.zr() << 5 | d);
    }

    /// `and d, n, #imm` (d may be SP).
    pub fn and_ri(&mut self, d: Reg, n: Reg, imm: u64) {
        self.logical_imm(0x9200_0000, d.sp(), n, imm);
    }

    /// `orr d, n, #imm` (d may be SP).
    pub fn orr_ri(&mut self, d: Reg, n: Reg, imm: u64) {
        self.logical_imm(0xB200_0000, d.sp(), n, imm);
    }

    /// `eor d, n, #imm` (d may be SP).
    pub fn eor_ri(&mut self, d: Reg, n: Reg, imm: u64) {
        self.logical_imm(0xD200_0000, d.sp(), n, imm);
    }

    /// `tst n, #imm`: `ANDS XZR, n, #imm`.
    pub fn tst_ri(&mut self, n: Reg, imm: u64) {
        self.logical_imm(0xF200_0000, 31, n, imm);
    }

    // ---- shifts: UBFM/SBFM `1 opc(2) 100110 1 immr imms Rn Rd` --------------------------------

    /// `lsl d, n, #shift`: `UBFM d, n, #(64 - shift) % 64, #(63 - shift)`.
    pub fn lsl_ri(&mut self, d: Reg, n: Reg, shift: u8) {
        let s = (shift & 63) as u32;
        self.put(0xD340_0000 | ((64 - s) % 64) << 16 | (63 - s) << 10 | n.zr() << 5 | d.zr());
    }

    /// `lsr d, n, #shift`: `UBFM d, n, #shift, #63`.
    pub fn lsr_ri(&mut self, d: Reg, n: Reg, shift: u8) {
        self.put(0xD340_0000 | ((shift & 63) as u32) << 16 | 63 << 10 | n.zr() << 5 | d.zr());
    }

    /// `asr d, n, #shift`: `SBFM d, n, #shift, #63`.
    pub fn asr_ri(&mut self, d: Reg, n: Reg, shift: u8) {
        self.put(0x9340_0000 | ((shift & 63) as u32) << 16 | 63 << 10 | n.zr() << 5 | d.zr());
    }

    /// `lsl d, n, m` (`LSLV`: the shift amount is `m` modulo 64).
    pub fn lsl_rrr(&mut self, d: Reg, n: Reg, m: Reg) {
        self.put(0x9AC0_2000 | m.zr() << 16 | n.zr() << 5 | d.zr());
    }

    /// `lsr d, n, m` (`LSRV`).
    pub fn lsr_rrr(&mut self, d: Reg, n: Reg, m: Reg) {
        self.put(0x9AC0_2400 | m.zr() << 16 | n.zr() << 5 | d.zr());
    }

    /// `asr d, n, m` (`ASRV`).
    pub fn asr_rrr(&mut self, d: Reg, n: Reg, m: Reg) {
        self.put(0x9AC0_2800 | m.zr() << 16 | n.zr() << 5 | d.zr());
    }

    // ---- conditional select: `1 0 0 11010100 Rm cond op2(2) Rn Rd` ----------------------------

    /// `csel d, n, m, c`.
    pub fn csel(&mut self, d: Reg, n: Reg, m: Reg, c: Cond) {
        self.put(0x9A80_0000 | m.zr() << 16 | (c as u32) << 12 | n.zr() << 5 | d.zr());
    }

    /// `cset d, c`: `CSINC d, XZR, XZR, !c`.
    pub fn cset(&mut self, d: Reg, c: Cond) {
        self.put(0x9A80_0400 | 31 << 16 | (c.invert() as u32) << 12 | 31 << 5 | d.zr());
    }

    // ---- control flow --------------------------------------------------------------------

    fn branch(&mut self, word: u32, l: Label, kind: u8) {
        let at = self.offset();
        self.put(word);
        self.buf.add_fixup(at, l, kind);
    }

    /// `b l` (`000101 imm26`).
    pub fn b(&mut self, l: Label) {
        self.branch(0x1400_0000, l, FIX_B26);
    }

    /// `bl l` (`100101 imm26`).
    pub fn bl(&mut self, l: Label) {
        self.branch(0x9400_0000, l, FIX_B26);
    }

    /// `b.c l` (`0101010 0 imm19 0 cond`), +-1 MiB.
    pub fn b_cond(&mut self, c: Cond, l: Label) {
        self.branch(0x5400_0000 | c as u32, l, FIX_B19);
        self.count_point();
    }

    /// `cbz rt, l` (`1 011010 0 imm19 Rt`).
    pub fn cbz(&mut self, rt: Reg, l: Label) {
        self.branch(0xB400_0000 | rt.zr(), l, FIX_B19);
        self.count_point();
    }

    /// `tbz rt, #bit, l`: branch when bit `bit` of `rt` is clear
    /// (`b5 011011 0 b40 imm14 Rt`), +-32 KiB.
    pub fn tbz(&mut self, rt: Reg, bit: u8, l: Label) {
        self.test_bit_branch(0x3600_0000, rt, bit, l);
    }

    /// `tbnz rt, #bit, l`: branch when bit `bit` of `rt` is set, +-32 KiB.
    pub fn tbnz(&mut self, rt: Reg, bit: u8, l: Label) {
        self.test_bit_branch(0x3700_0000, rt, bit, l);
    }

    fn test_bit_branch(&mut self, base: u32, rt: Reg, bit: u8, l: Label) {
        assert!(bit < 64, "bit {bit} of a 64-bit register");
        let bit = bit as u32;
        self.branch(
            base | (bit >> 5) << 31 | (bit & 31) << 19 | rt.zr(),
            l,
            FIX_B14,
        );
        self.count_point();
    }

    /// `cbnz rt, l` (`1 011010 1 imm19 Rt`).
    pub fn cbnz(&mut self, rt: Reg, l: Label) {
        self.branch(0xB500_0000 | rt.zr(), l, FIX_B19);
        self.count_point();
    }

    /// `cbz wt, l` (`0 011010 0 imm19 Rt`): the low 32 bits are zero.
    pub fn cbz_w(&mut self, rt: Reg, l: Label) {
        self.branch(0x3400_0000 | rt.zr(), l, FIX_B19);
        self.count_point();
    }

    /// `cbnz wt, l` (`0 011010 1 imm19 Rt`).
    pub fn cbnz_w(&mut self, rt: Reg, l: Label) {
        self.branch(0x3500_0000 | rt.zr(), l, FIX_B19);
        self.count_point();
    }

    /// `adr d, l` (`0 immlo(2) 10000 immhi(19) Rd`).
    pub fn adr(&mut self, d: Reg, l: Label) {
        self.branch(0x1000_0000 | d.zr(), l, FIX_ADR21);
    }

    /// `ldr rt, =value`: the literal form (`01 011 0 00 imm19 Rt`) loading the pool entry
    /// of `value`.
    pub fn ldr_literal(&mut self, rt: Reg, value: u64) {
        let l = self.buf.literal(value);
        self.branch(0x5800_0000 | rt.zr(), l, FIX_B19);
    }

    /// A call of the absolute address `target` through `scratch`: `ldr` from the literal
    /// pool (or `mov`/`movk`s without one), then `blr`.
    pub fn call_abs(&mut self, target: u64, scratch: Reg) {
        self.mov_imm(scratch, target);
        self.blr(scratch);
    }

    /// `bl` of the absolute address `target`, its offset left zero for [`link_call`] to
    /// write once the code's address is known (see [`CallLink`]).
    pub fn call_linked(&mut self, target: u64) {
        self.last_access = None;
        self.links.push(CallLink {
            at: self.offset(),
            target,
        });
        self.put(BL);
    }

    /// The calls [`Assembler::call_linked`] emitted so far, in code order.
    pub fn call_links(&self) -> &[CallLink] {
        &self.links
    }

    /// `blr rn` (`1101011 0001 11111 000000 Rn 00000`).
    pub fn blr(&mut self, rn: Reg) {
        self.put(0xD63F_0000 | rn.zr() << 5);
    }

    /// `br rn`.
    pub fn br(&mut self, rn: Reg) {
        self.put(0xD61F_0000 | rn.zr() << 5);
    }

    /// `ret` (x30).
    pub fn ret(&mut self) {
        self.put(0xD65F_03C0);
    }

    /// `brk #imm`.
    pub fn brk(&mut self, imm: u16) {
        self.put(0xD420_0000 | (imm as u32) << 5);
    }

    pub fn nop(&mut self) {
        self.put(0xD503_201F);
    }
}

/// The two accesses `prev` then `next` as one pair (lower address first), if they can be
/// one: both loads or both stores, same base, eight bytes apart, within `ldp`/`stp`'s scaled
/// 7-bit offset; for loads, `prev` must not have written the base `next` reads, and the two
/// must write different registers (`ldp` of one register twice is unpredictable).
fn pair_of(prev: Access, next: Access) -> Option<(Access, Access)> {
    if prev.load != next.load || prev.base != next.base {
        return None;
    }
    if prev.load && (prev.rt == prev.base || prev.rt == next.rt) {
        return None;
    }
    let (first, second) = match next.offset - prev.offset {
        8 => (prev, next),
        -8 => (next, prev),
        _ => return None,
    };
    (first.offset % 8 == 0 && (-512..=504).contains(&first.offset)).then_some((first, second))
}

/// `bl` with a zero offset (`1 00101 imm26`).
const BL: u32 = 0x9400_0000;

/// Writes the offset of the linked call at `code[at..]` (see [`CallLink`]) so that it calls
/// `target`, `code[at]` being at address `at_address`; false, and nothing written, when
/// `target` lies beyond `bl`'s +-128 MiB.
pub fn link_call(code: &mut [u8], at: usize, at_address: u64, target: u64) -> bool {
    let word = u32::from_le_bytes(code[at..at + 4].try_into().expect("four bytes"));
    debug_assert_eq!(word & 0xFC00_0000, BL, "not a linked call");
    let distance = target.wrapping_sub(at_address) as i64;
    let units = distance >> 2;
    if distance & 3 != 0 || !(-(1 << 25)..(1 << 25)).contains(&units) {
        return false;
    }
    let word = BL | (units as u32 & 0x03FF_FFFF);
    code[at..at + 4].copy_from_slice(&word.to_le_bytes());
    true
}

/// A veneer to `target` (see [`Veneer`]): `ldr x16, =target; br x16` and the address as
/// data; with `next`, a count point first. x16 is the platform's intra-procedure-call scratch
/// register, free at every call.
pub fn veneer(target: u64, next: Option<NextCounter>) -> Veneer {
    let mut a = Assembler::new();
    a.set_counting(next);
    a.count_point();
    a.ldr_literal(Reg::X16, target);
    a.br(Reg::X16);
    let counted = a.count_points().first().map(|p| (p.counter, 2));
    let bytes = a.finish().expect("a veneer always assembles");
    Veneer { bytes, counted }
}

#[cfg(test)]
mod tests;
