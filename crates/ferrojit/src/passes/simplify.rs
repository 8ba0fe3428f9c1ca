//! Before allocation: compare-and-branch fusion and dead-definition removal.

use super::{def_counts, invert, use_counts};
use crate::lir::{Cond, Function, LInst, Operand, VReg, Width};

/// What [`simplify`] changed, for tests and dumps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Simplified {
    /// Comparisons folded into the branch or guard that tested their result.
    pub fused: u32,
    /// Definitions removed because nothing read them.
    pub dead: u32,
}

/// Simplifies `f` in place.
pub fn simplify(f: &mut Function) -> Simplified {
    let fused = fuse_compares(f);
    let dead = remove_dead_definitions(f);
    Simplified { fused, dead }
}

/// `%d = cmp a cond b` whose only reader is a later `if %d != 0` / `if %d == 0` (branch or
/// guard) in the same block becomes `if a cond b` / `if a !cond b` there. Nothing between
/// them may write `a`, `b` or `%d`, or call out (that would stretch `a` and `b` across a call).
fn fuse_compares(f: &mut Function) -> u32 {
    let uses = use_counts(f);
    let defs = def_counts(f);
    let mut fused = 0;
    for block in &mut f.blocks {
        let mut i = 0;
        while i < block.insts.len() {
            if let Some((j, nonzero)) = fusable_tester(&block.insts, i, &uses, &defs) {
                let LInst::SetCmp {
                    a, b, cond, width, ..
                } = block.insts[i].clone()
                else {
                    unreachable!()
                };
                let cond = if nonzero { cond } else { invert(cond) };
                block.insts[j] = match block.insts[j].clone() {
                    LInst::BranchCmp { target, .. } => LInst::BranchCmp {
                        a,
                        b,
                        cond,
                        width,
                        target,
                    },
                    LInst::GuardCmp { exit, .. } => LInst::GuardCmp {
                        a,
                        b,
                        cond,
                        width,
                        exit,
                    },
                    _ => unreachable!(),
                };
                block.insts.remove(i);
                fused += 1;
                continue;
            }
            i += 1;
        }
    }
    fused
}

/// The index of the branch or guard that is the only reader of the comparison at `i`, when the
/// two can be fused, and whether it tests for non-zero.
fn fusable_tester(insts: &[LInst], i: usize, uses: &[u32], defs: &[u32]) -> Option<(usize, bool)> {
    let LInst::SetCmp { dst, a, b, .. } = &insts[i] else {
        return None;
    };
    if uses[dst.0 as usize] != 1 || defs[dst.0 as usize] != 1 {
        return None;
    }
    let inputs: Vec<VReg> = std::iter::once(*a)
        .chain(if let Operand::Reg(r) = b {
            Some(*r)
        } else {
            None
        })
        .collect();
    for (j, inst) in insts.iter().enumerate().skip(i + 1) {
        if let Some(nonzero) = zero_test_of(inst, *dst) {
            return Some((j, nonzero));
        }
        // `%d` has this one reader, so nothing else in between reads it.
        let writes_input = inst.def().is_some_and(|d| d == *dst || inputs.contains(&d));
        if writes_input || inst.is_call() || inst.ends_flow() {
            return None;
        }
    }
    None
}

/// For `if %v != 0` (Some(true)) or `if %v == 0` (Some(false)), as a branch or a guard on the
/// full register; None for anything else.
fn zero_test_of(inst: &LInst, v: VReg) -> Option<bool> {
    match inst {
        LInst::BranchCmp {
            a,
            b: Operand::Imm(0),
            width: Width::W64,
            cond,
            ..
        }
        | LInst::GuardCmp {
            a,
            b: Operand::Imm(0),
            width: Width::W64,
            cond,
            ..
        } if *a == v => match cond {
            Cond::Ne => Some(true),
            Cond::Eq => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Removes side-effect-free definitions (moves, loads, address computations, comparisons,
/// selects) of registers nothing reads, until none is left.
fn remove_dead_definitions(f: &mut Function) -> u32 {
    let mut removed = 0;
    loop {
        let uses = use_counts(f);
        let before = removed;
        for block in &mut f.blocks {
            block.insts.retain(|inst| {
                let dead = is_pure(inst) && inst.def().is_some_and(|d| uses[d.0 as usize] == 0);
                removed += dead as u32;
                !dead
            });
        }
        if removed == before {
            return removed;
        }
    }
}

fn is_pure(inst: &LInst) -> bool {
    matches!(
        inst,
        LInst::Mov { .. }
            | LInst::Alu { .. }
            | LInst::Load { .. }
            | LInst::Lea { .. }
            | LInst::SetCmp { .. }
            | LInst::Select { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lir::{Base, Block, Exit, ExitId, LBlock};

    fn v(n: u32) -> VReg {
        VReg(n)
    }

    /// `%0 = load; %1 = load; %2 = cmp %0 < %1; <between>; if %2 <cond> 0 goto L1`.
    fn compare_then_branch(between: Vec<LInst>, cond: Cond) -> Function {
        let mut insts = vec![
            LInst::Load {
                dst: v(0),
                base: Base::Frame,
                offset: 0,
                width: Width::W64,
            },
            LInst::Load {
                dst: v(1),
                base: Base::Frame,
                offset: 8,
                width: Width::W64,
            },
            LInst::SetCmp {
                dst: v(2),
                a: v(0),
                b: Operand::Reg(v(1)),
                cond: Cond::Lt,
                width: Width::W32,
            },
        ];
        insts.extend(between);
        insts.push(LInst::BranchCmp {
            a: v(2),
            b: Operand::Imm(0),
            cond,
            width: Width::W64,
            target: LBlock(1),
        });
        insts.push(LInst::Return { value: v(0) });
        Function {
            name: "t".into(),
            blocks: vec![
                Block { insts },
                Block {
                    insts: vec![LInst::Return { value: v(1) }],
                },
            ],
            exits: vec![],
            num_vregs: 8,
            cold_from: None,
        }
    }

    fn branch_of(f: &Function) -> LInst {
        f.blocks[0]
            .insts
            .iter()
            .find(|i| matches!(i, LInst::BranchCmp { .. }))
            .unwrap()
            .clone()
    }

    #[test]
    fn a_tested_comparison_becomes_the_branch() {
        for (tested, expected) in [(Cond::Ne, Cond::Lt), (Cond::Eq, Cond::Ge)] {
            let decref = LInst::Decref {
                value: v(0),
                maybe_null: false,
                prev_instr: 0,
            };
            let mut f = compare_then_branch(vec![decref], tested);
            assert_eq!(simplify(&mut f), Simplified { fused: 1, dead: 0 });
            let want = LInst::BranchCmp {
                a: v(0),
                b: Operand::Reg(v(1)),
                cond: expected,
                width: Width::W32,
                target: LBlock(1),
            };
            assert_eq!(branch_of(&f), want);
            assert!(!f.blocks[0]
                .insts
                .iter()
                .any(|i| matches!(i, LInst::SetCmp { .. })));
        }
    }

    #[test]
    fn no_fusion_across_a_call_a_rewritten_input_or_a_second_reader() {
        let call = LInst::Call {
            target: 1,
            via: None,
            name: "f",
            args: vec![],
            dst: None,
        };
        let rewrite = LInst::Mov {
            dst: v(1),
            src: Operand::Imm(3),
        };
        let reader = LInst::Store {
            base: Base::Frame,
            offset: 16,
            src: Operand::Reg(v(2)),
            width: Width::W64,
        };
        for between in [vec![call], vec![rewrite], vec![reader]] {
            let mut f = compare_then_branch(between.clone(), Cond::Ne);
            assert_eq!(simplify(&mut f).fused, 0, "fused across {between:?}");
            assert_eq!(
                branch_of(&f),
                LInst::BranchCmp {
                    a: v(2),
                    b: Operand::Imm(0),
                    cond: Cond::Ne,
                    width: Width::W64,
                    target: LBlock(1)
                }
            );
        }
    }

    #[test]
    fn a_guard_fuses_and_its_exit_stack_counts_as_a_reader() {
        let mut f = Function {
            name: "g".into(),
            blocks: vec![Block {
                insts: vec![
                    LInst::Load {
                        dst: v(0),
                        base: Base::Frame,
                        offset: 0,
                        width: Width::W64,
                    },
                    LInst::SetCmp {
                        dst: v(1),
                        a: v(0),
                        b: Operand::Imm(4),
                        cond: Cond::Eq,
                        width: Width::W64,
                    },
                    LInst::GuardCmp {
                        a: v(1),
                        b: Operand::Imm(0),
                        cond: Cond::Eq,
                        width: Width::W64,
                        exit: ExitId(0),
                    },
                    LInst::Return { value: v(0) },
                ],
            }],
            exits: vec![Exit {
                state: 0,
                stack: vec![Operand::Reg(v(0))],
                increfs: vec![],
                prev_instr: 0,
                stacktop: 1,
                code: 1,
            }],
            num_vregs: 2,
            cold_from: None,
        };
        let mut kept = f.clone();
        assert_eq!(simplify(&mut f).fused, 1);
        assert_eq!(
            f.blocks[0].insts[1],
            LInst::GuardCmp {
                a: v(0),
                b: Operand::Imm(4),
                cond: Cond::Ne,
                width: Width::W64,
                exit: ExitId(0)
            }
        );
        // The same comparison also written to the exit stack: it must stay.
        kept.exits[0].stack.push(Operand::Reg(v(1)));
        assert_eq!(simplify(&mut kept).fused, 0);
    }

    #[test]
    fn dead_chains_go_and_calls_stay() {
        let mut f = Function {
            name: "d".into(),
            blocks: vec![Block {
                insts: vec![
                    LInst::Load {
                        dst: v(0),
                        base: Base::Frame,
                        offset: 0,
                        width: Width::W64,
                    },
                    LInst::Mov {
                        dst: v(1),
                        src: Operand::Reg(v(0)),
                    },
                    LInst::Lea {
                        dst: v(2),
                        base: Base::Reg(v(1)),
                        offset: 8,
                    },
                    LInst::Call {
                        target: 1,
                        via: None,
                        name: "f",
                        args: vec![],
                        dst: Some(v(3)),
                    },
                    LInst::Load {
                        dst: v(4),
                        base: Base::Frame,
                        offset: 8,
                        width: Width::W64,
                    },
                    LInst::Return { value: v(4) },
                ],
            }],
            exits: vec![],
            num_vregs: 5,
            cold_from: None,
        };
        assert_eq!(simplify(&mut f).dead, 3);
        assert_eq!(f.blocks[0].insts.len(), 3);
        assert!(f.blocks[0].insts[0].is_call());
    }
}
