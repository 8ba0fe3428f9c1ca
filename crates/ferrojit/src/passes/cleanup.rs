//! After allocation: self-moves, jump threading, unreachable blocks, fall-throughs.
//!
//! Allocation gives every virtual register one location for its whole life, so removing an
//! instruction or a block never invalidates it; the allocation checker still holds afterwards.

use super::invert;
use crate::lir::{Function, LBlock, LInst, Operand};
use crate::regalloc::Allocation;

/// What [`cleanup`] changed, for tests and dumps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CleanedUp {
    /// Moves whose source and destination got the same location.
    pub self_moves: u32,
    /// Branches and jumps retargeted past blocks that only jump.
    pub threaded: u32,
    /// Blocks no path reaches any more.
    pub unreachable_blocks: u32,
    /// Jumps to the next block removed (a branch over one is inverted).
    pub fallthroughs: u32,
}

/// Cleans up the allocated `f` in place.
pub fn cleanup(f: &mut Function, alloc: &Allocation) -> CleanedUp {
    let self_moves = remove_self_moves(f, alloc);
    let threaded = thread_jumps(f);
    let unreachable_blocks = remove_unreachable_blocks(f);
    let fallthroughs = use_fallthroughs(f);
    CleanedUp {
        self_moves,
        threaded,
        unreachable_blocks,
        fallthroughs,
    }
}

fn remove_self_moves(f: &mut Function, alloc: &Allocation) -> u32 {
    let mut removed = 0;
    for block in &mut f.blocks {
        block.insts.retain(|inst| {
            let self_move = matches!(inst, LInst::Mov { dst, src: Operand::Reg(s) } if alloc.locs[dst.0 as usize] == alloc.locs[s.0 as usize]);
            removed += self_move as u32;
            !self_move
        });
    }
    removed
}

/// Where control that enters block `b` really goes first: past blocks that are empty (they
/// fall through) or hold a single jump. Cycles of such blocks stay as they are.
fn final_target(f: &Function, b: usize) -> usize {
    let mut at = b;
    for _ in 0..f.blocks.len() {
        match f.blocks[at].insts.as_slice() {
            [] if at + 1 < f.blocks.len() => at += 1,
            [LInst::Jump { target }] => at = target.0 as usize,
            _ => return at,
        }
    }
    b
}

fn thread_jumps(f: &mut Function) -> u32 {
    let finals: Vec<usize> = (0..f.blocks.len()).map(|b| final_target(f, b)).collect();
    let mut threaded = 0;
    for block in &mut f.blocks {
        for inst in &mut block.insts {
            if let LInst::BranchCmp { target, .. } | LInst::Jump { target } = inst {
                let to = finals[target.0 as usize] as u32;
                if to != target.0 {
                    *target = LBlock(to);
                    threaded += 1;
                }
            }
        }
    }
    threaded
}

/// Drops the blocks no path from the entry reaches, renumbering the branch targets.
fn remove_unreachable_blocks(f: &mut Function) -> u32 {
    let n = f.blocks.len();
    let mut reached = vec![false; n];
    let mut work = vec![0usize];
    while let Some(b) = work.pop() {
        if n == 0 || std::mem::replace(&mut reached[b], true) {
            continue;
        }
        work.extend(f.successors(b));
    }
    let mut new_index = vec![u32::MAX; n];
    let mut next = 0;
    for b in 0..n {
        if reached[b] {
            new_index[b] = next;
            next += 1;
        }
    }
    let removed = n as u32 - next;
    if removed == 0 {
        return 0;
    }
    let blocks = std::mem::take(&mut f.blocks);
    f.blocks = blocks
        .into_iter()
        .zip(&reached)
        .filter(|(_, r)| **r)
        .map(|(b, _)| b)
        .collect();
    for inst in f.blocks.iter_mut().flat_map(|b| &mut b.insts) {
        if let LInst::BranchCmp { target, .. } | LInst::Jump { target } = inst {
            *target = LBlock(new_index[target.0 as usize]);
        }
    }
    removed
}

/// A block ending in a jump to the next block falls through instead; a block ending in
/// `if c goto next; goto L` becomes `if !c goto L`.
fn use_fallthroughs(f: &mut Function) -> u32 {
    let mut changed = 0;
    for b in 0..f.blocks.len() {
        let next = LBlock(b as u32 + 1);
        let insts = &mut f.blocks[b].insts;
        if let [.., LInst::BranchCmp { cond, target, .. }, LInst::Jump { target: other }] =
            insts.as_mut_slice()
        {
            if *target == next && *other != next {
                *cond = invert(*cond);
                *target = *other;
                insts.pop();
                changed += 1;
                continue;
            }
        }
        if let Some(LInst::Jump { target }) = insts.last() {
            if *target == next {
                insts.pop();
                changed += 1;
            }
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lir::{Base, Block, Cond, VReg, Width};
    use crate::regalloc::Loc;

    fn v(n: u32) -> VReg {
        VReg(n)
    }

    fn block(insts: Vec<LInst>) -> Block {
        Block { insts }
    }

    fn branch(target: u32) -> LInst {
        LInst::BranchCmp {
            a: v(0),
            b: Operand::Imm(5),
            cond: Cond::Lt,
            width: Width::W64,
            target: LBlock(target),
        }
    }

    fn jump(target: u32) -> LInst {
        LInst::Jump {
            target: LBlock(target),
        }
    }

    fn ret(n: u32) -> LInst {
        LInst::Return { value: v(n) }
    }

    #[test]
    fn threads_jumps_drops_the_dead_blocks_and_falls_through() {
        // L0: %0 = load; if %0 < 5 goto L3; goto L4 / L1: return %0 (unreached) / L2: return %1
        // L3: goto L2 / L4: (empty) / L5: goto L6 / L6: return %0
        let mut f = Function {
            name: "c".into(),
            blocks: vec![
                block(vec![
                    LInst::Load {
                        dst: v(0),
                        base: Base::Frame,
                        offset: 0,
                        width: Width::W64,
                    },
                    branch(3),
                    jump(4),
                ]),
                block(vec![ret(0)]),
                block(vec![ret(1)]),
                block(vec![jump(2)]),
                block(vec![]),
                block(vec![jump(6)]),
                block(vec![ret(0)]),
            ],
            exits: vec![],
            num_vregs: 2,
            cold_from: None,
        };
        let alloc = Allocation {
            locs: vec![Some(Loc::Reg(0)), Some(Loc::Reg(1))],
            ..Default::default()
        };
        let done = cleanup(&mut f, &alloc);
        assert_eq!(
            done,
            CleanedUp {
                self_moves: 0,
                threaded: 2,
                unreachable_blocks: 4,
                fallthroughs: 1
            },
            "{f}"
        );
        // What is left: L0 falls into `return %1` when %0 < 5 and branches to `return %0`
        // otherwise (the branch to the next block was inverted).
        assert_eq!(f.blocks.len(), 3, "{f}");
        assert_eq!(
            f.blocks[0].insts[1],
            LInst::BranchCmp {
                a: v(0),
                b: Operand::Imm(5),
                cond: Cond::Ge,
                width: Width::W64,
                target: LBlock(2)
            }
        );
        assert_eq!(f.blocks[0].insts.len(), 2, "{f}");
        assert_eq!(f.blocks[1].insts, vec![ret(1)]);
        assert_eq!(f.blocks[2].insts, vec![ret(0)]);
    }

    #[test]
    fn a_branch_to_the_next_block_is_inverted() {
        let mut f = Function {
            name: "i".into(),
            blocks: vec![
                block(vec![branch(1), jump(2)]),
                block(vec![ret(0)]),
                block(vec![ret(1)]),
            ],
            exits: vec![],
            num_vregs: 2,
            cold_from: None,
        };
        let alloc = Allocation {
            locs: vec![Some(Loc::Reg(0)), Some(Loc::Reg(1))],
            ..Default::default()
        };
        assert_eq!(cleanup(&mut f, &alloc).fallthroughs, 1);
        assert_eq!(
            f.blocks[0].insts,
            vec![LInst::BranchCmp {
                a: v(0),
                b: Operand::Imm(5),
                cond: Cond::Ge,
                width: Width::W64,
                target: LBlock(2)
            }]
        );
    }

    #[test]
    fn only_moves_within_one_location_go() {
        let insts = vec![
            LInst::Mov {
                dst: v(1),
                src: Operand::Reg(v(0)),
            },
            LInst::Mov {
                dst: v(2),
                src: Operand::Reg(v(0)),
            },
            LInst::Mov {
                dst: v(3),
                src: Operand::Reg(v(2)),
            },
            ret(3),
        ];
        let mut f = Function {
            name: "m".into(),
            blocks: vec![block(insts)],
            exits: vec![],
            num_vregs: 4,
            cold_from: None,
        };
        let alloc = Allocation {
            locs: vec![
                Some(Loc::Reg(3)),
                Some(Loc::Reg(3)),
                Some(Loc::Slot(0)),
                Some(Loc::Slot(0)),
            ],
            ..Default::default()
        };
        assert_eq!(cleanup(&mut f, &alloc).self_moves, 2);
        assert_eq!(
            f.blocks[0].insts,
            vec![
                LInst::Mov {
                    dst: v(2),
                    src: Operand::Reg(v(0))
                },
                ret(3)
            ]
        );
    }
}
