//! The ISA backends: each turns allocated LIR into machine code with its own encoder, and
//! describes its registers to the allocator. Both are built on every host; only the host's runs.

pub mod aarch64;
pub mod disasm;
pub mod parallel_move;
pub mod x86_64;

use crate::lir;
use crate::regalloc::{Allocation, Loc, RegisterSet};
pub use ferrojit_asm_core::{CallLink, NextCounter, Veneer};

/// An instruction set ferrojit generates code for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    X86_64,
    Aarch64,
}

impl Isa {
    /// The ISA of the machine this build runs on.
    pub fn host() -> Isa {
        if cfg!(target_arch = "aarch64") {
            Isa::Aarch64
        } else {
            Isa::X86_64
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::X86_64 => "x86_64",
            Isa::Aarch64 => "aarch64",
        }
    }

    /// The registers the allocator may use on this ISA.
    pub fn registers(self) -> RegisterSet {
        match self {
            Isa::X86_64 => x86_64::registers(),
            Isa::Aarch64 => aarch64::registers(),
        }
    }

    /// Generates machine code for `f` as allocated by `alloc`.
    pub fn emit(
        self,
        f: &lir::Function,
        alloc: &Allocation,
        env: &Env,
    ) -> Result<MachineCode, String> {
        match self {
            Isa::X86_64 => x86_64::emit(f, alloc, env),
            Isa::Aarch64 => aarch64::emit(f, alloc, env),
        }
    }

    /// How far a linked call reaches either way, in bytes (`call rel32`: 2 GiB; `bl`:
    /// 128 MiB).
    pub fn call_reach(self) -> u64 {
        match self {
            Isa::X86_64 => 1 << 31,
            Isa::Aarch64 => 128 << 20,
        }
    }

    /// Links the call at `code[at]` (see [`CallLink`]), which will sit at `at_address`, to
    /// `target`; false when `target` is out of its reach.
    pub fn link_call(self, code: &mut [u8], at: usize, at_address: u64, target: u64) -> bool {
        match self {
            Isa::X86_64 => ferrojit_asm_x86_64::link_call(code, at, at_address, target),
            Isa::Aarch64 => ferrojit_asm_aarch64::link_call(code, at, at_address, target),
        }
    }

    /// A veneer to `target` (see [`Veneer`]), counting itself when `next` is given.
    pub fn veneer(self, target: u64, next: Option<NextCounter>) -> Veneer {
        match self {
            Isa::X86_64 => ferrojit_asm_x86_64::veneer(target, next),
            Isa::Aarch64 => ferrojit_asm_aarch64::veneer(target, next),
        }
    }

    /// Whether a call at any address in `zone` (start, end) reaches `target`.
    pub fn reaches_from(self, zone: (u64, u64), target: u64) -> bool {
        let reach = self.call_reach() - 4;
        zone.0.abs_diff(target) < reach && zone.1.abs_diff(target) < reach
    }

    /// The name of register number `r` on this ISA.
    pub fn reg_name(self, r: u8) -> String {
        match self {
            Isa::X86_64 => x86_64::reg_name(r),
            Isa::Aarch64 => format!("x{r}"),
        }
    }
}

/// Generated code: the instructions, then (from `code_len` on) the literal pool's data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineCode {
    pub bytes: Vec<u8>,
    /// Bytes of instructions: what disassembly and instruction counts cover.
    pub code_len: usize,
    /// With `Env::count_instructions`: each count point's counter and the instructions of the
    /// stretch it counts, so that the instructions this code executed are the sum of
    /// counter x instructions (the counting sequences themselves not included).
    pub counted: Vec<(usize, u32)>,
    /// With `Env::near_calls`: the helper calls emitted as one PC-relative instruction, whose
    /// displacements the installer writes (`runtime::codemem`).
    pub links: Vec<CallLink>,
}

impl MachineCode {
    /// The instructions alone.
    pub fn instructions(&self) -> &[u8] {
        &self.bytes[..self.code_len]
    }
}

/// Interpreter facts the backends need beyond the LIR itself.
#[derive(Clone, Copy, Debug)]
pub struct Env {
    /// Offset of `localsplus` in the frame.
    pub frame_localsplus: i32,
    /// Offset of `stacktop` in the frame.
    pub frame_stacktop: i32,
    /// Offset of `prev_instr` in the frame.
    pub frame_prev_instr: i32,
    /// Address of `_Py_Dealloc`.
    pub dealloc: usize,
    /// Offset of `ob_refcnt` in an object (the decrefs and exit increfs a backend writes).
    pub object_refcnt: i32,
    /// x86-64: forward jumps that reach in rel8 take the two-byte form (the `short-jumps`
    /// optimisation; AArch64 branches are four bytes either way).
    pub short_jumps: bool,
    /// AArch64: wide constants and helper addresses come from a literal pool after the code
    /// (the `literal-pool` optimisation), one `ldr` instead of three or four `mov`/`movk`.
    /// The x86-64 backend does not use it (measured slower there).
    pub literal_pool: bool,
    /// AArch64, with `literal_pool`: constants of a `movz`/`movk` pair come from the pool too
    /// (the `literal-pool-pairs` optimisation).
    pub literal_pool_pairs: bool,
    /// AArch64: a branch or guard on a register being zero or not is one `cbz`/`cbnz`
    /// instead of `cmp` and `b.cond` (the `compare-and-branch` optimisation).
    pub compare_and_branch: bool,
    /// AArch64: adjacent 64-bit loads or stores off one base register are one `ldp`/`stp`
    /// (the `pair-loads-stores` optimisation).
    pub pair_loads_stores: bool,
    /// AArch64: a branch or guard on a register's sign (`< 0`, `>= 0`) is one `tbnz`/`tbz`
    /// on its top bit instead of `cmp` and `b.lt`/`b.ge` (the `test-bit-branches`
    /// optimisation).
    pub test_bit_branches: bool,
    /// Address of `_Py_RefTotal` when the interpreter keeps a total of all reference counts
    /// (a `Py_REF_DEBUG` build, such as Debian's `python3.11d`), else 0. The decrefs and exit
    /// increfs that a backend writes itself then move the total as `Py_DECREF`/`Py_INCREF`
    /// do, so that `sys.gettotalrefcount()` and regrtest's `-R` leak hunt stay exact.
    pub ref_total: usize,
    /// Helper calls are one `call rel32` / `bl`, linked when the code is installed (through a
    /// veneer next to the code when the helper is out of reach), instead of the helper's
    /// address moved into a register and called through it (the `near-calls` optimisation).
    pub near_calls: bool,
    /// The epilogue sits between the hot blocks and the cold ones (`lir::Function::cold_from`)
    /// instead of after the exit stubs and dealloc paths: hot code and the return path are
    /// one stretch, the cold section follows (the `cold-section` optimisation).
    pub cold_section: bool,
    /// With `near_calls`, where the code will be placed, when that is known (the runtime's
    /// code zone, `runtime::codemem`): a helper out of reach of some address in it is called
    /// through a register as without `near_calls` (two instructions, no veneer to jump
    /// through). None: every helper call is linked (out-of-reach ones then use a veneer).
    pub code_zone: Option<(u64, u64)>,
    /// The code counts its own execution (`FERROJIT_COUNT_INSTRUCTIONS`): where each count
    /// point's counter comes from (see `asm_core::CountPoint`); None for ordinary code.
    pub count_instructions: Option<ferrojit_asm_core::NextCounter>,
}

impl Env {
    /// Whether a call of the helper at `target` is emitted linked (one `call rel32` / `bl`):
    /// with `near_calls`, unless the code zone is known and the helper is out of its reach.
    pub fn links_call(&self, isa: Isa, target: usize) -> bool {
        self.near_calls
            && self
                .code_zone
                .is_none_or(|zone| isa.reaches_from(zone, target as u64))
    }
}

/// Where the backend emits the epilogue: before block `Some(b)` (the first cold one, with
/// `cold_section`), or after everything else (`None`).
pub fn epilogue_before(f: &lir::Function, env: &Env) -> Option<usize> {
    f.cold_from
        .filter(|_| env.cold_section)
        .map(|b| (b as usize).min(f.blocks.len()))
}

/// Whether the code before block `b` runs on into it: the prologue before block 0, else block
/// `b - 1` when it ends without a jump, return or exit.
pub fn runs_on_into(f: &lir::Function, b: usize) -> bool {
    b == 0
        || f.blocks[b - 1]
            .insts
            .last()
            .is_none_or(|i| !i.ends_straight_line())
}

/// An out-of-line `_Py_Dealloc` call for one `Decref` site, in either backend's labels and
/// registers: `slow` is where the site jumps when the count reaches zero, `done` where it goes
/// back; `prev_instr` (0: none) is stored in the frame first, for finalizers and warnings that
/// read the frame's line.
pub struct DeallocPath<L, R> {
    pub slow: L,
    pub done: L,
    pub object: R,
    pub prev_instr: i64,
}

/// Byte offset in the frame of value-stack slot `i` of an exit.
pub fn exit_slot(env: &Env, exit: &lir::Exit, i: usize) -> i32 {
    let base = exit.stacktop - exit.stack.len() as i32;
    env.frame_localsplus + 8 * (base + i as i32)
}

/// After a call whose result went from the return register to another location, the return
/// register still holds that value until something writes either of them. Both backends use
/// this to drop a move back into the return register: the next call's first argument on
/// AArch64 (`mov x23, x0; ...; mov x0, x23`), and a `Return` of that value on both ISAs.
///
/// Only the allocated locations and the return register are tracked; the backends' scratch
/// registers and out-of-line paths (exit stubs, dealloc calls that preserve every caller-saved
/// register) never write either.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReturnCopy(Option<Loc>);

impl ReturnCopy {
    /// Whether the return register holds the value that lives in `loc`.
    pub fn holds(self, loc: Loc) -> bool {
        self.0 == Some(loc)
    }

    /// Whether the return register holds the value a call argument is read from.
    pub fn holds_src(self, src: parallel_move::Src) -> bool {
        match src {
            parallel_move::Src::Reg(r) => self.holds(Loc::Reg(r)),
            parallel_move::Src::Slot(s) => self.holds(Loc::Slot(s)),
            parallel_move::Src::Imm(_) => false,
        }
    }

    /// The fact after `inst` ran and fell through: a call whose result went elsewhere starts
    /// a new one (none if the result stayed in `ret`); anything else keeps it unless it writes
    /// either location.
    pub fn after(self, inst: &lir::LInst, alloc: &Allocation, ret: u8) -> ReturnCopy {
        if let lir::LInst::Call { dst, .. } = inst {
            return ReturnCopy(dst.map(|d| alloc.loc(d)).filter(|l| *l != Loc::Reg(ret)));
        }
        let Some(copy) = self.0 else { return self };
        let keeps = !inst.ends_flow()
            && inst.def().is_none_or(|d| {
                let l = alloc.loc(d);
                l != copy && l != Loc::Reg(ret)
            });
        if keeps {
            self
        } else {
            ReturnCopy(None)
        }
    }
}
