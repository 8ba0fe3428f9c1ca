//! Borrowed references: a local or a constant pushed for uses that all give it back needs no
//! reference of its own.
//!
//! The builder translates `LOAD_FAST` and `LOAD_CONST` as the interpreter executes them: the
//! value is read and an `Incref` gives the value stack its own reference, which each consumer
//! releases with a `Decref` (or takes). The frame already holds a reference to a local (and
//! the code object to a constant), so when every path from the `Incref` reaches a `Decref` of
//! the value before anything could take it or unbind the local, the pair is removed and the
//! value is marked borrowed in [`Function::borrowed`]:
//!
//! - a path may not store into the same local (`StoreLocal`, `DELETE_FAST`, `MAKE_CELL`):
//!   that drops the frame's reference, which may be the last one;
//! - a path may not hand the value on: to a block argument, a `Return` or a `Yield`, a helper
//!   that takes the reference (no `Decref` follows on that path, so it is refused as a path
//!   that never releases), or `FloatArith`, which writes into an operand nothing else holds;
//! - a path may leave through a guard or an error check only if the exit's value stack holds
//!   the value: the exit then takes a reference for the interpreter's frame (the LIR exit
//!   lists such slots in `increfs`, and both backends add one to each).
//!
//! A value read twice (`COPY`, `DUP_TOP`: two `Incref`s) keeps both pairs. Code that calls
//! into Python between the read and the release is fine: nothing in 3.11 rebinds a running
//! frame's fast locals from outside it (a tracer's `f_locals` writes reach the frame only
//! after the trace hook, and tracing sends compiled code back to the interpreter).

use super::{BlockId, Function, Helper, InstKind, Terminator, ValueId};

/// Removes the `Incref`/`Decref` pairs of locals and constants whose every use borrows;
/// returns how many values became borrowed.
pub fn borrow(f: &mut Function) -> u32 {
    let mut increfs: Vec<Vec<(BlockId, usize)>> = vec![Vec::new(); f.values.len()];
    let mut decrefs = vec![0u32; f.values.len()];
    for (b, block) in f.blocks.iter().enumerate() {
        for (i, &id) in block.insts.iter().enumerate() {
            match f.inst(id).kind {
                InstKind::Incref { value } => {
                    increfs[value.0 as usize].push((BlockId(b as u32), i))
                }
                InstKind::Decref { value } => decrefs[value.0 as usize] += 1,
                _ => {}
            }
        }
    }
    let mut removed: Vec<ValueId> = Vec::new();
    let mut borrowed = Vec::new();
    for (v, sites) in increfs.iter().enumerate() {
        let v = ValueId(v as u32);
        let [(b, i)] = sites.as_slice() else {
            continue;
        };
        let local = match f.inst(v).kind {
            InstKind::LoadLocal { index } => Some(index),
            InstKind::Const { .. } => None,
            _ => continue,
        };
        let Some(releases) = released_on_every_path(f, v, *b, *i, local) else {
            continue;
        };
        if releases.len() as u32 != decrefs[v.0 as usize] {
            continue;
        }
        removed.push(f.block(*b).insts[*i]);
        removed.extend(releases);
        borrowed.push(v);
    }
    f.remove_insts(removed);
    let count = borrowed.len() as u32;
    f.borrowed.extend(borrowed);
    f.borrowed.sort_unstable();
    f.borrowed.dedup();
    count
}

/// The `Decref`s of `v` that end every path from its `Incref` at `insts[at]` of block `b`,
/// or None if some path could lose the frame's reference (`local` stored into), hands `v` on,
/// or leaves without `v` on the exit's value stack.
fn released_on_every_path(
    f: &Function,
    v: ValueId,
    b: BlockId,
    at: usize,
    local: Option<u32>,
) -> Option<Vec<ValueId>> {
    let mut releases = Vec::new();
    let mut entered = vec![false; f.blocks.len()];
    let mut work = vec![(b, at + 1)];
    let on_stack = |state| f.state(state).stack.contains(&v);
    while let Some((b, from)) = work.pop() {
        let block = f.block(b);
        let mut released = false;
        for &id in &block.insts[from..] {
            let kind = &f.inst(id).kind;
            match kind {
                // Back at the definition: the value read before was never released.
                _ if id == v => return None,
                InstKind::Decref { value } if *value == v => {
                    releases.push(id);
                    released = true;
                    break;
                }
                InstKind::StoreLocal { index, .. } if Some(*index) == local => return None,
                InstKind::CallHelper {
                    helper: Helper::MakeCell,
                    ..
                } => return None,
                InstKind::FloatArith { a, b, .. } if *a == v || *b == v => return None,
                _ => {}
            }
            if kind.state().is_some_and(|s| !on_stack(s)) {
                return None;
            }
        }
        if released {
            continue;
        }
        let mut enter = |to: BlockId, args: &[ValueId]| {
            if args.contains(&v) {
                return false;
            }
            if !std::mem::replace(&mut entered[to.0 as usize], true) {
                work.push((to, 0));
            }
            true
        };
        let ok = match &block.term {
            Terminator::Jump { target, args } => enter(*target, args),
            Terminator::Branch {
                then_to,
                then_args,
                else_to,
                else_args,
                ..
            } => enter(*then_to, then_args) && enter(*else_to, else_args),
            Terminator::Exit { state } => on_stack(*state),
            Terminator::Return { .. } | Terminator::Yield { .. } | Terminator::None => false,
        };
        if !ok {
            return None;
        }
    }
    Some(releases)
}
