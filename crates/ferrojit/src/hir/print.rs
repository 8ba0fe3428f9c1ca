//! Printing HIR as text a person can read (and snapshot tests can compare):
//!
//! ```text
//! fn name
//! bb0(v0: Object):            # @12
//!   v3:Object = LoadLocal 0
//!   v4 = Incref v3
//!   v7:CInt = CallHelper PyObject_IsTrue(v3)
//!   ...
//! exits:
//!   fs0: deopt @14 [v3] "LOAD_ATTR type version"
//! ```

use super::*;
use std::fmt::Write;

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "fn {}", self.name)?;
        for b in self.rpo() {
            let block = self.block(b);
            let params: Vec<String> = block
                .params
                .iter()
                .map(|p| format!("{p}: {}", self.inst(*p).ty))
                .collect();
            let cold = if block.cold { ", cold" } else { "" };
            writeln!(f, "{b}({}):  # @{}{cold}", params.join(", "), block.bc)?;
            for v in &block.insts {
                writeln!(f, "  {}", self.inst_text(*v))?;
            }
            writeln!(f, "  {}", self.term_text(&block.term))?;
        }
        // The exits some instruction still leaves through (a pass may have removed the rest),
        // under their numbers.
        let mut used = vec![false; self.states.len()];
        for block in &self.blocks {
            let insts = block
                .insts
                .iter()
                .filter_map(|v| self.inst(*v).kind.state());
            let term = match block.term {
                Terminator::Exit { state } => Some(state),
                _ => None,
            };
            for s in insts.chain(term) {
                used[s.0 as usize] = true;
            }
        }
        if used.contains(&true) {
            writeln!(f, "exits:")?;
            let states = self.states.iter().enumerate().filter(|(i, _)| used[*i]);
            for (i, s) in states {
                let kind = match s.kind {
                    ExitKind::Deopt => "deopt",
                    ExitKind::Raise => "raise",
                };
                let site = s
                    .site
                    .map(|b| format!(" speculated @{b}"))
                    .unwrap_or_default();
                writeln!(
                    f,
                    "  fs{i}: {kind} @{} [{}] \"{}\"{site}",
                    s.resume_at,
                    self.stack_text(&s.stack),
                    s.reason
                )?;
            }
        }
        Ok(())
    }
}

impl Function {
    /// An exit's value stack, borrowed values marked `&` (the exit takes a reference).
    fn stack_text(&self, vs: &[ValueId]) -> String {
        let marked: Vec<String> = vs
            .iter()
            .map(|&v| match self.is_borrowed(v) {
                true => format!("&{v}"),
                false => v.to_string(),
            })
            .collect();
        marked.join(", ")
    }
}

fn list(vs: &[ValueId]) -> String {
    vs.iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Function {
    /// One instruction as text.
    pub fn inst_text(&self, v: ValueId) -> String {
        let inst = self.inst(v);
        let mut s = String::new();
        if inst.ty != Type::VOID {
            let _ = write!(s, "{v}:{} = ", inst.ty);
        }
        let _ = match &inst.kind {
            InstKind::Param { index } => write!(s, "Param {index}"),
            InstKind::Const { text, .. } => write!(s, "Const {text}"),
            InstKind::CInt { value } => write!(s, "CInt {value}"),
            InstKind::SiteCache { index } => write!(s, "SiteCache #{index}"),
            InstKind::Null => write!(s, "Null"),
            InstKind::Frame => write!(s, "Frame"),
            InstKind::LoadLocal { index } => write!(s, "LoadLocal {index}"),
            InstKind::StoreLocal { index, value } => write!(s, "StoreLocal {index}, {value}"),
            InstKind::Incref { value } => write!(s, "Incref {value}"),
            InstKind::Decref { value } => write!(s, "Decref {value}"),
            InstKind::SpillToStack { depth, values } => {
                write!(s, "SpillToStack @{depth} [{}]", list(values))
            }
            InstKind::ReadStack { depth } => write!(s, "ReadStack @{depth}"),
            InstKind::StackAddr { depth } => write!(s, "StackAddr @{depth}"),
            InstKind::CallHelper { helper, args } => {
                write!(s, "CallHelper {}({})", helper.name(), list(args))
            }
            InstKind::CallCompiled {
                base,
                oparg,
                method,
                kwnames,
                callees,
                class,
            } => {
                let form = match (method, class) {
                    (_, Some(class)) => format!("class {} ->", class.name),
                    (true, None) => "method".to_string(),
                    (false, None) => "function".to_string(),
                };
                let names: Vec<String> = callees.iter().map(site_callee).collect();
                let kw = kwnames.map(|k| format!(", kw {k}")).unwrap_or_default();
                write!(
                    s,
                    "CallCompiled {form} {}({base}, {oparg}{kw})",
                    names.join("|")
                )
            }
            InstKind::CheckError {
                value,
                check,
                state,
            } => write!(s, "CheckError {value} {check:?} -> {state}"),
            InstKind::GuardNotMarker { value, state } => {
                write!(s, "GuardNotMarker {value} -> {state}")
            }
            InstKind::GuardNotNull { value, state } => write!(s, "GuardNotNull {value} -> {state}"),
            InstKind::GuardType {
                value, name, state, ..
            } => write!(s, "GuardType {value} is {name} -> {state}"),
            InstKind::GuardTypeVersion {
                value,
                version,
                state,
            } => {
                write!(s, "GuardTypeVersion {value} == {version} -> {state}")
            }
            InstKind::GuardCachedKeysVersion {
                value,
                version,
                state,
            } => {
                write!(s, "GuardCachedKeysVersion {value} == {version} -> {state}")
            }
            InstKind::HasTypeVersion { value, version } => {
                write!(s, "HasTypeVersion {value} == {version}")
            }
            InstKind::SharedKeysAre { value, check } => match check {
                KeysCheck::Version(v) => write!(s, "SharedKeysAre {value} version == {v}"),
                KeysCheck::Entries(n) => write!(s, "SharedKeysAre {value} entries == {n}"),
            },
            InstKind::GuardNoDict { value, state } => write!(s, "GuardNoDict {value} -> {state}"),
            InstKind::GuardInterpreterIdle { state } => {
                write!(s, "GuardInterpreterIdle -> {state}")
            }
            InstKind::InstanceValues { obj } => write!(s, "InstanceValues {obj}"),
            InstKind::LoadWord { base, index } => write!(s, "LoadWord {base}[{index}]"),
            InstKind::LoadDictHint { obj, name, hint } => {
                write!(s, "LoadDictHint {obj} {name} hint={hint}")
            }
            InstKind::LoadModuleAttr {
                obj,
                version,
                index,
            } => write!(s, "LoadModuleAttr {obj} keys={version} [{index}]"),
            InstKind::StoreWord { base, index, value } => {
                write!(s, "StoreWord {base}[{index}] = {value}")
            }
            InstKind::LoadModuleGlobal {
                version,
                index,
                state,
                ..
            } => {
                write!(s, "LoadModuleGlobal keys {version} [{index}] -> {state}")
            }
            InstKind::LoadBuiltin {
                globals_version,
                builtins_version,
                index,
                state,
                ..
            } => {
                write!(
                    s,
                    "LoadBuiltin keys {globals_version}/{builtins_version} [{index}] -> {state}"
                )
            }
            InstKind::Is { a, b } => write!(s, "Is {a}, {b}"),
            InstKind::IsCompactInt { value } => write!(s, "IsCompactInt {value}"),
            InstKind::CompactIntValue { value } => write!(s, "CompactIntValue {value}"),
            InstKind::CompareWords { a, b, op } => {
                write!(s, "CompareWords {a} {} {b}", compare_sign(*op))
            }
            InstKind::CompareFloats { a, b, op } => {
                write!(s, "CompareFloats {a} {} {b}", compare_sign(*op))
            }
            InstKind::ArithWords { a, b, op } => write!(s, "ArithWords {a} {} {b}", op.sign()),
            InstKind::Truthy { value } => write!(s, "Truthy {value}"),
            InstKind::BoolObject { value, negate } => {
                write!(s, "BoolObject {}{value}", if *negate { "not " } else { "" })
            }
            InstKind::NonZero { value } => write!(s, "NonZero {value}"),
            InstKind::NotNull { value } => write!(s, "NotNull {value}"),
            InstKind::IsExhausted { value } => write!(s, "IsExhausted {value}"),
            InstKind::SeqIterNext { iter } => write!(s, "SeqIterNext {iter}"),
            InstKind::FloatArith { a, b, op } => write!(s, "FloatArith {a} {} {b}", op.sign()),
            InstKind::SuspendedAt { bc } => write!(s, "SuspendedAt @{bc}"),
            InstKind::TakeFrameStack => write!(s, "TakeFrameStack"),
        };
        if self.is_borrowed(v) {
            s.push_str(" (borrowed)");
        }
        s
    }

    fn term_text(&self, t: &Terminator) -> String {
        match t {
            Terminator::None => "<no terminator>".to_string(),
            Terminator::Jump { target, args } => format!("Jump {target}({})", list(args)),
            Terminator::Branch {
                cond,
                then_to,
                then_args,
                else_to,
                else_args,
            } => {
                format!(
                    "Branch {cond} ? {then_to}({}) : {else_to}({})",
                    list(then_args),
                    list(else_args)
                )
            }
            Terminator::Return { value, .. } => format!("Return {value}"),
            Terminator::Exit { state } => format!("Exit -> {state}"),
            Terminator::Yield { value, stack, bc } => {
                let kept: Vec<String> = stack.iter().map(|v| v.to_string()).collect();
                format!("Yield {value} @{bc}, keeps [{}]", kept.join(", "))
            }
        }
    }
}

/// The operator of a `COMPARE_OP` oparg.
fn compare_sign(op: u32) -> &'static str {
    ["<", "<=", "==", "!=", ">", ">="]
        .get(op as usize)
        .unwrap_or(&"?")
}

/// A candidate of a `CallCompiled`: its name, then where its parameters come from when that
/// is not simply the passed words in order (`a2` the third passed word, `d0` the first
/// default), as in `Square.find[a0 a1 d0]`.
fn site_callee(c: &crate::hir::SiteCallee) -> String {
    use crate::hir::ArgFrom;
    let in_order = c
        .args
        .iter()
        .enumerate()
        .all(|(i, a)| *a == ArgFrom::Passed(i as u32));
    if in_order {
        return c.callee.name.clone();
    }
    let args: Vec<String> = c
        .args
        .iter()
        .map(|a| match a {
            ArgFrom::Passed(i) => format!("a{i}"),
            ArgFrom::Default(i) => format!("d{i}"),
        })
        .collect();
    format!("{}[{}]", c.callee.name, args.join(" "))
}
