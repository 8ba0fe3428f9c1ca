//! Translates 3.11 bytecode (with the interpreter's feedback) into HIR by abstract
//! interpretation of the value stack.
//!
//! Locals stay in the frame (`LoadLocal`/`StoreLocal`), the value stack becomes SSA values, and
//! block parameters carry stack entries across jumps. Only code reachable by normal control flow
//! is translated: exception handlers run in the interpreter after a `Raise` exit. Specialised
//! instructions become guards plus fast operations; anything else calls a helper. An opcode the
//! builder does not know refuses the whole function, with the opcode as the reason.

use super::*;
use crate::bytecode::Instr;
use crate::cpython::opcodes::*;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The word of a `PyCellObject` that holds its value (`ob_ref`, right after the object header;
/// `runtime::compile` refuses closures if the probed layout says otherwise).
pub const CELL_REF_WORD: u32 = 2;

/// The exit reason of a `LOAD_GLOBAL` whose module dict's keys changed since compiling (a
/// global was added or deleted): the deopt policy recompiles at once rather than counting.
pub const MODULE_KEYS_CHANGED: &str = "LOAD_GLOBAL module keys changed";
/// As [`MODULE_KEYS_CHANGED`], for a load from the builtins (either dict's keys changed).
pub const BUILTINS_KEYS_CHANGED: &str = "LOAD_GLOBAL builtins keys changed";

/// A constant of the code object as the builder needs it.
#[derive(Clone, Debug)]
pub struct ConstInfo {
    pub obj: usize,
    pub text: String,
    pub ty: Type,
}

/// Well-known objects the translation compares against.
#[derive(Clone, Copy, Debug, Default)]
pub struct WellKnown {
    pub none: usize,
    pub true_: usize,
    pub false_: usize,
    /// The type objects `int`, `float`, `str`, `list` and `tuple`, which specialised
    /// instructions guard.
    pub int_type: usize,
    pub float_type: usize,
    pub str_type: usize,
    pub list_type: usize,
    pub tuple_type: usize,
}

/// Whether a value whose truth is taken is off the stack already (and released with the test).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Popped {
    Yes,
    No,
}

/// What the site caches of a function's earlier native code saw at loads that met several
/// types, by site (code-unit index): each becomes a chain of type checks, each type's case
/// inline, anything else the site's generic path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolySites {
    /// `LOAD_ATTR` sites: the (type version, shared-keys index) of each type whose instance
    /// attribute the cache read (`poly-attrs`).
    pub attrs: BTreeMap<u32, Vec<(u32, u32)>>,
    /// `LOAD_METHOD` sites: each type's method (`poly-methods`).
    pub methods: BTreeMap<u32, Vec<MethodCase>>,
    /// `STORE_ATTR` sites: the (type version, shared-keys index) of each type whose instance
    /// attribute the cache stored (`poly-stores`).
    pub stores: BTreeMap<u32, Vec<(u32, u32)>>,
}

/// One type's case of a polymorphic `LOAD_METHOD`: instances of the type at version `version`
/// find the function `method` on it (borrowed from the type's dict, alive while the version
/// holds, as the interpreter's inline cache keeps it) unless they shadow it with an attribute
/// of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MethodCase {
    pub version: u32,
    pub method: usize,
    pub unshadowed: Unshadowed,
}

/// How an instance of a [`MethodCase`]'s type proves that no attribute of its own shadows the
/// method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unshadowed {
    /// The type's instances have no dict.
    NoDict,
    /// Its values are in place and the type's shared keys pass this check.
    Values(KeysCheck),
    /// Its values were made into a dict of its own, which lacks the name: looked up in that
    /// dict by `fj_own_dict_lacks` (`own-dict-methods`).
    OwnDict,
}

impl MethodCase {
    /// The case a `LOAD_METHOD` the interpreter specialised for one type (`_WITH_VALUES`,
    /// `_NO_DICT`) holds in its inline cache.
    pub fn interpreters(ins: &Instr) -> Option<MethodCase> {
        let unshadowed = match ins.specialised {
            LOAD_METHOD_WITH_VALUES => Unshadowed::Values(KeysCheck::Version(ins.cache_u32(4))),
            LOAD_METHOD_NO_DICT => Unshadowed::NoDict,
            _ => return None,
        };
        Some(MethodCase {
            version: ins.cache_u32(1),
            method: ins.cache_u64(6) as usize,
            unshadowed,
        })
    }
}

/// What a call made in machine code may bind besides the positional parameters.
#[derive(Clone, Copy, Debug, Default)]
pub struct CallBinding {
    pub keywords: bool,
    pub defaults: bool,
}

/// What the builder reads about a code object. Produced by `runtime::compile` from a live code
/// object, or by hand in tests.
#[derive(Clone, Debug)]
pub struct CodeInfo {
    pub name: String,
    pub instrs: Vec<Instr>,
    pub consts: Vec<ConstInfo>,
    pub names: Vec<ConstInfo>,
    pub nlocalsplus: u32,
    /// Locals that are always bound on entry (the parameters).
    pub nparams: u32,
    /// The globals dict's keys version and entries offset at compile time, if it is an exact
    /// dict: feedback for `LOAD_GLOBAL_*` is used only when the cached version matches.
    pub globals_keys: Option<KeysInfo>,
    pub builtins_keys: Option<KeysInfo>,
    pub well_known: WellKnown,
    /// A generator, coroutine or async generator function (`CO_GENERATOR`, `CO_COROUTINE`,
    /// `CO_ASYNC_GENERATOR`): compiled code resumes its suspended frame.
    pub generator: bool,
    /// `yield from` takes a coroutine (a `types.coroutine` generator: `CO_ITERABLE_COROUTINE`).
    pub yield_from_coroutines: bool,
    /// `await`, `yield from`, `async with` and `async for` (`GET_AWAITABLE`,
    /// `GET_YIELD_FROM_ITER`, `SEND`, `BEFORE_ASYNC_WITH`, `GET_AITER`, `GET_ANEXT`) compile
    /// (the `compile-send` optimisation); otherwise code using them stays with the
    /// interpreter.
    pub compile_send: bool,
    /// Where each name of `co_names` was found at compile time, for a `LOAD_GLOBAL` the
    /// interpreter had not specialised (never ran before the function compiled): empty when
    /// that optimisation is switched off.
    pub global_slots: Vec<GlobalSlot>,
    /// Instructions (code-unit index) that get their generic path instead of speculating on
    /// the interpreter's feedback: the deopt policy's answer to a speculation that kept failing.
    pub generic_sites: BTreeSet<u32>,
    /// Attribute and method loads whose caches saw several types (`poly-attrs`,
    /// `poly-methods`): a chain of type checks, each with its case inline.
    pub poly: PolySites,
    /// `LOAD_ATTR_WITH_HINT` and `LOAD_ATTR_MODULE` read the dict entry in machine code (the
    /// `inline-dict-attrs` optimisation); otherwise they take the site-cached generic lookup.
    pub inline_dict_attrs: bool,
    /// Generic `STORE_ATTR`s store through their site's cache (`fj_setattr_cached`, the
    /// `poly-stores` optimisation); otherwise `PyObject_SetAttr`.
    pub cached_stores: bool,
    /// `STORE_ATTR_WITH_HINT` stores through `fj_store_attr_dict` (the `store-attr-dict`
    /// optimisation); otherwise `PyObject_SetAttr`.
    pub store_attr_dict: bool,
    /// `COMPARE_OP_INT_JUMP` compares one-digit ints in machine code (the
    /// `inline-int-compare` optimisation); otherwise always through its helper.
    pub inline_int_compare: bool,
    /// `UNPACK_SEQUENCE` specialised for a tuple or list reads the items of one of the right
    /// length in machine code (the `inline-unpack` optimisation).
    pub inline_unpack: bool,
    /// `FOR_ITER` takes the next item of a list or tuple iterator in machine code.
    pub inline_for_iter: bool,
    /// A jump on the truth of a bool this function just made from a condition (`not x`,
    /// `a in b`, a comparison) branches on the condition itself (the `fuse-bool-branches`
    /// optimisation), without the truth test of the boxed bool.
    pub fuse_bool_branches: bool,
    /// Generic `+ - * /` sites call the helper that computes mixed floats and ints in doubles.
    pub mixed_float_arith: bool,
    /// `BINARY_OP_*_FLOAT` computes in machine code (`FloatArith`).
    pub inline_float_arith: bool,
    /// `COMPARE_OP_FLOAT_JUMP` compares in machine code (`CompareFloats`).
    pub inline_float_compare: bool,
    /// `BINARY_OP_{ADD,SUBTRACT,MULTIPLY}_INT` computes one-digit ints in machine words (the
    /// `inline-int-arith` optimisation); otherwise always through its helper.
    pub inline_int_arith: bool,
    /// Constant operands of specialised arithmetic and comparisons are known: no type guard
    /// for an int or float constant, no one-digit test for a small int constant, whose word
    /// is a `CInt` (the `constant-operands` optimisation).
    pub constant_operands: bool,
    /// A `CALL` whose `PRECALL` the interpreter specialised for a C function calls it
    /// through `fj_call_c` (the `c-calls` optimisation); otherwise through `fj_call`.
    pub c_calls: bool,
    /// The functions a call may enter from machine code, by address, with what their calls
    /// need (`calls-in-machine-code`; empty when it is off): the methods of this code's
    /// `LOAD_METHOD` caches and the functions its `LOAD_GLOBAL`s found, whose code takes
    /// exactly positional parameters.
    pub callees: BTreeMap<usize, KnownCallee>,
    /// The names of each `KW_NAMES` constant (by index in `co_consts`), for calls that pass
    /// keywords to one of `callees`.
    pub kwnames: BTreeMap<usize, Vec<String>>,
    /// What calls in machine code may bind besides the positional parameters, when
    /// `machine-code-call-binding` is on: keywords (`direct-call-keywords` on too) and
    /// defaults (`direct-call-defaults` on too).
    pub call_binding: CallBinding,
    /// The function of `callees` each `LOAD_GLOBAL` of a callable found at compile time, by
    /// its name's index.
    pub global_functions: BTreeMap<u32, usize>,
    /// The classes whose calls make their instance in machine code (`KnownClass`) that
    /// `LOAD_GLOBAL`s of a callable found at compile time, by index in `co_names`
    /// (`constructors-in-machine-code`); their `__init__` are among `callees`.
    pub global_classes: BTreeMap<u32, KnownClass>,
    /// Compile entries at the loops' headers too (`osr`): the frame of a call that the
    /// interpreter started can continue here from a back edge, with its stack as it stands.
    pub loop_entries: bool,
}

/// Where a global name lived when the function was compiled: an entry of the module's
/// globals, or of the builtins (and not in the globals). Valid while the keys versions in
/// `globals_keys`/`builtins_keys` hold, which the loads guard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GlobalSlot {
    /// Not found, or a keys version was unset: the generic lookup.
    Unknown,
    /// Entry `index` of the globals.
    Module(u32),
    /// Entry `index` of the builtins.
    Builtin(u32),
}

/// A dict's keys object as seen at compile time.
#[derive(Clone, Copy, Debug)]
pub struct KeysInfo {
    pub version: u32,
    /// Byte offset of the entries from the start of the keys object.
    pub entries: u32,
}

/// Why a function cannot be compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported(pub String);

/// Builds the HIR of `code`.
pub fn build(code: &CodeInfo) -> Result<Function, Unsupported> {
    Builder::new(code).run()
}

/// The two sequence types whose items `UNPACK_SEQUENCE` reads in machine code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SeqKind {
    Tuple,
    List,
}

/// A two-way branch on machine bool `cond` that passes no arguments.
fn branch(cond: ValueId, then_to: BlockId, else_to: BlockId) -> Terminator {
    Terminator::Branch {
        cond,
        then_to,
        then_args: vec![],
        else_to,
        else_args: vec![],
    }
}

struct Builder<'a> {
    code: &'a CodeInfo,
    func: Function,
    /// Instruction index by code-unit index of its start.
    index_of: BTreeMap<u32, usize>,
    /// Block starting at each jump target / fall-through point.
    block_at: BTreeMap<u32, BlockId>,
    /// Blocks whose entry stack is known and that wait to be translated.
    work: VecDeque<BlockId>,
    started: Vec<bool>,
    frame: Option<ValueId>,
    /// Locals some `DELETE_FAST` unbinds: not bound on entry even if they are parameters.
    deleted: BTreeSet<u32>,
    /// A generator's suspension points (code-unit index) and their resume blocks.
    resume_heads: Vec<(u32, BlockId)>,
    /// Method values of `LOAD_METHOD`s whose every inline case finds the same function (its
    /// address): a `CALL` of one may enter the function's native code from machine code.
    known_methods: BTreeMap<ValueId, Vec<usize>>,
    /// Values of `LOAD_GLOBAL`s that found a function of `CodeInfo::callees` at compile time.
    known_functions: BTreeMap<ValueId, usize>,
    /// Values of `LOAD_GLOBAL`s that found a class of `CodeInfo::global_classes`.
    known_classes: BTreeMap<ValueId, KnownClass>,
}

/// Translation state inside one block.
struct Cursor {
    block: BlockId,
    stack: Vec<ValueId>,
    /// Locals stored in this block so far (definitely bound).
    bound: Vec<u32>,
    /// The instruction a deopt at the coming CALL must resume at (PRECALL or KW_NAMES).
    call_start: Option<u32>,
    kwnames: Option<usize>,
}

impl<'a> Builder<'a> {
    fn new(code: &'a CodeInfo) -> Self {
        let mut func = Function::new(&code.name, code.nlocalsplus);
        let index_of = code
            .instrs
            .iter()
            .enumerate()
            .map(|(i, ins)| (ins.start, i))
            .collect();
        let entry = func.new_block(0);
        let mut block_at = BTreeMap::new();
        block_at.insert(0, entry);
        Builder {
            code,
            func,
            index_of,
            block_at,
            work: VecDeque::new(),
            started: Vec::new(),
            frame: None,
            known_methods: BTreeMap::new(),
            known_functions: BTreeMap::new(),
            known_classes: BTreeMap::new(),
            deleted: code
                .instrs
                .iter()
                .filter(|i| i.op == DELETE_FAST)
                .map(|i| i.arg)
                .collect(),
            resume_heads: Vec::new(),
        }
    }

    fn run(mut self) -> Result<Function, Unsupported> {
        self.find_blocks();
        self.started = vec![false; self.func.blocks.len()];
        let entry = BlockId(0);
        let frame = self.func.push(entry, InstKind::Frame, Type::CPTR, 0);
        self.frame = Some(frame);
        self.started[0] = true;
        if self.code.generator {
            return self.run_generator(entry);
        }
        if self.code.loop_entries {
            return self.run_with_loop_entries(entry);
        }
        self.work.push_back(entry);
        while let Some(b) = self.work.pop_front() {
            self.translate_block(b)?;
        }
        Ok(self.func)
    }

    /// A generator's code is entered only to resume its frame (the interpreter runs the first
    /// call, up to `RETURN_GENERATOR`, which makes the generator): the entry block dispatches
    /// on where the frame was suspended to a resume block per suspension point, which takes
    /// the frame's value stack (the sent value on top) and continues after that point.
    fn run_generator(mut self, entry: BlockId) -> Result<Function, Unsupported> {
        let start = self
            .code
            .instrs
            .iter()
            .find(|i| i.op == RETURN_GENERATOR)
            .cloned()
            .ok_or_else(|| Unsupported("generator without RETURN_GENERATOR".into()))?;
        // The first send() resumes after RETURN_GENERATOR with its value (None) pushed.
        self.resume_point(&start, 1)?;
        while let Some(b) = self.work.pop_front() {
            self.translate_block(b)?;
        }
        self.dispatch(entry, None);
        Ok(self.func)
    }

    /// A function entered at its start, or at the header of one of its loops by a frame that
    /// the interpreter ran up to that loop's back edge (on-stack replacement, see
    /// `runtime::osr`): the entry block dispatches on the frame's `prev_instr` (at a back edge
    /// for a loop entry, before the first instruction for a call) to a block per back edge,
    /// which takes the frame's value stack and jumps to the loop's header, or to the start.
    fn run_with_loop_entries(mut self, entry: BlockId) -> Result<Function, Unsupported> {
        let start = self.func.new_block(0);
        self.started.push(true);
        self.block_at.insert(0, start);
        self.work.push_back(start);
        while let Some(b) = self.work.pop_front() {
            self.translate_block(b)?;
        }
        let edges: Vec<Instr> = (self.code.instrs.iter())
            .filter(|i| crate::bytecode::is_loop_edge(i.op))
            .cloned()
            .collect();
        for edge in &edges {
            self.loop_entry(edge)?;
        }
        self.dispatch(entry, Some(start));
        Ok(self.func)
    }

    /// The entry at the header of the loop that `edge` closes, for a frame stopped at `edge`
    /// with the header's stack (none if the header was never reached, or holds anything but
    /// objects).
    fn loop_entry(&mut self, edge: &Instr) -> Result<(), Unsupported> {
        let Some(header) = edge.jump_target() else {
            return Ok(());
        };
        let target = self.block_for(header)?;
        if !self.started[target.0 as usize] {
            return Ok(());
        }
        let params = self.func.block(target).params.clone();
        if params.iter().any(|&p| !self.func.inst(p).ty.is_object()) {
            return Ok(());
        }
        let depth = params.len() as u32;
        self.stack_entry(edge.at, target, header, depth);
        self.func.loop_entries.push((edge.at, depth));
        Ok(())
    }

    /// A resume block for a frame suspended at `suspended` with `depth` values on its stack:
    /// it reads them and continues at the next instruction.
    fn resume_point(&mut self, suspended: &Instr, depth: u32) -> Result<(), Unsupported> {
        let at = suspended.next();
        let target = self.block_for(at)?;
        self.stack_entry(suspended.at, target, at, depth);
        Ok(())
    }

    /// An entry block (at bytecode `bc`) for a frame whose `prev_instr` is code unit `key`: it
    /// takes the `depth` values of the frame's value stack (the frame owns them) and jumps to
    /// `target` with them. The dispatch of the entry block chooses it (see [`Self::dispatch`]).
    fn stack_entry(&mut self, key: u32, target: BlockId, bc: u32, depth: u32) {
        let head = self.func.new_block(bc);
        self.started.push(true);
        let values: Vec<ValueId> = (0..depth)
            .map(|d| {
                let read = InstKind::ReadStack { depth: d };
                self.func.push(head, read, Type::OBJECT, key)
            })
            .collect();
        self.func
            .push(head, InstKind::TakeFrameStack, Type::VOID, key);
        let args = self.edge_to(target, &values);
        self.func.blocks[head.0 as usize].term = Terminator::Jump { target, args };
        self.resume_heads.push((key, head));
    }

    /// Ends `entry` with the choice of resume block by the frame's `prev_instr`. Without a
    /// `default`, the last one is taken without a test: the runtime enters a generator's code
    /// only for a frame suspended at one of `resume_points`.
    fn dispatch(&mut self, entry: BlockId, default: Option<BlockId>) {
        let heads = std::mem::take(&mut self.resume_heads);
        self.func.resume_points = heads.iter().map(|&(bc, _)| bc).collect();
        let (last, tested) = match (default, heads.split_last()) {
            (Some(start), _) => (start, &heads[..]),
            (None, Some((&(_, last), tested))) => (last, tested),
            (None, None) => return,
        };
        let mut from = entry;
        for &(bc, head) in tested {
            let cond = self
                .func
                .push(from, InstKind::SuspendedAt { bc }, Type::CBOOL, bc);
            let next = self.func.new_block(bc);
            self.started.push(true);
            self.func.blocks[from.0 as usize].term = Terminator::Branch {
                cond,
                then_to: head,
                then_args: vec![],
                else_to: next,
                else_args: vec![],
            };
            from = next;
        }
        self.func.blocks[from.0 as usize].term = Terminator::Jump {
            target: last,
            args: vec![],
        };
    }

    /// Creates a block at every jump target and after every instruction that ends a block.
    fn find_blocks(&mut self) {
        let mut starts = Vec::new();
        for ins in &self.code.instrs {
            if let Some(t) = ins.jump_target() {
                starts.push(t);
                starts.push(ins.next());
            }
            if matches!(
                ins.op,
                RETURN_VALUE
                    | RAISE_VARARGS
                    | RERAISE
                    | LOAD_ASSERTION_ERROR
                    | RETURN_GENERATOR
                    | YIELD_VALUE
            ) {
                starts.push(ins.next());
            }
        }
        for s in starts {
            if self.index_of.contains_key(&s) && !self.block_at.contains_key(&s) {
                let b = self.func.new_block(s);
                self.block_at.insert(s, b);
            }
        }
    }

    /// Makes `target` (at bytecode `bc`) receive `stack` as its parameters, queueing it the
    /// first time; returns the block arguments.
    fn edge_to(&mut self, target: BlockId, stack: &[ValueId]) -> Vec<ValueId> {
        if !self.started[target.0 as usize] {
            self.started[target.0 as usize] = true;
            for v in stack {
                let ty = self.func.inst(*v).ty;
                let ty = if ty.is_object() {
                    ty.union(Type::OBJECT).union(Type::NULL.meet(ty))
                } else {
                    ty
                };
                self.func.add_param(target, ty);
            }
            self.work.push_back(target);
        }
        assert_eq!(
            self.func.block(target).params.len(),
            stack.len(),
            "stack depth differs at {target}"
        );
        stack.to_vec()
    }

    fn block_for(&self, bc: u32) -> Result<BlockId, Unsupported> {
        self.block_at
            .get(&bc)
            .copied()
            .ok_or_else(|| Unsupported(format!("jump into the middle of an instruction at {bc}")))
    }

    fn translate_block(&mut self, block: BlockId) -> Result<(), Unsupported> {
        let bc = self.func.block(block).bc;
        let stack = self.func.block(block).params.clone();
        let mut cur = Cursor {
            block,
            stack,
            bound: Vec::new(),
            call_start: None,
            kwnames: None,
        };
        let mut i = self.index_of[&bc];
        loop {
            let ins = self.code.instrs[i].clone();
            if ins.start != bc && self.block_at.contains_key(&ins.start) {
                let target = self.block_at[&ins.start];
                let args = self.edge_to(target, &cur.stack);
                self.func.blocks[cur.block.0 as usize].term = Terminator::Jump { target, args };
                return Ok(());
            }
            if self.translate(&mut cur, &ins)? {
                return Ok(());
            }
            i += 1;
            if i >= self.code.instrs.len() {
                return Err(Unsupported("falls off the end of the code".into()));
            }
        }
    }

    // ---- small emitters -------------------------------------------------------------------

    fn emit(&mut self, cur: &Cursor, kind: InstKind, ty: Type, ins: &Instr) -> ValueId {
        self.func.push(cur.block, kind, ty, ins.at)
    }

    fn incref(&mut self, cur: &Cursor, v: ValueId, ins: &Instr) {
        self.emit(cur, InstKind::Incref { value: v }, Type::VOID, ins);
    }

    fn decref(&mut self, cur: &Cursor, v: ValueId, ins: &Instr) {
        self.emit(cur, InstKind::Decref { value: v }, Type::VOID, ins);
    }

    /// Releases `v` unless it is NULL.
    fn xdecref(&mut self, cur: &mut Cursor, v: ValueId, ins: &Instr) {
        let set = self.emit(cur, InstKind::NotNull { value: v }, Type::CBOOL, ins);
        let release = |b: &mut Self, cur: &mut Cursor| {
            b.decref(cur, v, ins);
            vec![]
        };
        self.diamond(cur, set, &[], ins, release, |_, _| vec![]);
    }

    /// A new attribute-site cache for this instruction.
    fn site_cache(&mut self, cur: &Cursor, ins: &Instr) -> ValueId {
        let index = self.func.site_caches;
        self.func.site_caches += 1;
        self.func.site_cache_at.push(ins.at);
        self.emit(cur, InstKind::SiteCache { index }, Type::CPTR, ins)
    }

    fn cint(&mut self, cur: &Cursor, value: i64, ins: &Instr) -> ValueId {
        self.emit(cur, InstKind::CInt { value }, Type::CINT, ins)
    }

    /// The value of `v` if it is an int constant of 0 or one positive digit (what
    /// `IsCompactInt` tests for), with the `constant-operands` optimisation on.
    fn known_compact_int(&self, v: ValueId) -> Option<i64> {
        if !self.code.constant_operands {
            return None;
        }
        let inst = self.func.inst(v);
        match &inst.kind {
            InstKind::Const { text, .. } if inst.ty == Type::INT => text
                .parse::<i64>()
                .ok()
                .filter(|n| (0..1 << 30).contains(n)),
            _ => None,
        }
    }

    /// Whether `v` is a constant of exactly the type `ty` (code constants are exact ints,
    /// floats, strs...: no subclass), with the `constant-operands` optimisation on.
    fn is_constant_of_type(&self, v: ValueId, ty: usize) -> bool {
        let wk = &self.code.well_known;
        let inst = self.func.inst(v);
        self.code.constant_operands
            && matches!(inst.kind, InstKind::Const { .. })
            && ((inst.ty == Type::INT && ty == wk.int_type)
                || (inst.ty == Type::FLOAT && ty == wk.float_type))
    }

    fn constant(&mut self, cur: &Cursor, c: &ConstInfo, ins: &Instr) -> ValueId {
        self.emit(
            cur,
            InstKind::Const {
                obj: c.obj,
                text: c.text.clone(),
            },
            c.ty,
            ins,
        )
    }

    /// A deopt that is the normal way to do something (raise, let the eval breaker run): it
    /// re-executes `ins` (or the call it belongs to) in the interpreter.
    fn deopt_state(&mut self, cur: &Cursor, ins: &Instr, reason: &'static str) -> StateId {
        let resume_at = cur.call_start.unwrap_or(ins.start);
        self.func.add_state(FrameState {
            resume_at,
            stack: cur.stack.clone(),
            kind: ExitKind::Deopt,
            reason,
            site: None,
            pending_calls_at: None,
        })
    }

    /// Exits to the interpreter at `ins` when `value` is NULL (the interpreter then raises).
    fn deopt_if_null(&mut self, cur: &Cursor, value: ValueId, ins: &Instr, reason: &'static str) {
        let state = self.deopt_state(cur, ins, reason);
        self.emit(
            cur,
            InstKind::GuardNotNull { value, state },
            Type::VOID,
            ins,
        );
    }

    /// Exits to the interpreter at `ins` when a helper returned its deopt marker.
    fn deopt_if_marker(&mut self, cur: &Cursor, value: ValueId, ins: &Instr, reason: &'static str) {
        let state = self.deopt_state(cur, ins, reason);
        self.emit(
            cur,
            InstKind::GuardNotMarker { value, state },
            Type::VOID,
            ins,
        );
    }

    /// The exit of a speculation on `ins`'s feedback, or None when the deopt policy gave `ins`
    /// its generic path (the caller then emits that instead).
    fn speculation(&mut self, cur: &Cursor, ins: &Instr, reason: &'static str) -> Option<StateId> {
        if self.code.generic_sites.contains(&ins.at) {
            return None;
        }
        let resume_at = cur.call_start.unwrap_or(ins.start);
        let state = FrameState {
            resume_at,
            stack: cur.stack.clone(),
            kind: ExitKind::Deopt,
            reason,
            site: Some(ins.at),
            pending_calls_at: None,
        };
        Some(self.func.add_state(state))
    }

    /// The eval-breaker check at the end of call `ins`: a deopt that resumes after it (the
    /// result on the stack) once pending calls have run, raising at `ins` if they raise.
    fn deopt_after_call(&mut self, cur: &Cursor, ins: &Instr, reason: &'static str) -> StateId {
        let state = FrameState {
            resume_at: ins.next(),
            stack: cur.stack.clone(),
            kind: ExitKind::Deopt,
            reason,
            site: None,
            pending_calls_at: Some(ins.at),
        };
        self.func.add_state(state)
    }

    fn raise_state(&mut self, cur: &Cursor, ins: &Instr) -> StateId {
        let reason = ins.name();
        self.func.add_state(FrameState {
            resume_at: ins.at,
            stack: cur.stack.clone(),
            kind: ExitKind::Raise,
            reason,
            site: None,
            pending_calls_at: None,
        })
    }

    fn check(&mut self, cur: &Cursor, value: ValueId, check: ErrorCheck, ins: &Instr) {
        let state = self.raise_state(cur, ins);
        self.emit(
            cur,
            InstKind::CheckError {
                value,
                check,
                state,
            },
            Type::VOID,
            ins,
        );
    }

    fn helper(
        &mut self,
        cur: &Cursor,
        helper: Helper,
        args: Vec<ValueId>,
        ty: Type,
        ins: &Instr,
    ) -> ValueId {
        self.emit(cur, InstKind::CallHelper { helper, args }, ty, ins)
    }

    fn pop(&mut self, cur: &mut Cursor, ins: &Instr) -> Result<ValueId, Unsupported> {
        cur.stack
            .pop()
            .ok_or_else(|| Unsupported(format!("stack underflow at {}", ins.at)))
    }

    fn depth(&self, cur: &Cursor) -> u32 {
        cur.stack.len() as u32
    }

    fn end(&mut self, cur: &Cursor, term: Terminator) {
        self.func.blocks[cur.block.0 as usize].term = term;
    }

    /// Ends the block with a two-way branch on `cond`: `then_bc`/`else_bc` are bytecode indices
    /// receiving the current stack.
    fn branch(
        &mut self,
        cur: &Cursor,
        cond: ValueId,
        then_bc: u32,
        else_bc: u32,
    ) -> Result<(), Unsupported> {
        let then_to = self.block_for(then_bc)?;
        let else_to = self.block_for(else_bc)?;
        let then_args = self.edge_to(then_to, &cur.stack);
        let else_args = self.edge_to(else_to, &cur.stack);
        self.end(
            cur,
            Terminator::Branch {
                cond,
                then_to,
                then_args,
                else_to,
                else_args,
            },
        );
        Ok(())
    }

    /// Whether local `index` may be unbound here: not stored earlier in this block, and not a
    /// parameter that nothing deletes.
    fn maybe_unbound(&self, cur: &Cursor, index: u32) -> bool {
        let always_bound = index < self.code.nparams && !self.deleted.contains(&index);
        !always_bound && !cur.bound.contains(&index)
    }

    /// Marks `slow` and the blocks made since the block numbered `first_new` (the rest of a
    /// slow path) cold.
    fn mark_cold(&mut self, slow: BlockId, first_new: usize) {
        self.func.blocks[slow.0 as usize].cold = true;
        for b in &mut self.func.blocks[first_new..] {
            b.cold = true;
        }
    }

    /// Switches to a fresh block (not at a bytecode boundary) that continues with `stack`.
    fn fresh_block(&mut self, cur: &mut Cursor, bc: u32) -> BlockId {
        let b = self.func.new_block(bc);
        self.started.push(true);
        cur.block = b;
        b
    }

    /// Splits control flow on machine bool `cond`: `fast` runs when it holds, `slow` when not.
    /// Each arm starts from the current stack and returns values of types `outs`, which the
    /// join block (where building continues) receives as parameters, returned here.
    fn diamond(
        &mut self,
        cur: &mut Cursor,
        cond: ValueId,
        outs: &[Type],
        ins: &Instr,
        fast: impl FnOnce(&mut Self, &mut Cursor) -> Vec<ValueId>,
        slow: impl FnOnce(&mut Self, &mut Cursor) -> Vec<ValueId>,
    ) -> Vec<ValueId> {
        let head = cur.block;
        let stack = cur.stack.clone();
        let (fast_b, slow_b, join) = (
            self.func.new_block(ins.at),
            self.func.new_block(ins.at),
            self.func.new_block(ins.at),
        );
        self.started.extend([true, true, true]);
        let params: Vec<ValueId> = outs.iter().map(|t| self.func.add_param(join, *t)).collect();
        for (block, arm) in [
            (
                fast_b,
                Box::new(fast) as Box<dyn FnOnce(&mut Self, &mut Cursor) -> Vec<ValueId>>,
            ),
            (slow_b, Box::new(slow)),
        ] {
            cur.block = block;
            cur.stack = stack.clone();
            let first_new = self.func.blocks.len();
            let args = arm(self, cur);
            if block == slow_b {
                self.mark_cold(slow_b, first_new);
            }
            debug_assert_eq!(args.len(), outs.len());
            self.end(cur, Terminator::Jump { target: join, args });
        }
        cur.stack = stack;
        cur.block = join;
        self.func.blocks[head.0 as usize].term = Terminator::Branch {
            cond,
            then_to: fast_b,
            then_args: vec![],
            else_to: slow_b,
            else_args: vec![],
        };
        params
    }

    /// Every backward jump that the interpreter treats as a loop edge (all but
    /// JUMP_BACKWARD_NO_INTERRUPT) checks the eval breaker, so that a loop in compiled code still
    /// drops the GIL for other threads and runs signal handlers. The guard sits before the jump,
    /// and its exit re-runs the jump in the interpreter, which then does the check itself.
    fn guard_idle_on_backward_jump(&mut self, cur: &mut Cursor, ins: &Instr) {
        if crate::bytecode::is_loop_edge(ins.op) {
            let state = self.deopt_state(cur, ins, "eval breaker or tracing in loop");
            self.emit(
                cur,
                InstKind::GuardInterpreterIdle { state },
                Type::VOID,
                ins,
            );
        }
    }

    // ---- the translation of one instruction; returns true when it ended the block ----------

    fn translate(&mut self, cur: &mut Cursor, ins: &Instr) -> Result<bool, Unsupported> {
        let arg = ins.arg;
        match ins.op {
            NOP | CACHE => {}
            RESUME => {
                let state = self.deopt_state(cur, ins, "eval breaker or tracing at entry");
                self.emit(
                    cur,
                    InstKind::GuardInterpreterIdle { state },
                    Type::VOID,
                    ins,
                );
            }
            LOAD_FAST => {
                let v = self.emit(cur, InstKind::LoadLocal { index: arg }, Type::OBJECT, ins);
                if self.maybe_unbound(cur, arg) {
                    self.deopt_if_null(cur, v, ins, "unbound local");
                }
                self.incref(cur, v, ins);
                cur.stack.push(v);
            }
            LOAD_CONST => {
                let c = self.code.consts[arg as usize].clone();
                let v = self.constant(cur, &c, ins);
                self.incref(cur, v, ins);
                cur.stack.push(v);
            }
            DELETE_FAST => {
                if self.maybe_unbound(cur, arg) {
                    // Deleting an unbound local raises UnboundLocalError: the interpreter does it.
                    let v = self.emit(cur, InstKind::LoadLocal { index: arg }, Type::OBJECT, ins);
                    self.deopt_if_null(cur, v, ins, "unbound local");
                }
                let null = self.emit(cur, InstKind::Null, Type::NULL, ins);
                let store = InstKind::StoreLocal {
                    index: arg,
                    value: null,
                };
                self.emit(cur, store, Type::VOID, ins);
                cur.bound.retain(|&b| b != arg);
            }
            STORE_FAST => {
                let v = self.pop(cur, ins)?;
                self.emit(
                    cur,
                    InstKind::StoreLocal {
                        index: arg,
                        value: v,
                    },
                    Type::VOID,
                    ins,
                );
                cur.bound.push(arg);
            }
            POP_TOP => {
                let v = self.pop(cur, ins)?;
                self.decref(cur, v, ins);
            }
            PUSH_NULL => {
                let v = self.emit(cur, InstKind::Null, Type::NULL, ins);
                cur.stack.push(v);
            }
            COPY => {
                let v = cur.stack[cur.stack.len() - arg as usize];
                self.incref(cur, v, ins);
                cur.stack.push(v);
            }
            SWAP => {
                let n = cur.stack.len();
                cur.stack.swap(n - 1, n - arg as usize);
            }
            LOAD_GLOBAL => self.load_global(cur, ins)?,
            STORE_GLOBAL => {
                let v = self.pop(cur, ins)?;
                let name = self.code.names[arg as usize].clone();
                let n = self.constant(cur, &name, ins);
                let frame = self.frame.unwrap();
                let r = self.helper(cur, Helper::StoreGlobal, vec![frame, n, v], Type::CINT, ins);
                self.decref(cur, v, ins);
                self.check(cur, r, ErrorCheck::Negative, ins);
            }
            LOAD_ATTR => self.load_attr(cur, ins)?,
            STORE_ATTR => self.store_attr(cur, ins)?,
            LOAD_METHOD => self.load_method(cur, ins)?,
            KW_NAMES => {
                cur.call_start = Some(ins.start);
                cur.kwnames = Some(arg as usize);
            }
            PRECALL => {
                if cur.call_start.is_none() {
                    cur.call_start = Some(ins.start);
                }
            }
            CALL => self.call(cur, ins)?,
            RETURN_VALUE => {
                let v = self.pop(cur, ins)?;
                for rest in cur.stack.clone() {
                    self.decref(cur, rest, ins);
                }
                self.end(
                    cur,
                    Terminator::Return {
                        value: v,
                        bc: ins.at,
                    },
                );
                return Ok(true);
            }
            BINARY_OP | COMPARE_OP => {
                if let Some(ended) = self.specialised_operands(cur, ins)? {
                    return Ok(ended);
                }
                let b = self.pop(cur, ins)?;
                let a = self.pop(cur, ins)?;
                let helper = if ins.op == BINARY_OP {
                    if self.code.mixed_float_arith && float_arith(arg) {
                        Helper::BinaryOpNumeric
                    } else {
                        Helper::BinaryOp
                    }
                } else {
                    Helper::CompareOp
                };
                let op = self.cint(cur, arg as i64, ins);
                let r = self.helper(cur, helper, vec![a, b, op], Type::OBJECT, ins);
                self.decref(cur, a, ins);
                self.decref(cur, b, ins);
                self.check(cur, r, ErrorCheck::Null, ins);
                cur.stack.push(r);
            }
            BINARY_SUBSCR if self.specialised_subscript(cur, ins)? => {}
            BINARY_SUBSCR => {
                let sub = self.pop(cur, ins)?;
                let container = self.pop(cur, ins)?;
                let r = self.helper(
                    cur,
                    Helper::GetItem,
                    vec![container, sub],
                    Type::OBJECT,
                    ins,
                );
                self.decref(cur, container, ins);
                self.decref(cur, sub, ins);
                self.check(cur, r, ErrorCheck::Null, ins);
                cur.stack.push(r);
            }
            STORE_SUBSCR if self.specialised_subscript(cur, ins)? => {}
            STORE_SUBSCR => {
                let sub = self.pop(cur, ins)?;
                let container = self.pop(cur, ins)?;
                let v = self.pop(cur, ins)?;
                let r = self.helper(
                    cur,
                    Helper::SetItem,
                    vec![container, sub, v],
                    Type::CINT,
                    ins,
                );
                self.decref(cur, v, ins);
                self.decref(cur, container, ins);
                self.decref(cur, sub, ins);
                self.check(cur, r, ErrorCheck::Negative, ins);
            }
            IS_OP => {
                let b = self.pop(cur, ins)?;
                let a = self.pop(cur, ins)?;
                let c = self.emit(cur, InstKind::Is { a, b }, Type::CBOOL, ins);
                self.decref(cur, a, ins);
                self.decref(cur, b, ins);
                self.push_bool(cur, c, arg != 0, ins);
            }
            CONTAINS_OP => {
                let right = self.pop(cur, ins)?;
                let left = self.pop(cur, ins)?;
                let r = self.helper(cur, Helper::Contains, vec![right, left], Type::CINT, ins);
                self.decref(cur, left, ins);
                self.decref(cur, right, ins);
                self.check(cur, r, ErrorCheck::Negative, ins);
                let c = self.emit(cur, InstKind::NonZero { value: r }, Type::CBOOL, ins);
                self.push_bool(cur, c, arg != 0, ins);
            }
            UNARY_NOT => {
                let v = self.pop(cur, ins)?;
                let t = self.emit(cur, InstKind::Truthy { value: v }, Type::CINT, ins);
                self.decref(cur, v, ins);
                self.check(cur, t, ErrorCheck::Negative, ins);
                let c = self.emit(cur, InstKind::NonZero { value: t }, Type::CBOOL, ins);
                self.push_bool(cur, c, true, ins);
            }
            POP_JUMP_FORWARD_IF_FALSE
            | POP_JUMP_BACKWARD_IF_FALSE
            | POP_JUMP_FORWARD_IF_TRUE
            | POP_JUMP_BACKWARD_IF_TRUE => {
                self.guard_idle_on_backward_jump(cur, ins);
                let v = self.pop(cur, ins)?;
                let (c, negated) = self.truth(cur, v, Popped::Yes, ins);
                let target = ins.jump_target().unwrap();
                // Branching on `c` when the truth is `not c`: the targets swap.
                let jump_if_true =
                    matches!(ins.op, POP_JUMP_FORWARD_IF_TRUE | POP_JUMP_BACKWARD_IF_TRUE)
                        != negated;
                let (t_bc, f_bc) = if jump_if_true {
                    (target, ins.next())
                } else {
                    (ins.next(), target)
                };
                self.branch(cur, c, t_bc, f_bc)?;
                return Ok(true);
            }
            POP_JUMP_FORWARD_IF_NONE
            | POP_JUMP_BACKWARD_IF_NONE
            | POP_JUMP_FORWARD_IF_NOT_NONE
            | POP_JUMP_BACKWARD_IF_NOT_NONE => {
                self.guard_idle_on_backward_jump(cur, ins);
                let v = self.pop(cur, ins)?;
                let none = ConstInfo {
                    obj: self.code.well_known.none,
                    text: "None".into(),
                    ty: Type::NONE_TYPE,
                };
                let n = self.constant(cur, &none, ins);
                let c = self.emit(cur, InstKind::Is { a: v, b: n }, Type::CBOOL, ins);
                self.decref(cur, v, ins);
                let target = ins.jump_target().unwrap();
                let if_none =
                    matches!(ins.op, POP_JUMP_FORWARD_IF_NONE | POP_JUMP_BACKWARD_IF_NONE);
                let (t_bc, f_bc) = if if_none {
                    (target, ins.next())
                } else {
                    (ins.next(), target)
                };
                self.branch(cur, c, t_bc, f_bc)?;
                return Ok(true);
            }
            JUMP_IF_FALSE_OR_POP | JUMP_IF_TRUE_OR_POP => {
                self.jump_or_pop(cur, ins)?;
                return Ok(true);
            }
            JUMP_FORWARD | JUMP_BACKWARD | JUMP_BACKWARD_NO_INTERRUPT => {
                self.guard_idle_on_backward_jump(cur, ins);
                let target = self.block_for(ins.jump_target().unwrap())?;
                let args = self.edge_to(target, &cur.stack);
                self.end(cur, Terminator::Jump { target, args });
                return Ok(true);
            }
            GET_ITER => {
                let v = self.pop(cur, ins)?;
                let r = self.helper(cur, Helper::GetIter, vec![v], Type::OBJECT, ins);
                self.decref(cur, v, ins);
                self.check(cur, r, ErrorCheck::Null, ins);
                cur.stack.push(r);
            }
            FOR_ITER => {
                self.for_iter(cur, ins)?;
                return Ok(true);
            }
            BUILD_LIST | BUILD_TUPLE | BUILD_MAP | BUILD_SET => {
                let n = if ins.op == BUILD_MAP { 2 * arg } else { arg } as usize;
                let items = cur.stack.split_off(cur.stack.len() - n);
                let depth = self.depth(cur);
                self.emit(
                    cur,
                    InstKind::SpillToStack {
                        depth,
                        values: items,
                    },
                    Type::VOID,
                    ins,
                );
                let addr = self.emit(cur, InstKind::StackAddr { depth }, Type::CPTR, ins);
                let count = self.cint(cur, arg as i64, ins);
                let (helper, ty) = match ins.op {
                    BUILD_LIST => (Helper::BuildList, Type::LIST),
                    BUILD_TUPLE => (Helper::BuildTuple, Type::TUPLE),
                    BUILD_SET => (Helper::BuildSet, Type::OBJECT),
                    _ => (Helper::BuildMap, Type::DICT),
                };
                let r = self.helper(cur, helper, vec![addr, count], ty, ins);
                self.check(cur, r, ErrorCheck::Null, ins);
                cur.stack.push(r);
            }
            MAKE_FUNCTION => self.make_function(cur, ins)?,
            MAKE_CELL => {
                let frame = self.emit(cur, InstKind::Frame, Type::CPTR, ins);
                let index = self.cint(cur, arg as i64, ins);
                let r = self.helper(cur, Helper::MakeCell, vec![frame, index], Type::CINT, ins);
                self.check(cur, r, ErrorCheck::Negative, ins);
            }
            COPY_FREE_VARS => {
                let frame = self.emit(cur, InstKind::Frame, Type::CPTR, ins);
                let n = self.cint(cur, arg as i64, ins);
                self.helper(cur, Helper::CopyFreeVars, vec![frame, n], Type::CINT, ins);
            }
            LOAD_CLOSURE => {
                // The cell itself: set up by MAKE_CELL or COPY_FREE_VARS at entry, never NULL.
                let cell = self.emit(cur, InstKind::LoadLocal { index: arg }, Type::OBJECT, ins);
                self.incref(cur, cell, ins);
                cur.stack.push(cell);
            }
            LOAD_DEREF => {
                let cell = self.emit(cur, InstKind::LoadLocal { index: arg }, Type::OBJECT, ins);
                let load = InstKind::LoadWord {
                    base: cell,
                    index: CELL_REF_WORD,
                };
                let v = self.emit(cur, load, Type::OBJECT, ins);
                // An empty cell raises NameError or UnboundLocalError: the interpreter does it.
                self.deopt_if_null(cur, v, ins, "empty cell");
                self.incref(cur, v, ins);
                cur.stack.push(v);
            }
            STORE_DEREF => {
                let v = self.pop(cur, ins)?;
                let cell = self.emit(cur, InstKind::LoadLocal { index: arg }, Type::OBJECT, ins);
                let index = CELL_REF_WORD;
                let old = self.emit(
                    cur,
                    InstKind::LoadWord { base: cell, index },
                    Type::OPT_OBJECT,
                    ins,
                );
                let store = InstKind::StoreWord {
                    base: cell,
                    index,
                    value: v,
                };
                self.emit(cur, store, Type::VOID, ins);
                self.xdecref(cur, old, ins);
            }
            SET_ADD | LIST_EXTEND | SET_UPDATE | DICT_UPDATE | DICT_MERGE => {
                // Each adds the popped value into the collection `arg` entries down.
                let v = self.pop(cur, ins)?;
                let target = cur.stack[cur.stack.len() - arg as usize];
                let (helper, mut args) = match ins.op {
                    SET_ADD => (Helper::SetAdd, vec![target, v]),
                    LIST_EXTEND => (Helper::ListExtend, vec![target, v]),
                    SET_UPDATE => (Helper::SetUpdate, vec![target, v]),
                    DICT_UPDATE => (Helper::DictUpdate, vec![target, v]),
                    _ => (Helper::DictMerge, vec![target, v]),
                };
                if ins.op == DICT_MERGE {
                    // The function being called, for the error message.
                    args.push(cur.stack[cur.stack.len() - 2 - arg as usize]);
                }
                let r = self.helper(cur, helper, args, Type::CINT, ins);
                self.check(cur, r, ErrorCheck::Negative, ins);
            }
            MAP_ADD => {
                let value = self.pop(cur, ins)?;
                let key = self.pop(cur, ins)?;
                let dict = cur.stack[cur.stack.len() - arg as usize];
                let r = self.helper(cur, Helper::MapAdd, vec![dict, key, value], Type::CINT, ins);
                self.check(cur, r, ErrorCheck::Negative, ins);
            }
            LIST_TO_TUPLE => {
                let list = self.pop(cur, ins)?;
                let r = self.helper(cur, Helper::ListToTuple, vec![list], Type::TUPLE, ins);
                self.check(cur, r, ErrorCheck::Null, ins);
                cur.stack.push(r);
            }
            CALL_FUNCTION_EX => {
                let kwargs = if arg & 0x01 != 0 {
                    self.pop(cur, ins)?
                } else {
                    self.emit(cur, InstKind::Null, Type::NULL, ins)
                };
                let callargs = self.pop(cur, ins)?;
                let func = self.pop(cur, ins)?;
                // The NULL the compiler pushed below the function: the result takes its place.
                self.pop(cur, ins)?;
                let args = vec![func, callargs, kwargs];
                let r = self.helper(cur, Helper::CallFunctionEx, args, Type::OBJECT, ins);
                self.check(cur, r, ErrorCheck::Null, ins);
                cur.stack.push(r);
                let state = self.deopt_after_call(cur, ins, "eval breaker or tracing after call");
                self.emit(
                    cur,
                    InstKind::GuardInterpreterIdle { state },
                    Type::VOID,
                    ins,
                );
            }
            BEFORE_WITH => {
                // Only the normal path is compiled: the `with` block's exception handler runs
                // in the interpreter, like every handler. Its normal exit is an ordinary call
                // of `__exit__(None, None, None)`.
                let mgr = self.pop(cur, ins)?;
                let depth = self.depth(cur);
                let out = self.emit(cur, InstKind::StackAddr { depth }, Type::CPTR, ins);
                let r = self.helper(cur, Helper::BeforeWith, vec![mgr, out], Type::CINT, ins);
                self.check(cur, r, ErrorCheck::Negative, ins);
                for i in 0..2 {
                    let read = InstKind::ReadStack { depth: depth + i };
                    let v = self.emit(cur, read, Type::OBJECT, ins);
                    cur.stack.push(v);
                }
            }
            DELETE_ATTR => {
                let owner = self.pop(cur, ins)?;
                let name = self.code.names[arg as usize].clone();
                let name = self.constant(cur, &name, ins);
                let null = self.emit(cur, InstKind::Null, Type::NULL, ins);
                let args = vec![owner, name, null];
                let r = self.helper(cur, Helper::SetAttr, args, Type::CINT, ins);
                self.decref(cur, owner, ins);
                self.check(cur, r, ErrorCheck::Negative, ins);
            }
            DELETE_GLOBAL => {
                let name = self.code.names[arg as usize].clone();
                let name = self.constant(cur, &name, ins);
                let frame = self.emit(cur, InstKind::Frame, Type::CPTR, ins);
                let r = self.helper(
                    cur,
                    Helper::DeleteGlobal,
                    vec![frame, name],
                    Type::CINT,
                    ins,
                );
                self.deopt_if_marker(cur, r, ins, "DELETE_GLOBAL name missing");
                self.check(cur, r, ErrorCheck::Negative, ins);
            }
            DELETE_DEREF => {
                let cell = self.emit(cur, InstKind::LoadLocal { index: arg }, Type::OBJECT, ins);
                let index = CELL_REF_WORD;
                let old = self.emit(
                    cur,
                    InstKind::LoadWord { base: cell, index },
                    Type::OBJECT,
                    ins,
                );
                // Deleting an empty cell raises: the interpreter does it.
                self.deopt_if_null(cur, old, ins, "empty cell");
                let null = self.emit(cur, InstKind::Null, Type::NULL, ins);
                let store = InstKind::StoreWord {
                    base: cell,
                    index,
                    value: null,
                };
                self.emit(cur, store, Type::VOID, ins);
                self.decref(cur, old, ins);
            }
            LOAD_BUILD_CLASS => {
                let frame = self.emit(cur, InstKind::Frame, Type::CPTR, ins);
                let r = self.helper(cur, Helper::LoadBuildClass, vec![frame], Type::OBJECT, ins);
                self.deopt_if_marker(cur, r, ins, "__build_class__ missing");
                self.check(cur, r, ErrorCheck::Null, ins);
                cur.stack.push(r);
            }
            IMPORT_FROM => {
                let module = *cur.stack.last().unwrap();
                let name = self.code.names[arg as usize].clone();
                let name = self.constant(cur, &name, ins);
                let r = self.helper(
                    cur,
                    Helper::ImportFrom,
                    vec![module, name],
                    Type::OBJECT,
                    ins,
                );
                self.check(cur, r, ErrorCheck::Null, ins);
                cur.stack.push(r);
            }
            GET_LEN => {
                let obj = *cur.stack.last().unwrap();
                let r = self.helper(cur, Helper::GetLen, vec![obj], Type::INT, ins);
                self.check(cur, r, ErrorCheck::Null, ins);
                cur.stack.push(r);
            }
            MATCH_MAPPING | MATCH_SEQUENCE => {
                let subject = *cur.stack.last().unwrap();
                let which = self.cint(cur, i64::from(ins.op == MATCH_SEQUENCE), ins);
                let r = self.helper(
                    cur,
                    Helper::MatchKind,
                    vec![subject, which],
                    Type::BOOL,
                    ins,
                );
                cur.stack.push(r);
            }
            MATCH_KEYS => {
                let keys = cur.stack[cur.stack.len() - 1];
                let subject = cur.stack[cur.stack.len() - 2];
                let r = self.helper(
                    cur,
                    Helper::MatchKeys,
                    vec![subject, keys],
                    Type::OBJECT,
                    ins,
                );
                self.check(cur, r, ErrorCheck::Null, ins);
                cur.stack.push(r);
            }
            MATCH_CLASS => {
                let names = self.pop(cur, ins)?;
                let cls = self.pop(cur, ins)?;
                let subject = self.pop(cur, ins)?;
                let nargs = self.cint(cur, i64::from(arg), ins);
                let args = vec![subject, cls, names, nargs];
                let r = self.helper(cur, Helper::MatchClass, args, Type::OBJECT, ins);
                for v in [names, cls, subject] {
                    self.decref(cur, v, ins);
                }
                self.check(cur, r, ErrorCheck::Null, ins);
                cur.stack.push(r);
            }
            IMPORT_NAME => {
                let fromlist = self.pop(cur, ins)?;
                let level = self.pop(cur, ins)?;
                let name = self.code.names[arg as usize].clone();
                let name = self.constant(cur, &name, ins);
                let frame = self.emit(cur, InstKind::Frame, Type::CPTR, ins);
                let args = vec![frame, name, fromlist, level];
                let r = self.helper(cur, Helper::ImportName, args, Type::OBJECT, ins);
                self.check(cur, r, ErrorCheck::Null, ins);
                cur.stack.push(r);
            }
            LIST_APPEND => {
                let v = self.pop(cur, ins)?;
                let list = cur.stack[cur.stack.len() - arg as usize];
                let r = self.helper(cur, Helper::ListAppend, vec![list, v], Type::CINT, ins);
                self.check(cur, r, ErrorCheck::Negative, ins);
            }
            UNARY_NEGATIVE | UNARY_POSITIVE | UNARY_INVERT => {
                let v = self.pop(cur, ins)?;
                let helper = match ins.op {
                    UNARY_NEGATIVE => Helper::Negative,
                    UNARY_POSITIVE => Helper::Positive,
                    _ => Helper::Invert,
                };
                let r = self.helper(cur, helper, vec![v], Type::OBJECT, ins);
                self.decref(cur, v, ins);
                self.check(cur, r, ErrorCheck::Null, ins);
                cur.stack.push(r);
            }
            UNPACK_SEQUENCE | UNPACK_EX => self.unpack_sequence(cur, ins)?,
            BUILD_SLICE => {
                let step = if arg == 3 {
                    Some(self.pop(cur, ins)?)
                } else {
                    None
                };
                let stop = self.pop(cur, ins)?;
                let start = self.pop(cur, ins)?;
                let step_arg = match step {
                    Some(s) => s,
                    None => self.emit(cur, InstKind::Null, Type::NULL, ins),
                };
                let r = self.helper(
                    cur,
                    Helper::BuildSlice,
                    vec![start, stop, step_arg],
                    Type::OBJECT,
                    ins,
                );
                for v in [Some(start), Some(stop), step].into_iter().flatten() {
                    self.decref(cur, v, ins);
                }
                self.check(cur, r, ErrorCheck::Null, ins);
                cur.stack.push(r);
            }
            DELETE_SUBSCR => {
                let sub = self.pop(cur, ins)?;
                let container = self.pop(cur, ins)?;
                let r = self.helper(cur, Helper::DelItem, vec![container, sub], Type::CINT, ins);
                self.decref(cur, container, ins);
                self.decref(cur, sub, ins);
                self.check(cur, r, ErrorCheck::Negative, ins);
            }
            FORMAT_VALUE => {
                let spec = if arg & 0x04 != 0 {
                    Some(self.pop(cur, ins)?)
                } else {
                    None
                };
                let value = self.pop(cur, ins)?;
                let spec_arg = match spec {
                    Some(s) => s,
                    None => self.emit(cur, InstKind::Null, Type::NULL, ins),
                };
                let flags = self.cint(cur, arg as i64, ins);
                let r = self.helper(
                    cur,
                    Helper::FormatValue,
                    vec![value, flags, spec_arg],
                    Type::OBJECT,
                    ins,
                );
                self.decref(cur, value, ins);
                if let Some(s) = spec {
                    self.decref(cur, s, ins);
                }
                self.check(cur, r, ErrorCheck::Null, ins);
                cur.stack.push(r);
            }
            BUILD_STRING | BUILD_CONST_KEY_MAP => {
                let keys = if ins.op == BUILD_CONST_KEY_MAP {
                    Some(self.pop(cur, ins)?)
                } else {
                    None
                };
                let n = arg as usize;
                if cur.stack.len() < n {
                    return Err(Unsupported(format!("stack underflow at {}", ins.at)));
                }
                let items = cur.stack.split_off(cur.stack.len() - n);
                let depth = self.depth(cur);
                self.emit(
                    cur,
                    InstKind::SpillToStack {
                        depth,
                        values: items,
                    },
                    Type::VOID,
                    ins,
                );
                let addr = self.emit(cur, InstKind::StackAddr { depth }, Type::CPTR, ins);
                let count = self.cint(cur, arg as i64, ins);
                let r = match keys {
                    Some(k) => {
                        let r = self.helper(
                            cur,
                            Helper::BuildConstKeyMap,
                            vec![addr, count, k],
                            Type::DICT,
                            ins,
                        );
                        self.decref(cur, k, ins);
                        r
                    }
                    None => {
                        self.helper(cur, Helper::BuildString, vec![addr, count], Type::STR, ins)
                    }
                };
                self.check(cur, r, ErrorCheck::Null, ins);
                cur.stack.push(r);
            }
            GET_AWAITABLE if self.code.generator && self.code.compile_send => {
                // The argument says where the awaitable came from (0 `await`, 1 `__aenter__`,
                // 2 `__aexit__`), for the error message.
                let iterable = self.pop(cur, ins)?;
                let from = self.cint(cur, arg as i64, ins);
                let args = vec![iterable, from];
                let r = self.helper(cur, Helper::GetAwaitable, args, Type::OBJECT, ins);
                self.check(cur, r, ErrorCheck::Null, ins);
                cur.stack.push(r);
            }
            BEFORE_ASYNC_WITH if self.code.generator && self.code.compile_send => {
                // As `BEFORE_WITH`, with `__aenter__`/`__aexit__`; the result of `__aenter__()`
                // is then awaited (`GET_AWAITABLE 1`, `SEND`). The exceptional exit is a
                // handler, which the interpreter runs.
                let mgr = self.pop(cur, ins)?;
                let depth = self.depth(cur);
                let out = self.emit(cur, InstKind::StackAddr { depth }, Type::CPTR, ins);
                let args = vec![mgr, out];
                let r = self.helper(cur, Helper::BeforeAsyncWith, args, Type::CINT, ins);
                self.check(cur, r, ErrorCheck::Negative, ins);
                for i in 0..2 {
                    let read = InstKind::ReadStack { depth: depth + i };
                    let v = self.emit(cur, read, Type::OBJECT, ins);
                    cur.stack.push(v);
                }
            }
            GET_AITER if self.code.generator && self.code.compile_send => {
                let obj = self.pop(cur, ins)?;
                let r = self.helper(cur, Helper::GetAiter, vec![obj], Type::OBJECT, ins);
                self.check(cur, r, ErrorCheck::Null, ins);
                cur.stack.push(r);
            }
            GET_ANEXT if self.code.generator && self.code.compile_send => {
                // The async iterator stays on the stack; the end of the loop is the
                // StopAsyncIteration that `SEND` raises, caught by `END_ASYNC_FOR` in a handler
                // (run by the interpreter).
                let aiter = *cur
                    .stack
                    .last()
                    .ok_or_else(|| Unsupported(format!("stack underflow at {}", ins.at)))?;
                let r = self.helper(cur, Helper::GetAnext, vec![aiter], Type::OBJECT, ins);
                self.check(cur, r, ErrorCheck::Null, ins);
                cur.stack.push(r);
            }
            GET_YIELD_FROM_ITER if self.code.generator && self.code.compile_send => {
                let iterable = self.pop(cur, ins)?;
                let takes = self.cint(cur, i64::from(self.code.yield_from_coroutines), ins);
                let args = vec![iterable, takes];
                let r = self.helper(cur, Helper::GetYieldFromIter, args, Type::OBJECT, ins);
                self.check(cur, r, ErrorCheck::Null, ins);
                cur.stack.push(r);
            }
            SEND if self.code.generator && self.code.compile_send => {
                self.send(cur, ins)?;
                return Ok(true);
            }
            ASYNC_GEN_WRAP if self.code.generator => {
                // An async generator's `yield`: the value is wrapped so that its `asend` tells
                // it from the values an `await` inside passes up.
                let v = self.pop(cur, ins)?;
                let r = self.helper(cur, Helper::AsyncGenWrap, vec![v], Type::OBJECT, ins);
                self.check(cur, r, ErrorCheck::Null, ins);
                cur.stack.push(r);
            }
            YIELD_VALUE if self.code.generator => {
                let value = self.pop(cur, ins)?;
                let stack = cur.stack.clone();
                let depth = stack.len() as u32 + 1;
                let bc = ins.at;
                self.end(cur, Terminator::Yield { value, stack, bc });
                // Resumed with the sent value pushed where the yielded one was.
                self.resume_point(ins, depth)?;
                return Ok(true);
            }
            RAISE_VARARGS | LOAD_ASSERTION_ERROR | RERAISE => {
                // Raising is rare and has many details: the interpreter does it.
                let state = self.deopt_state(cur, ins, "raise");
                self.end(cur, Terminator::Exit { state });
                return Ok(true);
            }
            _ => return Err(Unsupported(format!("opcode {}", ins.name()))),
        }
        Ok(false)
    }

    /// `MAKE_FUNCTION`: the code object on top, below it (by flag) the closure tuple (0x08),
    /// annotations (0x04), keyword defaults (0x02) and defaults (0x01).
    fn make_function(&mut self, cur: &mut Cursor, ins: &Instr) -> Result<(), Unsupported> {
        let code = self.pop(cur, ins)?;
        let mut optional = [None; 4];
        for (i, flag) in [0x08, 0x04, 0x02, 0x01].into_iter().enumerate() {
            if ins.arg & flag != 0 {
                optional[i] = Some(self.pop(cur, ins)?);
            }
        }
        let [closure, annotations, kwdefaults, defaults] = optional;
        let frame = self.emit(cur, InstKind::Frame, Type::CPTR, ins);
        let mut args = vec![frame, code];
        for v in [defaults, kwdefaults, annotations, closure] {
            args.push(match v {
                Some(v) => v,
                None => self.emit(cur, InstKind::Null, Type::NULL, ins),
            });
        }
        let r = self.helper(cur, Helper::MakeFunction, args, Type::OBJECT, ins);
        for v in [Some(code), closure, annotations, kwdefaults, defaults]
            .into_iter()
            .flatten()
        {
            self.decref(cur, v, ins);
        }
        self.check(cur, r, ErrorCheck::Null, ins);
        cur.stack.push(r);
        Ok(())
    }

    /// A `BINARY_OP` or `COMPARE_OP` the interpreter specialised for exact ints, floats or strs:
    /// both operands' types guarded (a failed guard is a speculation, under the deopt policy),
    /// then that type's helper. A comparison whose result only feeds the conditional jump
    /// after it (COMPARE_OP_*_JUMP) takes that jump on the helper's C truth value, with no bool
    /// object, ending the block. Returns whether the block ended, or None (nothing emitted)
    /// when the instruction is not one of those or its site was made generic.
    fn specialised_operands(
        &mut self,
        cur: &mut Cursor,
        ins: &Instr,
    ) -> Result<Option<bool>, Unsupported> {
        let wk = &self.code.well_known;
        let (ty, name, helper) = match ins.specialised {
            BINARY_OP_ADD_INT | BINARY_OP_SUBTRACT_INT | BINARY_OP_MULTIPLY_INT => {
                (wk.int_type, "int", Helper::IntBinary)
            }
            BINARY_OP_ADD_FLOAT | BINARY_OP_SUBTRACT_FLOAT | BINARY_OP_MULTIPLY_FLOAT => {
                (wk.float_type, "float", Helper::FloatBinary)
            }
            COMPARE_OP_INT_JUMP => (wk.int_type, "int", Helper::CompareInts),
            COMPARE_OP_FLOAT_JUMP => (wk.float_type, "float", Helper::CompareFloats),
            COMPARE_OP_STR_JUMP if matches!(ins.arg as i32, 2 | 3) => {
                (wk.str_type, "str", Helper::CompareStrs)
            }
            _ => return Ok(None),
        };
        if self.code.generic_sites.contains(&ins.at) {
            return Ok(None);
        }
        let jump = if ins.op == COMPARE_OP {
            match self.conditional_jump_after(ins) {
                Some(j) => Some(j),
                None => return Ok(None),
            }
        } else {
            None
        };
        if let Some(j) = &jump {
            // The loop's eval-breaker check, resuming at the comparison (nothing done yet).
            if self.is_backward(j) {
                let state = self.deopt_state(cur, ins, "eval breaker or tracing in loop");
                self.emit(
                    cur,
                    InstKind::GuardInterpreterIdle { state },
                    Type::VOID,
                    ins,
                );
            }
        }
        let state = self.speculation(cur, ins, "operand types").unwrap();
        let b = self.pop(cur, ins)?;
        let a = self.pop(cur, ins)?;
        for v in [a, b] {
            if self.is_constant_of_type(v, ty) {
                continue;
            }
            let guard = InstKind::GuardType {
                value: v,
                ty,
                name: name.to_string(),
                state,
            };
            self.emit(cur, guard, Type::VOID, ins);
        }
        let op = self.cint(cur, ins.arg as i64, ins);
        match jump {
            None => {
                let r = match word_arith(ins.arg) {
                    Some(arith) if helper == Helper::IntBinary && self.code.inline_int_arith => {
                        self.arith_compact_ints(cur, a, b, op, arith, ins)
                    }
                    Some(op) if helper == Helper::FloatBinary && self.code.inline_float_arith => {
                        self.emit(cur, InstKind::FloatArith { a, b, op }, Type::FLOAT, ins)
                    }
                    _ => self.helper(cur, helper, vec![a, b, op], Type::OBJECT, ins),
                };
                if helper != Helper::FloatBinary {
                    self.decref(cur, a, ins);
                    self.decref(cur, b, ins);
                }
                self.check(cur, r, ErrorCheck::Null, ins);
                cur.stack.push(r);
                Ok(Some(false))
            }
            Some(j) => {
                let t = if helper == Helper::CompareInts && self.code.inline_int_compare {
                    self.compare_compact_ints(cur, a, b, op, ins)
                } else if helper == Helper::CompareFloats && self.code.inline_float_compare {
                    let compare = InstKind::CompareFloats { a, b, op: ins.arg };
                    self.emit(cur, compare, Type::CINT, ins)
                } else {
                    self.helper(cur, helper, vec![a, b, op], Type::CINT, ins)
                };
                self.decref(cur, a, ins);
                self.decref(cur, b, ins);
                if helper == Helper::CompareInts {
                    // Ints of more than one digit go through PyObject_RichCompare, whose
                    // recursion check can raise.
                    self.check(cur, t, ErrorCheck::Negative, ins);
                }
                let c = self.emit(cur, InstKind::NonZero { value: t }, Type::CBOOL, ins);
                let target = j.jump_target().unwrap();
                let (t_bc, f_bc) =
                    if matches!(j.op, POP_JUMP_FORWARD_IF_TRUE | POP_JUMP_BACKWARD_IF_TRUE) {
                        (target, j.next())
                    } else {
                        (j.next(), target)
                    };
                self.branch(cur, c, t_bc, f_bc)?;
                Ok(Some(true))
            }
        }
    }

    /// The machine values of exact ints `a` and `b`, on to `slow` unless both are 0 or one
    /// positive digit (the fast path of the int specialisations in words).
    fn compact_int_words(
        &mut self,
        cur: &mut Cursor,
        a: ValueId,
        b: ValueId,
        slow: BlockId,
        ins: &Instr,
    ) -> (ValueId, ValueId) {
        let mut words = [a, b].map(|v| (v, self.known_compact_int(v)));
        for (v, known) in words {
            if known.is_none() {
                let ok = self.emit(cur, InstKind::IsCompactInt { value: v }, Type::CBOOL, ins);
                self.continue_if(cur, ok, slow, ins);
            }
        }
        let [x, y] = words.each_mut().map(|(v, known)| match *known {
            Some(n) => self.cint(cur, n, ins),
            None => self.emit(
                cur,
                InstKind::CompactIntValue { value: *v },
                Type::CINT,
                ins,
            ),
        });
        (x, y)
    }

    /// `COMPARE_OP_INT_JUMP`'s test on two exact ints (1 or 0): in machine words when both are
    /// 0 or one positive digit, as most loop counters and indices are; the helper otherwise.
    fn compare_compact_ints(
        &mut self,
        cur: &mut Cursor,
        a: ValueId,
        b: ValueId,
        op: ValueId,
        ins: &Instr,
    ) -> ValueId {
        let oparg = ins.arg;
        let fast = |bld: &mut Self, cur: &mut Cursor, slow: BlockId| {
            let (x, y) = bld.compact_int_words(cur, a, b, slow, ins);
            let compare = InstKind::CompareWords {
                a: x,
                b: y,
                op: oparg,
            };
            vec![bld.emit(cur, compare, Type::CINT, ins)]
        };
        let slow = |bld: &mut Self, cur: &mut Cursor| {
            vec![bld.helper(cur, Helper::CompareInts, vec![a, b, op], Type::CINT, ins)]
        };
        self.fast_or_slow(cur, &[Type::CINT], ins, fast, slow)[0]
    }

    /// `BINARY_OP_{ADD,SUBTRACT,MULTIPLY}_INT` on two exact ints (a new int): in machine words
    /// when both are 0 or one positive digit (below 2**30, so no sum, difference or product
    /// overflows a word), boxed by `PyLong_FromLongLong` (the small-int cache, else one
    /// allocation); the helper otherwise.
    fn arith_compact_ints(
        &mut self,
        cur: &mut Cursor,
        a: ValueId,
        b: ValueId,
        op: ValueId,
        arith: WordArith,
        ins: &Instr,
    ) -> ValueId {
        let fast = |bld: &mut Self, cur: &mut Cursor, slow: BlockId| {
            let (x, y) = bld.compact_int_words(cur, a, b, slow, ins);
            let word = InstKind::ArithWords {
                a: x,
                b: y,
                op: arith,
            };
            let z = bld.emit(cur, word, Type::CINT, ins);
            vec![bld.helper(cur, Helper::IntFromWord, vec![z], Type::INT, ins)]
        };
        // `+ - *` of two exact ints is an exact int (`long_add` & co.), or NULL.
        let slow = |bld: &mut Self, cur: &mut Cursor| {
            vec![bld.helper(cur, Helper::IntBinary, vec![a, b, op], Type::INT, ins)]
        };
        self.fast_or_slow(cur, &[Type::INT], ins, fast, slow)[0]
    }

    /// `BINARY_SUBSCR` / `STORE_SUBSCR` the interpreter specialised for an exact list or tuple
    /// and an int index: both types guarded (a speculation), then that type's helper. False
    /// (nothing emitted) for other forms and for sites made generic.
    fn specialised_subscript(
        &mut self,
        cur: &mut Cursor,
        ins: &Instr,
    ) -> Result<bool, Unsupported> {
        let wk = &self.code.well_known;
        let (container_ty, name, helper) = match ins.specialised {
            BINARY_SUBSCR_LIST_INT => (wk.list_type, "list", Helper::ListGetItem),
            BINARY_SUBSCR_TUPLE_INT => (wk.tuple_type, "tuple", Helper::TupleGetItem),
            STORE_SUBSCR_LIST_INT => (wk.list_type, "list", Helper::ListSetItem),
            _ => return Ok(false),
        };
        let int_ty = wk.int_type;
        let Some(state) = self.speculation(cur, ins, "subscript types") else {
            return Ok(false);
        };
        let sub = self.pop(cur, ins)?;
        let container = self.pop(cur, ins)?;
        for (v, ty, name) in [(container, container_ty, name), (sub, int_ty, "int")] {
            let guard = InstKind::GuardType {
                value: v,
                ty,
                name: name.to_string(),
                state,
            };
            self.emit(cur, guard, Type::VOID, ins);
        }
        if ins.op == STORE_SUBSCR {
            let v = self.pop(cur, ins)?;
            let r = self.helper(cur, helper, vec![container, sub, v], Type::CINT, ins);
            for x in [v, container, sub] {
                self.decref(cur, x, ins);
            }
            self.check(cur, r, ErrorCheck::Negative, ins);
        } else {
            let r = self.helper(cur, helper, vec![container, sub], Type::OBJECT, ins);
            self.decref(cur, container, ins);
            self.decref(cur, sub, ins);
            self.check(cur, r, ErrorCheck::Null, ins);
            cur.stack.push(r);
        }
        Ok(true)
    }

    /// The `POP_JUMP_*_IF_TRUE/FALSE` right after `ins`, if nothing else jumps to it (so the
    /// comparison's result is only ever tested by it).
    fn conditional_jump_after(&self, ins: &Instr) -> Option<Instr> {
        let next = self.code.instrs.get(self.index_of[&ins.start] + 1)?;
        let is_jump = matches!(
            next.op,
            POP_JUMP_FORWARD_IF_FALSE
                | POP_JUMP_BACKWARD_IF_FALSE
                | POP_JUMP_FORWARD_IF_TRUE
                | POP_JUMP_BACKWARD_IF_TRUE
        );
        (is_jump && !self.block_at.contains_key(&next.start)).then(|| next.clone())
    }

    fn is_backward(&self, ins: &Instr) -> bool {
        matches!(
            ins.op,
            POP_JUMP_BACKWARD_IF_FALSE | POP_JUMP_BACKWARD_IF_TRUE
        )
    }

    /// `SEND` (the loop of `yield from`): the value on top goes into the receiver below it.
    /// Yielded: the value is pushed and the next instruction (a YIELD_VALUE) passes it out.
    /// Returned: the receiver is released, the value replaces it, and control jumps past the
    /// loop.
    fn send(&mut self, cur: &mut Cursor, ins: &Instr) -> Result<(), Unsupported> {
        let v = self.pop(cur, ins)?;
        let receiver = *cur
            .stack
            .last()
            .ok_or_else(|| Unsupported(format!("stack underflow at {}", ins.at)))?;
        let depth = self.depth(cur);
        let out = self.emit(cur, InstKind::StackAddr { depth }, Type::CPTR, ins);
        let status = self.helper(cur, Helper::Send, vec![receiver, v, out], Type::CINT, ins);
        self.check(cur, status, ErrorCheck::Negative, ins);
        let value = self.emit(cur, InstKind::ReadStack { depth }, Type::OBJECT, ins);
        let yielded = self.emit(cur, InstKind::NonZero { value: status }, Type::CBOOL, ins);
        let head = cur.block;
        let mut stack = cur.stack.clone();
        // Returned: the value takes the receiver's place, past the loop.
        let returned = self.fresh_block(cur, ins.at);
        cur.stack.pop();
        self.decref(cur, receiver, ins);
        cur.stack.push(value);
        let after = self.block_for(ins.jump_target().unwrap())?;
        let args = self.edge_to(after, &cur.stack);
        self.end(
            cur,
            Terminator::Jump {
                target: after,
                args,
            },
        );
        // Yielded: on to the YIELD_VALUE with the value on top.
        stack.push(value);
        let next = self.block_for(ins.next())?;
        let next_args = self.edge_to(next, &stack);
        self.func.blocks[head.0 as usize].term = Terminator::Branch {
            cond: yielded,
            then_to: next,
            then_args: next_args,
            else_to: returned,
            else_args: vec![],
        };
        Ok(())
    }

    /// `UNPACK_SEQUENCE n` and `UNPACK_EX before | after << 8`: one helper, which reads an exact
    /// tuple or list of the right length directly and iterates anything else. Where the
    /// interpreter specialised `UNPACK_SEQUENCE` for a tuple or a list, the items of one of the
    /// right length are read in machine code first (`inline-unpack`).
    fn unpack_sequence(&mut self, cur: &mut Cursor, ins: &Instr) -> Result<(), Unsupported> {
        let seq = self.pop(cur, ins)?;
        let specialised = match ins.specialised {
            UNPACK_SEQUENCE_TWO_TUPLE | UNPACK_SEQUENCE_TUPLE => Some(SeqKind::Tuple),
            UNPACK_SEQUENCE_LIST => Some(SeqKind::List),
            _ => None,
        };
        let items = match specialised {
            Some(first) if self.code.inline_unpack && ins.op == UNPACK_SEQUENCE => {
                let n = ins.arg;
                let outs = vec![Type::OBJECT; n as usize];
                let fast = |b: &mut Self, cur: &mut Cursor, slow: BlockId| {
                    b.unpack_exact(cur, seq, first, n, slow, ins)
                };
                let slow = |b: &mut Self, cur: &mut Cursor| b.unpack_through_helper(cur, seq, ins);
                self.fast_or_slow(cur, &outs, ins, fast, slow)
            }
            _ => self.unpack_through_helper(cur, seq, ins),
        };
        cur.stack.extend(items);
        Ok(())
    }

    /// The items of `seq`, an exact tuple or list of length `n`, as `UNPACK_SEQUENCE` pushes
    /// them (the last item deepest), each a new reference; `seq` is released. The type the
    /// interpreter specialised for is tested first; a site that sees both (one function
    /// unpacking tuples in one call and lists in the next, where the interpreter respecialises)
    /// stays in machine code for both. Anything else goes to `slow`, with nothing done.
    fn unpack_exact(
        &mut self,
        cur: &mut Cursor,
        seq: ValueId,
        first: SeqKind,
        n: u32,
        slow: BlockId,
        ins: &Instr,
    ) -> Vec<ValueId> {
        use crate::cpython::object_words::{
            LIST_ITEMS, SIZE as SIZE_WORD, TUPLE_ITEMS, TYPE as TYPE_WORD,
        };
        let word = |b: &mut Self, cur: &mut Cursor, base: ValueId, index: u32, ty: Type| {
            b.emit(cur, InstKind::LoadWord { base, index }, ty, ins)
        };
        let seq_ty = word(self, cur, seq, TYPE_WORD, Type::TYPE_OBJ);
        let second = match first {
            SeqKind::Tuple => SeqKind::List,
            SeqKind::List => SeqKind::Tuple,
        };
        let [first_b, second_check, second_b, items_b] = [0; 4].map(|_| {
            self.started.push(true);
            self.func.new_block(ins.at)
        });
        let base = self.func.add_param(items_b, Type::CPTR);
        let is_first = self.is_type(cur, seq_ty, first, ins);
        self.end(cur, branch(is_first, first_b, second_check));
        cur.block = second_check;
        let is_second = self.is_type(cur, seq_ty, second, ins);
        self.end(cur, branch(is_second, second_b, slow));
        for (block, kind) in [(first_b, first), (second_b, second)] {
            cur.block = block;
            let items = match kind {
                SeqKind::List => word(self, cur, seq, LIST_ITEMS, Type::CPTR),
                SeqKind::Tuple => {
                    let offset = self.cint(cur, 8 * i64::from(TUPLE_ITEMS), ins);
                    let add = InstKind::ArithWords {
                        a: seq,
                        b: offset,
                        op: WordArith::Add,
                    };
                    self.emit(cur, add, Type::CPTR, ins)
                }
            };
            let jump = Terminator::Jump {
                target: items_b,
                args: vec![items],
            };
            self.end(cur, jump);
        }
        cur.block = items_b;
        let size = word(self, cur, seq, SIZE_WORD, Type::CINT);
        let want = self.cint(cur, i64::from(n), ins);
        let equal = self.emit(cur, InstKind::Is { a: size, b: want }, Type::CBOOL, ins);
        self.continue_if(cur, equal, slow, ins);
        let mut items: Vec<ValueId> = (0..n)
            .map(|i| {
                let v = word(self, cur, base, i, Type::OBJECT);
                self.incref(cur, v, ins);
                v
            })
            .collect();
        self.decref(cur, seq, ins);
        items.reverse();
        items
    }

    /// Machine bool: `ty` (a type object) is exactly `kind`'s type.
    fn is_type(&mut self, cur: &mut Cursor, ty: ValueId, kind: SeqKind, ins: &Instr) -> ValueId {
        let wk = &self.code.well_known;
        let expected = match kind {
            SeqKind::Tuple => ConstInfo {
                obj: wk.tuple_type,
                text: "<type tuple>".into(),
                ty: Type::TYPE_OBJ,
            },
            SeqKind::List => ConstInfo {
                obj: wk.list_type,
                text: "<type list>".into(),
                ty: Type::TYPE_OBJ,
            },
        };
        let expected = self.constant(cur, &expected, ins);
        let same = InstKind::Is { a: ty, b: expected };
        self.emit(cur, same, Type::CBOOL, ins)
    }

    /// [`Self::unpack_sequence`] through `fj_unpack_sequence`: the items in the stack slots
    /// where they will live, read back.
    fn unpack_through_helper(
        &mut self,
        cur: &mut Cursor,
        seq: ValueId,
        ins: &Instr,
    ) -> Vec<ValueId> {
        let (before, after, total) = if ins.op == UNPACK_EX {
            let (before, after) = (ins.arg & 0xff, ins.arg >> 8);
            (before as i64, after as i64, before + after + 1)
        } else {
            (ins.arg as i64, -1, ins.arg)
        };
        let depth = self.depth(cur);
        let out = self.emit(cur, InstKind::StackAddr { depth }, Type::CPTR, ins);
        let before = self.cint(cur, before, ins);
        let after = self.cint(cur, after, ins);
        let args = vec![seq, before, after, out];
        let r = self.helper(cur, Helper::UnpackSequence, args, Type::CINT, ins);
        // The interpreter releases the sequence before it looks at the outcome.
        self.decref(cur, seq, ins);
        self.check(cur, r, ErrorCheck::Negative, ins);
        (0..total)
            .map(|i| {
                let read = InstKind::ReadStack { depth: depth + i };
                self.emit(cur, read, Type::OBJECT, ins)
            })
            .collect()
    }

    /// Pushes `Py_True`/`Py_False` (a new reference) for machine bool `c`, negated if asked.
    fn push_bool(&mut self, cur: &mut Cursor, c: ValueId, negate: bool, ins: &Instr) {
        let b = self.emit(
            cur,
            InstKind::BoolObject { value: c, negate },
            Type::BOOL,
            ins,
        );
        self.incref(cur, b, ins);
        cur.stack.push(b);
    }

    fn load_global(&mut self, cur: &mut Cursor, ins: &Instr) -> Result<(), Unsupported> {
        let name = self.code.names[(ins.arg >> 1) as usize].clone();
        // Every exit below resumes at (or raises from) the LOAD_GLOBAL itself, so its frame state
        // is the stack before the instruction: the NULL for a call is pushed last, as the
        // interpreter does once the lookup has succeeded.
        let globals_ok = |v: u32| {
            self.code
                .globals_keys
                .map(|k| k.version == v)
                .unwrap_or(false)
        };
        let generic = self.code.generic_sites.contains(&ins.at);
        let v = match ins.specialised {
            LOAD_GLOBAL_MODULE if globals_ok(ins.cache_u32(2)) && !generic => {
                let state = self.speculation(cur, ins, MODULE_KEYS_CHANGED).unwrap();
                let (version, index) = (ins.cache_u32(2), ins.cache[1] as u32);
                let entries = self.code.globals_keys.unwrap().entries;
                self.emit(
                    cur,
                    InstKind::LoadModuleGlobal {
                        version,
                        index,
                        entries,
                        state,
                    },
                    Type::OBJECT,
                    ins,
                )
            }
            LOAD_GLOBAL_BUILTIN
                if globals_ok(ins.cache_u32(2))
                    && self
                        .code
                        .builtins_keys
                        .map(|k| k.version == ins.cache[4] as u32)
                        .unwrap_or(false)
                    && !generic =>
            {
                let state = self.speculation(cur, ins, BUILTINS_KEYS_CHANGED).unwrap();
                let kind = InstKind::LoadBuiltin {
                    globals_version: ins.cache_u32(2),
                    builtins_version: ins.cache[4] as u32,
                    index: ins.cache[1] as u32,
                    entries: self.code.builtins_keys.unwrap().entries,
                    state,
                };
                self.emit(cur, kind, Type::OBJECT, ins)
            }
            _ if !generic && self.compile_time_slot(ins) != GlobalSlot::Unknown => {
                // Never specialised by the interpreter (the function compiled before this
                // instruction ran): the entry found at compile time, under the same guards.
                let kind = self.compile_time_load(cur, ins);
                self.emit(cur, kind, Type::OBJECT, ins)
            }
            _ => {
                let n = self.constant(cur, &name, ins);
                let frame = self.frame.unwrap();
                let r = self.helper(cur, Helper::LoadGlobal, vec![frame, n], Type::OBJECT, ins);
                self.deopt_if_marker(cur, r, ins, "LOAD_GLOBAL name missing");
                self.check(cur, r, ErrorCheck::Null, ins);
                self.push_global(cur, r, ins);
                return Ok(());
            }
        };
        if let Some(&function) = self.code.global_functions.get(&(ins.arg >> 1)) {
            self.known_functions.insert(v, function);
        }
        if let Some(class) = self.code.global_classes.get(&(ins.arg >> 1)) {
            self.known_classes.insert(v, class.clone());
        }
        self.incref(cur, v, ins);
        self.push_global(cur, v, ins);
        Ok(())
    }

    /// The load of a global from the entry where it was at compile time.
    fn compile_time_load(&mut self, cur: &Cursor, ins: &Instr) -> InstKind {
        let globals = self.code.globals_keys.unwrap();
        let builtins = self.code.builtins_keys.unwrap();
        match self.compile_time_slot(ins) {
            GlobalSlot::Builtin(index) => InstKind::LoadBuiltin {
                globals_version: globals.version,
                builtins_version: builtins.version,
                index,
                entries: builtins.entries,
                state: self.speculation(cur, ins, BUILTINS_KEYS_CHANGED).unwrap(),
            },
            GlobalSlot::Module(index) => InstKind::LoadModuleGlobal {
                version: globals.version,
                index,
                entries: globals.entries,
                state: self.speculation(cur, ins, MODULE_KEYS_CHANGED).unwrap(),
            },
            GlobalSlot::Unknown => unreachable!("the caller checked the slot"),
        }
    }

    /// Where the name of a `LOAD_GLOBAL` was at compile time (Unknown when not looked up).
    fn compile_time_slot(&self, ins: &Instr) -> GlobalSlot {
        let name = (ins.arg >> 1) as usize;
        let known = self.code.globals_keys.is_some() && self.code.builtins_keys.is_some();
        match self.code.global_slots.get(name) {
            Some(&slot) if known => slot,
            _ => GlobalSlot::Unknown,
        }
    }

    /// Pushes the result of LOAD_GLOBAL, preceded by a NULL when the oparg asks for one.
    fn push_global(&mut self, cur: &mut Cursor, value: ValueId, ins: &Instr) {
        if ins.arg & 1 == 1 {
            let n = self.emit(cur, InstKind::Null, Type::NULL, ins);
            cur.stack.push(n);
        }
        cur.stack.push(value);
    }

    fn load_attr(&mut self, cur: &mut Cursor, ins: &Instr) -> Result<(), Unsupported> {
        let obj = *cur.stack.last().unwrap();
        let cases = self.instance_attr_cases(ins);
        let r = if !cases.is_empty() {
            // The types the interpreter (or the site's cache) saw, with their values in place
            // and the slot filled, get a slot read; anything else (another type, a
            // materialised `__dict__`, an attribute not set) the generic lookup. No exit: each
            // case is an ordinary path.
            let fast = |b: &mut Self, cur: &mut Cursor, slow: BlockId| {
                vec![b.instance_attr_reads(cur, obj, &cases, slow, ins)]
            };
            let slow = |b: &mut Self, cur: &mut Cursor| vec![b.generic_getattr(cur, obj, ins)];
            self.fast_or_slow(cur, &[Type::OBJECT], ins, fast, slow)[0]
        } else if ins.specialised == LOAD_ATTR_SLOT {
            // A `__slots__` member at a byte offset in the object, as LOAD_ATTR_SLOT reads it:
            // the type the interpreter saw and the member set give a read; anything else the
            // generic lookup (which raises AttributeError for an unset member).
            let (version, index) = (ins.cache_u32(1), u32::from(ins.cache[3]) / 8);
            let fast = |b: &mut Self, cur: &mut Cursor, slow: BlockId| {
                b.continue_if_type_version(cur, obj, version, slow, ins);
                let v = b.emit(
                    cur,
                    InstKind::LoadWord { base: obj, index },
                    Type::OPT_OBJECT,
                    ins,
                );
                let set = b.emit(cur, InstKind::NotNull { value: v }, Type::CBOOL, ins);
                b.continue_if(cur, set, slow, ins);
                b.incref(cur, v, ins);
                vec![v]
            };
            let slow = |b: &mut Self, cur: &mut Cursor| vec![b.generic_getattr(cur, obj, ins)];
            self.fast_or_slow(cur, &[Type::OBJECT], ins, fast, slow)[0]
        } else if ins.specialised == LOAD_ATTR_WITH_HINT && self.code.inline_dict_attrs {
            // An instance whose `__dict__` was materialised: the type the interpreter saw, and
            // the name still at the entry it was found at, give a read of that entry.
            let (version, hint) = (ins.cache_u32(1), ins.cache[3] as u32);
            let fast = |b: &mut Self, cur: &mut Cursor, slow: BlockId| {
                b.continue_if_type_version(cur, obj, version, slow, ins);
                let name = b.code.names[ins.arg as usize].clone();
                let name = b.constant(cur, &name, ins);
                let hinted = InstKind::LoadDictHint { obj, name, hint };
                let v = b.emit(cur, hinted, Type::OPT_OBJECT, ins);
                b.incref_if_found(cur, v, slow, ins);
                vec![v]
            };
            let slow = |b: &mut Self, cur: &mut Cursor| vec![b.generic_getattr(cur, obj, ins)];
            self.fast_or_slow(cur, &[Type::OBJECT], ins, fast, slow)[0]
        } else if ins.specialised == LOAD_ATTR_MODULE && self.code.inline_dict_attrs {
            // A module attribute: the module dict's keys the interpreter saw give a read of
            // the entry (`math.sqrt`, `random.random`).
            let (version, index) = (ins.cache_u32(1), ins.cache[3] as u32);
            let fast = |b: &mut Self, cur: &mut Cursor, slow: BlockId| {
                let read = InstKind::LoadModuleAttr {
                    obj,
                    version,
                    index,
                };
                let v = b.emit(cur, read, Type::OPT_OBJECT, ins);
                b.incref_if_found(cur, v, slow, ins);
                vec![v]
            };
            let slow = |b: &mut Self, cur: &mut Cursor| vec![b.generic_getattr(cur, obj, ins)];
            self.fast_or_slow(cur, &[Type::OBJECT], ins, fast, slow)[0]
        } else {
            self.generic_getattr(cur, obj, ins)
        };
        cur.stack.pop();
        self.decref(cur, obj, ins);
        cur.stack.push(r);
        Ok(())
    }

    /// The (type version, shared-keys index) of each type whose instance attribute a
    /// `LOAD_ATTR` reads inline: the interpreter's `LOAD_ATTR_INSTANCE_VALUE` first, then those
    /// the site's cache learnt (`poly-attrs`) at a site so specialised or left generic.
    fn instance_attr_cases(&self, ins: &Instr) -> Vec<(u32, u32)> {
        let mut cases = Vec::new();
        match ins.specialised {
            LOAD_ATTR_INSTANCE_VALUE => cases.push((ins.cache_u32(1), ins.cache[3] as u32)),
            LOAD_ATTR | LOAD_ATTR_ADAPTIVE => {}
            _ => return cases,
        }
        for &case in self.code.poly.attrs.get(&ins.at).into_iter().flatten() {
            if !cases.iter().any(|&(version, _)| version == case.0) {
                cases.push(case);
            }
        }
        cases
    }

    /// An instance attribute read for `obj` where its type version is one of `cases`' (type
    /// version, shared-keys index), `slow` for any other: the type checks come first, in order,
    /// each going to the read of its case's index (types that keep the attribute at the same
    /// index, as subclasses sharing `__init__` do, share one read). A read needs the values
    /// array in place and the slot filled, or goes to `slow`. Returns a new reference. One case
    /// is `LOAD_ATTR_INSTANCE_VALUE`'s read.
    fn instance_attr_reads(
        &mut self,
        cur: &mut Cursor,
        obj: ValueId,
        cases: &[(u32, u32)],
        slow: BlockId,
        ins: &Instr,
    ) -> ValueId {
        let places = self.switch_on_slot(cur, obj, cases, slow, ins);
        let hit = (places.len() > 1).then(|| {
            let block = self.side_block(ins);
            (block, self.func.add_param(block, Type::OBJECT))
        });
        let mut value = None;
        for &(block, index) in &places {
            cur.block = block;
            let values = self.emit(cur, InstKind::InstanceValues { obj }, Type::CPTR, ins);
            let present = self.emit(cur, InstKind::NotNull { value: values }, Type::CBOOL, ins);
            self.continue_if(cur, present, slow, ins);
            let word = InstKind::LoadWord {
                base: values,
                index,
            };
            let v = self.emit(cur, word, Type::OPT_OBJECT, ins);
            let filled = self.emit(cur, InstKind::NotNull { value: v }, Type::CBOOL, ins);
            self.continue_if(cur, filled, slow, ins);
            self.incref(cur, v, ins);
            match hit {
                Some((join, _)) => self.end(
                    cur,
                    Terminator::Jump {
                        target: join,
                        args: vec![v],
                    },
                ),
                None => value = Some(v),
            }
        }
        match hit {
            Some((join, param)) => {
                cur.block = join;
                param
            }
            None => value.expect("one case at least"),
        }
    }

    /// Type-version checks of `obj` for `cases` (type version, shared-keys index), each going
    /// to the block of its case's index, the last failed one to `slow`; the (block, index)
    /// pairs, one per distinct index (types that keep the attribute at the same place, as
    /// subclasses sharing `__init__` do, share one block).
    fn switch_on_slot(
        &mut self,
        cur: &mut Cursor,
        obj: ValueId,
        cases: &[(u32, u32)],
        slow: BlockId,
        ins: &Instr,
    ) -> Vec<(BlockId, u32)> {
        let mut places: Vec<(BlockId, u32)> = Vec::new();
        let mut targets = Vec::new();
        for &(version, index) in cases {
            let block = match places.iter().find(|&&(_, i)| i == index) {
                Some(&(block, _)) => block,
                None => {
                    let block = self.side_block(ins);
                    places.push((block, index));
                    block
                }
            };
            targets.push((version, block));
        }
        self.switch_on_type_version(cur, obj, &targets, slow, ins);
        places
    }

    /// Ends the current block with type-version checks of `obj`, in order, each going to its
    /// target block where it holds; the last one that fails goes to `slow`.
    fn switch_on_type_version(
        &mut self,
        cur: &mut Cursor,
        obj: ValueId,
        targets: &[(u32, BlockId)],
        slow: BlockId,
        ins: &Instr,
    ) {
        for (i, &(version, target)) in targets.iter().enumerate() {
            let miss = match i + 1 == targets.len() {
                true => slow,
                false => self.side_block(ins),
            };
            let cond = self.has_type_version(cur, obj, version, ins);
            let branch = Terminator::Branch {
                cond,
                then_to: target,
                then_args: vec![],
                else_to: miss,
                else_args: vec![],
            };
            self.end(cur, branch);
            cur.block = miss;
        }
    }

    /// A new block (not at a bytecode boundary) at `ins`, to be switched to later.
    fn side_block(&mut self, ins: &Instr) -> BlockId {
        self.started.push(true);
        self.func.new_block(ins.at)
    }

    /// Goes on with a new reference to `v` where it is not NULL, to `slow` where it is.
    fn incref_if_found(&mut self, cur: &mut Cursor, v: ValueId, slow: BlockId, ins: &Instr) {
        let found = self.emit(cur, InstKind::NotNull { value: v }, Type::CBOOL, ins);
        self.continue_if(cur, found, slow, ins);
        self.incref(cur, v, ins);
    }

    /// Checks that `obj` has type version `version` and its values array in place (no
    /// materialised `__dict__`), going to `slow` otherwise; returns the values pointer.
    fn instance_values(
        &mut self,
        cur: &mut Cursor,
        obj: ValueId,
        version: u32,
        slow: BlockId,
        ins: &Instr,
    ) -> ValueId {
        self.continue_if_type_version(cur, obj, version, slow, ins);
        let values = self.emit(cur, InstKind::InstanceValues { obj }, Type::CPTR, ins);
        let present = self.emit(cur, InstKind::NotNull { value: values }, Type::CBOOL, ins);
        self.continue_if(cur, present, slow, ins);
        values
    }

    /// Goes on where `obj`'s type has version `version`, to `slow` where it does not.
    fn continue_if_type_version(
        &mut self,
        cur: &mut Cursor,
        obj: ValueId,
        version: u32,
        slow: BlockId,
        ins: &Instr,
    ) {
        let same = self.has_type_version(cur, obj, version, ins);
        self.continue_if(cur, same, slow, ins);
    }

    /// A machine bool: whether `obj`'s type has version tag `version`.
    fn has_type_version(
        &mut self,
        cur: &mut Cursor,
        obj: ValueId,
        version: u32,
        ins: &Instr,
    ) -> ValueId {
        let kind = InstKind::HasTypeVersion {
            value: obj,
            version,
        };
        self.emit(cur, kind, Type::CBOOL, ins)
    }

    /// Ends the current block with a branch on machine bool `cond`: building continues in a
    /// fresh block where it holds, and control goes to `otherwise` where it does not.
    fn continue_if(&mut self, cur: &mut Cursor, cond: ValueId, otherwise: BlockId, ins: &Instr) {
        let next = self.func.new_block(ins.at);
        self.started.push(true);
        self.end(
            cur,
            Terminator::Branch {
                cond,
                then_to: next,
                then_args: vec![],
                else_to: otherwise,
                else_args: vec![],
            },
        );
        cur.block = next;
    }

    /// A fast path made of checks that each may give up, and the slow path they give up to:
    /// `fast` gets the slow path's block to pass to [`Self::continue_if`]. Both start from the
    /// current stack and return values of types `outs`, which the join block (where building
    /// continues) receives as parameters, returned here.
    fn fast_or_slow(
        &mut self,
        cur: &mut Cursor,
        outs: &[Type],
        ins: &Instr,
        fast: impl FnOnce(&mut Self, &mut Cursor, BlockId) -> Vec<ValueId>,
        slow: impl FnOnce(&mut Self, &mut Cursor) -> Vec<ValueId>,
    ) -> Vec<ValueId> {
        let stack = cur.stack.clone();
        let (slow_b, join) = (self.func.new_block(ins.at), self.func.new_block(ins.at));
        self.started.extend([true, true]);
        let params: Vec<ValueId> = outs.iter().map(|t| self.func.add_param(join, *t)).collect();
        let args = fast(self, cur, slow_b);
        debug_assert_eq!(args.len(), outs.len());
        self.end(cur, Terminator::Jump { target: join, args });
        cur.block = slow_b;
        cur.stack = stack.clone();
        let first_new = self.func.blocks.len();
        let args = slow(self, cur);
        self.mark_cold(slow_b, first_new);
        debug_assert_eq!(args.len(), outs.len());
        self.end(cur, Terminator::Jump { target: join, args });
        cur.stack = stack;
        cur.block = join;
        params
    }

    /// `getattr(obj, name)`; the interpreter keeps the owner on the stack when it raises.
    fn generic_getattr(&mut self, cur: &mut Cursor, obj: ValueId, ins: &Instr) -> ValueId {
        let name = self.code.names[ins.arg as usize].clone();
        let n = self.constant(cur, &name, ins);
        let cache = self.site_cache(cur, ins);
        let r = self.helper(cur, Helper::GetAttr, vec![obj, n, cache], Type::OBJECT, ins);
        self.check(cur, r, ErrorCheck::Null, ins);
        r
    }

    fn store_attr(&mut self, cur: &mut Cursor, ins: &Instr) -> Result<(), Unsupported> {
        let n = cur.stack.len();
        if n < 2 {
            return Err(Unsupported(format!("stack underflow at {}", ins.at)));
        }
        let (value, owner) = (cur.stack[n - 2], cur.stack[n - 1]);
        cur.stack.truncate(n - 2);
        let cases = self.instance_store_cases(ins);
        if !cases.is_empty() {
            let fast = |b: &mut Self, cur: &mut Cursor, slow: BlockId| {
                b.instance_stores(cur, owner, value, &cases, slow, ins);
                vec![]
            };
            let slow = |b: &mut Self, cur: &mut Cursor| {
                b.generic_setattr(cur, owner, value, ins);
                vec![]
            };
            self.fast_or_slow(cur, &[], ins, fast, slow);
            return Ok(());
        }
        if ins.specialised == STORE_ATTR_INSTANCE_VALUE {
            // As the interpreter's STORE_ATTR_INSTANCE_VALUE: the type it saw, with its values
            // in place, stores into the slot, and a slot filled for the first time (every
            // `__init__`) joins the insertion order. Anything else takes the generic path.
            let (version, index) = (ins.cache_u32(1), ins.cache[3] as u32);
            let fast = |b: &mut Self, cur: &mut Cursor, slow: BlockId| {
                let values = b.instance_values(cur, owner, version, slow, ins);
                b.store_instance_value(cur, values, index, value, ins);
                b.decref(cur, owner, ins);
                vec![]
            };
            let slow = |b: &mut Self, cur: &mut Cursor| {
                b.generic_setattr(cur, owner, value, ins);
                vec![]
            };
            self.fast_or_slow(cur, &[], ins, fast, slow);
            return Ok(());
        }
        if ins.specialised == STORE_ATTR_WITH_HINT && self.code.store_attr_dict {
            let name = self.code.names[ins.arg as usize].clone();
            let nm = self.constant(cur, &name, ins);
            let version = self.cint(cur, i64::from(ins.cache_u32(1)), ins);
            let r = self.helper(
                cur,
                Helper::StoreAttrDict,
                vec![owner, nm, value, version],
                Type::CINT,
                ins,
            );
            self.decref(cur, value, ins);
            self.decref(cur, owner, ins);
            self.check(cur, r, ErrorCheck::Negative, ins);
            return Ok(());
        }
        if ins.specialised == STORE_ATTR_SLOT {
            // As STORE_ATTR_SLOT: the type the interpreter saw gets the member stored at its
            // byte offset (the old value, if any, released after); anything else setattr.
            let (version, index) = (ins.cache_u32(1), u32::from(ins.cache[3]) / 8);
            let fast = |b: &mut Self, cur: &mut Cursor, slow: BlockId| {
                b.continue_if_type_version(cur, owner, version, slow, ins);
                let old = b.emit(
                    cur,
                    InstKind::LoadWord { base: owner, index },
                    Type::OPT_OBJECT,
                    ins,
                );
                let store = InstKind::StoreWord {
                    base: owner,
                    index,
                    value,
                };
                b.emit(cur, store, Type::VOID, ins);
                b.xdecref(cur, old, ins);
                b.decref(cur, owner, ins);
                vec![]
            };
            let slow = |b: &mut Self, cur: &mut Cursor| {
                b.generic_setattr(cur, owner, value, ins);
                vec![]
            };
            self.fast_or_slow(cur, &[], ins, fast, slow);
            return Ok(());
        }
        self.generic_setattr(cur, owner, value, ins);
        Ok(())
    }

    /// `setattr(owner, name, value)`, releasing both (already popped).
    /// The (type version, shared-keys index) of each type whose instance attribute a
    /// `STORE_ATTR` stores inline after one type check each, when its cache learnt some
    /// (`poly-stores`): the interpreter's `STORE_ATTR_INSTANCE_VALUE` first, then the cache's.
    /// Empty otherwise: the site keeps the interpreter's one-type form or its generic path.
    fn instance_store_cases(&self, ins: &Instr) -> Vec<(u32, u32)> {
        let Some(learnt) = self.code.poly.stores.get(&ins.at) else {
            return Vec::new();
        };
        let mut cases = Vec::new();
        if ins.specialised == STORE_ATTR_INSTANCE_VALUE {
            cases.push((ins.cache_u32(1), ins.cache[3] as u32));
        }
        for &case in learnt {
            if !cases.iter().any(|&(version, _)| version == case.0) {
                cases.push(case);
            }
        }
        cases
    }

    /// `owner.name = value` for an `owner` whose type version is one of `cases`', `slow` for
    /// any other or for an instance whose values were turned into a dict: the type checks
    /// first, each going to the store at its case's shared-keys index (types that keep the
    /// attribute at the same index share one). Takes `value` and `owner`.
    fn instance_stores(
        &mut self,
        cur: &mut Cursor,
        owner: ValueId,
        value: ValueId,
        cases: &[(u32, u32)],
        slow: BlockId,
        ins: &Instr,
    ) {
        let places = self.switch_on_slot(cur, owner, cases, slow, ins);
        let join = self.side_block(ins);
        for &(block, index) in &places {
            cur.block = block;
            let values = self.emit(
                cur,
                InstKind::InstanceValues { obj: owner },
                Type::CPTR,
                ins,
            );
            let present = self.emit(cur, InstKind::NotNull { value: values }, Type::CBOOL, ins);
            self.continue_if(cur, present, slow, ins);
            self.store_instance_value(cur, values, index, value, ins);
            let jump = Terminator::Jump {
                target: join,
                args: vec![],
            };
            self.end(cur, jump);
        }
        cur.block = join;
        self.decref(cur, owner, ins);
    }

    /// `STORE_ATTR_INSTANCE_VALUE`'s store of `value` (taken) into slot `index` of an
    /// instance's `values`: the old value released, or a slot filled for the first time (every
    /// `__init__`) added to the insertion order.
    fn store_instance_value(
        &mut self,
        cur: &mut Cursor,
        values: ValueId,
        index: u32,
        value: ValueId,
        ins: &Instr,
    ) {
        let old = InstKind::LoadWord {
            base: values,
            index,
        };
        let old = self.emit(cur, old, Type::OPT_OBJECT, ins);
        let store = InstKind::StoreWord {
            base: values,
            index,
            value,
        };
        self.emit(cur, store, Type::VOID, ins);
        let had = self.emit(cur, InstKind::NotNull { value: old }, Type::CBOOL, ins);
        let release = |b: &mut Self, cur: &mut Cursor| {
            b.decref(cur, old, ins);
            vec![]
        };
        let first = |b: &mut Self, cur: &mut Cursor| {
            let i = b.cint(cur, index as i64, ins);
            b.helper(cur, Helper::ValuesAddKey, vec![values, i], Type::VOID, ins);
            vec![]
        };
        self.diamond(cur, had, &[], ins, release, first);
    }

    fn generic_setattr(&mut self, cur: &mut Cursor, owner: ValueId, value: ValueId, ins: &Instr) {
        let name = self.code.names[ins.arg as usize].clone();
        let nm = self.constant(cur, &name, ins);
        let r = match self.code.cached_stores {
            true => {
                let cache = self.site_cache(cur, ins);
                let args = vec![owner, nm, value, cache];
                self.helper(cur, Helper::SetAttrCached, args, Type::CINT, ins)
            }
            false => {
                let args = vec![owner, nm, value];
                self.helper(cur, Helper::SetAttr, args, Type::CINT, ins)
            }
        };
        self.decref(cur, value, ins);
        self.decref(cur, owner, ins);
        self.check(cur, r, ErrorCheck::Negative, ins);
    }

    fn load_method(&mut self, cur: &mut Cursor, ins: &Instr) -> Result<(), Unsupported> {
        let cases = self.method_cases(ins);
        if !cases.is_empty() {
            let obj = *cur.stack.last().unwrap();
            let outs = [Type::OPT_OBJECT, Type::OBJECT];
            let fast = |b: &mut Self, cur: &mut Cursor, slow| {
                b.methods_inline(cur, obj, &cases, slow, ins)
            };
            let slow = |b: &mut Self, cur: &mut Cursor| b.generic_load_method(cur, obj, ins);
            let pair = self.fast_or_slow(cur, &outs, ins, fast, slow);
            let mut methods: Vec<usize> = cases.iter().map(|c| c.method).collect();
            methods.sort_unstable();
            methods.dedup();
            self.known_methods.insert(pair[0], methods);
            cur.stack.pop();
            cur.stack.extend(pair);
            return Ok(());
        }
        let cached = match ins.specialised {
            LOAD_METHOD_WITH_VALUES | LOAD_METHOD_NO_DICT => Some(ins.cache_u64(6) as usize),
            _ => None,
        };
        let obj = *cur.stack.last().unwrap();
        let state = match cached {
            Some(_) => self.speculation(cur, ins, "LOAD_METHOD cached method"),
            None => None,
        };
        let pair = match (cached, state) {
            (Some(descr), Some(state)) => {
                let version = ins.cache_u32(1);
                let same = self.has_type_version(cur, obj, version, ins);
                let fast = |b: &mut Self, cur: &mut Cursor| {
                    if ins.specialised == LOAD_METHOD_WITH_VALUES {
                        b.emit(
                            cur,
                            InstKind::GuardNoDict { value: obj, state },
                            Type::VOID,
                            ins,
                        );
                        let keys = ins.cache_u32(4);
                        b.emit(
                            cur,
                            InstKind::GuardCachedKeysVersion {
                                value: obj,
                                version: keys,
                                state,
                            },
                            Type::VOID,
                            ins,
                        );
                    }
                    vec![b.method_constant(cur, descr, ins), obj]
                };
                let slow = |b: &mut Self, cur: &mut Cursor| b.generic_load_method(cur, obj, ins);
                self.diamond(
                    cur,
                    same,
                    &[Type::OPT_OBJECT, Type::OBJECT],
                    ins,
                    fast,
                    slow,
                )
            }
            _ => self.generic_load_method(cur, obj, ins),
        };
        if let Some(method) = cached.filter(|_| state.is_some()) {
            self.known_methods.insert(pair[0], vec![method]);
        }
        cur.stack.pop();
        cur.stack.extend(pair);
        Ok(())
    }

    /// The types whose method a `LOAD_METHOD` site finds inline after one type check each, when
    /// its cache learnt some (`poly-methods`): the interpreter's `LOAD_METHOD_WITH_VALUES` or
    /// `LOAD_METHOD_NO_DICT` case first, then the cache's. Empty otherwise: the site keeps the
    /// interpreter's one-type form (a deopting guard) or its generic path.
    fn method_cases(&self, ins: &Instr) -> Vec<MethodCase> {
        let Some(learnt) = self.code.poly.methods.get(&ins.at) else {
            return Vec::new();
        };
        let mut cases: Vec<MethodCase> = MethodCase::interpreters(ins).into_iter().collect();
        for &case in learnt {
            if !cases.iter().any(|c| c.version == case.version) {
                cases.push(case);
            }
        }
        cases
    }

    /// The (method, self) pair of a `LOAD_METHOD` on `obj` whose type is one of `cases`', `slow`
    /// for any other or for an instance that may shadow the method: the type checks first, then
    /// each case's own check and its method (a new reference; `obj` moves to the self slot).
    fn methods_inline(
        &mut self,
        cur: &mut Cursor,
        obj: ValueId,
        cases: &[MethodCase],
        slow: BlockId,
        ins: &Instr,
    ) -> Vec<ValueId> {
        let blocks: Vec<BlockId> = cases.iter().map(|_| self.side_block(ins)).collect();
        let targets: Vec<(u32, BlockId)> = cases
            .iter()
            .map(|c| c.version)
            .zip(blocks.iter().copied())
            .collect();
        self.switch_on_type_version(cur, obj, &targets, slow, ins);
        let join = self.side_block(ins);
        let method = self.func.add_param(join, Type::OPT_OBJECT);
        let this = self.func.add_param(join, Type::OBJECT);
        for (case, &block) in cases.iter().zip(&blocks) {
            cur.block = block;
            match case.unshadowed {
                Unshadowed::NoDict => {}
                Unshadowed::Values(check) => {
                    let values = self.emit(cur, InstKind::InstanceValues { obj }, Type::CPTR, ins);
                    let present =
                        self.emit(cur, InstKind::NotNull { value: values }, Type::CBOOL, ins);
                    self.continue_if(cur, present, slow, ins);
                    let kind = InstKind::SharedKeysAre { value: obj, check };
                    let unchanged = self.emit(cur, kind, Type::CBOOL, ins);
                    self.continue_if(cur, unchanged, slow, ins);
                }
                Unshadowed::OwnDict => {
                    let name = self.code.names[ins.arg as usize].clone();
                    let n = self.constant(cur, &name, ins);
                    let version = self.cint(cur, i64::from(case.version), ins);
                    let args = vec![obj, n, version];
                    let lacks = self.helper(cur, Helper::OwnDictLacks, args, Type::CBOOL, ins);
                    self.continue_if(cur, lacks, slow, ins);
                }
            }
            let m = self.method_constant(cur, case.method, ins);
            let args = vec![m, obj];
            self.end(cur, Terminator::Jump { target: join, args });
        }
        cur.block = join;
        vec![method, this]
    }

    /// A new reference to the method a `LOAD_METHOD` cache holds (borrowed from its type).
    fn method_constant(&mut self, cur: &mut Cursor, method: usize, ins: &Instr) -> ValueId {
        let m = ConstInfo {
            obj: method,
            text: format!("<method {method:#x}>"),
            ty: Type::OTHER,
        };
        let mv = self.constant(cur, &m, ins);
        self.incref(cur, mv, ins);
        mv
    }

    /// The interpreter's LOAD_METHOD through a helper that writes the (method, self) or
    /// (NULL, attribute) pair into the frame's stack; on error the object stays on the stack.
    fn generic_load_method(&mut self, cur: &mut Cursor, obj: ValueId, ins: &Instr) -> Vec<ValueId> {
        let name = self.code.names[ins.arg as usize].clone();
        let n = self.constant(cur, &name, ins);
        let depth = self.depth(cur) - 1;
        let out = self.emit(cur, InstKind::StackAddr { depth }, Type::CPTR, ins);
        let cache = self.site_cache(cur, ins);
        let r = self.helper(
            cur,
            Helper::LoadMethod,
            vec![obj, n, out, cache],
            Type::CINT,
            ins,
        );
        self.check(cur, r, ErrorCheck::Negative, ins);
        let m = self.emit(cur, InstKind::ReadStack { depth }, Type::OPT_OBJECT, ins);
        let s = self.emit(
            cur,
            InstKind::ReadStack { depth: depth + 1 },
            Type::OBJECT,
            ins,
        );
        vec![m, s]
    }

    fn call(&mut self, cur: &mut Cursor, ins: &Instr) -> Result<(), Unsupported> {
        let n = ins.arg as usize + 2;
        if cur.stack.len() < n {
            return Err(Unsupported(format!(
                "CALL with a short stack at {}",
                ins.at
            )));
        }
        let items = cur.stack.split_off(cur.stack.len() - n);
        let (method, callable) = (items[0], items[1]);
        let depth = self.depth(cur);
        self.emit(
            cur,
            InstKind::SpillToStack {
                depth,
                values: items,
            },
            Type::VOID,
            ins,
        );
        let addr = self.emit(cur, InstKind::StackAddr { depth }, Type::CPTR, ins);
        let oparg = self.cint(cur, ins.arg as i64, ins);
        let no_kwnames = cur.kwnames.is_none();
        // The keyword names of a `KW_NAMES` (None inside when they are not known).
        let kwnames: Option<Option<Vec<String>>> =
            cur.kwnames.map(|k| self.code.kwnames.get(&k).cloned());
        let kw = match cur.kwnames.take() {
            Some(k) => {
                let c = self.code.consts[k].clone();
                self.constant(cur, &c, ins)
            }
            None => self.cint(cur, 0, ins),
        };
        cur.call_start = None;
        let helper = if no_kwnames && self.code.c_calls && self.precall_calls_c(ins) {
            Helper::CallC
        } else {
            Helper::Call
        };
        let known = match (helper, &kwnames) {
            (Helper::Call, None) => self.known_callee(method, callable, ins.arg, &[]),
            (Helper::Call, Some(Some(names))) => {
                self.known_callee(method, callable, ins.arg, names)
            }
            _ => None,
        };
        let r = match known {
            Some(known) => {
                let kind = InstKind::CallCompiled {
                    base: addr,
                    oparg: ins.arg,
                    method: known.method,
                    kwnames: kwnames.is_some().then_some(kw),
                    callees: known.callees,
                    class: known.class,
                };
                self.emit(cur, kind, Type::OBJECT, ins)
            }
            None => self.helper(cur, helper, vec![addr, oparg, kw], Type::OBJECT, ins),
        };
        self.check(cur, r, ErrorCheck::Null, ins);
        cur.stack.push(r);
        let state = self.deopt_after_call(cur, ins, "eval breaker or tracing after call");
        self.emit(
            cur,
            InstKind::GuardInterpreterIdle { state },
            Type::VOID,
            ins,
        );
        Ok(())
    }

    /// The callees a `CALL` of `oparg` arguments may enter from machine code, and whether they
    /// are called as methods: the functions a `LOAD_METHOD` may put in the method slot (one
    /// per type it handles inline), taking `self` and the arguments, or with the method slot
    /// NULL, the function a `LOAD_GLOBAL` found, taking the arguments (see
    /// `CodeInfo::callees`). Those of another shape are left to the runtime's path.
    fn known_callee(
        &self,
        method: ValueId,
        callable: ValueId,
        oparg: u32,
        kwnames: &[String],
    ) -> Option<KnownCall> {
        let mut class = None;
        let (functions, is_method) = match self.known_methods.get(&method) {
            Some(functions) => (functions.clone(), true),
            None if matches!(self.func.inst(method).kind, InstKind::Null) => {
                match self.known_functions.get(&callable) {
                    Some(&function) => (vec![function], false),
                    None => {
                        let known = self.known_classes.get(&callable)?;
                        class = Some(known.clone());
                        (vec![known.init], false)
                    }
                }
            }
            None => return None,
        };
        // A method's self, or the instance `__init__` gets, comes first.
        let first = usize::from(is_method || class.is_some());
        let positional = (oparg as usize).checked_sub(kwnames.len())? + first;
        let callees: Vec<SiteCallee> = functions
            .iter()
            .filter_map(|f| self.code.callees.get(f))
            .filter_map(|c| {
                let args = site_arguments(c, positional, kwnames, self.code.call_binding)?;
                Some(SiteCallee {
                    callee: c.clone(),
                    args,
                })
            })
            .collect();
        (!callees.is_empty()).then_some(KnownCall {
            callees,
            method: is_method,
            class,
        })
    }

    /// Whether the interpreter specialised the `PRECALL` before this `CALL` for a C function
    /// that `fj_call_c` calls directly (see `runtime::c_calls`).
    fn precall_calls_c(&self, call: &Instr) -> bool {
        let Some(i) = self
            .index_of
            .get(&call.start)
            .and_then(|i| i.checked_sub(1))
        else {
            return false;
        };
        let precall = &self.code.instrs[i];
        precall.op == PRECALL
            && matches!(
                precall.specialised,
                PRECALL_NO_KW_BUILTIN_O
                    | PRECALL_NO_KW_BUILTIN_FAST
                    | PRECALL_NO_KW_LEN
                    | PRECALL_NO_KW_ISINSTANCE
                    | PRECALL_NO_KW_METHOD_DESCRIPTOR_O
                    | PRECALL_NO_KW_METHOD_DESCRIPTOR_NOARGS
                    | PRECALL_NO_KW_METHOD_DESCRIPTOR_FAST
                    | PRECALL_NO_KW_LIST_APPEND
                    | PRECALL_NO_KW_TYPE_1
                    | PRECALL_NO_KW_STR_1
                    | PRECALL_NO_KW_TUPLE_1
                    | PRECALL_BUILTIN_CLASS
            )
    }

    /// The truth of `v` as a condition: `(c, negated)`, the truth being `c` or, when
    /// `negated`, `not c`. A bool made here from a condition gives that condition (its truth
    /// test cannot fail); anything else is tested (`Truthy`, which raises as `bool(v)` does).
    /// `Popped::Yes`: `v` is off the stack and released here, before the test's error exit
    /// (whose frame state no longer holds it).
    fn truth(
        &mut self,
        cur: &mut Cursor,
        v: ValueId,
        popped: Popped,
        ins: &Instr,
    ) -> (ValueId, bool) {
        if self.code.fuse_bool_branches {
            if let InstKind::BoolObject { value, negate } = self.func.values[v.0 as usize].kind {
                if popped == Popped::Yes {
                    self.decref(cur, v, ins);
                }
                return (value, negate);
            }
        }
        let t = self.emit(cur, InstKind::Truthy { value: v }, Type::CINT, ins);
        if popped == Popped::Yes {
            self.decref(cur, v, ins);
        }
        self.check(cur, t, ErrorCheck::Negative, ins);
        let c = self.emit(cur, InstKind::NonZero { value: t }, Type::CBOOL, ins);
        (c, false)
    }

    fn jump_or_pop(&mut self, cur: &mut Cursor, ins: &Instr) -> Result<(), Unsupported> {
        let v = *cur.stack.last().unwrap();
        let (c, negated) = self.truth(cur, v, Popped::No, ins);
        let target = self.block_for(ins.jump_target().unwrap())?;
        let jump_args = self.edge_to(target, &cur.stack);
        let saved = cur.block;
        let pop_block = self.fresh_block(cur, ins.at);
        cur.stack.pop();
        self.decref(cur, v, ins);
        let next = self.block_for(ins.next())?;
        let args = self.edge_to(next, &cur.stack);
        self.end(cur, Terminator::Jump { target: next, args });
        let term = if (ins.op == JUMP_IF_FALSE_OR_POP) != negated {
            Terminator::Branch {
                cond: c,
                then_to: pop_block,
                then_args: vec![],
                else_to: target,
                else_args: jump_args,
            }
        } else {
            Terminator::Branch {
                cond: c,
                then_to: target,
                then_args: jump_args,
                else_to: pop_block,
                else_args: vec![],
            }
        };
        self.func.blocks[saved.0 as usize].term = term;
        Ok(())
    }

    fn for_iter(&mut self, cur: &mut Cursor, ins: &Instr) -> Result<(), Unsupported> {
        let iter = *cur.stack.last().unwrap();
        let r = if self.code.inline_for_iter {
            // A list or tuple iterator's next item inline; anything else, and the end of those,
            // through the helper.
            let next = self.emit(cur, InstKind::SeqIterNext { iter }, Type::OPT_OBJECT, ins);
            let found = self.emit(cur, InstKind::NotNull { value: next }, Type::CBOOL, ins);
            let outs = [Type::OPT_OBJECT];
            let slow = |b: &mut Self, cur: &mut Cursor| {
                vec![b.helper(cur, Helper::ForIter, vec![iter], Type::OPT_OBJECT, ins)]
            };
            self.diamond(cur, found, &outs, ins, |_, _| vec![next], slow)[0]
        } else {
            self.helper(cur, Helper::ForIter, vec![iter], Type::OPT_OBJECT, ins)
        };
        self.check(cur, r, ErrorCheck::Null, ins);
        let done = self.emit(cur, InstKind::IsExhausted { value: r }, Type::CBOOL, ins);
        let head = cur.block;
        let mut stack = cur.stack.clone();
        // Exhausted: release the iterator and jump past the loop.
        let exit_block = self.fresh_block(cur, ins.at);
        cur.stack.pop();
        self.decref(cur, iter, ins);
        let after = self.block_for(ins.jump_target().unwrap())?;
        let args = self.edge_to(after, &cur.stack);
        self.end(
            cur,
            Terminator::Jump {
                target: after,
                args,
            },
        );
        // Not exhausted: push the item and continue with the body.
        stack.push(r);
        let body = self.block_for(ins.next())?;
        let body_args = self.edge_to(body, &stack);
        self.func.blocks[head.0 as usize].term = Terminator::Branch {
            cond: done,
            then_to: exit_block,
            then_args: vec![],
            else_to: body,
            else_args: body_args,
        };
        Ok(())
    }
}

/// Whether a `BINARY_OP` oparg is one that [`Helper::BinaryOpNumeric`] computes in doubles
/// (`+`, `-`, `*`, `/` and their in-place forms).
/// What a `CALL` site calls in machine code (see [`InstKind::CallCompiled`]).
struct KnownCall {
    callees: Vec<SiteCallee>,
    method: bool,
    class: Option<KnownClass>,
}

/// Where each parameter of `callee` comes from at a call passing `positional` words (a
/// method's self included) and then one per name of `kwnames`: None when `binding` does not
/// allow the keywords or defaults it needs, or the call does not bind them exactly (too many, a name it lacks or gives twice, a positional-only one by name,
/// one left without a default), which the runtime's path turns into the interpreter's error.
fn site_arguments(
    callee: &KnownCallee,
    positional: usize,
    kwnames: &[String],
    binding: CallBinding,
) -> Option<Vec<ArgFrom>> {
    let n = callee.nargs as usize;
    if positional > n || callee.params.len() != n || !(binding.keywords || kwnames.is_empty()) {
        return None;
    }
    if !binding.defaults && positional + kwnames.len() != n {
        return None;
    }
    let mut args: Vec<Option<ArgFrom>> = (0..n)
        .map(|i| (i < positional).then_some(ArgFrom::Passed(i as u32)))
        .collect();
    for (k, name) in kwnames.iter().enumerate() {
        let i = callee.params.iter().position(|p| p == name)?;
        if i < callee.positional_only as usize || args[i].is_some() {
            return None;
        }
        args[i] = Some(ArgFrom::Passed((positional + k) as u32));
    }
    let first_default = n.checked_sub(callee.ndefaults as usize)?;
    (0..n)
        .map(|i| match args[i] {
            Some(from) => Some(from),
            None if i >= first_default => Some(ArgFrom::Default((i - first_default) as u32)),
            None => None,
        })
        .collect()
}

fn float_arith(oparg: u32) -> bool {
    matches!(
        u8::try_from(oparg),
        Ok(NB_ADD
            | NB_INPLACE_ADD
            | NB_SUBTRACT
            | NB_INPLACE_SUBTRACT
            | NB_MULTIPLY
            | NB_INPLACE_MULTIPLY
            | NB_TRUE_DIVIDE
            | NB_INPLACE_TRUE_DIVIDE)
    )
}

/// The machine-word operation of a `BINARY_OP` oparg the interpreter specialises for ints
/// (`+`, `-`, `*` and their in-place forms), or None.
fn word_arith(oparg: u32) -> Option<WordArith> {
    match u8::try_from(oparg).ok()? {
        NB_ADD | NB_INPLACE_ADD => Some(WordArith::Add),
        NB_SUBTRACT | NB_INPLACE_SUBTRACT => Some(WordArith::Sub),
        NB_MULTIPLY | NB_INPLACE_MULTIPLY => Some(WordArith::Mul),
        _ => None,
    }
}
