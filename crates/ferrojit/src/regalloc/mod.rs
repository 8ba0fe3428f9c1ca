//! Register allocation: liveness over LIR blocks, one live interval per virtual register, and a
//! linear scan that gives each interval a machine register for its whole life or a stack slot.
//!
//! Calls dominate the code ferrojit compiles, so the scan has one rule for them: an interval live
//! across a call gets a callee-saved register (or a slot); the others prefer caller-saved ones.
//! [`check`] verifies an allocation independently (no two overlapping intervals share a
//! register, nothing live across a call sits in a caller-saved register); tests run it, and debug
//! builds run it on every compiled function.

use crate::lir::{Function, VReg};
use std::fmt;

/// The most spill slots a function may have; beyond it compilation is refused (it keeps every
/// slot addressable by one load or store on both ISAs).
pub const MAX_SLOTS: u32 = 4000;

/// Where a virtual register lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Loc {
    /// A machine register, by its encoding number.
    Reg(u8),
    /// A spill slot in the native stack frame.
    Slot(u32),
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loc::Reg(r) => write!(f, "r{r}"),
            Loc::Slot(s) => write!(f, "[slot{s}]"),
        }
    }
}

/// The registers the allocator may hand out, by class.
#[derive(Clone, Debug)]
pub struct RegisterSet {
    /// Preserved across calls.
    pub callee_saved: Vec<u8>,
    /// Clobbered by calls.
    pub caller_saved: Vec<u8>,
    /// Registers a call's arguments go in, in order, and the one its result comes back in:
    /// hints, so that values made for a call or returned by one need no move.
    pub args: Vec<u8>,
    pub ret: Option<u8>,
}

/// A live interval: the first and last position at which the register is live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    pub vreg: VReg,
    pub start: u32,
    pub end: u32,
}

/// The result of allocation.
#[derive(Clone, Debug, Default)]
pub struct Allocation {
    /// Location of each virtual register (None: never used).
    pub locs: Vec<Option<Loc>>,
    pub num_slots: u32,
    /// Callee-saved registers the function uses (the prologue saves them).
    pub used_callee_saved: Vec<u8>,
}

impl Allocation {
    pub fn loc(&self, v: VReg) -> Loc {
        self.locs[v.0 as usize].unwrap_or_else(|| panic!("{v} has no location"))
    }
}

/// Program positions: instruction `k` (in layout order) reads at `2k` and writes at `2k + 1`.
fn use_pos(k: usize) -> u32 {
    2 * k as u32
}
fn def_pos(k: usize) -> u32 {
    2 * k as u32 + 1
}

/// A small bit set over virtual registers.
#[derive(Clone, PartialEq)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: u32) -> Bits {
        Bits(vec![0; (n as usize).div_ceil(64)])
    }
    fn set(&mut self, i: u32) {
        self.0[i as usize / 64] |= 1 << (i % 64);
    }
    fn union_with(&mut self, o: &Bits) {
        self.0.iter_mut().zip(&o.0).for_each(|(a, b)| *a |= b);
    }
    /// The members, in increasing order (one step a member, not a bit).
    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &bits)| {
            let mut rest = bits;
            std::iter::from_fn(move || {
                (rest != 0).then(|| {
                    let b = rest.trailing_zeros();
                    rest &= rest - 1;
                    (w * 64) as u32 + b
                })
            })
        })
    }
}

/// Live intervals of every used virtual register, and the positions of calls.
pub fn intervals(f: &Function) -> (Vec<Interval>, Vec<u32>) {
    let n = f.num_vregs;
    let nb = f.blocks.len();
    let mut uses = vec![Bits::new(n); nb];
    let mut defs = vec![Bits::new(n); nb];
    let mut tmp = Vec::new();
    for (b, block) in f.blocks.iter().enumerate() {
        for inst in &block.insts {
            tmp.clear();
            inst.uses(&f.exits, &mut tmp);
            for u in &tmp {
                if defs[b].0[u.0 as usize / 64] & (1 << (u.0 % 64)) == 0 {
                    uses[b].set(u.0);
                }
            }
            if let Some(d) = inst.def() {
                defs[b].set(d.0);
            }
        }
    }
    let succs: Vec<Vec<usize>> = (0..nb).map(|b| f.successors(b)).collect();
    // live_in = uses | (live_out & !defs), iterated to a fixed point in reverse layout order
    // (a backward problem), word by word and without allocating inside the loop.
    let mut live_in = vec![Bits::new(n); nb];
    let mut out = Bits::new(n);
    let mut changed = true;
    while changed {
        changed = false;
        for b in (0..nb).rev() {
            out.0.fill(0);
            for s in &succs[b] {
                out.union_with(&live_in[*s]);
            }
            let (inn, def, used) = (&mut live_in[b].0, &defs[b].0, &uses[b].0);
            for w in 0..inn.len() {
                let word = used[w] | (out.0[w] & !def[w]);
                changed |= word != inn[w];
                inn[w] = word;
            }
        }
    }
    let live_out: Vec<Bits> = (0..nb)
        .map(|b| {
            let mut out = Bits::new(n);
            for s in &succs[b] {
                out.union_with(&live_in[*s]);
            }
            out
        })
        .collect();
    let mut lo = vec![u32::MAX; n as usize];
    let mut hi = vec![0u32; n as usize];
    let mut cover = |v: u32, p: u32| {
        lo[v as usize] = lo[v as usize].min(p);
        hi[v as usize] = hi[v as usize].max(p);
    };
    let mut calls = Vec::new();
    let mut k = 0usize;
    for (b, block) in f.blocks.iter().enumerate() {
        let first = k;
        for inst in &block.insts {
            tmp.clear();
            inst.uses(&f.exits, &mut tmp);
            for u in &tmp {
                cover(u.0, use_pos(k));
            }
            if let Some(d) = inst.def() {
                cover(d.0, def_pos(k));
            }
            if inst.is_call() {
                calls.push(def_pos(k));
            }
            k += 1;
        }
        let last = if k > first { k - 1 } else { first };
        for v in live_in[b].iter() {
            cover(v, use_pos(first));
        }
        for v in live_out[b].iter() {
            cover(v, def_pos(last) + 1);
        }
    }
    let ivs = (0..n)
        .filter(|v| lo[*v as usize] != u32::MAX)
        .map(|v| Interval {
            vreg: VReg(v),
            start: lo[v as usize],
            end: hi[v as usize],
        })
        .collect();
    (ivs, calls)
}

/// Whether `iv` is live across the call whose result is written at `call_def`.
fn crosses(iv: &Interval, call_def: u32) -> bool {
    iv.start < call_def && iv.end > call_def
}

/// The register each virtual register would best live in, from its first call in layout
/// order: the result register of the call that defines it, or the argument register of the
/// call that reads it. Only a value that crosses no call can take its hint (checked when
/// allocating); a taken hint saves the move into or out of the ABI register.
fn hints(f: &Function, regs: &RegisterSet) -> Vec<Option<u8>> {
    let mut hints = vec![None; f.num_vregs as usize];
    for inst in f.blocks.iter().flat_map(|b| &b.insts) {
        if let crate::lir::LInst::Call { args, dst, .. } = inst {
            for (i, a) in args.iter().enumerate() {
                if let (crate::lir::Operand::Reg(v), Some(r)) = (a, regs.args.get(i)) {
                    hints[v.0 as usize].get_or_insert(*r);
                }
            }
            if let (Some(d), Some(r)) = (dst, regs.ret) {
                hints[d.0 as usize].get_or_insert(r);
            }
        }
    }
    hints
}

/// The spill slots handed out so far, each with the end of the last interval given it. A slot
/// is reused by an interval that starts after that end: its occupants then follow one another
/// without overlapping (each starts after the one before it ended), so a function's slots are
/// as many as the spilled values live at once, not as many as it spills.
#[derive(Default)]
struct Slots {
    last_ends: Vec<u32>,
}

impl Slots {
    fn take(&mut self, iv: &Interval) -> u32 {
        match self.last_ends.iter().position(|&end| end < iv.start) {
            Some(slot) => {
                self.last_ends[slot] = iv.end;
                slot as u32
            }
            None => {
                self.last_ends.push(iv.end);
                self.last_ends.len() as u32 - 1
            }
        }
    }
}

/// Linear-scan allocation of `f` over `regs`.
pub fn allocate(f: &Function, regs: &RegisterSet) -> Allocation {
    let (mut ivs, calls) = intervals(f);
    let hints = hints(f, regs);
    ivs.sort_by_key(|iv| (iv.start, iv.vreg));
    let mut alloc = Allocation {
        locs: vec![None; f.num_vregs as usize],
        ..Default::default()
    };
    // Active intervals with their register.
    let mut active: Vec<(Interval, u8)> = Vec::new();
    let mut slots = Slots::default();
    for iv in ivs {
        active.retain(|(a, _)| a.end >= iv.start);
        let across = calls.iter().any(|c| crosses(&iv, *c));
        let taken: Vec<u8> = active.iter().map(|(_, r)| *r).collect();
        let free = |pool: &Vec<u8>| pool.iter().copied().find(|r| !taken.contains(r));
        let hinted = hints[iv.vreg.0 as usize]
            .filter(|h| !across && regs.caller_saved.contains(h) && !taken.contains(h));
        let choice = if across {
            free(&regs.callee_saved)
        } else {
            hinted
                .or_else(|| free(&regs.caller_saved))
                .or_else(|| free(&regs.callee_saved))
        };
        if let Some(r) = choice {
            alloc.locs[iv.vreg.0 as usize] = Some(Loc::Reg(r));
            active.push((iv, r));
            continue;
        }
        // Spill whichever of the candidates lives longest: a permissible active one or this one.
        let permissible = |r: u8| !across || regs.callee_saved.contains(&r);
        let victim = active
            .iter()
            .enumerate()
            .filter(|(_, (_, r))| permissible(*r))
            .max_by_key(|(_, (a, _))| a.end)
            .map(|(i, (a, r))| (i, *a, *r));
        match victim {
            Some((i, a, r)) if a.end > iv.end => {
                alloc.locs[a.vreg.0 as usize] = Some(Loc::Slot(slots.take(&a)));
                active.remove(i);
                alloc.locs[iv.vreg.0 as usize] = Some(Loc::Reg(r));
                active.push((iv, r));
            }
            _ => {
                alloc.locs[iv.vreg.0 as usize] = Some(Loc::Slot(slots.take(&iv)));
            }
        }
    }
    alloc.num_slots = slots.last_ends.len() as u32;
    let mut used: Vec<u8> = alloc
        .locs
        .iter()
        .filter_map(|l| match l {
            Some(Loc::Reg(r)) if regs.callee_saved.contains(r) => Some(*r),
            _ => None,
        })
        .collect();
    used.sort();
    used.dedup();
    alloc.used_callee_saved = used;
    alloc
}

/// Verifies `alloc` against freshly computed intervals.
pub fn check(f: &Function, alloc: &Allocation, regs: &RegisterSet) -> Result<(), String> {
    let (ivs, calls) = intervals(f);
    for iv in &ivs {
        let loc = alloc.locs[iv.vreg.0 as usize]
            .ok_or_else(|| format!("{} is live but has no location", iv.vreg))?;
        if let Loc::Reg(r) = loc {
            if regs.caller_saved.contains(&r) {
                if let Some(c) = calls.iter().find(|c| crosses(iv, **c)) {
                    return Err(format!(
                        "{} in caller-saved r{r} is live across the call at {c}",
                        iv.vreg
                    ));
                }
            }
        }
    }
    for (i, a) in ivs.iter().enumerate() {
        for b in &ivs[i + 1..] {
            let overlap = a.start <= b.end && b.start <= a.end;
            if overlap && alloc.locs[a.vreg.0 as usize] == alloc.locs[b.vreg.0 as usize] {
                return Err(format!(
                    "{} and {} overlap and share {}",
                    a.vreg,
                    b.vreg,
                    alloc.loc(a.vreg)
                ));
            }
        }
    }
    Ok(())
}

/// Prints LIR with each virtual register's location, for dumps.
pub fn print_allocated(f: &Function, alloc: &Allocation) -> String {
    let mut s = f.to_string();
    s.push_str("locations:\n");
    for (v, l) in alloc.locs.iter().enumerate() {
        if let Some(l) = l {
            s.push_str(&format!("  %{v} -> {l}\n"));
        }
    }
    s.push_str(&format!("slots: {}\n", alloc.num_slots));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lir::{Base, Block, LInst, Operand, Width};
    use proptest::prelude::*;

    /// Straight-line LIR from a recipe: each step loads a new value, calls with up to three
    /// earlier values (defining a new one), or stores an earlier value.
    fn program(steps: &[(u8, u8, u8, u8)]) -> Function {
        let mut insts = vec![LInst::Load {
            dst: VReg(0),
            base: Base::Frame,
            offset: 0,
            width: Width::W64,
        }];
        let mut n = 1u32;
        for &(kind, a, b, c) in steps {
            let pick = |x: u8| Operand::Reg(VReg(x as u32 % n));
            match kind % 3 {
                0 => {
                    insts.push(LInst::Load {
                        dst: VReg(n),
                        base: Base::Frame,
                        offset: 8,
                        width: Width::W64,
                    });
                    n += 1;
                }
                1 => {
                    insts.push(LInst::Call {
                        target: 0,
                        name: "f",
                        args: vec![pick(a), pick(b), pick(c)],
                        dst: Some(VReg(n)),
                    });
                    n += 1;
                }
                _ => insts.push(LInst::Store {
                    base: Base::Frame,
                    offset: 16,
                    src: pick(a),
                    width: Width::W64,
                }),
            }
        }
        insts.push(LInst::Return { value: VReg(n - 1) });
        Function {
            name: "p".into(),
            blocks: vec![Block { insts }],
            exits: vec![],
            num_vregs: n,
        }
    }

    proptest! {
        #[test]
        fn allocations_pass_the_checker_even_with_few_registers(
            steps in proptest::collection::vec((0u8..3, any::<u8>(), any::<u8>(), any::<u8>()), 1..60),
            callee in 0usize..3,
            caller in 1usize..3,
        ) {
            let f = program(&steps);
            let regs = RegisterSet { callee_saved: (10..10 + callee as u8).collect(), caller_saved: (0..caller as u8).collect(), args: vec![2, 0, 1], ret: Some(1) };
            let alloc = allocate(&f, &regs);
            prop_assert!(check(&f, &alloc, &regs).is_ok(), "{:?}", check(&f, &alloc, &regs));
        }
    }

    #[test]
    fn values_live_across_calls_avoid_caller_saved_registers() {
        let f = program(&[(1, 0, 0, 0), (1, 0, 1, 0)]);
        let regs = RegisterSet {
            callee_saved: vec![10],
            caller_saved: vec![0, 1],
            args: vec![1, 0],
            ret: Some(0),
        };
        let alloc = allocate(&f, &regs);
        // %0 is used by both calls, so it lives across the first one.
        assert_eq!(alloc.loc(VReg(0)), Loc::Reg(10));
        check(&f, &alloc, &regs).unwrap();
    }

    #[test]
    fn spill_slots_are_reused_once_their_values_are_dead() {
        // Fifty groups of three values loaded, then stored: three live at once, one register.
        let mut insts = Vec::new();
        for g in 0..50u32 {
            for k in 0..3 {
                insts.push(LInst::Load {
                    dst: VReg(3 * g + k),
                    base: Base::Frame,
                    offset: 8,
                    width: Width::W64,
                });
            }
            for k in 0..3 {
                insts.push(LInst::Store {
                    base: Base::Frame,
                    offset: 16,
                    src: Operand::Reg(VReg(3 * g + k)),
                    width: Width::W64,
                });
            }
        }
        insts.push(LInst::Return { value: VReg(0) });
        let f = Function {
            name: "groups".into(),
            blocks: vec![Block { insts }],
            exits: vec![],
            num_vregs: 150,
        };
        let regs = RegisterSet {
            callee_saved: vec![],
            caller_saved: vec![0],
            args: vec![0],
            ret: Some(0),
        };
        let alloc = allocate(&f, &regs);
        check(&f, &alloc, &regs).unwrap();
        let spilled = alloc
            .locs
            .iter()
            .filter(|l| matches!(l, Some(Loc::Slot(_))))
            .count();
        // %0 lives to the end; each group spills two values, which share the same two slots.
        assert!(spilled >= 100, "{spilled} values spilled");
        assert!(alloc.num_slots <= 3, "{} slots", alloc.num_slots);
    }

    #[test]
    fn the_checker_catches_a_shared_register() {
        let f = program(&[(0, 0, 0, 0), (1, 0, 1, 0)]);
        let regs = RegisterSet {
            callee_saved: vec![10],
            caller_saved: vec![0, 1],
            args: vec![1, 0],
            ret: Some(0),
        };
        let mut alloc = allocate(&f, &regs);
        alloc.locs[1] = alloc.locs[0];
        assert!(check(&f, &alloc, &regs).is_err());
    }
}
