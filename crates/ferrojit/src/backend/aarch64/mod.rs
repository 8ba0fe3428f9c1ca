//! The AArch64 backend: register conventions (AAPCS64), instruction selection from allocated
//! LIR, out-of-line deallocation paths, side-exit stubs, prologue and epilogue.
//!
//! Pinned registers: x19 = frame, x20 = thread state. Scratch: x16, x17 (the intra-procedure-call
//! registers) and x15, never allocated. x18 (platform) and x29/x30 are left alone.
//! Native frame: x29/x30, x19/x20, and the pairs of x21..x28 holding a register the allocator
//! used, saved in pairs; then the spill slots at `[sp + 8 * k]`.

use super::parallel_move::{self, Move, Src};
use super::{exit_slot, DeallocPath, Env, MachineCode, ReturnCopy};
use crate::lir::{self, Base, Cond, LInst, Operand, Width};
use crate::regalloc::{Allocation, Loc, RegisterSet};
use ferrojit_asm_aarch64::{Assembler, Cond as C, FpOp, Label, Reg};

/// The return register (and first argument register).
const RET: Reg = Reg::X0;
const FRAME: Reg = Reg::X19;
const TSTATE: Reg = Reg::X20;
/// Values read from slots or materialised immediates.
const SCRATCH0: Reg = Reg::X16;
/// Bases read from slots; call targets.
const SCRATCH1: Reg = Reg::X17;
/// Addresses and large immediates.
const SCRATCH2: Reg = Reg::X15;
const SAVED_PAIRS: [(Reg, Reg); 5] = [
    (Reg::X19, Reg::X20),
    (Reg::X21, Reg::X22),
    (Reg::X23, Reg::X24),
    (Reg::X25, Reg::X26),
    (Reg::X27, Reg::X28),
];

/// Registers the allocator may use.
pub fn registers() -> RegisterSet {
    RegisterSet {
        callee_saved: (21..=28).collect(),
        caller_saved: (0..=14).collect(),
        args: (0..=7).collect(),
        ret: Some(0),
    }
}

fn reg(r: u8) -> Reg {
    Reg::x(r)
}

struct Emitter<'a> {
    asm: Assembler,
    f: &'a lir::Function,
    alloc: &'a Allocation,
    env: &'a Env,
    blocks: Vec<Label>,
    exits: Vec<Label>,
    epilogue: Label,
    dealloc_paths: Vec<DeallocPath<Label, Reg>>,
    frame_size: u64,
    /// Sign tests against zero are `tbz`/`tbnz` (see [`Env::test_bit_branches`]).
    test_bit: bool,
}

/// Generates the machine code of `f`. With `test-bit-branches`, a function whose sign tests
/// land beyond `tbz`'s 32 KiB (exits sit after every block) is generated again without them.
pub fn emit(f: &lir::Function, alloc: &Allocation, env: &Env) -> Result<MachineCode, String> {
    match emit_with(f, alloc, env, env.test_bit_branches) {
        Err(_) if env.test_bit_branches => emit_with(f, alloc, env, false),
        done => done,
    }
}

fn emit_with(
    f: &lir::Function,
    alloc: &Allocation,
    env: &Env,
    test_bit: bool,
) -> Result<MachineCode, String> {
    let mut asm = Assembler::new();
    asm.set_literal_pool(env.literal_pool);
    asm.set_literal_pool_pairs(env.literal_pool_pairs);
    asm.set_pair_loads_stores(env.pair_loads_stores);
    asm.set_counting(env.count_instructions);
    asm.count_point();
    let blocks = (0..f.blocks.len()).map(|_| asm.new_label()).collect();
    let exits = (0..f.exits.len()).map(|_| asm.new_label()).collect();
    let epilogue = asm.new_label();
    let frame_size = (alloc.num_slots as u64 * 8).div_ceil(16) * 16;
    let mut e = Emitter {
        asm,
        f,
        alloc,
        env,
        blocks,
        exits,
        epilogue,
        dealloc_paths: Vec::new(),
        frame_size,
        test_bit,
    };
    e.prologue();
    let epilogue_at = super::epilogue_before(f, env);
    for b in 0..f.blocks.len() {
        if epilogue_at == Some(b) {
            e.hot_section_end(b);
        }
        e.asm.bind(e.blocks[b]);
        let mut copy = ReturnCopy::default();
        for inst in &f.blocks[b].insts {
            e.inst(inst, b, copy);
            copy = copy.after(inst, alloc, RET.index());
        }
    }
    if epilogue_at == Some(f.blocks.len()) {
        e.hot_section_end(f.blocks.len());
    }
    e.exit_stubs();
    e.dealloc_stubs();
    if epilogue_at.is_none() {
        e.epilogue();
    }
    let points = e.asm.count_points().to_vec();
    let links = e.asm.call_links().to_vec();
    let (bytes, code_len) = e.asm.finish_code().map_err(|err| err.to_string())?;
    let counted =
        super::disasm::counted_stretches(super::Isa::Aarch64, &bytes[..code_len], &points);
    Ok(MachineCode {
        bytes,
        code_len,
        counted,
        links,
    })
}

impl<'a> Emitter<'a> {
    /// The callee-saved pairs this function must save: x19/x20 (pinned) and any pair with a
    /// register the allocator used.
    fn saved_pairs(&self) -> Vec<(Reg, Reg)> {
        let used = |r: Reg| {
            r == FRAME || r == TSTATE || self.alloc.used_callee_saved.iter().any(|&u| reg(u) == r)
        };
        SAVED_PAIRS
            .iter()
            .copied()
            .filter(|&(a, b)| used(a) || used(b))
            .collect()
    }

    fn prologue(&mut self) {
        self.asm.stp_pre(Reg::FP, Reg::LR, Reg::SP, -16);
        self.asm.mov_rr(Reg::FP, Reg::SP);
        for (a, b) in self.saved_pairs() {
            self.asm.stp_pre(a, b, Reg::SP, -16);
        }
        self.adjust_sp(self.frame_size, true);
        self.asm.mov_rr(TSTATE, Reg::X0);
        self.asm.mov_rr(FRAME, Reg::X1);
    }

    /// Moves sp by `n` bytes (down when `down`), in at most two immediate steps: frames are
    /// limited to fewer than 2^24 bytes by [`crate::regalloc::MAX_SLOTS`].
    fn adjust_sp(&mut self, n: u64, down: bool) {
        for part in [n & 0xfff000, n & 0xfff] {
            if part != 0 {
                if down {
                    self.asm.sub_ri(Reg::SP, Reg::SP, part);
                } else {
                    self.asm.add_ri(Reg::SP, Reg::SP, part);
                }
            }
        }
    }

    /// Ends the hot section before block `b` (`cold-section`): the epilogue, after a jump
    /// over it when the block before runs on into `b`.
    fn hot_section_end(&mut self, b: usize) {
        if super::runs_on_into(self.f, b) {
            self.asm.b(self.blocks[b]);
        }
        self.epilogue();
    }

    fn epilogue(&mut self) {
        self.asm.bind(self.epilogue);
        self.adjust_sp(self.frame_size, false);
        for (a, b) in self.saved_pairs().into_iter().rev() {
            self.asm.ldp_post(a, b, Reg::SP, 16);
        }
        self.asm.ldp_post(Reg::FP, Reg::LR, Reg::SP, 16);
        self.asm.ret();
    }

    /// A base register and offset that the load/store forms of `size` bytes can encode.
    /// Spill slots (sp-based) always fit: see [`crate::regalloc::MAX_SLOTS`].
    fn address(&mut self, base: Reg, offset: i32, size: u32) -> (Reg, i32) {
        if Assembler::mem_offset_fits(size, offset) {
            return (base, offset);
        }
        assert!(base != Reg::SP, "spill slot offset {offset} out of range");
        self.asm.mov_imm(SCRATCH2, offset as i64 as u64);
        self.asm.add_rrr(SCRATCH2, base, SCRATCH2);
        (SCRATCH2, 0)
    }

    fn slot_load(&mut self, dst: Reg, s: u32) {
        let (b, o) = self.address(Reg::SP, 8 * s as i32, 8);
        self.asm.ldr(dst, b, o);
    }

    fn slot_store(&mut self, src: Reg, s: u32) {
        let (b, o) = self.address(Reg::SP, 8 * s as i32, 8);
        self.asm.str(src, b, o);
    }

    fn read(&mut self, v: lir::VReg, scratch: Reg) -> Reg {
        match self.alloc.loc(v) {
            Loc::Reg(r) => reg(r),
            Loc::Slot(s) => {
                self.slot_load(scratch, s);
                scratch
            }
        }
    }

    fn operand(&mut self, o: Operand, scratch: Reg) -> Reg {
        match o {
            Operand::Reg(v) => self.read(v, scratch),
            Operand::Imm(0) => Reg::XZR,
            Operand::Imm(i) => {
                self.asm.mov_imm(scratch, i as u64);
                scratch
            }
        }
    }

    fn target(&self, v: lir::VReg, scratch: Reg) -> Reg {
        match self.alloc.loc(v) {
            Loc::Reg(r) => reg(r),
            Loc::Slot(_) => scratch,
        }
    }

    fn commit(&mut self, v: lir::VReg, r: Reg) {
        match self.alloc.loc(v) {
            Loc::Reg(own) => {
                if reg(own) != r {
                    self.asm.mov_rr(reg(own), r);
                }
            }
            Loc::Slot(s) => self.slot_store(r, s),
        }
    }

    fn base(&mut self, b: Base) -> Reg {
        match b {
            Base::Frame => FRAME,
            Base::Tstate => TSTATE,
            Base::Reg(v) => self.read(v, SCRATCH1),
        }
    }

    /// Branches to `l` when `a cond b`: `cbz`/`cbnz` for equality with zero (with the
    /// `compare-and-branch` optimisation; exits and blocks are within its 1 MB reach in any
    /// function the allocator accepts), `tbnz`/`tbz` on the sign bit for `< 0` and `>= 0`
    /// (with `test-bit-branches`), else `cmp` and `b.cond`.
    fn compare_and_branch(&mut self, a: lir::VReg, b: Operand, cond: Cond, width: Width, l: Label) {
        if self.test_bit && b == Operand::Imm(0) && matches!(cond, Cond::Lt | Cond::Ge) {
            let r = self.read(a, SCRATCH0);
            let sign = if width == Width::W32 { 31 } else { 63 };
            match cond {
                Cond::Lt => self.asm.tbnz(r, sign, l),
                _ => self.asm.tbz(r, sign, l),
            }
            return;
        }
        let zero_test = self.env.compare_and_branch
            && b == Operand::Imm(0)
            && matches!(cond, Cond::Eq | Cond::Ne);
        if !zero_test {
            self.compare(a, b, width);
            self.asm.b_cond(Self::cond(cond), l);
            return;
        }
        let r = self.read(a, SCRATCH0);
        match (cond, width == Width::W32) {
            (Cond::Eq, true) => self.asm.cbz_w(r, l),
            (Cond::Eq, false) => self.asm.cbz(r, l),
            (_, true) => self.asm.cbnz_w(r, l),
            (_, false) => self.asm.cbnz(r, l),
        }
    }

    fn compare(&mut self, a: lir::VReg, b: Operand, width: Width) {
        let ra = self.read(a, SCRATCH0);
        let w32 = width == Width::W32;
        match b {
            Operand::Imm(i) if i >= 0 && Assembler::add_imm_fits(i as u64) => {
                if w32 {
                    self.asm.cmp_w_ri(ra, i as u64)
                } else {
                    self.asm.cmp_ri(ra, i as u64)
                }
            }
            b => {
                let rb = self.operand(b, SCRATCH2);
                if w32 {
                    self.asm.cmp_w_rr(ra, rb)
                } else {
                    self.asm.cmp_rr(ra, rb)
                }
            }
        }
    }

    /// `dst = a op b` (three-operand forms; immediates that fit the instruction are encoded in
    /// it, others built in SCRATCH2).
    fn alu(&mut self, op: lir::AluOp, dst: lir::VReg, a: lir::VReg, b: Operand) {
        if op.is_float() {
            return self.float_alu(op, dst, a, b);
        }
        let ra = self.read(a, SCRATCH0);
        let d = self.target(dst, SCRATCH0);
        match (op, b) {
            (lir::AluOp::Add, Operand::Imm(i)) if i >= 0 && Assembler::add_imm_fits(i as u64) => {
                self.asm.add_ri(d, ra, i as u64)
            }
            (lir::AluOp::Sub, Operand::Imm(i)) if i >= 0 && Assembler::add_imm_fits(i as u64) => {
                self.asm.sub_ri(d, ra, i as u64)
            }
            (lir::AluOp::And, Operand::Imm(i)) if Assembler::logical_imm_fits(i as u64) => {
                self.asm.and_ri(d, ra, i as u64)
            }
            (lir::AluOp::Shl, Operand::Imm(i)) => self.asm.lsl_ri(d, ra, (i & 63) as u8),
            (op, b) => {
                let rb = self.operand(b, SCRATCH2);
                match op {
                    lir::AluOp::Add => self.asm.add_rrr(d, ra, rb),
                    lir::AluOp::Sub => self.asm.sub_rrr(d, ra, rb),
                    lir::AluOp::And => self.asm.and_rrr(d, ra, rb),
                    lir::AluOp::Shl => self.asm.lsl_rrr(d, ra, rb),
                    lir::AluOp::Mul => self.asm.mul(d, ra, rb),
                    _ => unreachable!("doubles go through float_alu"),
                }
            }
        }
        self.commit(dst, d);
    }

    /// `dst = a op b` on doubles held as words: through d0 and d1, which nothing else uses
    /// (caller-saved, and generated code keeps no value in them).
    fn float_alu(&mut self, op: lir::AluOp, dst: lir::VReg, a: lir::VReg, b: Operand) {
        use lir::AluOp::*;
        let ra = self.read(a, SCRATCH0);
        self.asm.fmov_dx(0, ra);
        let rb = self.operand(b, SCRATCH2);
        self.asm.fmov_dx(1, rb);
        let d = self.target(dst, SCRATCH0);
        // After `fcmp`, a NaN operand (unordered) makes mi, ls and eq false and ne true.
        match op {
            FAdd => self.double_arith(d, FpOp::Add),
            FSub => self.double_arith(d, FpOp::Sub),
            FMul => self.double_arith(d, FpOp::Mul),
            FLt => self.double_compare(d, C::Mi),
            FLe => self.double_compare(d, C::Ls),
            FEq => self.double_compare(d, C::Eq),
            FNe => self.double_compare(d, C::Ne),
            _ => unreachable!("integer operations go through alu"),
        }
        self.commit(dst, d);
    }

    /// `d = d0 op d1` on doubles.
    fn double_arith(&mut self, d: Reg, op: FpOp) {
        self.asm.fp_d(op, 0, 0, 1);
        self.asm.fmov_xd(d, 0);
    }

    /// `d = 1` if `d0` and `d1` compare so (`c` after `fcmp`), else 0.
    fn double_compare(&mut self, d: Reg, c: C) {
        self.asm.fcmp_d(0, 1);
        self.asm.cset(d, c);
    }

    fn cond(c: Cond) -> C {
        match c {
            Cond::Eq => C::Eq,
            Cond::Ne => C::Ne,
            Cond::Lt => C::Lt,
            Cond::Ge => C::Ge,
        }
    }

    fn load(&mut self, d: Reg, base: Reg, offset: i32, width: Width) {
        let size = match width {
            Width::W8 => 1,
            Width::W32 => 4,
            Width::W64 => 8,
        };
        let (b, o) = self.address(base, offset, size);
        match width {
            Width::W8 => self.asm.ldrb(d, b, o),
            Width::W32 => self.asm.ldr_w(d, b, o),
            Width::W64 => self.asm.ldr(d, b, o),
        }
    }

    fn store(&mut self, s: Reg, base: Reg, offset: i32, width: Width) {
        let size = match width {
            Width::W8 => 1,
            Width::W32 => 4,
            Width::W64 => 8,
        };
        let (b, o) = self.address(base, offset, size);
        match width {
            Width::W8 => self.asm.strb(s, b, o),
            Width::W32 => self.asm.str_w(s, b, o),
            Width::W64 => self.asm.str(s, b, o),
        }
    }

    /// Emits `inst`; `copy` says where the return register's value also lives.
    fn inst(&mut self, inst: &LInst, block: usize, copy: ReturnCopy) {
        match inst {
            LInst::Mov { dst, src } => {
                // Into a slot from a register (or zero): one store.
                if let Loc::Slot(k) = self.alloc.loc(*dst) {
                    let from = match src {
                        Operand::Reg(s) => match self.alloc.loc(*s) {
                            Loc::Reg(r) => Some(reg(r)),
                            Loc::Slot(_) => None,
                        },
                        Operand::Imm(0) => Some(Reg::XZR),
                        Operand::Imm(_) => None,
                    };
                    if let Some(r) = from {
                        self.slot_store(r, k);
                        return;
                    }
                }
                let d = self.target(*dst, SCRATCH0);
                match src {
                    Operand::Imm(i) => self.asm.mov_imm(d, *i as u64),
                    Operand::Reg(s) => match self.alloc.loc(*s) {
                        Loc::Reg(r) if reg(r) != d => self.asm.mov_rr(d, reg(r)),
                        Loc::Reg(_) => {}
                        Loc::Slot(k) => self.slot_load(d, k),
                    },
                }
                self.commit(*dst, d);
            }
            LInst::Load {
                dst,
                base,
                offset,
                width,
            } => {
                let b = self.base(*base);
                let d = self.target(*dst, SCRATCH0);
                self.load(d, b, *offset, *width);
                self.commit(*dst, d);
            }
            LInst::Store {
                base,
                offset,
                src,
                width,
            } => {
                let b = self.base(*base);
                let s = self.operand(*src, SCRATCH0);
                self.store(s, b, *offset, *width);
            }
            LInst::Lea { dst, base, offset } => {
                let b = self.base(*base);
                let d = self.target(*dst, SCRATCH0);
                self.add_offset(d, b, *offset as i64);
                self.commit(*dst, d);
            }
            LInst::AddMem { base, offset, imm } => {
                let b = self.base(*base);
                self.load(SCRATCH0, b, *offset, Width::W64);
                self.add_offset(SCRATCH0, SCRATCH0, *imm as i64);
                self.store(SCRATCH0, b, *offset, Width::W64);
            }
            LInst::SetPrevInstr {
                addr,
                upper_half_set,
            } => {
                // With the literal pool the whole word is one `ldr`, fewer instructions than
                // the `mov`/`movk` of its lower half.
                let offset = self.env.frame_prev_instr;
                if *upper_half_set && !self.env.literal_pool {
                    self.asm.mov_imm(SCRATCH0, *addr as u32 as u64);
                    self.store(SCRATCH0, FRAME, offset, Width::W32);
                } else {
                    self.asm.mov_imm(SCRATCH0, *addr as u64);
                    self.store(SCRATCH0, FRAME, offset, Width::W64);
                }
            }
            LInst::Decref {
                value,
                maybe_null,
                prev_instr,
            } => self.decref(*value, *maybe_null, *prev_instr),
            LInst::Call {
                target,
                via,
                args,
                dst,
                ..
            } => self.call(*target, *via, args, *dst, copy),
            LInst::Alu { op, dst, a, b } => self.alu(*op, *dst, *a, *b),
            LInst::SetCmp {
                dst,
                a,
                b,
                cond,
                width,
            } => {
                self.compare(*a, *b, *width);
                let d = self.target(*dst, SCRATCH0);
                self.asm.cset(d, Self::cond(*cond));
                self.commit(*dst, d);
            }
            LInst::Select {
                dst,
                c,
                if_true,
                if_false,
            } => {
                let rc = self.read(*c, SCRATCH0);
                self.asm.cmp_ri(rc, 0);
                self.asm.mov_imm(SCRATCH1, *if_true as u64);
                self.asm.mov_imm(SCRATCH2, *if_false as u64);
                let d = self.target(*dst, SCRATCH0);
                self.asm.csel(d, SCRATCH1, SCRATCH2, C::Ne);
                self.commit(*dst, d);
            }
            LInst::BranchCmp {
                a,
                b,
                cond,
                width,
                target,
            } => {
                let l = self.blocks[target.0 as usize];
                self.compare_and_branch(*a, *b, *cond, *width, l);
            }
            LInst::GuardCmp {
                a,
                b,
                cond,
                width,
                exit,
            } => {
                let l = self.exits[exit.0 as usize];
                self.compare_and_branch(*a, *b, *cond, *width, l);
            }
            LInst::Jump { target } => {
                if target.0 as usize != block + 1 {
                    let l = self.blocks[target.0 as usize];
                    self.asm.b(l);
                }
            }
            LInst::Return { value } if copy.holds(self.alloc.loc(*value)) => {
                self.asm.b(self.epilogue)
            }
            LInst::Return { value } => {
                let r = self.read(*value, SCRATCH0);
                if r != RET {
                    self.asm.mov_rr(RET, r);
                }
                self.asm.b(self.epilogue);
            }
            LInst::Exit { exit } => {
                let l = self.exits[exit.0 as usize];
                self.asm.b(l);
            }
        }
    }

    /// `d = b + offset` for any offset.
    fn add_offset(&mut self, d: Reg, b: Reg, offset: i64) {
        if offset >= 0 && Assembler::add_imm_fits(offset as u64) {
            self.asm.add_ri(d, b, offset as u64);
        } else if offset < 0 && Assembler::add_imm_fits(offset.unsigned_abs()) {
            self.asm.sub_ri(d, b, offset.unsigned_abs());
        } else {
            self.asm.mov_imm(SCRATCH2, offset as u64);
            self.asm.add_rrr(d, b, SCRATCH2);
        }
    }

    fn decref(&mut self, value: lir::VReg, maybe_null: bool, prev_instr: i64) {
        let r = self.read(value, SCRATCH1);
        let done = self.asm.new_label();
        let slow = self.asm.new_label();
        if maybe_null {
            self.asm.cbz(r, done);
        }
        self.count_ref(-1, SCRATCH0, SCRATCH2);
        self.asm.ldr(SCRATCH0, r, self.env.object_refcnt);
        self.asm.subs_ri(SCRATCH0, SCRATCH0, 1);
        self.asm.str(SCRATCH0, r, self.env.object_refcnt);
        self.asm.b_cond(C::Eq, slow);
        self.asm.bind(done);
        self.dealloc_paths.push(DeallocPath {
            slow,
            done,
            object: r,
            prev_instr,
        });
    }

    /// In a `Py_REF_DEBUG` interpreter, moves `_Py_RefTotal` by `delta` (through `addr` and
    /// `value`, which must hold nothing live) as `Py_INCREF`/`Py_DECREF` do; nothing otherwise.
    fn count_ref(&mut self, delta: i64, addr: Reg, value: Reg) {
        if self.env.ref_total != 0 {
            self.asm.mov_imm(addr, self.env.ref_total as u64);
            self.load(value, addr, 0, Width::W64);
            self.add_offset(value, value, delta);
            self.store(value, addr, 0, Width::W64);
        }
    }

    fn src_of(&self, o: &Operand) -> Src {
        match o {
            Operand::Imm(i) => Src::Imm(*i),
            Operand::Reg(v) => match self.alloc.loc(*v) {
                Loc::Reg(r) => Src::Reg(r),
                Loc::Slot(s) => Src::Slot(s),
            },
        }
    }

    fn call(
        &mut self,
        target: usize,
        via: Option<lir::VReg>,
        args: &[Operand],
        dst: Option<lir::VReg>,
        copy: ReturnCopy,
    ) {
        // An address in a register goes to SCRATCH1 first: the argument moves may overwrite it.
        if let Some(v) = via {
            let r = self.read(v, SCRATCH1);
            if r != SCRATCH1 {
                self.asm.mov_rr(SCRATCH1, r);
            }
        }
        let mut moves: Vec<Move> = args
            .iter()
            .enumerate()
            .map(|(i, a)| Move {
                dst: i as u8,
                src: self.src_of(a),
            })
            .collect();
        // A move into the return register of the value it still holds is no move at all.
        if !moves.iter().any(|m| m.src == Src::Reg(RET.index())) {
            moves.retain(|m| !(m.dst == RET.index() && copy.holds_src(m.src)));
        }
        for m in parallel_move::sequence(&moves, SCRATCH0.index()) {
            let d = reg(m.dst);
            match m.src {
                Src::Reg(r) => self.asm.mov_rr(d, reg(r)),
                Src::Slot(s) => self.slot_load(d, s),
                Src::Imm(i) => self.asm.mov_imm(d, i as u64),
            }
        }
        match via {
            Some(_) => self.asm.blr(SCRATCH1),
            None => self.call_helper(target, SCRATCH1),
        }
        if let Some(d) = dst {
            self.commit(d, Reg::X0);
        }
    }

    /// A call of the helper at `target`: one linked `bl` with `near_calls`, else through
    /// `scratch`.
    fn call_helper(&mut self, target: usize, scratch: Reg) {
        if self.env.links_call(super::Isa::Aarch64, target) {
            self.asm.call_linked(target as u64);
        } else {
            self.asm.call_abs(target as u64, scratch);
        }
    }

    fn exit_stubs(&mut self) {
        for (i, exit) in self.f.exits.iter().enumerate() {
            self.asm.bind(self.exits[i]);
            for (k, v) in exit.stack.iter().enumerate() {
                let r = self.operand(*v, SCRATCH0);
                let off = exit_slot(self.env, exit, k);
                self.store(r, FRAME, off, Width::W64);
                if exit.increfs.contains(&k) {
                    self.load(SCRATCH1, r, self.env.object_refcnt, Width::W64);
                    self.add_offset(SCRATCH1, SCRATCH1, 1);
                    self.store(SCRATCH1, r, self.env.object_refcnt, Width::W64);
                    self.count_ref(1, SCRATCH1, SCRATCH2);
                }
            }
            self.asm.mov_imm(SCRATCH0, exit.stacktop as u64);
            self.store(SCRATCH0, FRAME, self.env.frame_stacktop, Width::W32);
            self.asm.mov_imm(SCRATCH0, exit.prev_instr as u64);
            self.store(SCRATCH0, FRAME, self.env.frame_prev_instr, Width::W64);
            self.asm.mov_imm(Reg::X0, exit.code as u64);
            self.asm.b(self.epilogue);
        }
    }

    /// `_Py_Dealloc(obj)` with x0..x15 preserved, out of line. Each site that reaches zero
    /// branches to two instructions (`bl` to the shared body for its register, then back); one
    /// body per register saves x0..x15 and x30, calls, restores and returns. x30 is free at
    /// the site: the prologue saved the caller's.
    fn dealloc_stubs(&mut self) {
        let mut bodies: Vec<(Reg, Label)> = Vec::new();
        for DeallocPath {
            slow,
            done,
            object: r,
            prev_instr,
        } in std::mem::take(&mut self.dealloc_paths)
        {
            let body = match bodies.iter().find(|(br, _)| *br == r) {
                Some((_, l)) => *l,
                None => {
                    let l = self.asm.new_label();
                    bodies.push((r, l));
                    l
                }
            };
            self.asm.bind(slow);
            // x16 is free here: the object is in its own register or x17, and the body's
            // call clobbers x16 anyway.
            if prev_instr != 0 {
                self.asm.mov_imm(SCRATCH0, prev_instr as u64);
                self.store(SCRATCH0, FRAME, self.env.frame_prev_instr, Width::W64);
            }
            self.asm.bl(body);
            self.asm.b(done);
        }
        for (r, body) in bodies {
            self.asm.bind(body);
            for k in 0..8u8 {
                self.asm
                    .stp_pre(Reg::x(2 * k), Reg::x(2 * k + 1), Reg::SP, -16);
            }
            // x17 may be the object's register (read from a spill slot): keep it beside x30.
            self.asm.stp_pre(Reg::LR, SCRATCH1, Reg::SP, -16);
            self.asm.mov_rr(Reg::X0, r);
            self.call_helper(self.env.dealloc, SCRATCH0);
            self.asm.ldp_post(Reg::LR, SCRATCH1, Reg::SP, 16);
            for k in (0..8u8).rev() {
                self.asm
                    .ldp_post(Reg::x(2 * k), Reg::x(2 * k + 1), Reg::SP, 16);
            }
            self.asm.ret();
        }
    }
}
