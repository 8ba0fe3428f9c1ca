//! ferrojit's x86-64 instruction encoder: only the forms the code generator emits, each one
//! checked against capstone in the tests.
//!
//! Encoding layout used throughout:
//!
//! ```text
//! [REX: 0100 W R X B] opcode [ModRM: mod(2) reg(3) rm(3)] [SIB: scale(2) index(3) base(3)] [disp8|disp32] [imm]
//! ```
//! REX.W selects 64-bit operand size; REX.R/X/B extend ModRM.reg, SIB.index and ModRM.rm/SIB.base
//! to the upper eight registers.

pub use ferrojit_asm_core::{AsmError, CallLink, CountPoint, Label, NextCounter, Veneer};
use ferrojit_asm_core::{CodeBuffer, Counting};
use std::fmt;

/// A 64-bit general register, numbered as in the encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Reg {
    Rax = 0,
    Rcx,
    Rdx,
    Rbx,
    Rsp,
    Rbp,
    Rsi,
    Rdi,
    R8,
    R9,
    R10,
    R11,
    R12,
    R13,
    R14,
    R15,
}

impl Reg {
    /// Every register, by encoding number.
    pub const ALL: [Reg; 16] = [
        Reg::Rax,
        Reg::Rcx,
        Reg::Rdx,
        Reg::Rbx,
        Reg::Rsp,
        Reg::Rbp,
        Reg::Rsi,
        Reg::Rdi,
        Reg::R8,
        Reg::R9,
        Reg::R10,
        Reg::R11,
        Reg::R12,
        Reg::R13,
        Reg::R14,
        Reg::R15,
    ];

    /// The encoding number (0..16).
    pub fn index(self) -> u8 {
        self as u8
    }

    fn low(self) -> u8 {
        self as u8 & 7
    }

    fn high(self) -> u8 {
        (self as u8 >> 3) & 1
    }
}

impl fmt::Display for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 16] = [
            "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11",
            "r12", "r13", "r14", "r15",
        ];
        f.write_str(NAMES[*self as usize])
    }
}

/// Condition codes, numbered as in the Jcc/SETcc/CMOVcc opcodes (O = 0 ... G = 15).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Cond {
    O = 0,
    No,
    B,
    Ae,
    E,
    Ne,
    Be,
    A,
    S,
    Ns,
    P,
    Np,
    L,
    Ge,
    Le,
    G,
}

impl Cond {
    /// The opposite condition (the codes come in pairs differing in the low bit).
    pub fn invert(self) -> Cond {
        const ALL: [Cond; 16] = [
            Cond::O,
            Cond::No,
            Cond::B,
            Cond::Ae,
            Cond::E,
            Cond::Ne,
            Cond::Be,
            Cond::A,
            Cond::S,
            Cond::Ns,
            Cond::P,
            Cond::Np,
            Cond::L,
            Cond::Ge,
            Cond::Le,
            Cond::G,
        ];
        ALL[(self as usize) ^ 1]
    }
}

/// Memory operand `[base + disp]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mem {
    pub base: Reg,
    pub disp: i32,
}

impl Mem {
    pub fn new(base: Reg, disp: i32) -> Mem {
        Mem { base, disp }
    }
}

/// The two-operand ALU operations of the 0x01..0x3B family; the value is the ModRM.reg
/// extension of the 0x81/0x83 immediate forms (and `value * 8 + 1` is the `r/m, reg` opcode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Alu {
    Add = 0,
    Or = 1,
    And = 4,
    Sub = 5,
    Xor = 6,
    Cmp = 7,
}

/// Shifts by an immediate (0xC1 /ext).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Shift {
    Shl = 4,
    Shr = 5,
    Sar = 7,
}

/// Fix-up kinds: a rel32 field ending the instruction; the fix-up records the end of the
/// instruction (where the displacement is measured from), not its start.
const FIX_REL32: u8 = 0;
const FIX_REL8: u8 = 1;

/// Scalar-double SSE2 operations (`F2 0F op`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SseOp {
    Add = 0x58,
    Mul = 0x59,
    Sub = 0x5C,
}

/// Predicates of `cmpsd`: the lane becomes all ones when the comparison holds, else zero. The
/// ordered ones are false when either operand is a NaN; `Neq` is true then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SseCmp {
    Eq = 0,
    Lt = 1,
    Le = 2,
    Neq = 4,
}

/// An x86-64 assembler.
#[derive(Default)]
pub struct Assembler {
    buf: CodeBuffer,
    /// Jumps (`jmp`/`jcc` to a label) emitted so far: each one's number in emission order.
    jumps: u32,
    /// Forward jumps emitted in rel32 form: (number, end of the instruction, target).
    long_forward: Vec<(u32, usize, Label)>,
    /// Jumps known to reach their target in rel8 form (see [`Assembler::with_near_jumps`]).
    near: Vec<bool>,
    /// 64-bit constants and call targets come from a pool after the code, loaded and called
    /// RIP-relative (see [`Assembler::set_literal_pool`]).
    literal_pool: bool,
    /// The code's count points (see [`Assembler::set_counting`]).
    counting: Counting,
    /// Calls emitted by [`Assembler::call_linked`], to be linked at install.
    links: Vec<CallLink>,
}

/// Either a register or a memory operand in the ModRM.rm position.
#[derive(Clone, Copy)]
enum Rm {
    Reg(Reg),
    Mem(Mem),
}

impl Assembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// An assembler for emitting the same instructions again, where the forward jumps that
    /// [`Assembler::near_jumps`] of the first emission found within rel8 reach take the
    /// two-byte form. Shortening jumps only brings targets closer, so every jump so marked
    /// still reaches (a forward jump's distance covers only code that can shrink).
    pub fn with_near_jumps(near: Vec<bool>) -> Self {
        Assembler {
            near,
            ..Self::default()
        }
    }

    /// For each jump emitted (in emission order), whether it is a forward jump in rel32 form
    /// whose target turned out within rel8 reach. Call once every label is bound.
    pub fn near_jumps(&self) -> Vec<bool> {
        let mut near = vec![false; self.jumps as usize];
        for &(n, end, l) in &self.long_forward {
            if let Some(t) = self.buf.label_offset(l) {
                // The short form starts where this one did, or earlier, and ends 3 (jmp) or 4
                // (jcc) bytes after its start instead of 5 or 6: its displacement is at most 4
                // more than this one's.
                near[n as usize] = t as i64 - end as i64 + 4 <= i64::from(i8::MAX);
            }
        }
        near
    }

    /// Numbers the next jump and says whether its forward form may be short.
    fn next_jump(&mut self) -> (u32, bool) {
        let n = self.jumps;
        self.jumps += 1;
        (n, self.near.get(n as usize).copied().unwrap_or(false))
    }

    /// With `on`, a constant that needs `movabs` is loaded from the literal pool instead
    /// (`mov r, [rip + d]`: 7 bytes, not 10) and [`Assembler::call_abs`] calls through it
    /// (`call [rip + d]`: 6 bytes, not 13); the pool (8 bytes per distinct value) follows the
    /// code, outside the instruction stream. ferrojit's backend leaves it off: smaller, but
    /// slower in its lab runs (every one of calls, constants and compares through the pool).
    pub fn set_literal_pool(&mut self, on: bool) {
        self.literal_pool = on;
    }

    /// With `next`, the code counts its own execution (`FERROJIT_COUNT_INSTRUCTIONS`): a
    /// count point at every label and after every conditional jump (and wherever
    /// [`Assembler::count_point`] is called: the entry) adds one to a fresh counter from
    /// `next`, keeping every register and the flags (`push rax; push rcx; movabs rax, counter;
    /// mov rcx, [rax]; lea rcx, [rcx + 1]; mov [rax], rcx; pop rcx; pop rax`).
    pub fn set_counting(&mut self, next: Option<NextCounter>) {
        self.counting.set(next);
    }

    /// A count point here, when the code counts itself (see [`Assembler::set_counting`]).
    pub fn count_point(&mut self) {
        let Some(counter) = self.counting.counter() else {
            return;
        };
        let begin = self.offset();
        self.push(Reg::Rax);
        self.push(Reg::Rcx);
        self.buf.put_bytes(&[0x48, 0xB8]);
        self.buf.put_u64_le(counter as u64);
        self.load64(Reg::Rcx, Mem::new(Reg::Rax, 0));
        self.lea(Reg::Rcx, Mem::new(Reg::Rcx, 1));
        self.store64(Mem::new(Reg::Rax, 0), Reg::Rcx);
        self.pop(Reg::Rcx);
        self.pop(Reg::Rax);
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
        self.buf.bind(l).expect("label bound twice");
        self.count_point();
    }

    pub fn label_offset(&self, l: Label) -> Option<usize> {
        self.buf.label_offset(l)
    }

    /// The code with every label reference resolved.
    pub fn finish(self) -> Result<Vec<u8>, AsmError> {
        self.finish_code().map(|(bytes, _)| bytes)
    }

    /// The code with every label reference resolved, and where its instructions end (the
    /// literal pool, if any, follows).
    pub fn finish_code(mut self) -> Result<(Vec<u8>, usize), AsmError> {
        let code_len = self.buf.place_literals(0xCC);
        let bytes = self.buf.finish(|bytes, fix, target| {
            // The displacement is the last byte or four bytes of the instruction, which ends
            // at `fix.at`.
            let end = fix.at;
            let rel = target as i64 - end as i64;
            if fix.kind == FIX_REL8 {
                let rel = i8::try_from(rel).map_err(|_| AsmError::OutOfRange {
                    at: end,
                    label: fix.label,
                    distance: rel,
                })?;
                bytes[end - 1] = rel as u8;
                return Ok(());
            }
            debug_assert_eq!(fix.kind, FIX_REL32);
            let rel = i32::try_from(rel).map_err(|_| AsmError::OutOfRange {
                at: end,
                label: fix.label,
                distance: rel,
            })?;
            bytes[end - 4..end].copy_from_slice(&rel.to_le_bytes());
            Ok(())
        })?;
        Ok((bytes, code_len))
    }

    // ---- encoding primitives ------------------------------------------------------------

    /// REX prefix for a `reg` field and an r/m operand; emitted when any bit is set or `force`
    /// (byte registers sil/dil/spl/bpl need an empty REX).
    fn rex(&mut self, w: bool, reg: u8, rm: Rm, force: bool) {
        let r = (reg >> 3) & 1;
        let b = match rm {
            Rm::Reg(x) => x.high(),
            Rm::Mem(m) => m.base.high(),
        };
        let byte = 0x40 | (w as u8) << 3 | r << 2 | b;
        if byte != 0x40 || force {
            self.buf.put_u8(byte);
        }
    }

    /// ModRM (+ SIB + displacement) for `reg` and `rm`.
    fn modrm(&mut self, reg: u8, rm: Rm) {
        let reg = (reg & 7) << 3;
        match rm {
            Rm::Reg(x) => self.buf.put_u8(0xC0 | reg | x.low()),
            Rm::Mem(Mem { base, disp }) => {
                // rbp/r13 as base with mod 00 means rip-relative / disp32-only: use disp8 0.
                let mode = if disp == 0 && base.low() != 5 {
                    0x00
                } else if i8::try_from(disp).is_ok() {
                    0x40
                } else {
                    0x80
                };
                self.buf.put_u8(mode | reg | base.low());
                if base.low() == 4 {
                    // rsp/r12 as base need a SIB byte: no index (100), base.
                    self.buf.put_u8(0x24);
                }
                match mode {
                    0x40 => self.buf.put_u8(disp as i8 as u8),
                    0x80 => self.buf.put_u32_le(disp as u32),
                    _ => {}
                }
            }
        }
    }

    /// A full instruction: [REX] opcode bytes, ModRM for (reg, rm).
    fn op(&mut self, w: bool, opcode: &[u8], reg: u8, rm: Rm) {
        self.rex(w, reg, rm, false);
        self.buf.put_bytes(opcode);
        self.modrm(reg, rm);
    }

    // ---- data movement -------------------------------------------------------------------

    /// `mov dst, src` (64-bit).
    pub fn mov_rr(&mut self, dst: Reg, src: Reg) {
        self.op(true, &[0x89], src.index(), Rm::Reg(dst));
    }

    /// `mov dst, imm` in its shortest form that does not touch the flags.
    pub fn mov_ri(&mut self, dst: Reg, imm: i64) {
        if let Ok(u) = u32::try_from(imm) {
            // mov r32, imm32 (B8+r) zero-extends.
            if dst.high() == 1 {
                self.buf.put_u8(0x41);
            }
            self.buf.put_u8(0xB8 + dst.low());
            self.buf.put_u32_le(u);
        } else if let Ok(s) = i32::try_from(imm) {
            // mov r/m64, simm32 (C7 /0) sign-extends.
            self.op(true, &[0xC7], 0, Rm::Reg(dst));
            self.buf.put_u32_le(s as u32);
        } else if self.literal_pool {
            self.load_literal(dst, imm as u64);
        } else {
            // movabs r64, imm64 (REX.W B8+r).
            self.buf.put_u8(0x48 | dst.high());
            self.buf.put_u8(0xB8 + dst.low());
            self.buf.put_u64_le(imm as u64);
        }
    }

    /// `mov dst, qword [rip + d]`, `d` reaching `value` in the literal pool.
    pub fn load_literal(&mut self, dst: Reg, value: u64) {
        self.rip_relative(true, &[0x8B], dst.index(), value);
    }

    /// `op dst, qword [rip + d]` (`add`/`or`/`and`/`sub`/`xor`/`cmp` with a pooled operand).
    pub fn alu_r_literal(&mut self, op: Alu, dst: Reg, value: u64) {
        self.rip_relative(true, &[(op as u8) << 3 | 3], dst.index(), value);
    }

    /// [REX] opcode, ModRM with mod 00 and rm 101 (RIP-relative) and a disp32 that reaches
    /// the pool entry of `value`; nothing may follow the displacement.
    fn rip_relative(&mut self, w: bool, opcode: &[u8], reg: u8, value: u64) {
        let l = self.buf.literal(value);
        let rex = 0x40 | (w as u8) << 3 | ((reg >> 3) & 1) << 2;
        if rex != 0x40 {
            self.buf.put_u8(rex);
        }
        self.buf.put_bytes(opcode);
        self.buf.put_u8((reg & 7) << 3 | 0b101);
        self.buf.put_u32_le(0);
        let end = self.offset();
        self.buf.add_fixup(end, l, FIX_REL32);
    }

    /// `mov dst, qword [m]`.
    pub fn load64(&mut self, dst: Reg, m: Mem) {
        self.op(true, &[0x8B], dst.index(), Rm::Mem(m));
    }

    /// `mov dst32, dword [m]` (zero-extends).
    pub fn load32(&mut self, dst: Reg, m: Mem) {
        self.op(false, &[0x8B], dst.index(), Rm::Mem(m));
    }

    /// `movzx dst32, byte [m]`.
    pub fn load8(&mut self, dst: Reg, m: Mem) {
        self.op(false, &[0x0F, 0xB6], dst.index(), Rm::Mem(m));
    }

    /// `mov qword [m], src`.
    pub fn store64(&mut self, m: Mem, src: Reg) {
        self.op(true, &[0x89], src.index(), Rm::Mem(m));
    }

    /// `mov dword [m], src32`.
    pub fn store32(&mut self, m: Mem, src: Reg) {
        self.op(false, &[0x89], src.index(), Rm::Mem(m));
    }

    /// `mov byte [m], src8` (REX for spl/bpl/sil/dil).
    pub fn store8(&mut self, m: Mem, src: Reg) {
        let force = matches!(src, Reg::Rsp | Reg::Rbp | Reg::Rsi | Reg::Rdi);
        self.rex(false, src.index(), Rm::Mem(m), force);
        self.buf.put_u8(0x88);
        self.modrm(src.index(), Rm::Mem(m));
    }

    /// `mov qword [m], simm32`.
    pub fn store64_imm(&mut self, m: Mem, imm: i32) {
        self.op(true, &[0xC7], 0, Rm::Mem(m));
        self.buf.put_u32_le(imm as u32);
    }

    /// `mov dword [m], imm32`.
    pub fn store32_imm(&mut self, m: Mem, imm: i32) {
        self.op(false, &[0xC7], 0, Rm::Mem(m));
        self.buf.put_u32_le(imm as u32);
    }

    /// `lea dst, [m]`.
    pub fn lea(&mut self, dst: Reg, m: Mem) {
        self.op(true, &[0x8D], dst.index(), Rm::Mem(m));
    }

    // ---- arithmetic and logic ------------------------------------------------------------

    /// `op dst, src`.
    pub fn alu_rr(&mut self, op: Alu, dst: Reg, src: Reg) {
        self.op(true, &[(op as u8) << 3 | 1], src.index(), Rm::Reg(dst));
    }

    fn alu_imm(&mut self, w: bool, op: Alu, rm: Rm, imm: i32) {
        if let Ok(b) = i8::try_from(imm) {
            self.op(w, &[0x83], op as u8, rm);
            self.buf.put_u8(b as u8);
        } else {
            self.op(w, &[0x81], op as u8, rm);
            self.buf.put_u32_le(imm as u32);
        }
    }

    /// `op dst, imm` (imm8 form when it fits).
    pub fn alu_ri(&mut self, op: Alu, dst: Reg, imm: i32) {
        self.alu_imm(true, op, Rm::Reg(dst), imm);
    }

    /// `op qword [m], imm`.
    pub fn alu_mi(&mut self, op: Alu, m: Mem, imm: i32) {
        self.alu_imm(true, op, Rm::Mem(m), imm);
    }

    /// `op dst, qword [m]`.
    pub fn alu_rm(&mut self, op: Alu, dst: Reg, m: Mem) {
        self.op(true, &[(op as u8) << 3 | 3], dst.index(), Rm::Mem(m));
    }

    /// `op qword [m], src`.
    pub fn alu_mr(&mut self, op: Alu, m: Mem, src: Reg) {
        self.op(true, &[(op as u8) << 3 | 1], src.index(), Rm::Mem(m));
    }

    /// `cmp a32, imm`.
    pub fn cmp32_ri(&mut self, a: Reg, imm: i32) {
        self.alu_imm(false, Alu::Cmp, Rm::Reg(a), imm);
    }

    /// `cmp dword [m], imm`.
    pub fn cmp32_mi(&mut self, m: Mem, imm: i32) {
        self.alu_imm(false, Alu::Cmp, Rm::Mem(m), imm);
    }

    /// `test a, b`.
    pub fn test_rr(&mut self, a: Reg, b: Reg) {
        self.op(true, &[0x85], b.index(), Rm::Reg(a));
    }

    /// `test a32, b32`: with a == b, a compare of the low 32 bits with 0 in two bytes.
    pub fn test32_rr(&mut self, a: Reg, b: Reg) {
        self.op(false, &[0x85], b.index(), Rm::Reg(a));
    }

    /// `test a, simm32`.
    pub fn test_ri(&mut self, a: Reg, imm: i32) {
        self.op(true, &[0xF7], 0, Rm::Reg(a));
        self.buf.put_u32_le(imm as u32);
    }

    /// `imul dst, src`.
    pub fn imul_rr(&mut self, dst: Reg, src: Reg) {
        self.op(true, &[0x0F, 0xAF], dst.index(), Rm::Reg(src));
    }

    /// `movq xmm<x>, src`: the 64 bits of `src` into the low lane of an SSE register.
    pub fn movq_xr(&mut self, x: u8, src: Reg) {
        self.buf.put_u8(0x66);
        self.op(true, &[0x0F, 0x6E], x, Rm::Reg(src));
    }

    /// `movq dst, xmm<x>`: the low 64 bits of an SSE register into `dst`.
    pub fn movq_rx(&mut self, dst: Reg, x: u8) {
        self.buf.put_u8(0x66);
        self.op(true, &[0x0F, 0x7E], x, Rm::Reg(dst));
    }

    /// `addsd/subsd/mulsd xmm<d>, xmm<s>` (scalar doubles; registers xmm0-xmm7).
    pub fn sse_sd(&mut self, op: SseOp, d: u8, s: u8) {
        assert!(d < 8 && s < 8, "xmm0-xmm7 only");
        self.buf
            .put_bytes(&[0xF2, 0x0F, op as u8, 0xC0 | d << 3 | s]);
    }

    /// `cmp<pred>sd xmm<d>, xmm<s>` (`cmpsd` with its predicate; registers xmm0-xmm7).
    pub fn cmpsd(&mut self, pred: SseCmp, d: u8, s: u8) {
        assert!(d < 8 && s < 8, "xmm0-xmm7 only");
        self.buf
            .put_bytes(&[0xF2, 0x0F, 0xC2, 0xC0 | d << 3 | s, pred as u8]);
    }

    /// `shl/shr/sar dst, amount`.
    pub fn shift_ri(&mut self, op: Shift, dst: Reg, amount: u8) {
        self.op(true, &[0xC1], op as u8, Rm::Reg(dst));
        self.buf.put_u8(amount);
    }

    /// `shl/shr/sar dst, cl`.
    pub fn shift_cl(&mut self, op: Shift, dst: Reg) {
        self.op(true, &[0xD3], op as u8, Rm::Reg(dst));
    }

    /// `neg r`.
    pub fn neg(&mut self, r: Reg) {
        self.op(true, &[0xF7], 3, Rm::Reg(r));
    }

    /// `not r`.
    pub fn not(&mut self, r: Reg) {
        self.op(true, &[0xF7], 2, Rm::Reg(r));
    }

    /// `setcc dst8; movzx dst32, dst8`.
    pub fn setcc(&mut self, c: Cond, dst: Reg) {
        let force = matches!(dst, Reg::Rsp | Reg::Rbp | Reg::Rsi | Reg::Rdi);
        self.rex(false, 0, Rm::Reg(dst), force);
        self.buf.put_bytes(&[0x0F, 0x90 | c as u8]);
        self.modrm(0, Rm::Reg(dst));
        self.rex(false, dst.index(), Rm::Reg(dst), force);
        self.buf.put_bytes(&[0x0F, 0xB6]);
        self.modrm(dst.index(), Rm::Reg(dst));
    }

    /// `cmovcc dst, src`.
    pub fn cmov(&mut self, c: Cond, dst: Reg, src: Reg) {
        self.op(true, &[0x0F, 0x40 | c as u8], dst.index(), Rm::Reg(src));
    }

    // ---- control flow --------------------------------------------------------------------

    /// Distance from the end of an instruction of `len` bytes starting here to a bound label.
    fn backward(&self, l: Label, len: usize) -> Option<i64> {
        self.buf
            .label_offset(l)
            .map(|t| t as i64 - (self.offset() + len) as i64)
    }

    /// `jmp l` (rel8 when `l` is bound and near, or marked near by a first emission; else
    /// rel32).
    pub fn jmp(&mut self, l: Label) {
        self.jump(&[0xEB], &[0xE9], l);
    }

    /// `jcc l` (rel8 when `l` is bound and near, or marked near by a first emission; else
    /// rel32).
    pub fn jcc(&mut self, c: Cond, l: Label) {
        self.jump(&[0x70 | c as u8], &[0x0F, 0x80 | c as u8], l);
        self.count_point();
    }

    /// A jump to `l` with opcode `short` (rel8) or `long` (rel32).
    fn jump(&mut self, short: &[u8], long: &[u8], l: Label) {
        let (n, near) = self.next_jump();
        if let Some(d) = self.backward(l, short.len() + 1) {
            if let Ok(d) = i8::try_from(d) {
                self.buf.put_bytes(short);
                self.buf.put_u8(d as u8);
                return;
            }
        } else if near {
            self.buf.put_bytes(short);
            self.buf.put_u8(0);
            let end = self.offset();
            self.buf.add_fixup(end, l, FIX_REL8);
            return;
        }
        self.buf.put_bytes(long);
        self.buf.put_u32_le(0);
        let end = self.offset();
        self.buf.add_fixup(end, l, FIX_REL32);
        if self.buf.label_offset(l).is_none() {
            self.long_forward.push((n, end, l));
        }
    }

    /// `call l` (`E8 rel32`).
    pub fn call(&mut self, l: Label) {
        self.buf.put_u8(0xE8);
        self.buf.put_u32_le(0);
        let end = self.offset();
        self.buf.add_fixup(end, l, FIX_REL32);
    }

    /// A call of the absolute address `target`: `call [rip + d]` through the literal pool,
    /// or (without a pool) `target` moved into `scratch` and `call scratch`.
    pub fn call_abs(&mut self, target: u64, scratch: Reg) {
        if self.literal_pool {
            self.rip_relative(false, &[0xFF], 2, target);
        } else {
            self.mov_ri(scratch, target as i64);
            self.call_r(scratch);
        }
    }

    /// `call rel32` of the absolute address `target`, its displacement left zero for
    /// [`link_call`] to write once the code's address is known (see [`CallLink`]).
    pub fn call_linked(&mut self, target: u64) {
        self.links.push(CallLink {
            at: self.offset(),
            target,
        });
        self.buf.put_u8(0xE8);
        self.buf.put_u32_le(0);
    }

    /// The calls [`Assembler::call_linked`] emitted so far, in code order.
    pub fn call_links(&self) -> &[CallLink] {
        &self.links
    }

    /// `call r`.
    pub fn call_r(&mut self, r: Reg) {
        self.op(false, &[0xFF], 2, Rm::Reg(r));
    }

    /// `jmp r`.
    pub fn jmp_r(&mut self, r: Reg) {
        self.op(false, &[0xFF], 4, Rm::Reg(r));
    }

    pub fn ret(&mut self) {
        self.buf.put_u8(0xC3);
    }

    /// `push r`.
    pub fn push(&mut self, r: Reg) {
        if r.high() == 1 {
            self.buf.put_u8(0x41);
        }
        self.buf.put_u8(0x50 + r.low());
    }

    /// `pop r`.
    pub fn pop(&mut self, r: Reg) {
        if r.high() == 1 {
            self.buf.put_u8(0x41);
        }
        self.buf.put_u8(0x58 + r.low());
    }

    pub fn int3(&mut self) {
        self.buf.put_u8(0xCC);
    }

    pub fn nop(&mut self) {
        self.buf.put_u8(0x90);
    }
}

/// Bytes of a `call rel32`.
const CALL_REL32_LEN: usize = 5;

/// Writes the displacement of the linked call at `code[at..]` (see [`CallLink`]) so that it
/// calls `target`, `code[at]` being at address `at_address`; false, and nothing written, when
/// `target` lies beyond rel32's +-2 GiB.
pub fn link_call(code: &mut [u8], at: usize, at_address: u64, target: u64) -> bool {
    debug_assert_eq!(code[at], 0xE8, "not a linked call");
    let end = at_address.wrapping_add(CALL_REL32_LEN as u64);
    let Ok(rel) = i32::try_from(target.wrapping_sub(end) as i64) else {
        return false;
    };
    code[at + 1..at + CALL_REL32_LEN].copy_from_slice(&rel.to_le_bytes());
    true
}

/// A veneer to `target` (see [`Veneer`]): `jmp qword [rip + d]` and the address after it;
/// with `next`, a count point first.
pub fn veneer(target: u64, next: Option<NextCounter>) -> Veneer {
    let mut a = Assembler::new();
    a.set_counting(next);
    a.count_point();
    a.rip_relative(false, &[0xFF], 4, target);
    let counted = a.count_points().first().map(|p| (p.counter, 1));
    let bytes = a.finish().expect("a veneer always assembles");
    Veneer { bytes, counted }
}

#[cfg(test)]
mod tests;
