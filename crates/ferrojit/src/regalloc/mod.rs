//! Register allocation: liveness over LIR blocks, one live interval per virtual register with
//! the ranges where it is really live, and a linear scan that gives each interval a machine
//! register for its whole life or a stack slot. Two intervals share a register when their
//! ranges never meet: a value of the hot code read again in a slow path laid out at the end
//! leaves its register to others in between.
//!
//! Calls dominate the code ferrojit compiles, so the scan has one rule for them: a value live
//! just after a call (other than its result) gets a callee-saved register (or a slot); the
//! others prefer caller-saved ones. Spill slots are numbered by use, most touched first.
//! [`check`] verifies an allocation independently (no two overlapping intervals share a
//! register, nothing live across a call sits in a caller-saved register); tests run it, and debug
//! builds run it on every compiled function.

use crate::lir::{Function, VReg};
use std::borrow::Cow;
use std::collections::BTreeMap;
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
    fn clear(&mut self, i: u32) {
        self.0[i as usize / 64] &= !(1 << (i % 64));
    }
    fn contains(&self, i: u32) -> bool {
        self.0[i as usize / 64] & (1 << (i % 64)) != 0
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

/// What allocation needs to know of liveness: one interval per used virtual register (first
/// to last position where it is live, in layout order) and the registers live across a call.
pub struct Liveness {
    pub intervals: Vec<Interval>,
    /// Where each register is live, by register: sorted, disjoint (start, end) position pairs
    /// inside its interval; between them (holes) its location may hold other values.
    pub ranges: Vec<Vec<(u32, u32)>>,
    /// Registers live after some call that the call does not define: each needs a callee-saved
    /// register or a slot. Computed block by block from the live-out sets, so an interval that
    /// only spans a call in a hole (a value of a hot block read again in a cold block laid out
    /// at the end, dead at every call in between) does not count.
    across_calls: Bits,
}

impl Liveness {
    /// Whether `a` and `b` are live at a common position.
    pub fn overlap(&self, a: VReg, b: VReg) -> bool {
        let (ra, rb) = (&self.ranges[a.0 as usize], &self.ranges[b.0 as usize]);
        // Skip to the first range of each that ends at or after the other's start.
        let from = |r: &[(u32, u32)], start: u32| r.partition_point(|&(_, end)| end < start);
        let (mut i, mut j) = (from(ra, rb[0].0), from(rb, ra[0].0));
        while i < ra.len() && j < rb.len() {
            let ((s1, e1), (s2, e2)) = (ra[i], rb[j]);
            if s1 <= e2 && s2 <= e1 {
                return true;
            }
            if e1 < e2 {
                i += 1;
            } else {
                j += 1;
            }
        }
        false
    }

    pub fn is_live_across_a_call(&self, v: VReg) -> bool {
        self.across_calls.contains(v.0)
    }
}

/// The positions at which calls write their results, in layout order.
fn call_positions(f: &Function) -> Vec<u32> {
    (f.blocks.iter().flat_map(|b| &b.insts).enumerate())
        .filter(|(_, inst)| inst.is_call())
        .map(|(k, _)| def_pos(k))
        .collect()
}

/// What is live where control leaves block `b` at its end: the live-in set of the block it
/// falls into, or of its final jump's target.
fn falls_into(f: &Function, b: usize, live_in: &[Bits]) -> Bits {
    let block = &f.blocks[b];
    let mut live = Bits::new(f.num_vregs);
    match block.insts.last() {
        Some(last) if last.ends_flow() => {
            if let Some(t) = last.targets() {
                live.union_with(&live_in[t.0 as usize]);
            }
        }
        _ if b + 1 < f.blocks.len() => live.union_with(&live_in[b + 1]),
        _ => {}
    }
    live
}

/// Walks block `b` backwards from its end, calling `at(index, live)` with what is live just
/// after each instruction (before its own effect), and returns what is live at its start.
fn walk_back(f: &Function, b: usize, live_in: &[Bits], mut at: impl FnMut(usize, &Bits)) -> Bits {
    let mut live = falls_into(f, b, live_in);
    let mut tmp = Vec::new();
    for (i, inst) in f.blocks[b].insts.iter().enumerate().rev() {
        if let Some(t) = inst.targets() {
            live.union_with(&live_in[t.0 as usize]);
        }
        at(i, &live);
        if let Some(d) = inst.def() {
            live.clear(d.0);
        }
        tmp.clear();
        inst.uses(&f.exits, &mut tmp);
        tmp.iter().for_each(|u| live.set(u.0));
    }
    live
}

/// The registers live across some call of `f`: live just after it, and not its result.
fn live_across_calls(f: &Function, live_in: &[Bits]) -> Bits {
    let mut across = Bits::new(f.num_vregs);
    for (b, block) in f.blocks.iter().enumerate() {
        walk_back(f, b, live_in, |i, live| {
            if block.insts[i].is_call() {
                let mut after = live.clone();
                if let Some(d) = block.insts[i].def() {
                    after.clear(d.0);
                }
                across.union_with(&after);
            }
        });
    }
    across
}

/// Live intervals of every used virtual register, and which are live across calls.
pub fn intervals(f: &Function) -> Liveness {
    let n = f.num_vregs;
    let nb = f.blocks.len();
    // live_in of each block by a backward walk over its instructions (a branch in the middle
    // of a block makes what its target needs live there), iterated to a fixed point in
    // reverse layout order.
    let mut live_in = vec![Bits::new(n); nb];
    let mut changed = true;
    while changed {
        changed = false;
        for b in (0..nb).rev() {
            let live = walk_back(f, b, &live_in, |_, _| {});
            changed |= live != live_in[b];
            live_in[b] = live;
        }
    }
    let live_out: Vec<Bits> = (0..nb).map(|b| falls_into(f, b, &live_in)).collect();
    let mut tmp = Vec::new();
    let across_calls = live_across_calls(f, &live_in);
    // One segment per block for each register live or touched in it: from the block's start
    // (live in) or its first touch, to the block's end (live out) or its last touch. Blocks
    // are visited in layout order, so each register's segments come sorted; adjacent ones merge.
    let mut ranges: Vec<Vec<(u32, u32)>> = vec![Vec::new(); n as usize];
    let mut touch: Vec<Option<(u32, u32)>> = vec![None; n as usize];
    let mut touched: Vec<u32> = Vec::new();
    let mut k = 0usize;
    for (b, block) in f.blocks.iter().enumerate() {
        let first = k;
        let mut note = |v: u32, p: u32, touched: &mut Vec<u32>| {
            let t = &mut touch[v as usize];
            match t {
                Some((lo, hi)) => (*lo, *hi) = ((*lo).min(p), (*hi).max(p)),
                None => {
                    *t = Some((p, p));
                    touched.push(v);
                }
            }
        };
        for inst in &block.insts {
            tmp.clear();
            inst.uses(&f.exits, &mut tmp);
            for u in &tmp {
                note(u.0, use_pos(k), &mut touched);
            }
            // What a branch's target needs is live up to the branch.
            if let Some(t) = inst.targets() {
                for v in live_in[t.0 as usize].iter() {
                    note(v, use_pos(k), &mut touched);
                }
            }
            if let Some(d) = inst.def() {
                note(d.0, def_pos(k), &mut touched);
            }
            k += 1;
        }
        let last = if k > first { k - 1 } else { first };
        let (block_start, block_end) = (use_pos(first), def_pos(last) + 1);
        for v in live_in[b].iter() {
            note(v, block_start, &mut touched);
        }
        for v in live_out[b].iter() {
            note(v, block_end, &mut touched);
        }
        for v in touched.drain(..) {
            let (lo, hi) = touch[v as usize].take().expect("touched in this block");
            let r = &mut ranges[v as usize];
            match r.last_mut() {
                Some(prev) if prev.1 + 1 >= lo => prev.1 = prev.1.max(hi),
                _ => r.push((lo, hi)),
            }
        }
    }
    let ivs = (0..n)
        .filter(|v| !ranges[*v as usize].is_empty())
        .map(|v| Interval {
            vreg: VReg(v),
            start: ranges[v as usize][0].0,
            end: ranges[v as usize].last().unwrap().1,
        })
        .collect();
    Liveness {
        intervals: ivs,
        ranges,
        across_calls,
    }
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

/// The values holding each register: per register, the positions where a value holds it
/// (disjoint, so in order of start and of end alike) and which value that is.
struct Occupancy {
    by_register: Vec<BTreeMap<u32, (u32, VReg)>>,
    holders: Vec<Option<Holder>>,
    taken_so_far: u64,
}

/// A value holding a register.
#[derive(Clone, Copy)]
struct Holder {
    interval: Interval,
    /// When it took its register (of victims with equal ends, the latest goes).
    order: u64,
}

impl Occupancy {
    fn new(num_vregs: u32) -> Occupancy {
        Occupancy {
            by_register: Vec::new(),
            holders: vec![None; num_vregs as usize],
            taken_so_far: 0,
        }
    }

    /// The ranges held in `r` that meet `live`, with their holders.
    fn meeting<'a>(&'a self, r: u8, live: &'a [(u32, u32)]) -> impl Iterator<Item = VReg> + 'a {
        let map = self.by_register.get(r as usize);
        live.iter().flat_map(move |&(start, end)| {
            // Walk back from the last range starting by `end` while ranges still reach `start`.
            map.into_iter()
                .flat_map(move |m| m.range(..=end).rev())
                .take_while(move |(_, &(held_end, _))| held_end >= start)
                .map(|(_, &(_, v))| v)
        })
    }

    fn is_taken(&self, r: u8, live: &[(u32, u32)]) -> bool {
        self.meeting(r, live).next().is_some()
    }

    /// The one value holding `r` somewhere in `live`, if exactly one does.
    fn sole_holder(&self, r: u8, live: &[(u32, u32)]) -> Option<Holder> {
        let mut holders = self.meeting(r, live);
        let first = holders.next()?;
        match holders.all(|v| v == first) {
            true => self.holders[first.0 as usize],
            false => None,
        }
    }

    fn insert(&mut self, r: u8, iv: Interval, live: &[(u32, u32)]) {
        if self.by_register.len() <= r as usize {
            self.by_register.resize_with(r as usize + 1, BTreeMap::new);
        }
        let map = &mut self.by_register[r as usize];
        map.extend(live.iter().map(|&(start, end)| (start, (end, iv.vreg))));
        let order = self.taken_so_far;
        self.taken_so_far += 1;
        self.holders[iv.vreg.0 as usize] = Some(Holder {
            interval: iv,
            order,
        });
    }

    fn remove(&mut self, r: u8, v: VReg, live: &[(u32, u32)]) {
        let map = &mut self.by_register[r as usize];
        for (start, _) in live {
            map.remove(start);
        }
        self.holders[v.0 as usize] = None;
    }
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

/// Choices of the allocator that can be switched off, for A/B runs (the knobs
/// `live-ranges` and `slot-order`).
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Intervals have holes: two values share a register unless they are live at a common
    /// position ([`Liveness::overlap`]), and a value needs a callee-saved register (or a slot)
    /// only if it is live across a call ([`Liveness::is_live_across_a_call`]). Off, each
    /// value holds its location over its whole interval (first to last live position) and
    /// needs a callee-saved one if that interval spans a call.
    pub live_ranges: bool,
    /// Spill slots are numbered by how often code touches them ([`order_slots_by_use`]).
    pub slot_order: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            live_ranges: true,
            slot_order: true,
        }
    }
}

/// Linear-scan allocation of `f` over `regs`, every choice of [`Policy`] on.
pub fn allocate(f: &Function, regs: &RegisterSet) -> Allocation {
    allocate_with(f, regs, Policy::default())
}

/// Linear-scan allocation of `f` over `regs` under `policy`.
///
/// Intervals are taken in order of their start. Each gets a free register (the hinted one if
/// it is free; a caller-saved one first unless it lives across a call); with none free, it or
/// the conflicting interval that lives longest (and alone holds its register) goes to a slot.
/// Which registers are free is read from [`Occupancy`], so an interval is checked against
/// the few values in its way, not every value still holding a register.
pub fn allocate_with(f: &Function, regs: &RegisterSet, policy: Policy) -> Allocation {
    let liveness = intervals(f);
    let mut ivs = liveness.intervals.clone();
    let calls = call_positions(f);
    let across_calls = |iv: &Interval| match policy.live_ranges {
        true => liveness.is_live_across_a_call(iv.vreg),
        false => calls.iter().any(|&c| iv.start < c && iv.end > c),
    };
    // Where each value needs its location: with live ranges, only where it is live (another
    // value's register is free for it in that value's holes); without, its whole interval.
    let needs: Cow<[Vec<(u32, u32)>]> = match policy.live_ranges {
        true => Cow::Borrowed(&liveness.ranges),
        false => {
            let mut whole = vec![Vec::new(); f.num_vregs as usize];
            for iv in &ivs {
                whole[iv.vreg.0 as usize] = vec![(iv.start, iv.end)];
            }
            Cow::Owned(whole)
        }
    };
    let hints = hints(f, regs);
    ivs.sort_by_key(|iv| (iv.start, iv.vreg));
    let mut alloc = Allocation {
        locs: vec![None; f.num_vregs as usize],
        ..Default::default()
    };
    let mut held = Occupancy::new(f.num_vregs);
    let mut slots = Slots::default();
    for iv in ivs {
        let live = &needs[iv.vreg.0 as usize][..];
        let across = across_calls(&iv);
        let taken = |r: u8| held.is_taken(r, live);
        let free = |pool: &[u8]| pool.iter().copied().find(|&r| !taken(r));
        let hinted = hints[iv.vreg.0 as usize]
            .filter(|&h| !across && regs.caller_saved.contains(&h) && !taken(h));
        let choice = if across {
            free(&regs.callee_saved)
        } else {
            hinted
                .or_else(|| free(&regs.caller_saved))
                .or_else(|| free(&regs.callee_saved))
        };
        if let Some(r) = choice {
            alloc.locs[iv.vreg.0 as usize] = Some(Loc::Reg(r));
            held.insert(r, iv, live);
            continue;
        }
        // Spill whichever of the candidates lives longest: this one, or one in its way whose
        // register is permissible and held by no other value in its way (of equal ends, the
        // one that took its register last).
        let permissible = |r: &u8| !across || regs.callee_saved.contains(r);
        let victim = (regs.callee_saved.iter().chain(&regs.caller_saved))
            .filter(|r| permissible(r))
            .filter_map(|&r| held.sole_holder(r, live).map(|h| (r, h)))
            .max_by_key(|(_, h)| (h.interval.end, h.order));
        match victim {
            Some((r, h)) if h.interval.end > iv.end => {
                let a = h.interval;
                alloc.locs[a.vreg.0 as usize] = Some(Loc::Slot(slots.take(&a)));
                held.remove(r, a.vreg, &needs[a.vreg.0 as usize]);
                alloc.locs[iv.vreg.0 as usize] = Some(Loc::Reg(r));
                held.insert(r, iv, live);
            }
            _ => {
                alloc.locs[iv.vreg.0 as usize] = Some(Loc::Slot(slots.take(&iv)));
            }
        }
    }
    alloc.num_slots = slots.last_ends.len() as u32;
    if policy.slot_order {
        order_slots_by_use(f, &mut alloc);
    }
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

/// Renumbers the spill slots so that the most read and written come first: on x86-64 the
/// first 16 slots are addressed with an 8-bit displacement (`[rsp + 8k]`, 5 bytes a load
/// instead of 8), so the code that touches slots most gets the short form.
fn order_slots_by_use(f: &Function, alloc: &mut Allocation) {
    let mut touches = vec![0u32; alloc.num_slots as usize];
    let count = |v: VReg, touches: &mut Vec<u32>| {
        if let Some(Loc::Slot(s)) = alloc.locs[v.0 as usize] {
            touches[s as usize] += 1;
        }
    };
    let mut uses = Vec::new();
    for inst in f.blocks.iter().flat_map(|b| &b.insts) {
        uses.clear();
        inst.uses(&f.exits, &mut uses);
        uses.iter().for_each(|&v| count(v, &mut touches));
        if let Some(d) = inst.def() {
            count(d, &mut touches);
        }
    }
    let mut order: Vec<u32> = (0..alloc.num_slots).collect();
    order.sort_by_key(|&s| (std::cmp::Reverse(touches[s as usize]), s));
    let mut renumbered = vec![0u32; order.len()];
    for (new, &old) in order.iter().enumerate() {
        renumbered[old as usize] = new as u32;
    }
    for loc in alloc.locs.iter_mut().flatten() {
        if let Loc::Slot(s) = loc {
            *s = renumbered[*s as usize];
        }
    }
}

/// Verifies `alloc` against freshly computed intervals.
pub fn check(f: &Function, alloc: &Allocation, regs: &RegisterSet) -> Result<(), String> {
    let liveness = intervals(f);
    let ivs = &liveness.intervals;
    let liveness = &liveness;
    for iv in ivs {
        let loc = alloc.locs[iv.vreg.0 as usize]
            .ok_or_else(|| format!("{} is live but has no location", iv.vreg))?;
        if let Loc::Reg(r) = loc {
            if regs.caller_saved.contains(&r) && liveness.is_live_across_a_call(iv.vreg) {
                return Err(format!(
                    "{} in caller-saved r{r} is live across a call",
                    iv.vreg
                ));
            }
        }
    }
    for (i, a) in ivs.iter().enumerate() {
        for b in &ivs[i + 1..] {
            let overlap = a.start <= b.end && b.start <= a.end && liveness.overlap(a.vreg, b.vreg);
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
                        via: None,
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
            cold_from: None,
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

    /// v0 is read by a branch before a call and again on the branch's other side, a block
    /// laid out after the call: its interval spans the call, but it is not live there.
    fn hot_value_with_a_cold_use() -> Function {
        let load = LInst::Load {
            dst: VReg(0),
            base: Base::Frame,
            offset: 0,
            width: Width::W64,
        };
        let branch = LInst::BranchCmp {
            a: VReg(0),
            b: Operand::Imm(0),
            cond: crate::lir::Cond::Eq,
            width: Width::W64,
            target: crate::lir::LBlock(1),
        };
        let call = LInst::Call {
            target: 0,
            via: None,
            name: "f",
            args: vec![],
            dst: Some(VReg(1)),
        };
        let store = LInst::Store {
            base: Base::Frame,
            offset: 16,
            src: Operand::Reg(VReg(0)),
            width: Width::W64,
        };
        Function {
            name: "cold_use".into(),
            blocks: vec![
                Block {
                    insts: vec![load, branch, call, LInst::Return { value: VReg(1) }],
                },
                Block {
                    insts: vec![store, LInst::Return { value: VReg(0) }],
                },
            ],
            exits: vec![],
            num_vregs: 2,
            cold_from: None,
        }
    }

    /// A single caller-saved register (0), which is also the argument and result register.
    fn one_register() -> RegisterSet {
        RegisterSet {
            callee_saved: vec![],
            caller_saved: vec![0],
            args: vec![0],
            ret: Some(0),
        }
    }

    #[test]
    fn a_value_dead_at_every_call_its_interval_spans_takes_a_caller_saved_register() {
        let f = hot_value_with_a_cold_use();
        let regs = RegisterSet {
            callee_saved: vec![10],
            caller_saved: vec![0, 1],
            args: vec![1, 0],
            ret: Some(0),
        };
        let on = allocate(&f, &regs);
        assert!(matches!(on.loc(VReg(0)), Loc::Reg(0 | 1)), "{:?}", on.locs);
        assert!(on.used_callee_saved.is_empty());
        let off = allocate_with(
            &f,
            &regs,
            Policy {
                live_ranges: false,
                ..Policy::default()
            },
        );
        assert_eq!(off.loc(VReg(0)), Loc::Reg(10));
        for alloc in [&on, &off] {
            assert_eq!(check(&f, alloc, &regs), Ok(()));
        }
    }

    #[test]
    fn values_in_each_others_holes_share_a_register() {
        // v0 lives in block 0 up to the branch and in block 1; v2, made after the call in
        // block 0, lives in v0's hole, so with one register each gets it.
        let mut f = hot_value_with_a_cold_use();
        f.blocks[0].insts.insert(
            3,
            LInst::Load {
                dst: VReg(2),
                base: Base::Reg(VReg(1)),
                offset: 8,
                width: Width::W64,
            },
        );
        f.blocks[0].insts[4] = LInst::Return { value: VReg(2) };
        f.num_vregs = 3;
        let regs = one_register();
        let alloc = allocate(&f, &regs);
        assert_eq!(check(&f, &alloc, &regs), Ok(()));
        assert_eq!(
            (alloc.loc(VReg(0)), alloc.loc(VReg(2))),
            (Loc::Reg(0), Loc::Reg(0))
        );
        let liveness = intervals(&f);
        assert!(!liveness.overlap(VReg(0), VReg(2)));
        assert!(liveness.overlap(VReg(0), VReg(0)));
    }

    #[test]
    fn the_most_touched_spill_slots_come_first() {
        // Twenty values live across a call with no callee-saved register: all spilled, in
        // order of definition; the last is stored ten times, the others once.
        let mut insts: Vec<LInst> = (0..20)
            .map(|v| LInst::Load {
                dst: VReg(v),
                base: Base::Frame,
                offset: 8,
                width: Width::W64,
            })
            .collect();
        insts.push(LInst::Call {
            target: 0,
            via: None,
            name: "f",
            args: vec![],
            dst: Some(VReg(20)),
        });
        let store = |v: u32| LInst::Store {
            base: Base::Frame,
            offset: 16,
            src: Operand::Reg(VReg(v)),
            width: Width::W64,
        };
        insts.extend((0..20).map(store));
        insts.extend((0..9).map(|_| store(19)));
        insts.push(LInst::Return { value: VReg(20) });
        let f = Function {
            name: "slots".into(),
            blocks: vec![Block { insts }],
            exits: vec![],
            num_vregs: 21,
            cold_from: None,
        };
        let regs = one_register();
        let on = allocate(&f, &regs);
        let off = allocate_with(
            &f,
            &regs,
            Policy {
                slot_order: false,
                ..Policy::default()
            },
        );
        assert_eq!(on.loc(VReg(19)), Loc::Slot(0));
        assert_eq!(off.loc(VReg(19)), Loc::Slot(19));
        for alloc in [&on, &off] {
            assert_eq!(alloc.num_slots, 20);
            assert_eq!(check(&f, alloc, &regs), Ok(()));
        }
    }

    /// `program(steps)` cut into blocks at `cuts`; each block but the last ends with a branch
    /// on v0 to the block after next, so values have holes and live across branches.
    fn branchy_program(steps: &[(u8, u8, u8, u8)], cuts: &[u8]) -> Function {
        let mut f = program(steps);
        let insts = std::mem::take(&mut f.blocks[0].insts);
        let len = insts.len();
        let mut at: Vec<usize> = cuts.iter().map(|&c| 1 + c as usize % (len - 1)).collect();
        at.sort();
        at.dedup();
        let mut pieces = Vec::new();
        let mut from = 0;
        for &cut in at.iter().chain(std::iter::once(&len)) {
            pieces.push(insts[from..cut].to_vec());
            from = cut;
        }
        let n = pieces.len();
        f.blocks = (pieces.into_iter().enumerate())
            .map(|(i, mut insts)| {
                if i + 1 < n {
                    insts.push(LInst::BranchCmp {
                        a: VReg(0),
                        b: Operand::Imm(0),
                        cond: crate::lir::Cond::Eq,
                        width: Width::W64,
                        target: crate::lir::LBlock((i + 2).min(n - 1) as u32),
                    });
                }
                Block { insts }
            })
            .collect();
        f
    }

    proptest! {
        #[test]
        fn allocations_with_branches_pass_the_checker(
            steps in proptest::collection::vec((0u8..3, any::<u8>(), any::<u8>(), any::<u8>()), 1..60),
            cuts in proptest::collection::vec(any::<u8>(), 0..8),
            callee in 0usize..3,
            caller in 1usize..3,
            live_ranges in any::<bool>(),
        ) {
            let f = branchy_program(&steps, &cuts);
            let regs = RegisterSet { callee_saved: (10..10 + callee as u8).collect(), caller_saved: (0..caller as u8).collect(), args: vec![2, 0, 1], ret: Some(1) };
            let alloc = allocate_with(&f, &regs, Policy { live_ranges, ..Policy::default() });
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
            cold_from: None,
        };
        let regs = one_register();
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
