//! Passes over LIR on either side of register allocation.
//!
//! - [`simplify`] runs before allocation, so that what it removes frees registers: a comparison
//!   whose 0/1 result only feeds a branch or a guard becomes that branch's own comparison, and
//!   definitions nobody reads go away.
//! - [`cleanup`] runs after allocation, on the allocated LIR: moves between a location and
//!   itself go, jumps to blocks that only jump are threaded, unreachable blocks are dropped, and
//!   jumps to the next block become fall-throughs (a branch over such a jump is inverted).
//!
//! Both keep the meaning of the function exactly; the code-generation tests run functions
//! before and after them, and the printed LIR in the dumps and snapshots is their output.

pub mod cleanup;
pub mod simplify;

pub use cleanup::cleanup;
pub use simplify::simplify;

use crate::lir::{Cond, Function, LInst};

/// The condition that holds exactly when `c` does not.
pub fn invert(c: Cond) -> Cond {
    match c {
        Cond::Eq => Cond::Ne,
        Cond::Ne => Cond::Eq,
        Cond::Lt => Cond::Ge,
        Cond::Ge => Cond::Lt,
    }
}

/// How many times each virtual register is read (a guard also reads its exit's stack).
pub fn use_counts(f: &Function) -> Vec<u32> {
    let mut counts = vec![0u32; f.num_vregs as usize];
    let mut uses = Vec::new();
    for inst in f.blocks.iter().flat_map(|b| &b.insts) {
        uses.clear();
        inst.uses(&f.exits, &mut uses);
        for v in &uses {
            counts[v.0 as usize] += 1;
        }
    }
    counts
}

/// How many instructions write each virtual register.
pub fn def_counts(f: &Function) -> Vec<u32> {
    let mut counts = vec![0u32; f.num_vregs as usize];
    for d in f
        .blocks
        .iter()
        .flat_map(|b| &b.insts)
        .filter_map(LInst::def)
    {
        counts[d.0 as usize] += 1;
    }
    counts
}
