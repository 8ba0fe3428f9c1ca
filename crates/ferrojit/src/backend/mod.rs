//! The ISA backends: each turns allocated LIR into machine code with its own encoder, and
//! describes its registers to the allocator. Both are built on every host; only the host's runs.

pub mod aarch64;
pub mod disasm;
pub mod parallel_move;
pub mod x86_64;

use crate::lir;
use crate::regalloc::{Allocation, RegisterSet};

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
    pub fn emit(self, f: &lir::Function, alloc: &Allocation, env: &Env) -> Result<Vec<u8>, String> {
        match self {
            Isa::X86_64 => x86_64::emit(f, alloc, env),
            Isa::Aarch64 => aarch64::emit(f, alloc, env),
        }
    }

    /// The name of register number `r` on this ISA.
    pub fn reg_name(self, r: u8) -> String {
        match self {
            Isa::X86_64 => x86_64::reg_name(r),
            Isa::Aarch64 => format!("x{r}"),
        }
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
}

/// Byte offset in the frame of value-stack slot `i` of an exit.
pub fn exit_slot(env: &Env, exit: &lir::Exit, i: usize) -> i32 {
    let base = exit.stacktop - exit.stack.len() as i32;
    env.frame_localsplus + 8 * (base + i as i32)
}
