//! Guard elimination (`guard-elimination`): a `GuardType` on a value already known to be of
//! that exact type is removed.
//!
//! The builder guards each operand of a specialised operation where the interpreter guards it,
//! so `x * x + y * y` checks `x` twice and then checks the two products, which can only be
//! floats. What is known, per program point, comes from a forward data flow over the blocks:
//!
//! - a value's own type, when the builder gave it an exact one (a float product, an int or
//!   float constant, a list from `BUILD_LIST`);
//! - a value that passed a `GuardType` is of that type in the rest of its block;
//! - a local slot holds the same object from one `StoreLocal` to the next: a guard on a value
//!   read from the slot, or a store of a value of known type, tells the type of every later
//!   read of that slot until the next store. Nothing else writes a running frame's fast
//!   locals: a tracer's writes reach the frame in the interpreter, and tracing sends compiled
//!   code there first. A helper handed the frame itself is assumed to write any local.
//!
//! The same flow tracks which local slots are bound: a slot stored with an object (not the
//! NULL of `DELETE_FAST`) or read past a `GuardNotNull` holds one until the next store, so a
//! later read needs no "unbound local" check (the builder knows this only within a block).
//!
//! The types guarded (`int`, `float`, `str`, `tuple`, `list`) are not heap types, so an
//! object's exact type cannot change under it (`__class__` cannot be assigned on them). At a
//! merge, only what every incoming edge knows survives; the entry block (and through it every
//! resume point and loop entry, which branch from there) knows nothing.

use super::{BlockId, Function, InstKind, Type, ValueId};
use std::collections::{BTreeMap, BTreeSet};

/// What is known at a program point: exact types (by their guard name) of values and of the
/// objects in local slots, and which values are still what their slot holds. What is known of
/// values stays within their block ([`Facts::forget_values`]); the slots' facts flow.
#[derive(Clone, Debug, Default, PartialEq)]
struct Facts {
    /// Per slot: the exact type of the object it holds, and whether it holds one (not NULL).
    locals: Vec<Option<&'static str>>,
    bound: Vec<bool>,
    values: BTreeMap<ValueId, &'static str>,
    /// Values read from (or stored into) a slot that has not been stored into since.
    in_slot: BTreeMap<ValueId, u32>,
    /// Values known not to be NULL.
    not_null: BTreeSet<ValueId>,
}

impl Facts {
    /// Nothing known about `slots` slots.
    fn unknown(slots: usize) -> Facts {
        Facts {
            locals: vec![None; slots],
            bound: vec![false; slots],
            ..Facts::default()
        }
    }

    /// What both `self` and `other` know of the slots (both have forgotten their values).
    fn meet(&self, other: &Facts) -> Facts {
        let locals = (self.locals.iter().zip(&other.locals))
            .map(|(a, b)| if a == b { *a } else { None })
            .collect();
        let bound = (self.bound.iter().zip(&other.bound))
            .map(|(a, b)| *a && *b)
            .collect();
        Facts {
            locals,
            bound,
            ..Facts::default()
        }
    }

    /// Keeps what is known of the slots only: a value checked in one block and checked again
    /// in another is rare, and the per-value maps grow with every read (carried from block to
    /// block, they made the flow cost half a million instructions a function).
    fn forget_values(&mut self) {
        self.values.clear();
        self.in_slot.clear();
        self.not_null.clear();
    }

    fn slot_type(&self, slot: u32) -> Option<&'static str> {
        self.locals.get(slot as usize).copied().flatten()
    }

    fn set_slot(&mut self, slot: u32, ty: Option<&'static str>, bound: Option<bool>) {
        if let Some(t) = self.locals.get_mut(slot as usize) {
            *t = ty;
        }
        if let (Some(b), Some(known)) = (self.bound.get_mut(slot as usize), bound) {
            *b = known;
        }
    }

    /// Whether `v` is known not to be NULL here: checked before, or read from a bound slot.
    fn is_not_null(&self, v: ValueId) -> bool {
        let bound = |s: &u32| self.bound.get(*s as usize).copied().unwrap_or(false);
        self.not_null.contains(&v) || self.in_slot.get(&v).is_some_and(bound)
    }

    /// The exact type known for `v` here.
    fn type_of(&self, f: &Function, v: ValueId) -> Option<&'static str> {
        if let Some(&t) = self.values.get(&v) {
            return Some(t);
        }
        if let Some(t) = exact_type_name(f.inst(v).ty) {
            return Some(t);
        }
        self.slot_type(*self.in_slot.get(&v)?)
    }

    /// Slot `index` now holds `value`.
    fn store(&mut self, f: &Function, index: u32, value: ValueId) {
        // The value stack holds objects: only `DELETE_FAST` stores NULL (as the builder's own
        // per-block tracking has it).
        let bound = !matches!(f.inst(value).kind, InstKind::Null);
        let known = self.type_of(f, value);
        self.in_slot.retain(|_, slot| *slot != index);
        self.set_slot(index, known, Some(bound));
        self.in_slot.insert(value, index);
    }

    /// A helper may have written any slot.
    fn forget_slots(&mut self) {
        self.locals.iter_mut().for_each(|t| *t = None);
        self.bound.iter_mut().for_each(|b| *b = false);
        self.in_slot.clear();
    }
}

/// The exact types a guard can prove, with the names the builder's guards carry.
const GUARDED_TYPES: [(Type, &str); 5] = [
    (Type::INT, "int"),
    (Type::FLOAT, "float"),
    (Type::STR, "str"),
    (Type::TUPLE, "tuple"),
    (Type::LIST, "list"),
];

/// The guard name of an exact type from the lattice.
fn exact_type_name(ty: Type) -> Option<&'static str> {
    GUARDED_TYPES
        .iter()
        .find(|(t, _)| *t == ty)
        .map(|&(_, name)| name)
}

/// A guard's type name as a `'static` string, when it is one of [`GUARDED_TYPES`].
fn static_name(name: &str) -> Option<&'static str> {
    GUARDED_TYPES
        .iter()
        .find(|(_, n)| *n == name)
        .map(|&(_, n)| n)
}

/// Runs the instructions of `b` over `facts`; pushes the guards found redundant to `removed`.
fn transfer(f: &Function, b: BlockId, facts: &mut Facts, removed: &mut Vec<ValueId>) {
    for &id in &f.block(b).insts {
        match &f.inst(id).kind {
            InstKind::GuardType { value, name, .. } => {
                let Some(name) = static_name(name) else {
                    continue;
                };
                if facts.type_of(f, *value) == Some(name) {
                    removed.push(id);
                    continue;
                }
                facts.values.insert(*value, name);
                if let Some(&slot) = facts.in_slot.get(value) {
                    facts.set_slot(slot, Some(name), None);
                }
            }
            InstKind::GuardNotNull { value, .. } => {
                if facts.is_not_null(*value) {
                    removed.push(id);
                    continue;
                }
                facts.not_null.insert(*value);
                if let Some(&slot) = facts.in_slot.get(value) {
                    let ty = facts.slot_type(slot);
                    facts.set_slot(slot, ty, Some(true));
                }
            }
            InstKind::LoadLocal { index } => {
                facts.in_slot.insert(id, *index);
            }
            InstKind::StoreLocal { index, value } => facts.store(f, *index, *value),
            InstKind::CallHelper { args, .. }
                if args
                    .iter()
                    .any(|a| matches!(f.inst(*a).kind, InstKind::Frame)) =>
            {
                facts.forget_slots();
            }
            _ => {}
        }
    }
}

/// Removes the `GuardType`s whose value is already known to be of the guarded type and the
/// `GuardNotNull`s of values known not to be NULL; returns how many were removed.
pub fn eliminate_guards(f: &mut Function) -> u32 {
    let order = f.rpo();
    let mut entry: Vec<Option<Facts>> = vec![None; f.blocks.len()];
    entry[0] = Some(Facts::unknown(f.nlocalsplus as usize));
    let mut removed = Vec::new();
    // Iterate to a fixed point (facts only shrink at merges), then collect on a final pass.
    loop {
        let mut changed = false;
        for &b in &order {
            let Some(mut facts) = entry[b.0 as usize].clone() else {
                continue;
            };
            transfer(f, b, &mut facts, &mut Vec::new());
            facts.forget_values();
            for s in f.successors(b) {
                let slot = &mut entry[s.0 as usize];
                let next = match slot {
                    None => facts.clone(),
                    Some(old) => old.meet(&facts),
                };
                if slot.as_ref() != Some(&next) {
                    *slot = Some(next);
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    for &b in &order {
        if let Some(mut facts) = entry[b.0 as usize].clone() {
            transfer(f, b, &mut facts, &mut removed);
        }
    }
    let count = removed.len() as u32;
    f.remove_insts(removed);
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hir::{ExitKind, FrameState, StateId, Terminator};

    fn state(f: &mut Function) -> StateId {
        f.add_state(FrameState {
            resume_at: 0,
            stack: Vec::new(),
            kind: ExitKind::Deopt,
            reason: "operand types",
            site: Some(0),
            pending_calls_at: None,
        })
    }

    fn guard(f: &mut Function, b: BlockId, value: ValueId, s: StateId) -> ValueId {
        let kind = InstKind::GuardType {
            value,
            ty: 0x1000,
            name: "float".to_string(),
            state: s,
        };
        f.push(b, kind, Type::VOID, 0)
    }

    fn load(f: &mut Function, b: BlockId, index: u32) -> ValueId {
        f.push(b, InstKind::LoadLocal { index }, Type::OBJECT, 0)
    }

    /// An entry block that branches to two blocks, which both jump to a fourth: the three.
    fn diamond(f: &mut Function) -> [BlockId; 3] {
        let [entry, left, right, join] = [0, 1, 2, 3].map(|bc| f.new_block(bc));
        let c = f.push(entry, InstKind::CInt { value: 1 }, Type::CBOOL, 0);
        f.blocks[entry.0 as usize].term = Terminator::Branch {
            cond: c,
            then_to: left,
            then_args: vec![],
            else_to: right,
            else_args: vec![],
        };
        for b in [left, right] {
            f.blocks[b.0 as usize].term = Terminator::Jump {
                target: join,
                args: vec![],
            };
        }
        [left, right, join]
    }

    fn guards_left(f: &Function) -> usize {
        let is_guard = |id: &&ValueId| matches!(f.inst(**id).kind, InstKind::GuardType { .. });
        f.blocks
            .iter()
            .map(|b| b.insts.iter().filter(is_guard).count())
            .sum()
    }

    #[test]
    fn a_slot_checked_once_is_not_checked_again_until_it_is_stored_into() {
        let mut f = Function::new("t", 2);
        let b = f.new_block(0);
        let s = state(&mut f);
        let x1 = load(&mut f, b, 0);
        let x2 = load(&mut f, b, 0);
        guard(&mut f, b, x1, s);
        guard(&mut f, b, x2, s); // the same slot: removed
        let y = load(&mut f, b, 1);
        f.push(
            b,
            InstKind::StoreLocal { index: 0, value: y },
            Type::VOID,
            0,
        );
        let x3 = load(&mut f, b, 0);
        guard(&mut f, b, x3, s); // slot 0 now holds y, of unknown type: kept
        guard(&mut f, b, y, s); // y itself was just checked (as x3): removed
        let kept = f.push(b, InstKind::Null, Type::OPT_OBJECT, 0);
        f.blocks[b.0 as usize].term = Terminator::Return { value: kept, bc: 0 };
        assert_eq!(eliminate_guards(&mut f), 2);
        assert_eq!(guards_left(&f), 2);
    }

    #[test]
    fn what_one_path_to_a_merge_knows_is_not_known_after_it() {
        let mut f = Function::new("t", 1);
        let [left, _, join] = diamond(&mut f);
        let s = state(&mut f);
        let x = load(&mut f, left, 0);
        guard(&mut f, left, x, s);
        let x = load(&mut f, join, 0);
        guard(&mut f, join, x, s); // checked on one path only: kept
        let product = f.push(
            join,
            InstKind::FloatArith {
                a: x,
                b: x,
                op: crate::hir::WordArith::Mul,
            },
            Type::FLOAT,
            0,
        );
        guard(&mut f, join, product, s); // a float product: removed
        f.blocks[join.0 as usize].term = Terminator::Return {
            value: product,
            bc: 0,
        };
        assert_eq!(eliminate_guards(&mut f), 1);
        assert_eq!(guards_left(&f), 2);
    }

    #[test]
    fn a_slot_stored_on_every_path_is_bound_after_the_merge_unless_deleted() {
        let mut f = Function::new("t", 2);
        let [left, right, join] = diamond(&mut f);
        let s = state(&mut f);
        for b in [left, right] {
            let one = f.push(
                b,
                InstKind::Const {
                    obj: 0,
                    text: "1".into(),
                },
                Type::INT,
                0,
            );
            f.push(
                b,
                InstKind::StoreLocal {
                    index: 0,
                    value: one,
                },
                Type::VOID,
                0,
            );
        }
        let null = f.push(left, InstKind::Null, Type::NULL, 0);
        f.push(
            left,
            InstKind::StoreLocal {
                index: 1,
                value: null,
            },
            Type::VOID,
            0,
        );
        let x = load(&mut f, join, 0);
        f.push(
            join,
            InstKind::GuardNotNull { value: x, state: s },
            Type::VOID,
            0,
        ); // removed
        let y = load(&mut f, join, 1);
        f.push(
            join,
            InstKind::GuardNotNull { value: y, state: s },
            Type::VOID,
            0,
        ); // kept
        let y2 = load(&mut f, join, 1);
        f.push(
            join,
            InstKind::GuardNotNull {
                value: y2,
                state: s,
            },
            Type::VOID,
            0,
        ); // removed
        f.blocks[join.0 as usize].term = Terminator::Return { value: x, bc: 0 };
        assert_eq!(eliminate_guards(&mut f), 2);
        let left_in_join = f.blocks[join.0 as usize].insts.iter();
        let kept: Vec<_> = left_in_join
            .filter(|id| matches!(f.inst(**id).kind, InstKind::GuardNotNull { .. }))
            .map(|id| match f.inst(*id).kind {
                InstKind::GuardNotNull { value, .. } => value,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(kept, vec![y]);
    }
}
