//! Lowering [`InstKind::CallCompiled`]: a call of a known Python function (a method, or a
//! global), made in machine code.
//!
//! The runtime's `fj_call` finds the callee, checks that a direct call is allowed, pushes the
//! callee's frame, runs its native code and pops the frame (`runtime::direct_call`); about 240
//! instructions a call, most of them the generic parts: the callable's kind, the table of
//! callees, the frame's size, the locals to clear, a Rust function's prologue. Here the callee
//! (or each of a few candidates, picked by the callable's code) is known when the caller is
//! compiled, so its code, parameter count, frame size and where its native code will be are
//! constants, and the machine code does the same steps itself:
//!
//! 1. checks, each going to the `fj_call` path on failure: the callable's slot holds a function
//!    whose code is the callee's; the code still lives (its callee cell is not cleared) and
//!    has native code now (read from its state through that cell: compiled before or after
//!    the caller, or again since); ferrojit's hook is installed and nothing traces;
//!    a recursion level is left; the data-stack chunk has room;
//! 2. the frame: pushed, its specials set as `_PyFrame_InitializeSpecials` does, the
//!    arguments (a method's self first) moved into its locals, the other locals cleared;
//! 3. the recursion count and the frame link as `hook::run_native` moves them, the native
//!    code's entry called through a register, then the link back and the entry counter;
//! 4. a raise, a deopt or due site feedback go to `fj_finish_native_call` (the runtime's own
//!    ending of `run_native`); a plain result goes on;
//! 5. the frame cleared as `_PyFrame_Clear` does (its locals, function and code released; a
//!    frame object, `f_locals` or a value stack left go to `fj_clear_frame`), and popped.

use super::*;
use crate::hir::{ArgFrom, KnownCallee, KnownClass, SiteCallee};

/// The operands of a `CallCompiled` (see [`crate::hir::InstKind::CallCompiled`]).
#[derive(Clone, Copy)]
pub(super) struct CallSite {
    pub base: ValueId,
    pub oparg: u32,
    pub method: bool,
    pub kwnames: Option<ValueId>,
}

/// The registers and blocks every `CallCompiled` lowering shares.
#[derive(Clone, Copy)]
struct SiteBlocks {
    result: VReg,
    base: VReg,
    slow: LBlock,
    done: LBlock,
}

impl Lowerer<'_> {
    /// Lowers `v = CallCompiled(base, oparg, kwnames)` of `callees` (called as methods or
    /// not), at code unit `bc`: the callable's code picks the callee, whose own copy of the
    /// steps runs.
    pub(super) fn call_compiled(
        &mut self,
        v: ValueId,
        site: CallSite,
        callees: &[SiteCallee],
        bc: u32,
    ) {
        let method = site.method;
        let lay = *self.lay();
        let dc = self.cx.direct_calls;
        let SiteBlocks {
            result,
            base,
            slow,
            done,
        } = self.start_site(v, site, bc);
        // `[method, self, args...]` or `[NULL, function, args...]`.
        let (at, first_arg) = if method { (0, 8) } else { (8, 16) };
        let function = self.load(Base::Reg(base), at, Width::W64);
        // `LOAD_METHOD`'s generic path leaves NULL there for an attribute that is no method.
        self.branch(function, Operand::Imm(0), Cond::Eq, Width::W64, slow);
        let ty = self.load(Base::Reg(function), lay.object_type, Width::W64);
        let function_type = Operand::Imm(dc.function_type as i64);
        self.branch(ty, function_type, Cond::Ne, Width::W64, slow);
        let code = self.load(Base::Reg(function), lay.function_code, Width::W64);
        let arms: Vec<LBlock> = callees.iter().map(|_| self.new_block()).collect();
        for (site, &arm) in callees.iter().zip(&arms) {
            let c = Operand::Imm(site.callee.code as i64);
            self.branch(code, c, Cond::Eq, Width::W64, arm);
        }
        self.emit(LInst::Jump { target: slow });
        let args = self.new_vreg();
        for (site, &arm) in callees.iter().zip(&arms) {
            let callee = &site.callee;
            self.cur = arm.0 as usize;
            let native = self.enter_checks(callee, slow);
            let defaults = self.defaults_check(function, site, slow);
            let frame = self.push_frame(callee, slow);
            self.emit(LInst::Lea {
                dst: args,
                base: Base::Reg(base),
                offset: first_arg,
            });
            self.fill_frame(frame, function, args, defaults, site);
            let call = self.enter_native(frame, native);
            self.after_native(frame, native, call, result);
            self.clear_and_pop(frame, callee);
            self.emit(LInst::Jump { target: done });
        }
        let blocks = SiteBlocks {
            result,
            base,
            slow,
            done,
        };
        self.finish_site(site, blocks);
    }

    /// Lowers `v = CallCompiled(base, oparg, kwnames)` of `class`
    /// (`constructors-in-machine-code`), whose `__init__` is `init`'s callee, at code unit `bc`.
    /// While the callable is the class at its version, with two recursion levels left (the
    /// class's call and `__init__`'s, as `_PyObject_MakeTpCall` and the frame take them),
    /// `fj_new_instance` makes the instance; the stack becomes `[__init__, instance, args...]`
    /// and `__init__` is called as a method (in machine code while its code and defaults are
    /// as compiled, else by `fj_call`), holding the class call's level; its result must be
    /// None. Otherwise `fj_call` calls the class.
    pub(super) fn construct_compiled(
        &mut self,
        v: ValueId,
        site: CallSite,
        init: &SiteCallee,
        class: &KnownClass,
        bc: u32,
    ) {
        let lay = *self.lay();
        let dc = self.cx.direct_calls;
        let blocks = self.start_site(v, site, bc);
        let SiteBlocks {
            result,
            base,
            slow,
            done,
        } = blocks;
        let cls = self.load(Base::Reg(base), 8, Width::W64);
        let ty = Operand::Imm(class.ty as i64);
        self.branch(cls, ty, Cond::Ne, Width::W64, slow);
        // The class may have died and its memory held another object since: a type first.
        let metatype = self.load(Base::Reg(cls), lay.object_type, Width::W64);
        let type_type = Operand::Imm(dc.type_type as i64);
        self.branch(metatype, type_type, Cond::Ne, Width::W64, slow);
        let version = self.load(Base::Reg(cls), lay.type_version_tag, Width::W32);
        let expected = Operand::Imm(i64::from(class.version));
        self.branch(version, expected, Cond::Ne, Width::W32, slow);
        let remaining = self.load(Base::Tstate, lay.tstate_recursion_remaining, Width::W32);
        self.branch(remaining, Operand::Imm(2), Cond::Lt, Width::W32, slow);
        // `__init__` is alive while the version holds; the allocation may run finalizers that
        // change the class, its `__init__` or that function's code and defaults, so the
        // reference the method slot will own is taken first, and the function's code and
        // defaults are checked after.
        let function = self.imm(class.init as i64);
        self.incref(function);
        let obj = self.new_vreg();
        self.call_helper(Helper::NewInstance, vec![Operand::Reg(cls)], Some(obj));
        let made = self.new_block();
        let failed = self.new_block();
        self.branch(obj, Operand::Imm(0), Cond::Eq, Width::W64, failed);
        self.emit(LInst::Jump { target: made });
        // No instance: the call's references are released, as the class call would.
        self.cur = failed.0 as usize;
        self.decref(function, false);
        for i in 1..=i64::from(site.oparg) + 1 {
            let item = self.load(Base::Reg(base), 8 * i, Width::W64);
            self.decref(item, false);
        }
        self.emit(LInst::Mov {
            dst: result,
            src: Operand::Imm(0),
        });
        self.emit(LInst::Jump { target: done });
        self.cur = made.0 as usize;
        // `[__init__, instance, args...]`: the slots' references; one more to the instance is
        // the result's.
        self.store(Base::Reg(base), 0, Operand::Reg(function), Width::W64);
        self.store(Base::Reg(base), 8, Operand::Reg(obj), Width::W64);
        self.incref(obj);
        self.decref(cls, false);
        let remaining_at = lay.tstate_recursion_remaining;
        self.add_to_word(Base::Tstate, remaining_at, -1, Width::W32);
        let returned = self.call_init(site, base, function, init);
        self.add_to_word(Base::Tstate, remaining_at, 1, Width::W32);
        self.check_init_result(returned, obj, result, done);
        self.finish_site(site, blocks);
    }

    /// The result register, the spilled stack's address, and the slow and done blocks of a
    /// `CallCompiled` at code unit `bc` (its helpers' `prev_instr` set).
    fn start_site(&mut self, v: ValueId, site: CallSite, bc: u32) -> SiteBlocks {
        let blocks = SiteBlocks {
            result: self.reg(v),
            base: self.materialise(site.base),
            slow: self.new_block(),
            done: self.new_block(),
        };
        self.set_prev_instr(bc);
        blocks
    }

    /// The slow block (`fj_call` calls the site's callable), then on at the done block.
    fn finish_site(&mut self, site: CallSite, blocks: SiteBlocks) {
        self.cur = blocks.slow.0 as usize;
        self.fj_call(site, blocks.base, blocks.result);
        self.emit(LInst::Jump {
            target: blocks.done,
        });
        self.cur = blocks.done.0 as usize;
    }

    /// The call of `__init__` (`function`, in the method slot at `base`) on the instance in the
    /// next slot: in machine code while its code, defaults and the call's checks are as
    /// compiled, else by `fj_call`. Its raw result.
    fn call_init(&mut self, site: CallSite, base: VReg, function: VReg, init: &SiteCallee) -> VReg {
        let lay = *self.lay();
        let returned = self.new_vreg();
        let by_runtime = self.new_block();
        let called = self.new_block();
        let code = self.load(Base::Reg(function), lay.function_code, Width::W64);
        let init_code = Operand::Imm(init.callee.code as i64);
        self.branch(code, init_code, Cond::Ne, Width::W64, by_runtime);
        let defaults = self.defaults_check(function, init, by_runtime);
        let native = self.enter_checks(&init.callee, by_runtime);
        let frame = self.push_frame(&init.callee, by_runtime);
        let args = self.new_vreg();
        self.emit(LInst::Lea {
            dst: args,
            base: Base::Reg(base),
            offset: 8,
        });
        self.fill_frame(frame, function, args, defaults, init);
        let call = self.enter_native(frame, native);
        self.after_native(frame, native, call, returned);
        self.clear_and_pop(frame, &init.callee);
        self.emit(LInst::Jump { target: called });
        self.cur = by_runtime.0 as usize;
        let method_form = CallSite {
            method: true,
            ..site
        };
        self.fj_call(method_form, base, returned);
        self.emit(LInst::Jump { target: called });
        self.cur = called.0 as usize;
        returned
    }

    /// `result` is the instance `obj` when `__init__` returned None; NULL when it raised, or
    /// returned something else (`fj_init_returned` raises the interpreter's TypeError).
    fn check_init_result(&mut self, returned: VReg, obj: VReg, result: VReg, done: LBlock) {
        let raised = self.new_block();
        let not_none = self.new_block();
        self.branch(returned, Operand::Imm(0), Cond::Eq, Width::W64, raised);
        let none = Operand::Imm(self.cx.direct_calls.none as i64);
        self.branch(returned, none, Cond::Ne, Width::W64, not_none);
        self.decref(returned, false);
        self.emit(LInst::Mov {
            dst: result,
            src: Operand::Reg(obj),
        });
        self.emit(LInst::Jump { target: done });
        self.cur = raised.0 as usize;
        self.decref(obj, false);
        self.emit(LInst::Mov {
            dst: result,
            src: Operand::Imm(0),
        });
        self.emit(LInst::Jump { target: done });
        self.cur = not_none.0 as usize;
        self.call_helper(
            Helper::InitReturned,
            vec![Operand::Reg(returned), Operand::Reg(obj)],
            Some(result),
        );
        self.emit(LInst::Jump { target: done });
    }

    /// `result = fj_call(base, oparg, kwnames)`: the runtime's call of the site's callable.
    fn fj_call(&mut self, site: CallSite, base: VReg, result: VReg) {
        let kwnames = site.kwnames.map_or(Operand::Imm(0), |k| self.op(k));
        let oparg = Operand::Imm(i64::from(site.oparg));
        self.call_helper(
            Helper::Call,
            vec![Operand::Reg(base), oparg, kwnames],
            Some(result),
        );
    }

    /// Step 1 after the callable's code, up to the data stack: goes to `slow` unless the
    /// callee's native code may be entered directly now; that native code.
    fn enter_checks(&mut self, callee: &KnownCallee, slow: LBlock) -> VReg {
        let lay = *self.lay();
        let dc = self.cx.direct_calls;
        // The code's native-code word, while the code lives; the native code, if it has one.
        let native_at = self.load_absolute(callee.native_cell, Width::W64);
        self.branch(native_at, Operand::Imm(0), Cond::Eq, Width::W64, slow);
        let native = self.load(Base::Reg(native_at), 0, Width::W64);
        self.branch(native, Operand::Imm(0), Cond::Eq, Width::W64, slow);
        let interp = self.load(Base::Tstate, lay.tstate_interp, Width::W64);
        let hook = self.load(Base::Reg(interp), lay.interp_eval_frame, Width::W64);
        self.branch(
            hook,
            Operand::Imm(dc.eval_frame as i64),
            Cond::Ne,
            Width::W64,
            slow,
        );
        let cframe = self.load(Base::Tstate, lay.tstate_cframe, Width::W64);
        let tracing = self.load(Base::Reg(cframe), lay.cframe_use_tracing, Width::W8);
        self.branch(tracing, Operand::Imm(0), Cond::Ne, Width::W64, slow);
        // With no level left, `fj_call` runs the interpreter's recursion check.
        let remaining = self.load(Base::Tstate, lay.tstate_recursion_remaining, Width::W32);
        self.branch(remaining, Operand::Imm(1), Cond::Lt, Width::W32, slow);
        native
    }

    /// The function's `__defaults__` when `site` takes some of its parameters from there: goes
    /// to `slow` unless it is a tuple of as many items as when the caller was compiled (so the
    /// items that the site names are there).
    fn defaults_check(&mut self, function: VReg, site: &SiteCallee, slow: LBlock) -> Option<VReg> {
        if !site.args.iter().any(|a| matches!(a, ArgFrom::Default(_))) {
            return None;
        }
        let lay = *self.lay();
        let defaults = self.load(Base::Reg(function), lay.function_defaults, Width::W64);
        self.branch(defaults, Operand::Imm(0), Cond::Eq, Width::W64, slow);
        let size = self.load(Base::Reg(defaults), lay.varobject_size, Width::W64);
        let expected = Operand::Imm(site.callee.ndefaults as i64);
        self.branch(size, expected, Cond::Ne, Width::W64, slow);
        Some(defaults)
    }

    /// The callee's frame on the thread's data stack, when the current chunk has room (as
    /// `direct_call::push_frame` decides), else `slow`.
    fn push_frame(&mut self, callee: &KnownCallee, slow: LBlock) -> VReg {
        let lay = *self.lay();
        let top = self.load(Base::Tstate, lay.tstate_datastack_top, Width::W64);
        self.branch(top, Operand::Imm(0), Cond::Eq, Width::W64, slow);
        let limit = self.load(Base::Tstate, lay.tstate_datastack_limit, Width::W64);
        let end = self.alu(AluOp::Add, top, Operand::Imm(8 * callee.slots as i64));
        self.branch(end, Operand::Reg(limit), Cond::Ge, Width::W64, slow);
        // A frame at the very start of a chunk would make the pop free that chunk.
        let chunk = self.load(Base::Tstate, lay.tstate_datastack_chunk, Width::W64);
        let first = self.alu(AluOp::Add, chunk, Operand::Imm(lay.stackchunk_data));
        self.branch(top, Operand::Reg(first), Cond::Eq, Width::W64, slow);
        self.store(
            Base::Tstate,
            lay.tstate_datastack_top,
            Operand::Reg(end),
            Width::W64,
        );
        top
    }

    /// Step 2: the specials of `frame`, and its locals: the parameters (each from the words at
    /// `args`, with a method's self first, whose references move, or a new reference to an
    /// item of `defaults`), then NULLs. The frame takes the reference to `function` and a new
    /// one to its code.
    fn fill_frame(
        &mut self,
        frame: VReg,
        function: VReg,
        args: VReg,
        defaults: Option<VReg>,
        site: &SiteCallee,
    ) {
        let callee = &site.callee;
        let lay = *self.lay();
        let at = Base::Reg(frame);
        let word = |x: usize| Operand::Imm(x as i64);
        self.store(at, lay.frame_func, Operand::Reg(function), Width::W64);
        let code = self.imm(callee.code as i64);
        self.incref(code);
        self.store(at, lay.frame_code, Operand::Reg(code), Width::W64);
        let builtins = self.load(Base::Reg(function), lay.function_builtins, Width::W64);
        self.store(at, lay.frame_builtins, Operand::Reg(builtins), Width::W64);
        let globals = self.load(Base::Reg(function), lay.function_globals, Width::W64);
        self.store(at, lay.frame_globals, Operand::Reg(globals), Width::W64);
        self.store(at, lay.frame_locals, Operand::Imm(0), Width::W64);
        let nlocalsplus = Operand::Imm(callee.nlocalsplus as i64);
        self.store(at, lay.frame_stacktop, nlocalsplus, Width::W32);
        self.store(at, lay.frame_frame_obj, Operand::Imm(0), Width::W64);
        self.store(
            at,
            lay.frame_prev_instr,
            word(callee.first_prev_instr),
            Width::W64,
        );
        self.store(at, lay.frame_is_entry, Operand::Imm(0), Width::W8);
        let owner = Operand::Imm(lay.frame_owned_by_thread);
        self.store(at, lay.frame_owner, owner, Width::W8);
        for i in 0..callee.nlocalsplus as usize {
            let slot = lay.frame_localsplus + 8 * i as i64;
            let value = match (site.args.get(i), defaults) {
                (Some(ArgFrom::Passed(k)), _) => {
                    Operand::Reg(self.load(Base::Reg(args), 8 * *k as i64, Width::W64))
                }
                (Some(ArgFrom::Default(k)), Some(defaults)) => {
                    let item = lay.tuple_items + 8 * *k as i64;
                    let value = self.load(Base::Reg(defaults), item, Width::W64);
                    self.incref(value);
                    Operand::Reg(value)
                }
                _ => Operand::Imm(0),
            };
            self.store(at, slot, value, Width::W64);
        }
    }

    /// Step 3: `frame` becomes the current frame, holding a recursion level, while `native`
    /// runs on it; its raw result, and the native code's entry count after this one.
    fn enter_native(&mut self, frame: VReg, native: VReg) -> (VReg, VReg) {
        let dc = self.cx.direct_calls;
        let lay = *self.lay();
        self.add_to_word(Base::Tstate, lay.tstate_recursion_remaining, -1, Width::W32);
        let cframe = self.load(Base::Tstate, lay.tstate_cframe, Width::W64);
        let previous = self.load(Base::Reg(cframe), lay.cframe_current_frame, Width::W64);
        let at = Base::Reg(frame);
        self.store(at, lay.frame_previous, Operand::Reg(previous), Width::W64);
        let current = lay.cframe_current_frame;
        self.store(Base::Reg(cframe), current, Operand::Reg(frame), Width::W64);
        let counter = self.imm(dc.machine_code_calls_at as i64);
        self.emit(LInst::AddMem {
            base: Base::Reg(counter),
            offset: 0,
            imm: 1,
        });
        let tstate = self.new_vreg();
        self.emit(LInst::Lea {
            dst: tstate,
            base: Base::Tstate,
            offset: 0,
        });
        let entry = self.load(Base::Reg(native), dc.native_entry, Width::W64);
        let r = self.new_vreg();
        self.emit(LInst::Call {
            target: 0,
            via: Some(entry),
            name: "native code",
            args: vec![Operand::Reg(tstate), Operand::Reg(frame)],
            dst: Some(r),
        });
        // The same `cframe` after the call (C frames that change it restore it); reloaded
        // rather than kept, as is the previous frame, which the callee's frame still links.
        let cframe = self.load(Base::Tstate, lay.tstate_cframe, Width::W64);
        let previous = self.load(at, lay.frame_previous, Width::W64);
        self.store(
            Base::Reg(cframe),
            current,
            Operand::Reg(previous),
            Width::W64,
        );
        let entries = self.add_to_word(Base::Reg(native), dc.native_entries, 1, Width::W32);
        (r, entries)
    }

    /// Step 4: `result` is `r`, or what `fj_finish_native_call` makes of it (a raise, a deopt,
    /// site feedback due). The recursion level stays held for the clearing, as
    /// `direct_call::clear_and_pop` holds one.
    fn after_native(&mut self, frame: VReg, native: VReg, call: (VReg, VReg), result: VReg) {
        let (r, entries) = call;
        let lay = *self.lay();
        let dc = self.cx.direct_calls;
        let finish = self.new_block();
        let clear = self.new_block();
        self.branch(r, Operand::Imm(0), Cond::Eq, Width::W64, finish);
        let deopt = self.alu(AluOp::And, r, Operand::Imm(1));
        self.branch(deopt, Operand::Imm(0), Cond::Ne, Width::W64, finish);
        let after = Operand::Imm(dc.feedback_after as i64);
        self.branch(entries, after, Cond::Eq, Width::W32, finish);
        let asked = self.load_absolute(dc.feedback_asked_at, Width::W64);
        self.branch(asked, Operand::Imm(0), Cond::Ne, Width::W64, finish);
        self.emit(LInst::Mov {
            dst: result,
            src: Operand::Reg(r),
        });
        self.emit(LInst::Jump { target: clear });
        self.cur = finish.0 as usize;
        let remaining = lay.tstate_recursion_remaining;
        self.add_to_word(Base::Tstate, remaining, 1, Width::W32);
        let tstate = self.new_vreg();
        self.emit(LInst::Lea {
            dst: tstate,
            base: Base::Tstate,
            offset: 0,
        });
        self.call_helper(
            Helper::FinishNativeCall,
            vec![
                Operand::Reg(tstate),
                Operand::Reg(frame),
                Operand::Reg(native),
                Operand::Reg(r),
            ],
            Some(result),
        );
        self.add_to_word(Base::Tstate, remaining, -1, Width::W32);
        self.emit(LInst::Jump { target: clear });
        self.cur = clear.0 as usize;
    }

    /// Step 5: releases what `frame` holds and gives its words back to the data stack; the
    /// recursion level comes back.
    fn clear_and_pop(&mut self, frame: VReg, callee: &KnownCallee) {
        let lay = *self.lay();
        let at = Base::Reg(frame);
        let general = self.new_block();
        let pop = self.new_block();
        let frame_obj = self.load(at, lay.frame_frame_obj, Width::W64);
        self.branch(frame_obj, Operand::Imm(0), Cond::Ne, Width::W64, general);
        let f_locals = self.load(at, lay.frame_locals, Width::W64);
        self.branch(f_locals, Operand::Imm(0), Cond::Ne, Width::W64, general);
        let stacktop = self.load(at, lay.frame_stacktop, Width::W32);
        let nlocalsplus = Operand::Imm(callee.nlocalsplus as i64);
        self.branch(stacktop, nlocalsplus, Cond::Ne, Width::W32, general);
        for i in 0..callee.nlocalsplus as i64 {
            let local = self.load(at, lay.frame_localsplus + 8 * i, Width::W64);
            self.decref(local, true);
        }
        let function = self.load(at, lay.frame_func, Width::W64);
        self.decref(function, false);
        let code = self.load(at, lay.frame_code, Width::W64);
        self.decref(code, false);
        self.emit(LInst::Jump { target: pop });
        self.cur = general.0 as usize;
        self.call_helper(Helper::ClearFrame, vec![Operand::Reg(frame)], None);
        self.emit(LInst::Jump { target: pop });
        self.cur = pop.0 as usize;
        let remaining = lay.tstate_recursion_remaining;
        self.add_to_word(Base::Tstate, remaining, 1, Width::W32);
        self.store(
            Base::Tstate,
            lay.tstate_datastack_top,
            Operand::Reg(frame),
            Width::W64,
        );
    }

    /// `[base + offset] = src`.
    fn store(&mut self, base: Base, offset: i64, src: Operand, width: Width) {
        self.emit(LInst::Store {
            base,
            offset: offset as i32,
            src,
            width,
        });
    }

    /// A new register holding `a op b`.
    fn alu(&mut self, op: AluOp, a: VReg, b: Operand) -> VReg {
        let dst = self.new_vreg();
        self.emit(LInst::Alu { op, dst, a, b });
        dst
    }

    /// A new register holding `value`.
    fn imm(&mut self, value: i64) -> VReg {
        let dst = self.new_vreg();
        self.emit(LInst::Mov {
            dst,
            src: Operand::Imm(value),
        });
        dst
    }

    /// The word at absolute address `addr`.
    fn load_absolute(&mut self, addr: usize, width: Width) -> VReg {
        let at = self.imm(addr as i64);
        self.load(Base::Reg(at), 0, width)
    }

    /// `[base + offset] += delta` on a word of `width`; the new value (its upper bits
    /// beyond `width` are not meaningful).
    fn add_to_word(&mut self, base: Base, offset: i64, delta: i64, width: Width) -> VReg {
        let old = self.load(base, offset, width);
        let new = self.alu(AluOp::Add, old, Operand::Imm(delta));
        self.store(base, offset, Operand::Reg(new), width);
        new
    }
}
