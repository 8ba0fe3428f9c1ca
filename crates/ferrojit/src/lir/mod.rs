//! LIR: machine-level operations over virtual registers, the same for both ISAs.
//!
//! Blocks of instructions in layout order; every value is a [`VReg`] that register allocation
//! maps to a machine register or a stack slot. Calls, reference-count decrements with their
//! out-of-line deallocation path, and guards to side exits are single instructions here so that
//! each backend can pick its own best sequence. Printed before and after allocation.

pub mod lower;

use std::fmt;

/// A virtual register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VReg(pub u32);

/// A LIR block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LBlock(pub u32);

/// A side exit (index into [`Function::exits`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExitId(pub u32);

impl fmt::Display for VReg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0)
    }
}
impl fmt::Display for LBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "L{}", self.0)
    }
}
impl fmt::Display for ExitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exit{}", self.0)
    }
}

/// A value operand: a register or an immediate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    Reg(VReg),
    Imm(i64),
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Reg(r) => write!(f, "{r}"),
            Operand::Imm(i) if *i > 4096 || *i < -4096 => write!(f, "{i:#x}"),
            Operand::Imm(i) => write!(f, "{i}"),
        }
    }
}

/// The base of a memory access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    /// The `_PyInterpreterFrame *` of the running function (pinned register).
    Frame,
    /// The `PyThreadState *` (pinned register).
    Tstate,
    Reg(VReg),
}

impl fmt::Display for Base {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Base::Frame => write!(f, "frame"),
            Base::Tstate => write!(f, "tstate"),
            Base::Reg(r) => write!(f, "{r}"),
        }
    }
}

/// Width of a memory access or comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    W8,
    W32,
    W64,
}

/// Comparison conditions (signed unless noted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond {
    Eq,
    Ne,
    Lt,
    Ge,
}

/// Two-operand integer operations on 64-bit words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AluOp {
    Add,
    Sub,
    And,
    /// Shift left by the second operand (0..=63).
    Shl,
    /// The low 64 bits of the product.
    Mul,
    /// IEEE double `+`, `-`, `*` of the bit patterns the two words hold (the result's bits).
    /// Computed in two scratch FP registers: the allocator has no FP registers, and doubles
    /// live in general registers and frame words like any other word.
    FAdd,
    FSub,
    FMul,
    /// 1 if the two doubles compare so, else 0, as C's `<`, `<=`, `==`, `!=` on doubles (and
    /// Python's on floats): a NaN operand makes the first three 0 and `!=` 1.
    FLt,
    FLe,
    FEq,
    FNe,
}

impl AluOp {
    /// Whether the operation is on doubles.
    pub fn is_float(self) -> bool {
        use AluOp::*;
        matches!(self, FAdd | FSub | FMul | FLt | FLe | FEq | FNe)
    }
}

/// A machine instruction over virtual registers.
#[derive(Clone, Debug, PartialEq)]
pub enum LInst {
    /// `dst = src`.
    Mov { dst: VReg, src: Operand },
    /// `dst = [base + offset]` (zero-extended for narrow widths).
    Load {
        dst: VReg,
        base: Base,
        offset: i32,
        width: Width,
    },
    /// `[base + offset] = src`.
    Store {
        base: Base,
        offset: i32,
        src: Operand,
        width: Width,
    },
    /// `dst = base + offset`.
    Lea { dst: VReg, base: Base, offset: i32 },
    /// `dst = a op b` on 64-bit words (no flags are kept).
    Alu {
        op: AluOp,
        dst: VReg,
        a: VReg,
        b: Operand,
    },
    /// `[base + offset] += imm` on a 64-bit word (reference-count increments).
    AddMem { base: Base, offset: i32, imm: i32 },
    /// `frame->prev_instr = addr`. With `upper_half_set`, the word already holds `addr`'s
    /// upper 32 bits (every instruction of the code shares them), so a backend may store the
    /// lower half only; each backend picks its shortest form.
    SetPrevInstr { addr: i64, upper_half_set: bool },
    /// Decrements the reference count of the object in `value` and calls `_Py_Dealloc` out of
    /// line when it reaches zero; skips NULL when `maybe_null`.
    Decref {
        value: VReg,
        maybe_null: bool,
        /// What `frame->prev_instr` is set to (on the deallocation path only) before a
        /// finalizer or a warning can look at the frame: the instruction releasing the value.
        prev_instr: i64,
    },
    /// Calls the C function at `target` (at the address in `via` when set) with `args` in
    /// the ABI's argument registers; its result, if wanted, goes to `dst`. Every
    /// caller-saved register is clobbered.
    Call {
        target: usize,
        via: Option<VReg>,
        name: &'static str,
        args: Vec<Operand>,
        dst: Option<VReg>,
    },
    /// `dst = (a cond b) ? 1 : 0`.
    SetCmp {
        dst: VReg,
        a: VReg,
        b: Operand,
        cond: Cond,
        width: Width,
    },
    /// `dst = (c != 0) ? if_true : if_false`.
    Select {
        dst: VReg,
        c: VReg,
        if_true: i64,
        if_false: i64,
    },
    /// Branches to `target` when `a cond b`; otherwise falls through to the next instruction.
    BranchCmp {
        a: VReg,
        b: Operand,
        cond: Cond,
        width: Width,
        target: LBlock,
    },
    /// Leaves for side exit `exit` when `a cond b`.
    GuardCmp {
        a: VReg,
        b: Operand,
        cond: Cond,
        width: Width,
        exit: ExitId,
    },
    /// Jumps to `target`.
    Jump { target: LBlock },
    /// Returns `value` from the compiled function.
    Return { value: VReg },
    /// Leaves for side exit `exit` unconditionally.
    Exit { exit: ExitId },
}

/// What a side exit writes into the frame before handing over to the interpreter.
#[derive(Clone, Debug, PartialEq)]
pub struct Exit {
    /// The HIR frame state it came from.
    pub state: u32,
    /// The value stack, bottom first.
    pub stack: Vec<Operand>,
    /// Slots of `stack` (indices) holding borrowed references: the exit takes a reference to
    /// each before the interpreter gets the frame, which owns its whole stack.
    pub increfs: Vec<usize>,
    /// `prev_instr` to store (an absolute address inside the code object).
    pub prev_instr: usize,
    /// `stacktop` to store.
    pub stacktop: i32,
    /// The value returned to the runtime: odd for a deopt (index << 1 | 1), 0 for a raise.
    pub code: i64,
}

/// A LIR block.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Block {
    pub insts: Vec<LInst>,
}

/// A function in LIR, blocks in layout order (block 0 is the entry).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Function {
    pub name: String,
    pub blocks: Vec<Block>,
    pub exits: Vec<Exit>,
    pub num_vregs: u32,
    /// Where the cold blocks begin (the slow paths the lowering lays out last with
    /// `cold-slow-paths`; the block count when there are none); None when the layout does not
    /// say. With `cold-section` the backend puts the epilogue there, so the hot blocks and the
    /// return path are one stretch and the cold code (these blocks, exit stubs, dealloc
    /// paths) follows it.
    pub cold_from: Option<u32>,
}

impl LInst {
    /// Whether control never goes on to the next instruction (a jump, return or exit).
    pub fn ends_straight_line(&self) -> bool {
        matches!(
            self,
            LInst::Jump { .. } | LInst::Return { .. } | LInst::Exit { .. }
        )
    }

    /// Registers this instruction reads (exit stacks are read by guards).
    pub fn uses(&self, exits: &[Exit], out: &mut Vec<VReg>) {
        let op = |o: &Operand, out: &mut Vec<VReg>| {
            if let Operand::Reg(r) = o {
                out.push(*r)
            }
        };
        let base = |b: &Base, out: &mut Vec<VReg>| {
            if let Base::Reg(r) = b {
                out.push(*r)
            }
        };
        match self {
            LInst::Mov { src, .. } => op(src, out),
            LInst::Alu { a, b, .. } => {
                out.push(*a);
                op(b, out)
            }
            LInst::Load { base: b, .. }
            | LInst::Lea { base: b, .. }
            | LInst::AddMem { base: b, .. } => base(b, out),
            LInst::Store { base: b, src, .. } => {
                base(b, out);
                op(src, out)
            }
            LInst::Decref { value, .. } => out.push(*value),
            LInst::Call { args, via, .. } => {
                out.extend(via);
                args.iter().for_each(|a| op(a, out))
            }
            LInst::SetCmp { a, b, .. } | LInst::BranchCmp { a, b, .. } => {
                out.push(*a);
                op(b, out)
            }
            LInst::Select { c, .. } => out.push(*c),
            LInst::GuardCmp { a, b, exit, .. } => {
                out.push(*a);
                op(b, out);
                exits[exit.0 as usize].stack.iter().for_each(|s| op(s, out));
            }
            LInst::Jump { .. } | LInst::SetPrevInstr { .. } => {}
            LInst::Return { value } => out.push(*value),
            LInst::Exit { exit } => exits[exit.0 as usize].stack.iter().for_each(|s| op(s, out)),
        }
    }

    /// The register this instruction writes, if any.
    pub fn def(&self) -> Option<VReg> {
        match self {
            LInst::Mov { dst, .. }
            | LInst::Alu { dst, .. }
            | LInst::Load { dst, .. }
            | LInst::Lea { dst, .. }
            | LInst::SetCmp { dst, .. }
            | LInst::Select { dst, .. } => Some(*dst),
            LInst::Call { dst, .. } => *dst,
            _ => None,
        }
    }

    /// Whether the instruction clobbers caller-saved registers.
    pub fn is_call(&self) -> bool {
        matches!(self, LInst::Call { .. })
    }

    /// Blocks this instruction may jump to.
    pub fn targets(&self) -> Option<LBlock> {
        match self {
            LInst::BranchCmp { target, .. } | LInst::Jump { target } => Some(*target),
            _ => None,
        }
    }

    /// Whether control never falls through past this instruction.
    pub fn ends_flow(&self) -> bool {
        matches!(
            self,
            LInst::Jump { .. } | LInst::Return { .. } | LInst::Exit { .. }
        )
    }
}

impl Function {
    /// Successors of block `b`: its branch targets, and the next block when control can fall
    /// through its end.
    pub fn successors(&self, b: usize) -> Vec<usize> {
        let mut out: Vec<usize> = self.blocks[b]
            .insts
            .iter()
            .filter_map(|i| i.targets())
            .map(|t| t.0 as usize)
            .collect();
        let falls = self.blocks[b]
            .insts
            .last()
            .map(|i| !i.ends_flow())
            .unwrap_or(true);
        if falls && b + 1 < self.blocks.len() {
            out.push(b + 1);
        }
        out
    }
}

impl fmt::Display for Width {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Width::W8 => "8",
            Width::W32 => "32",
            Width::W64 => "64",
        })
    }
}

impl fmt::Display for AluOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AluOp::Add => "add",
            AluOp::Sub => "sub",
            AluOp::And => "and",
            AluOp::Shl => "shl",
            AluOp::Mul => "mul",
            AluOp::FAdd => "fadd",
            AluOp::FSub => "fsub",
            AluOp::FMul => "fmul",
            AluOp::FLt => "flt",
            AluOp::FLe => "fle",
            AluOp::FEq => "feq",
            AluOp::FNe => "fne",
        })
    }
}

impl fmt::Display for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cond::Eq => "==",
            Cond::Ne => "!=",
            Cond::Lt => "<",
            Cond::Ge => ">=",
        })
    }
}

impl fmt::Display for LInst {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LInst::Mov { dst, src } => write!(f, "{dst} = {src}"),
            LInst::Alu { op, dst, a, b } => write!(f, "{dst} = {op} {a}, {b}"),
            LInst::Load {
                dst,
                base,
                offset,
                width,
            } => write!(f, "{dst} = load{width} [{base}{offset:+}]"),
            LInst::Store {
                base,
                offset,
                src,
                width,
            } => write!(f, "store{width} [{base}{offset:+}] = {src}"),
            LInst::Lea { dst, base, offset } => write!(f, "{dst} = lea [{base}{offset:+}]"),
            LInst::AddMem { base, offset, imm } => write!(f, "add64 [{base}{offset:+}] += {imm}"),
            LInst::SetPrevInstr {
                addr,
                upper_half_set,
            } => write!(
                f,
                "prev_instr = {addr:#x}{}",
                if *upper_half_set {
                    " (upper half set)"
                } else {
                    ""
                }
            ),
            LInst::Decref {
                value, maybe_null, ..
            } => {
                write!(
                    f,
                    "{} {value}",
                    if *maybe_null { "xdecref" } else { "decref" }
                )
            }
            LInst::Call {
                name,
                args,
                dst,
                via,
                ..
            } => {
                let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
                let name = match via {
                    Some(v) => format!("{name} at {v}"),
                    None => name.to_string(),
                };
                match dst {
                    Some(d) => write!(f, "{d} = call {name}({})", args.join(", ")),
                    None => write!(f, "call {name}({})", args.join(", ")),
                }
            }
            LInst::SetCmp {
                dst,
                a,
                b,
                cond,
                width,
            } => write!(f, "{dst} = cmp{width} {a} {cond} {b}"),
            LInst::Select {
                dst,
                c,
                if_true,
                if_false,
            } => write!(f, "{dst} = {c} ? {if_true:#x} : {if_false:#x}"),
            LInst::BranchCmp {
                a,
                b,
                cond,
                width,
                target,
            } => write!(f, "if{width} {a} {cond} {b} goto {target}"),
            LInst::GuardCmp {
                a,
                b,
                cond,
                width,
                exit,
            } => write!(f, "if{width} {a} {cond} {b} exit {exit}"),
            LInst::Jump { target } => write!(f, "goto {target}"),
            LInst::Return { value } => write!(f, "return {value}"),
            LInst::Exit { exit } => write!(f, "exit {exit}"),
        }
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "lir {}", self.name)?;
        for (i, b) in self.blocks.iter().enumerate() {
            writeln!(f, "L{i}:")?;
            for inst in &b.insts {
                writeln!(f, "  {inst}")?;
            }
        }
        for (i, e) in self.exits.iter().enumerate() {
            let stack: Vec<String> = (e.stack.iter().enumerate())
                .map(|(k, s)| match e.increfs.contains(&k) {
                    true => format!("incref {s}"),
                    false => s.to_string(),
                })
                .collect();
            writeln!(
                f,
                "exit{i}: fs{} stacktop={} code={} [{}]",
                e.state,
                e.stacktop,
                e.code,
                stack.join(", ")
            )?;
        }
        Ok(())
    }
}
