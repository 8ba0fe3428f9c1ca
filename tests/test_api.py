"""The Python API and the command line: switches, errors for bad input, refusals with reasons,
dumps, statistics."""

import dis
import re
import json
import os
import subprocess
import sys
import traceback
import types

import pytest

import ferrojit
from conftest import PROGRAMS, clean_env, read_stats, run_jit, run_plain


def add(a, b):
    c = a + b
    return c * 2


def test_compile_runs_natively_and_gives_the_same_result():
    assert not ferrojit.is_compiled(add)
    ferrojit.compile(add)
    assert ferrojit.is_compiled(add)
    # (osr off: the list comprehension's own loop would move to compiled code and count.)
    ferrojit.enable(threshold=1000, disable="osr")
    try:
        before = ferrojit.stats()["native_calls"]
        assert [add(i, 3) for i in range(5)] == [6, 8, 10, 12, 14]
        assert add("a", "b") == "abab"
        assert ferrojit.stats()["native_calls"] - before == 6
    finally:
        ferrojit.disable()
        ferrojit.enable(disable="")
        ferrojit.disable()


def with_defaults(a, b=1, c=None):
    return a + b if c is None else c


def calls_with_defaults(n):
    t = 0
    for i in range(n):
        t += with_defaults(i) + with_defaults(i, 2) + with_defaults(i, 2, 0)
    return t


def test_calls_that_leave_parameters_to_their_defaults_are_direct():
    ferrojit.compile(with_defaults)
    ferrojit.compile(calls_with_defaults)
    ferrojit.enable(threshold=1000)
    try:
        before = ferrojit.stats()["direct_calls"]
        assert calls_with_defaults(10) == sum(2 * i + 3 for i in range(10))
        assert ferrojit.stats()["direct_calls"] - before == 30
        with_defaults.__defaults__ = (5,)  # c's default only: b is required now
        with pytest.raises(TypeError, match="missing 1 required positional argument: 'b'"):
            calls_with_defaults(1)
        with_defaults.__defaults__ = (1, None)
        ferrojit.enable(threshold=1000, disable="direct-call-defaults")
        # Calls made in machine code bind defaults as their caller was compiled: a copy of the
        # caller's code, compiled with the knob off, binds none.
        again = types.FunctionType(calls_with_defaults.__code__.replace(), globals())
        ferrojit.compile(again)
        before = ferrojit.stats()["direct_calls"]
        assert again(10) == sum(2 * i + 3 for i in range(10))
        assert ferrojit.stats()["direct_calls"] - before == 10  # only the calls passing all three
    finally:
        with_defaults.__defaults__ = (1, None)
        ferrojit.disable()
        ferrojit.enable(disable="")
        ferrojit.disable()


_CALLEES_SOURCE = """
def f(x):
    return x + 1

def g(x):
    return x * 10

def caller(n):
    t = 0
    for i in range(n):
        t += f(i)
    return t

def apply(fn, x):
    return fn(x)
"""


def test_direct_calls_find_their_callee_in_the_table_of_callees():
    results = {}
    for knob in ("", "callee-table"):
        m = {}
        exec(compile(_CALLEES_SOURCE, "<callees>", "exec"), m)
        ferrojit.enable(threshold=1000, disable=knob)
        try:
            for name in ("f", "g", "caller", "apply"):
                ferrojit.compile(m[name])
            stats = ferrojit.stats()
            direct, lookups = stats["direct_calls"], stats["callee_lookups"]
            results[knob] = [m["caller"](200)]
            stats = ferrojit.stats()
            direct, lookups = stats["direct_calls"] - direct, stats["callee_lookups"] - lookups
            # `__code__` assigned: the same call site runs the new code at once.
            m["f"].__code__ = m["g"].__code__
            results[knob].append(m["caller"](5))
            # Functions made, called through one site and freed, over and over, every other one
            # compiled: a new function and code object often take the addresses of the ones
            # just freed, whose native code is gone; the table must not believe its old slot
            # (an uncompiled one would run the freed code).
            # (Made with FunctionType and a globals dict that does not hold them, so no cycle
            # keeps them past `del`.)
            for k in range(150):
                source = f"def h(x):\n    return x + {k}\n"
                h = types.FunctionType(compile(source, "<h>", "exec").co_consts[0], {})
                if k % 2 == 0:
                    ferrojit.compile(h)
                assert m["apply"](h, 1000) == 1000 + k
                del h
        finally:
            ferrojit.disable()
        assert direct == 200
        if knob:
            assert lookups == direct, "off, every direct call looks its callee up"
        else:
            assert lookups <= 2, f"on, the table answers: {lookups} lookups for {direct} calls"
    assert results[""] == results["callee-table"] == [sum(range(1, 201)), 100]
    ferrojit.enable(disable="")
    ferrojit.disable()


def test_refused_functions_say_why():
    # A class body's code, made into a function: it reads and writes a namespace, not fast
    # locals, and stays with the interpreter.
    body = compile("class C:\n    x = 1\n", "<body>", "exec").co_consts[0]
    with pytest.raises(RuntimeError, match="module or class body"):
        ferrojit.compile(types.FunctionType(body, {}))
    with pytest.raises(TypeError):
        ferrojit.compile(len)


def test_huge_functions_stay_with_the_interpreter_unless_switched_on():
    # 1,700 two-item unpackings: 8,501 code units, over the limit of 8,000.
    source = "def huge(t):\n" + "    a, b = t\n" * 1700 + "    return a + b\n"
    namespace = {}
    exec(source, namespace)
    huge = namespace["huge"]
    assert len(huge.__code__.co_code) // 2 > 8000
    with pytest.raises(RuntimeError, match=r"huge function \(over 8000 code units\)"):
        ferrojit.compile(huge)
    assert "refuse-huge-functions" in ferrojit.OPTIMISATIONS
    ferrojit.enable(threshold=1000, disable="refuse-huge-functions")
    try:
        ferrojit.compile(huge)
        assert ferrojit.is_compiled(huge) and huge((3, 4)) == 7
    finally:
        ferrojit.disable()
        ferrojit.enable(disable="")
        ferrojit.disable()


def test_x86_64_forward_jumps_within_reach_are_two_bytes():
    for _ in range(30):
        unpack_two((1, 2))
    sizes = {}
    # With the slow paths in line, most forward jumps are near.
    for knob in ("cold-slow-paths", "cold-slow-paths,short-jumps"):
        ferrojit.enable(threshold=1000, disable=knob)
        try:
            for isa in ("x86_64", "aarch64"):
                sizes[knob, isa] = ferrojit.inspect(unpack_two, isa=isa)["code_bytes"]
        finally:
            ferrojit.disable()
    ferrojit.enable(disable="")
    ferrojit.disable()
    # Each near forward jump saves 3 (jmp) or 4 (jcc) bytes; AArch64 branches are 4 bytes.
    on, off = "cold-slow-paths", "cold-slow-paths,short-jumps"
    assert sizes[on, "x86_64"] <= sizes[off, "x86_64"] - 40, sizes
    assert sizes[on, "aarch64"] == sizes[off, "aarch64"], sizes


def _identity(x):
    return x


def three_calls(a):
    b = _identity(a)
    c = _identity(b)
    return _identity(c)


def _shapes(func, knob, base=""):
    """`inspect(func)` for both ISAs with optimisation `knob` on and off (and the knobs in
    `base` off in both): {("on" or "off", isa): result}. Leaves the JIT disabled with every
    knob on again."""
    shapes = {}
    for state, disabled in (("on", base), ("off", ",".join(filter(None, (base, knob))))):
        ferrojit.enable(threshold=1000, disable=disabled)
        try:
            for isa in ("x86_64", "aarch64"):
                shapes[state, isa] = ferrojit.inspect(func, isa=isa)
        finally:
            ferrojit.disable()
    ferrojit.enable(disable="")
    ferrojit.disable()
    return shapes


def test_prev_instr_is_kept_with_one_32_bit_store_of_its_lower_half():
    # frame->prev_instr (at offset 0x38 of the interpreter frame on both ISAs) is set before
    # each call; the code's instructions share the upper half of their addresses. AArch64 is
    # measured without the literal pool, where the full word takes mov/movk/movk.
    for _ in range(30):
        assert three_calls(5) == 5
    low = {"x86_64": "mov dword ptr [r15 + 0x38], ", "aarch64": "str w16, [x19, #0x38]"}
    base = {"x86_64": "", "aarch64": "literal-pool"}
    for isa in ("x86_64", "aarch64"):
        shapes = _shapes(three_calls, "prev-instr-low-half", base[isa])
        on, off = shapes["on", isa], shapes["off", isa]
        assert on["asm"].count(low[isa]) >= 3, on["asm"]
        assert off["asm"].count(low[isa]) == 0, off["asm"]
        # x86-64: 8 bytes instead of a 10-byte movabs and a 4-byte store; AArch64 (no pool):
        # mov/movk/str instead of mov/movk/movk/str.
        if isa == "x86_64":
            assert on["code_bytes"] <= off["code_bytes"] - 6 * 3, (on["code_bytes"], off["code_bytes"])
        else:
            assert on["instructions"] <= off["instructions"] - 3, (on["instructions"], off["instructions"])
    assert three_calls("x") == "x"


def test_wide_constants_and_helper_addresses_come_from_a_literal_pool():
    for _ in range(30):
        assert three_calls(5) == 5
    # (Measured with `near-calls` off: with it, a helper call needs no address at all.)
    shapes = _shapes(three_calls, "literal-pool", "near-calls")
    on, off = shapes["on", "aarch64"], shapes["off", "aarch64"]
    # AArch64: a helper address is one `ldr` (literal), not mov/movk/movk; the pool is data
    # after the instructions (not disassembled, not counted).
    assert "ldr x17, #0x" in on["asm"] and "ldr x17, #0x" not in off["asm"], on["asm"]
    assert on["instructions"] <= off["instructions"] - 2 * 3, (on["instructions"], off["instructions"])
    assert on["literal_pool_bytes"] >= 16 and off["literal_pool_bytes"] == 0
    # x86-64 keeps movabs and `call r11` (the pool measured slower there).
    on, off = shapes["on", "x86_64"], shapes["off", "x86_64"]
    assert on["asm"] == off["asm"] and "movabs" in on["asm"] and "[rip" not in on["asm"]
    assert on["literal_pool_bytes"] == 0
    assert three_calls("y") == "y"


def test_a_helper_call_is_one_call_or_bl_linked_at_install():
    # `near-calls`: each helper call (the three calls' vectorcall, the decrefs' _Py_Dealloc)
    # is one `call rel32` / `bl`, its displacement written when the code is installed, not an
    # address loaded into a register (x86-64 `movabs` + `call r11`; AArch64 `ldr` + `blr`).
    for _ in range(30):
        assert three_calls(5) == 5
    shapes = _shapes(three_calls, "near-calls")
    for isa, linked, through_register in (
        ("x86_64", "call 0x", "call r11"),
        ("aarch64", "bl 0x", "blr x1"),
    ):
        on, off = shapes["on", isa], shapes["off", isa]
        calls = on["asm"].count("(linked)")
        assert calls >= 3, on["asm"]
        assert all(line.split(": ")[1].startswith(linked) for line in on["asm"].splitlines() if "(linked)" in line)
        # A helper out of reach of where this host places code stays a call through a
        # register (on an AArch64 host, `_Py_Dealloc` in Debian's executable at 0x400000).
        unlinked = on["asm"].count(through_register)
        assert off["asm"].count(through_register) == calls + unlinked and "(linked)" not in off["asm"]
        assert on["instructions"] == off["instructions"] - calls, (on["instructions"], off["instructions"])
    # Installed and run: the linked calls call what they should, and they were linked
    # directly (the code zone lies within reach of the extension's helpers).
    ferrojit.enable(threshold=50)
    try:
        before = ferrojit.stats()["helper_calls_direct"]
        for _ in range(60):
            assert _identity_thrice_again(7) == 7 and _identity_thrice_again("z") == "z"
        after = ferrojit.stats()
    finally:
        ferrojit.disable()
    assert after["helper_calls_direct"] >= before + 3, after
    # A helper out of reach of the zone (libpython in Debian's arm64 executable) is called
    # through a register instead, so no call needed a veneer.
    assert after["veneers"] == 0 and after["helper_calls_through_veneers"] == 0, after


def _epilogue_at(asm, isa):
    """Index of the epilogue's `ret` in a disassembly (x86-64 dealloc bodies also end in
    `ret`, after `pop rax`; the epilogue's comes after the callee-saved pops or `ldp x29`)."""
    lines = [line.split(": ", 1)[1].strip() for line in asm.splitlines()]
    for i, line in enumerate(lines):
        if line == "ret" and (lines[i - 1] != "pop rax" if isa == "x86_64" else lines[i - 1].startswith("ldp x29, x30")):
            return i, len(lines)
    raise AssertionError(asm)


def test_the_epilogue_comes_before_the_cold_code():
    # `cold-section`: the epilogue follows the hot blocks; the exit stubs (one per call's
    # error check here) and the dealloc paths come after it. Off, it is the last thing.
    for _ in range(30):
        assert three_calls(5) == 5
    shapes = _shapes(three_calls, "cold-section")
    for isa in ("x86_64", "aarch64"):
        on, on_len = _epilogue_at(shapes["on", isa]["asm"], isa)
        off, off_len = _epilogue_at(shapes["off", isa]["asm"], isa)
        assert off == off_len - 1, (isa, off, off_len)
        assert on < off and off_len - on > 20, (isa, on, off)
        assert shapes["on", isa]["instructions"] <= shapes["off", isa]["instructions"] + 1
    assert three_calls("w") == "w"


def _identity_thrice_again(a):
    return _identity(_identity(_identity(a)))


def _add_a_large_constant(n):
    return n + 100000


def test_a_constant_of_a_movz_movk_pair_is_one_load_from_the_pool():
    # 100000 is 0x186a0: a movz/movk pair on AArch64 (like None, True and False in Debian's
    # arm64 CPython, which lie below 4 GiB). With `literal-pool-pairs` it is one `ldr`.
    for _ in range(30):
        assert _add_a_large_constant(1) == 100001
    shapes = _shapes(_add_a_large_constant, "literal-pool-pairs")
    on, off = shapes["on", "aarch64"], shapes["off", "aarch64"]
    pair = "movk x"
    assert "#0x86a0" in off["asm"] and pair in off["asm"] and ", lsl #16" in off["asm"], off["asm"]
    assert "#0x86a0" not in on["asm"], on["asm"]
    assert on["instructions"] < off["instructions"], (on["instructions"], off["instructions"])
    assert on["literal_pool_bytes"] > off["literal_pool_bytes"]
    # x86-64 has no pool (a 32-bit immediate is one instruction there).
    assert shapes["on", "x86_64"]["asm"] == shapes["off", "x86_64"]["asm"]
    assert _add_a_large_constant(2**62) == 2**62 + 100000


def _sum_and_triple(a, b, c):
    x = a + b
    return (x, c, a)


def test_adjacent_loads_and_stores_off_the_frame_are_one_ldp_or_stp():
    # `a + b` reads locals 0 and 1 (frame slots 8 bytes apart) for the call; the tuple's three
    # items go to three adjacent value-stack slots. AArch64 pairs them (`pair-loads-stores`);
    # x86-64 has no pair instructions and is unchanged.
    for _ in range(30):
        assert _sum_and_triple(1, 2, 3) == (3, 3, 1)
    shapes = _shapes(_sum_and_triple, "pair-loads-stores")
    on, off = shapes["on", "aarch64"], shapes["off", "aarch64"]
    frame_pairs = [line for line in on["asm"].splitlines() if ("ldp x" in line or "stp x" in line) and "[x19" in line]
    assert any("ldp x" in line for line in frame_pairs) and any("stp x" in line for line in frame_pairs), on["asm"]
    assert not any("[x19" in line for line in off["asm"].splitlines() if "ldp x" in line or "stp x" in line), off["asm"]
    assert on["instructions"] <= off["instructions"] - 2, (on["instructions"], off["instructions"])
    assert shapes["on", "x86_64"]["asm"] == shapes["off", "x86_64"]["asm"]
    assert _sum_and_triple(1.5, "x" == "y", [1]) == (1.5, [1], 1.5)


def _sign_of(n):
    if n < 0:
        return -1
    return 1 if n > 0 else 0


def test_a_test_of_a_sign_is_one_tbnz_or_tbz_on_aarch64():
    # Each error check of a helper returning a C int (`< 0`: raised) is a sign test; with
    # `test-bit-branches` AArch64 branches on the sign bit (`tbnz`) instead of `cmp`/`b.lt`.
    for _ in range(30):
        assert [_sign_of(n) for n in (-5, 0, 7)] == [-1, 0, 1]
    shapes = _shapes(_sign_of, "test-bit-branches")
    on, off = shapes["on", "aarch64"], shapes["off", "aarch64"]
    tests_on = on["asm"].count("tbnz ") + on["asm"].count("tbz ")
    assert tests_on >= 1 and on["asm"].count("b.lt") < off["asm"].count("b.lt"), on["asm"]
    assert "tbnz " not in off["asm"] and "tbz " not in off["asm"], off["asm"]
    assert on["instructions"] == off["instructions"] - tests_on, (on["instructions"], off["instructions"])
    assert shapes["on", "x86_64"]["asm"] == shapes["off", "x86_64"]["asm"]
    assert [_sign_of(n) for n in (-2**70, 2**70, 0.0, -0.5)] == [-1, 1, 0, -1]


def _count_missing(items, known):
    n = 0
    for i in items:
        if i not in known:
            n += 1
    return n


def _first_known_or(a, known, fallback):
    return (a in known) or fallback


def _not_and(a, b):
    return not a and b


def test_a_jump_on_a_bool_made_from_a_condition_branches_on_the_condition():
    known = {1, 2, 3}
    for _ in range(30):
        assert _count_missing([1, 5, 2, 7], known) == 2
        assert _first_known_or(1, known, "f") is True
        assert _first_known_or(9, known, "f") == "f"
        assert _not_and(0, "b") == "b" and _not_and(1, "b") is False
    for func in (_count_missing, _first_known_or, _not_and):
        shapes = _shapes(func, "fuse-bool-branches")
        for isa in ("x86_64", "aarch64"):
            on, off = shapes["on", isa], shapes["off", isa]
            # Off, the bool is boxed and its truth tested against True and False; on, the
            # branch reads the condition (the bool is still made where it is the value).
            assert on["hir"].count("Truthy") < off["hir"].count("Truthy"), (func, on["hir"])
            assert on["instructions"] < off["instructions"], (func, isa)

    class Bad:
        def __bool__(self):
            raise ValueError("no truth")

    # The compiled code gives the interpreter's results (the bool itself where it is the value).
    ferrojit.enable(threshold=1000)
    try:
        for func in (_count_missing, _first_known_or, _not_and):
            ferrojit.compile(func)
            assert ferrojit.is_compiled(func)
        before = ferrojit.stats()["native_calls"]
        assert _count_missing(range(10), known) == 7
        assert _first_known_or(2, known, None) is True and _first_known_or(0, known, None) is None
        assert _first_known_or(0, known, 0) == 0
        assert _not_and([], [1]) == [1] and _not_and([0], [1]) is False
        # A truth test that raises still raises from `not x` feeding the branch.
        with pytest.raises(ValueError, match="no truth"):
            _not_and(Bad(), 1)
        assert ferrojit.stats()["native_calls"] - before >= 7
    finally:
        ferrojit.disable()
        ferrojit.enable(disable="")
        ferrojit.disable()


_EXTRAS_SOURCE = """
MARK = object()

def kw_only(a, *, scale=2, marker=MARK):
    return a * scale if marker is MARK else -1

def star(a, *rest, **options):
    options["seen"] = a   # a new dict each call: nothing carries over
    return (a, rest, sorted(options.items()))

def needs_kw(a, *, k):
    return a + k

def caller(n):
    t = 0
    r = None
    for i in range(n):
        t += kw_only(i)
        r = star(i)
    return t, r
"""


def _extras_module():
    namespace = {}
    exec(compile(_EXTRAS_SOURCE, "<extras>", "exec"), namespace)
    return namespace


def test_direct_calls_bind_keyword_only_defaults_and_empty_star_parameters():
    results = {}
    for knob in ("", "direct-call-extras"):
        m = _extras_module()
        ferrojit.enable(threshold=1000, disable=knob)
        try:
            for name in ("kw_only", "star", "needs_kw", "caller"):
                ferrojit.compile(m[name])
            marks = sys.getrefcount(m["MARK"])
            before = ferrojit.stats()["direct_calls"]
            results[knob] = m["caller"](50)
            direct = ferrojit.stats()["direct_calls"] - before
            # The default's reference is taken and given back once per call. (Counted outside
            # the assert: pytest's rewriting keeps its operands alive.)
            after = sys.getrefcount(m["MARK"])
            assert after == marks
            # A keyword-only parameter without a default raises as CPython does.
            with pytest.raises(TypeError, match=r"needs_kw\(\) missing 1 required keyword-only argument: 'k'"):
                m["needs_kw"](1)
            # __kwdefaults__ changed after compilation: read at each call.
            m["kw_only"].__kwdefaults__ = {"scale": 3, "marker": m["MARK"]}
            assert m["caller"](3) == (9, (2, (), [("seen", 2)]))
            del m["kw_only"].__kwdefaults__
            with pytest.raises(TypeError, match="missing 2 required keyword-only arguments"):
                m["caller"](1)
        finally:
            ferrojit.disable()
        if knob:
            assert direct == 0, "off, these calls go through the hook"
        else:
            assert direct >= 100, direct
    assert results[""] == results["direct-call-extras"] == (2450, (49, (), [("seen", 49)]))
    ferrojit.enable(disable="")
    ferrojit.disable()


_KEYWORDS_SOURCE = """
MARK = object()

def target(a, b=10, *, c=100, d=MARK):
    return a + b + c + (1000 if d is MARK else d)

def with_star(a, *rest, key=1, **more):
    more["key"] = key   # a new dict each call
    return a + key + len(rest) + len(more)

def caller(n):
    t = 0
    for i in range(n):
        t += target(i, d=1) + target(a=i, c=0) + target(i, 2, c=3, d=4) + with_star(i, key=5)
    return t
"""


def test_direct_calls_bind_keyword_arguments_by_name():
    expected = sum((i + 10 + 100 + 1) + (i + 10 + 0 + 1000) + (i + 2 + 3 + 4) + (i + 5 + 0 + 1)
                   for i in range(40))
    for knob in ("", "direct-call-keywords"):
        namespace = {}
        exec(compile(_KEYWORDS_SOURCE, "<keywords>", "exec"), namespace)
        ferrojit.enable(threshold=1000, disable=knob)
        try:
            for name in ("target", "with_star", "caller"):
                ferrojit.compile(namespace[name])
            marks = sys.getrefcount(namespace["MARK"])
            before = ferrojit.stats()["direct_calls"]
            result = namespace["caller"](40)
            direct = ferrojit.stats()["direct_calls"] - before
            after = sys.getrefcount(namespace["MARK"])
            assert result == expected
            assert after == marks, "the default's reference is given back"
            target = namespace["target"]
            # What binding by name cannot settle, CPython's path raises, with its words.
            with pytest.raises(TypeError, match=r"target\(\) got multiple values for argument 'a'"):
                target(1, a=2)
            with pytest.raises(TypeError, match=r"target\(\) got an unexpected keyword argument 'z'"):
                target(1, z=2)
            with pytest.raises(TypeError, match=r"target\(\) missing 1 required positional argument: 'a'"):
                target(c=1)
        finally:
            ferrojit.disable()
        if knob:
            assert direct == 0, direct
        else:
            assert direct >= 4 * 40, direct
    ferrojit.enable(disable="")
    ferrojit.disable()


class _Point:
    def __init__(self, x, y):
        self.x = x
        self.y = y


class _OnlyX:
    def __init__(self, x):
        self.x = x


def scaled_sum(p, k):
    return p.x + p.y + k * 1000


def test_locals_and_constants_are_borrowed_without_reference_counting():
    p = _Point(1, 2)
    for _ in range(30):
        assert scaled_sum(p, 3) == 3003
    shapes = _shapes(scaled_sum, "borrowed-refs")
    on, off = shapes["on", "x86_64"]["hir"], shapes["off", "x86_64"]["hir"]
    # p (twice), k and the constant 1000 are read without a reference of their own; exits
    # that hold them on their stack are marked (`&v`) to take one.
    assert on.count("(borrowed)") >= 4 and "(borrowed)" not in off, on
    assert on.count("Incref") <= off.count("Incref") - 4, (on, off)
    assert on.count("Decref") <= off.count("Decref") - 4, (on, off)
    assert "&v" in on and "&v" not in off
    for isa in ("x86_64", "aarch64"):
        assert shapes["on", isa]["hir"] == on
        assert shapes["on", isa]["instructions"] < shapes["off", isa]["instructions"]
    # Compiled: a float k fails the int guard of `k * 1000` (a deopt with k and the constant on
    # the stack) and an object without `y` raises in the attribute load (p on the stack); each
    # exit gives the borrowed values their reference, so no count moves.
    only_x, k = _OnlyX(1), 2.5
    thousand = next(c for c in scaled_sum.__code__.co_consts if c == 1000)
    counts = lambda: [sys.getrefcount(o) for o in (p, only_x, k, thousand)]  # noqa: E731
    ferrojit.enable(threshold=1)
    try:
        for _ in range(3):
            assert scaled_sum(p, 3) == 3003
        before = counts()
        for _ in range(150):
            assert scaled_sum(p, k) == 2503.0
            with pytest.raises(AttributeError):
                scaled_sum(only_x, 1)
            assert scaled_sum(p, 4) == 4003
        assert counts() == before
        assert ferrojit.is_compiled(scaled_sum)
    finally:
        ferrojit.disable()


def cold_use_after_call(a, b, f):
    if a < b:
        return f(a) + f(b)
    return f(b)


def test_values_dead_at_the_calls_they_span_need_no_callee_saved_register():
    # `a < b` reads a and b in the hot code and again in its slow path (big ints), laid out
    # after everything, so their intervals span the calls of f; they are dead at those calls.
    for _ in range(30):
        assert cold_use_after_call(1, 2, abs) == 3
    shapes = _shapes(cold_use_after_call, "live-ranges")
    for isa in ("x86_64", "aarch64"):
        on, off = shapes["on", isa], shapes["off", isa]
        assert on["hir"] == off["hir"]
        assert on["instructions"] < off["instructions"], (isa, on["instructions"], off["instructions"])
    ferrojit.enable(threshold=1)
    try:
        for _ in range(3):
            assert cold_use_after_call(1, 2, abs) == 3
            assert cold_use_after_call(2**70, 2**71, str) == str(2**70) + str(2**71)
            assert cold_use_after_call(5, 2, lambda v: -v) == -2
        assert ferrojit.is_compiled(cold_use_after_call)
    finally:
        ferrojit.disable()


def test_compact_int_words_are_digit_times_size():
    # The word of an int guarded to 0 or one positive digit: one multiply (x86-64 imul,
    # AArch64 mul) instead of a zero, a subtraction and an `and`.
    for _ in range(30):
        assert count_down(10) == 110
    shapes = _shapes(count_down, "compact-int-multiply")
    mul = {"x86_64": "imul ", "aarch64": "mul "}
    for isa in ("x86_64", "aarch64"):
        on, off = shapes["on", isa], shapes["off", isa]
        assert on["hir"] == off["hir"]
        assert on["asm"].count(mul[isa]) >= 2 + off["asm"].count(mul[isa]), on["asm"]
        assert on["instructions"] <= off["instructions"] - 4, (isa, on["instructions"], off["instructions"])
    ferrojit.enable(threshold=1)
    try:
        for n in (0, 1, 2, 7, 1000, -4):
            assert count_down(n) == sum(2 * k for k in range(1, max(n, 0) + 1))
        for n in (0, 1, 2**30 - 1, 2**30, -4, 2**64):
            assert minus_one(n) == n - 1
        assert ferrojit.is_compiled(minus_one)
    finally:
        ferrojit.disable()


def test_aarch64_tests_against_zero_are_one_compare_and_branch():
    # The error check after each call (NULL result), the eval-breaker and tracing checks: on
    # AArch64 one cbz/cbnz each instead of cmp and b.cond; x86-64 is unchanged.
    for _ in range(30):
        assert three_calls(5) == 5
    shapes = _shapes(three_calls, "compare-and-branch")
    on, off = shapes["on", "aarch64"], shapes["off", "aarch64"]
    zero_branches = lambda asm: asm.count("cbz ") + asm.count("cbnz ")  # noqa: E731
    assert zero_branches(on["asm"]) >= zero_branches(off["asm"]) + 6, on["asm"]
    assert on["instructions"] <= off["instructions"] - 6, (on["instructions"], off["instructions"])
    assert shapes["on", "x86_64"]["asm"] == shapes["off", "x86_64"]["asm"]
    assert three_calls("z") == "z"


def count_down(n):
    total = 0
    while n > 0:
        total = total + n * 2
        n = n - 1
    return total


def minus_one(n):
    return n - 1


def test_constant_operands_need_no_type_guard_and_no_digit_test():
    for _ in range(30):
        assert count_down(10) == 110
    # (guard-elimination off in both: it would remove the constants' guards too.)
    shapes = _shapes(count_down, "constant-operands", "guard-elimination")
    on, off = shapes["on", "x86_64"]["hir"], shapes["off", "x86_64"]["hir"]
    # Int operations with one constant operand (0, 2, 1; `n > 0` twice, at the loop's top and
    # bottom) and one variable one: the constants' guards and one-digit tests go, the
    # variables' stay.
    assert on.count("GuardType") <= off.count("GuardType") - 4, (on, off)
    assert on.count("IsCompactInt") <= off.count("IsCompactInt") - 4, (on, off)
    assert on.count("IsCompactInt") >= 4
    for isa in ("x86_64", "aarch64"):
        assert shapes["on", isa]["hir"] == shapes["on", "x86_64"]["hir"]
        assert shapes["on", isa]["instructions"] < shapes["off", isa]["instructions"]
    # Compiled (threshold 1), the variable operands still meet their guards and digit tests:
    # big and negative ints take the helper, a float or a bool exits.
    ferrojit.enable(threshold=1)
    try:
        for _ in range(3):
            for n in (0, 1, 5, -3):
                assert count_down(n) == sum(2 * k for k in range(1, max(n, 0) + 1))
            assert count_down(7.5) == sum(2 * (7.5 - k) for k in range(8))
            assert count_down(True) == 2
            big = 2**40
            assert minus_one(big) == big - 1 and minus_one(-5) == -6 and minus_one(True) == 0
            assert minus_one(0.5) == -0.5
        assert ferrojit.is_compiled(count_down) and ferrojit.is_compiled(minus_one)
    finally:
        ferrojit.disable()


def test_slow_paths_are_laid_out_after_the_code_that_returns():
    for _ in range(30):
        unpack_two((1, 2))
    for isa in ("x86_64", "aarch64"):
        r = ferrojit.inspect(unpack_two, isa=isa)
        assert "cold" in r["hir"], r["hir"]
        lir = r["lir"]
        # The helper the inline unpacking gives up to comes after the return.
        assert lir.index("call fj_unpack_sequence") > lir.index("return"), lir
    ferrojit.enable(threshold=1000, disable="cold-slow-paths")
    try:
        for isa in ("x86_64", "aarch64"):
            lir = ferrojit.inspect(unpack_two, isa=isa)["lir"]
            assert lir.index("call fj_unpack_sequence") < lir.index("return"), lir
    finally:
        ferrojit.disable()
        ferrojit.enable(disable="")
        ferrojit.disable()


def test_inspect_returns_every_stage_for_both_isas():
    for isa in ("x86_64", "aarch64"):
        r = ferrojit.inspect(add, isa=isa)
        assert "CallHelper fj_binary_op" in r["hir"]
        assert "call fj_binary_op" in r["lir"]
        assert "locations:" in r["regalloc"]
        assert r["code_bytes"] > 0 and r["instructions"] > 10
    with pytest.raises(ValueError, match="unknown ISA"):
        ferrojit.inspect(add, isa="mips")


def test_bad_threshold_is_a_clear_error():
    with pytest.raises(ValueError, match="non-negative integer"):
        ferrojit.enable(threshold=-1)
    r = run_jit(PROGRAMS / "arith_and_branches.py", threshold="abc")
    assert r.returncode == 2
    assert "non-negative integer" in r.stderr
    env = clean_env(FERROJIT="1", FERROJIT_THRESHOLD="lots")
    r = subprocess.run([sys.executable, "-c", "print('hi')"], capture_output=True, text=True, env=env)
    assert r.returncode == 2
    assert "FERROJIT_THRESHOLD must be a non-negative integer" in r.stderr


def test_missing_script_is_reported_like_python(tmp_path):
    r = run_jit(tmp_path / "nope.py", cwd=tmp_path)
    assert r.returncode == 2
    assert "can't open file" in r.stderr


def test_functions_with_a_loop_compile_on_their_second_call(tmp_path):
    script = tmp_path / "loops.py"
    script.write_text(
        "import ferrojit\n"
        "def looping(n):\n"
        "    t = 0\n"
        "    for i in range(n):\n"
        "        t += i\n"
        "    return t\n"
        "def straight(n):\n"
        "    return n + 1\n"
        "seen = []\n"
        "for call in range(1, 5):\n"
        "    looping(10); straight(1)\n"
        "    seen.append((call, ferrojit.is_compiled(looping), ferrojit.is_compiled(straight)))\n"
        "print(seen)\n"
    )
    r = run_jit(script, threshold=3, stats="-", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    # Compiled when the call count exceeds the threshold: the loop one on call 2, the other on 4.
    assert lines[0] == str([(1, False, False), (2, True, False), (3, True, False), (4, True, True)])
    stats = json.loads(lines[-1])
    assert (stats["threshold"], stats["loop_threshold"]) == (3, 1)
    r = run_jit(script, threshold=3, extra=["--loop-threshold", "3"], cwd=tmp_path)
    assert r.stdout.splitlines()[0] == str([(1, False, False), (2, False, False), (3, False, False), (4, True, True)])
    env = clean_env(FERROJIT="1", FERROJIT_LOOP_THRESHOLD="soon")
    r = subprocess.run([sys.executable, "-c", "print('hi')"], capture_output=True, text=True, env=env)
    assert r.returncode == 2
    assert "FERROJIT_LOOP_THRESHOLD must be a non-negative integer" in r.stderr


def test_loops_the_interpreter_would_not_quicken_yet_compile_on_the_second_call(tmp_path):
    # 3.11 counts only JUMP_BACKWARD towards quickening: a `while` loop ending in
    # POP_JUMP_BACKWARD_IF_NOT_NONE (richards' `schedule`) leaves its function unquickened for
    # eight calls, so it would wait for the call threshold. early-quickening makes the
    # interpreter quicken it at the first call's RESUME.
    script = tmp_path / "walk.py"
    script.write_text(
        "import dis, ferrojit\n"
        "class Node:\n"
        "    def __init__(self, v, nxt):\n"
        "        self.v = v; self.nxt = nxt\n"
        "def walk(node):\n"
        "    t = 0\n"
        "    while node is not None:\n"
        "        t += node.v\n"
        "        node = node.nxt\n"
        "    return t\n"
        "chain = None\n"
        "for v in range(50):\n"
        "    chain = Node(v, chain)\n"
        "seen = []\n"
        "for call in range(1, 4):\n"
        "    total = walk(chain)\n"
        "    adaptive = {i.opname for i in dis.get_instructions(walk, adaptive=True)}\n"
        "    seen.append((call, total, ferrojit.is_compiled(walk), 'LOAD_ATTR_INSTANCE_VALUE' in adaptive))\n"
        "print(seen)\n"
    )
    assert "POP_JUMP_BACKWARD_IF_NOT_NONE" in _opnames_of_walk()
    # (osr off: it would move the first call's loop to compiled code.)
    r = run_jit(script, threshold=20, extra=["--disable", "osr"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str([(1, 1225, False, True), (2, 1225, True, True), (3, 1225, True, True)])
    r = run_jit(script, threshold=20, extra=["--disable", "early-quickening,osr"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str([(1, 1225, False, False), (2, 1225, False, False), (3, 1225, False, False)])


def _opnames_of_walk():
    import dis

    def walk(node):
        t = 0
        while node is not None:
            t += node.v
            node = node.nxt
        return t

    return {i.opname for i in dis.get_instructions(walk)}


def test_relative_script_path_gives_the_same_file_names_as_python():
    # CPython makes a script's file name absolute (tracebacks, __file__); sys.argv[0] stays as given.
    name = "exceptions_and_tracebacks.py"
    plain = run_plain(name, cwd=PROGRAMS)
    r = run_jit(name, cwd=PROGRAMS)
    assert str(PROGRAMS / name) in plain.stderr
    assert r.stderr == plain.stderr
    assert r.stdout == plain.stdout


def test_environment_switch_reaches_child_processes(tmp_path):
    stats = tmp_path / "s.jsonl"
    code = "import ferrojit, sys; print(ferrojit.is_enabled())"
    env = clean_env(FERROJIT="1", FERROJIT_THRESHOLD="0", FERROJIT_STATS=str(stats))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.stdout.strip() == "True", r.stderr
    assert read_stats(stats)[0]["threshold"] == 0
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean_env())
    assert r.stdout.strip() == "False"


def test_module_mode_argv_and_exit_code(tmp_path):
    (tmp_path / "mod_under_test.py").write_text("import sys\nprint(sys.argv[1:])\nsys.exit(3)\n")
    r = subprocess.run(
        [sys.executable, "-m", "ferrojit", "run", "-m", "mod_under_test", "a", "b"],
        cwd=tmp_path, capture_output=True, text=True, env=clean_env(PYTHONPATH=os.pathsep.join(sys.path)),
    )
    assert r.stdout.strip() == "['a', 'b']", r.stderr
    assert r.returncode == 3


def test_dump_writes_every_stage(tmp_path):
    dump = tmp_path / "dump"
    r = run_jit(PROGRAMS / "arith_and_branches.py", threshold=0, extra=["--dump", str(dump)])
    assert r.returncode == 0, r.stderr
    names = {p.name for p in dump.iterdir()}
    for ext in ("hir", "lir", "regalloc", "asm"):
        assert "collatz.%s" % ext in names, sorted(names)
    assert "Branch" in (dump / "collatz.hir").read_text()


def test_stats_to_stdout(tmp_path):
    r = run_jit(PROGRAMS / "arith_and_branches.py", threshold=0, stats="-")
    last = json.loads(r.stdout.splitlines()[-1])
    assert last["functions_compiled"] >= 2
    assert last["isa"] == ferrojit.ISA
    assert last["code_bytes"] > 0


def test_a_speculation_that_keeps_failing_is_recompiled_generic(tmp_path):
    program = PROGRAMS / "deopt_policy.py"
    plain = run_plain(program)
    sites = {}
    for limit in (3, 0):
        stats = tmp_path / ("limit%d.jsonl" % limit)
        # (osr off: while a first call is watched, compiled code exits at its eval-breaker
        # checks, which would count among the sites here; poly-methods and poly-stores off:
        # their site caches learn the second class, and those recompilations would count here.)
        knobs = ["--disable", "osr,poly-methods,poly-stores"]
        r = run_jit(program, threshold=10, stats=stats, extra=["--deopt-limit", str(limit)] + knobs)
        assert (r.returncode, r.stdout, r.stderr) == (plain.returncode, plain.stdout, plain.stderr)
        s = read_stats(stats)[0]
        assert s["deopt_limit"] == limit
        sites[limit] = s
    # Past the limit a site stops speculating: its function is recompiled with the generic path.
    low = sites[3]
    assert low["recompilations"] >= 1 and low["generic_sites"] >= 1, low
    speculative = {site: n for site, n in low["deopt_sites"].items() if not site.endswith(" raise")}
    assert speculative and max(speculative.values()) <= 4, low["deopt_sites"]
    assert any("total_area" in site and "LOAD_METHOD" in site for site in low["deopt_sites"])
    # With the limit off, the same sites keep exiting to the interpreter and nothing is recompiled.
    never = sites[0]
    assert never["recompilations"] == 0 and never["generic_sites"] == 0
    assert max(never["deopt_sites"].values()) > 50, never["deopt_sites"]


def test_the_deopt_limit_bounds_a_site_across_recompilations(tmp_path):
    # Site B fails twice, site A's failures recompile the function (B still speculating), then
    # B fails again: counted per native version, B would exit 2 + 4 times; per site, 4.
    program = PROGRAMS / "deopt_across_versions.py"
    plain = run_plain(program)
    stats = tmp_path / "s.jsonl"
    r = run_jit(program, threshold=10, stats=stats, extra=["--deopt-limit", "3", "--disable", "osr"])
    assert (r.returncode, r.stdout, r.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    s = read_stats(stats)[0]
    sites = {k: n for k, n in s["deopt_sites"].items() if ":pair @" in k}
    assert len(sites) == 2 and s["recompilations"] >= 2, s["deopt_sites"]
    assert max(sites.values()) == 4, sites


def test_a_module_gaining_globals_recompiles_its_functions_instead_of_exiting(tmp_path):
    # Each new global fails the keys-version guard of every compiled LOAD_GLOBAL in the module
    # (the builtin `abs` in `area` here). The exit retires the code at once and the next call
    # compiles against the dicts as they are; with the knob off the site exits on every call
    # until the deopt limit makes it generic.
    program = PROGRAMS / "module_gains_globals.py"
    plain = run_plain(program)
    keys_exits = {}
    for knobs in ([], ["--disable", "recompile-on-keys-change"]):
        stats = tmp_path / ("s%d.jsonl" % len(knobs))
        r = run_jit(program, threshold=10, stats=stats, extra=knobs)
        assert (r.returncode, r.stdout, r.stderr) == (plain.returncode, plain.stdout, plain.stderr)
        s = read_stats(stats)[0]
        exits = [n for site, n in s["deopt_sites"].items() if "keys changed" in site]
        keys_exits[bool(knobs)] = (exits, s["recompilations"], s["generic_sites"])
    on, off = keys_exits[False], keys_exits[True]
    # At most one exit per site for each of the 3 globals added (whether a recompiled function
    # guards the new keys again depends on whether the interpreter has versioned them yet).
    assert on[0] and max(on[0]) <= 3 and on[1] >= 1 and on[2] == 0, keys_exits
    assert sum(off[0]) > 50 and off[2] >= 1, keys_exits


def test_bad_deopt_limit_is_a_clear_error():
    with pytest.raises(ValueError, match="non-negative integer"):
        ferrojit.enable(deopt_limit=-2)
    r = run_jit(PROGRAMS / "arith_and_branches.py", extra=["--deopt-limit", "many"])
    assert r.returncode == 2
    assert "non-negative integer" in r.stderr
    env = clean_env(FERROJIT="1", FERROJIT_DEOPT_LIMIT="x")
    r = subprocess.run([sys.executable, "-c", "print('hi')"], capture_output=True, text=True, env=env)
    assert r.returncode == 2
    assert "FERROJIT_DEOPT_LIMIT must be a non-negative integer" in r.stderr


class Point:
    def __init__(self, x, y=None):
        self.x = x
        if y is not None:
            self.y = y


def test_storing_into_an_empty_attribute_slot_is_a_normal_path_not_an_exit():
    for i in range(20):  # quicken: STORE_ATTR_INSTANCE_VALUE for both stores
        Point(i, i if i % 2 else None)
    for isa in ("x86_64", "aarch64"):
        r = ferrojit.inspect(Point.__init__, isa=isa)
        assert r["hir"].count("StoreWord") == 2, r["hir"]
        assert r["hir"].count("fj_values_add_key") == 2
        assert "deopt @3" not in r["hir"] and "deopt @12" not in r["hir"], r["hir"]
        assert r["lir"].count("call fj_values_add_key") == 2
    ferrojit.compile(Point.__init__)
    ferrojit.enable(threshold=1000)
    try:
        p, q = Point(1), Point(2, 3)
        assert (p.__dict__, q.__dict__) == ({"x": 1}, {"x": 2, "y": 3})
    finally:
        ferrojit.disable()


class Slotted:
    __slots__ = ("x", "y")

    def __init__(self, x, y):
        self.x = x
        self.y = y

    def swap(self):
        self.x, self.y = self.y, self.x
        return self.x


def test_slot_members_are_read_and_stored_inline():
    for i in range(20):  # quicken: LOAD_ATTR_SLOT and STORE_ATTR_SLOT
        Slotted(i, -i).swap()
    # Members follow the 16-byte object header (refcount, type): words 2 and 3.
    x_word, y_word = 2, 3
    for isa in ("x86_64", "aarch64"):
        r = ferrojit.inspect(Slotted.swap, isa=isa)
        hir = r["hir"]
        # Two reads, then two stores (each reading the old value first), then one more read.
        assert hir.count("LoadWord") == 5 and hir.count("StoreWord") == 2, hir
        assert "LoadWord v" in hir and ("[%d]" % x_word) in hir and ("[%d]" % y_word) in hir
        assert "load64 [%" in r["lir"] and ("+%d]" % (8 * x_word)) in r["lir"]
    ferrojit.compile(Slotted.swap)
    ferrojit.enable(threshold=1000)
    try:
        s = Slotted(1, 2)
        assert (s.swap(), s.swap(), s.y) == (2, 1, 2)
        del s.y
        with pytest.raises(AttributeError, match="y"):
            s.swap()
    finally:
        ferrojit.disable()


def below(a, b):
    if a < b:
        return a * b + a
    return a - b


def test_specialised_int_and_float_operations_are_guarded_helper_calls():
    for i in range(20):  # quicken: COMPARE_OP_INT_JUMP, BINARY_OP_*_INT
        below(i, 10)
    for isa in ("x86_64", "aarch64"):
        r = ferrojit.inspect(below, isa=isa)
        hir, lir = r["hir"], r["lir"]
        # The comparison feeds the jump as a C truth value: no bool object, no truth test.
        assert "fj_compare_ints" in hir and "fj_compare_op" not in hir, hir
        assert "Truthy" not in hir
        assert hir.count("fj_int_binary") == 3 and "fj_binary_op" not in hir
        # Both operands of the comparison only: `a` and `b` are known ints after their guards,
        # and the product of two ints is an int (guard-elimination), so the other three uses
        # and the product go unchecked.
        assert hir.count("GuardType") == 2 and "speculated @" in hir, hir
        assert "call fj_compare_ints" in lir and lir.count("call fj_int_binary") == 3
    ferrojit.compile(below)
    ferrojit.enable(threshold=1000)
    try:
        assert [below(2, 3), below(2**40, 2**41), below(3, 2), below(1.5, 2.0)] == [8, 2**81 + 2**40, 1, 4.5]
    finally:
        ferrojit.disable()


def make_counter(start):
    count = start

    def bump():
        nonlocal count
        count += 1
        return count

    return bump


def test_closure_cells_are_read_and_written_inline():
    bump = make_counter(5)
    for isa in ("x86_64", "aarch64"):
        outer = ferrojit.inspect(make_counter, isa=isa)
        # The argument moves into a cell at entry; the inner function gets the closure tuple.
        assert "fj_make_cell" in outer["hir"] and "fj_make_function" in outer["hir"], outer["hir"]
        inner = ferrojit.inspect(bump, isa=isa)
        hir, lir = inner["hir"], inner["lir"]
        # COPY_FREE_VARS at entry, then the cell's value (word 2, after the object header) read
        # (LOAD_DEREF: an empty cell exits to the interpreter, which raises) and replaced
        # (STORE_DEREF: the old value released), with no helper call for either.
        assert "fj_copy_free_vars" in hir, hir
        assert hir.count("LoadWord") == 3 and hir.count("StoreWord") == 1, hir
        assert "[2]" in hir and "empty cell" in hir
        assert "call fj_copy_free_vars" in lir and "+16]" in lir, lir
    ferrojit.compile(make_counter)
    ferrojit.compile(bump)
    ferrojit.enable(threshold=1000)
    try:
        fresh = make_counter(1)
        assert [bump(), bump(), fresh(), fresh()] == [6, 7, 2, 3]
        assert fresh.__closure__[0].cell_contents == 3
    finally:
        ferrojit.disable()


GLOBALS_SOURCE = """
LIMIT = 3

def warm(xs):
    return len(xs) + LIMIT

def cold(xs):
    return len(xs) * LIMIT
"""


def test_globals_not_yet_specialised_are_read_from_their_compile_time_entries():
    ns = {}
    exec(GLOBALS_SOURCE, ns)
    for _ in range(20):  # the interpreter specialises warm's loads: both key tables get versions
        ns["warm"]([1])
    cold = ns["cold"]  # never ran: its LOAD_GLOBALs are not specialised
    for isa in ("x86_64", "aarch64"):
        hir = ferrojit.inspect(cold, isa=isa)["hir"]
        assert "fj_load_global" not in hir, hir
        assert hir.count("LoadBuiltin") == 1 and hir.count("LoadModuleGlobal") == 1
    ferrojit.enable(threshold=1000, disable="compile-time-globals")
    try:
        for isa in ("x86_64", "aarch64"):
            hir = ferrojit.inspect(cold, isa=isa)["hir"]
            assert hir.count("fj_load_global") == 2 and "LoadBuiltin" not in hir, hir
        assert ferrojit.stats()["disabled"] == ["compile-time-globals"]
        ferrojit.enable(disable="")
        ferrojit.compile(cold)
        assert "LoadBuiltin" in ferrojit.inspect(cold)["hir"]
        assert cold([1, 2]) == 6
        ns["LIMIT"] = 5  # rebinding keeps the entry: the new value is read
        assert cold([1, 2]) == 10
        ns["len"] = lambda xs: 100  # a global now shadows the builtin: the guard exits
        assert cold([1, 2]) == 500
        del ns["len"], ns["LIMIT"]
        with pytest.raises(NameError, match="LIMIT"):
            cold([1])
    finally:
        ferrojit.disable()
        ferrojit.enable(disable="")
        ferrojit.disable()


DICT_ATTRS_SOURCE = """
import math

class Loose:
    def __init__(self, a):
        self.__dict__ = {"a": a}  # an own dict: the interpreter specialises LOAD_ATTR_WITH_HINT

def read(o):
    return o.a + math.floor(o.a)
"""


def test_dict_hint_and_module_attributes_are_read_in_machine_code():
    ns = {}
    exec(DICT_ATTRS_SOURCE, ns)
    read, Loose = ns["read"], ns["Loose"]
    objs = [Loose(i) for i in range(4)]
    for _ in range(20):  # quickened: LOAD_ATTR_WITH_HINT for o.a, LOAD_ATTR_MODULE for floor
        for o in objs:
            read(o)
    for isa in ("x86_64", "aarch64"):
        info = ferrojit.inspect(read, isa=isa)
        assert info["hir"].count("LoadDictHint") == 2, info["hir"]
        assert info["hir"].count("LoadModuleAttr") == 1, info["hir"]
        shift = "lsl" if isa == "aarch64" else "shl"
        assert shift in info["asm"], info["asm"]  # DK_ENTRIES: keys + (1 << log2 index bytes)
    ferrojit.enable(threshold=1000, disable="inline-dict-attrs")
    try:
        for isa in ("x86_64", "aarch64"):
            hir = ferrojit.inspect(read, isa=isa)["hir"]
            assert "LoadDictHint" not in hir and "LoadModuleAttr" not in hir, hir
            assert hir.count("fj_getattr_cached") == 3
        ferrojit.enable(disable="")
        ferrojit.compile(read)
        assert ferrojit.is_compiled(read)
        assert [read(o) for o in objs] == [0, 2, 4, 6]
        objs[1].__dict__.clear()  # the entry's key is gone: the generic lookup raises
        with pytest.raises(AttributeError, match="'a'"):
            read(objs[1])
        objs[2].__dict__ = {"b": 0, "a": 2.5}  # another dict: the hint misses, same result
        assert read(objs[2]) == 4.5
        ns["math"] = type(ns["math"])("fake")  # another module: its keys fail the version
        ns["math"].floor = lambda x: -1
        assert read(objs[3]) == 2
    finally:
        ferrojit.disable()
        ferrojit.enable(disable="")
        ferrojit.disable()


STORE_DICT_SOURCE = """
class Loose:
    def __init__(self, a):
        self.__dict__ = {"a": a, "n": 0}  # an own dict: STORE_ATTR_WITH_HINT

def bump(o, by):
    o.n = o.n + by
"""


def test_stores_into_an_own_dict_skip_the_type_lookup_while_the_type_is_unchanged():
    ns = {}
    exec(STORE_DICT_SOURCE, ns)
    bump, Loose = ns["bump"], ns["Loose"]
    objs = [Loose(i) for i in range(4)]
    for _ in range(20):  # quickened: STORE_ATTR_WITH_HINT for o.n
        for o in objs:
            bump(o, 1)
    for isa in ("x86_64", "aarch64"):
        hir = ferrojit.inspect(bump, isa=isa)["hir"]
        assert "fj_store_attr_dict" in hir and "PyObject_SetAttr" not in hir, hir
    ferrojit.compile(bump)
    ferrojit.enable(threshold=1000)
    try:
        assert ferrojit.is_compiled(bump)
        for o in objs:
            bump(o, 5)
        assert [o.__dict__ for o in objs] == [{"a": i, "n": 25} for i in range(4)]
        objs[1].__dict__ = {"n": 10, "a": 1}  # another dict, other order: stored in place
        bump(objs[1], 2)
        assert list(objs[1].__dict__.items()) == [("n", 12), ("a", 1)]
        seen = []
        # A data descriptor on the type changes its version: setattr runs the descriptor.
        Loose.n = property(lambda self: 7, lambda self, v: seen.append(v))
        bump(objs[2], 1)
        assert seen == [8] and objs[2].__dict__["n"] == 25
        ferrojit.enable(threshold=1000, disable="store-attr-dict")
        for isa in ("x86_64", "aarch64"):
            hir = ferrojit.inspect(bump, isa=isa)["hir"]
            # The generic store (through the site's cache, with `poly-stores`).
            assert "fj_store_attr_dict" not in hir and "fj_setattr_cached" in hir, hir
    finally:
        ferrojit.disable()
        ferrojit.enable(disable="")
        ferrojit.disable()


def six_comparisons(a, b):
    n = 0
    if a < b:
        n += 1
    if a <= b:
        n += 10
    if a == b:
        n += 100
    if a != b:
        n += 1000
    if a > b:
        n += 10000
    if a >= b:
        n += 100000
    return n


def test_int_comparisons_of_one_digit_ints_run_in_machine_code():
    for _ in range(30):  # quickened: six COMPARE_OP_INT_JUMPs
        for x in (1, 2, 3):
            six_comparisons(x, 2)
    for isa in ("x86_64", "aarch64"):
        hir = ferrojit.inspect(six_comparisons, isa=isa)["hir"]
        # Two operand checks a comparison, and one more each `n += ...` done in words (the
        # constant operand is known: `constant-operands`).
        compact = 12 + hir.count("ArithWords")
        assert hir.count("IsCompactInt") == compact and hir.count("CompareWords") == 6, hir
        for sign in ("<", "<=", "==", "!=", ">", ">="):
            assert f" {sign} " in hir
    ferrojit.enable(threshold=1000, disable="inline-int-compare")
    try:
        for isa in ("x86_64", "aarch64"):
            hir = ferrojit.inspect(six_comparisons, isa=isa)["hir"]
            assert "CompareWords" not in hir and hir.count("fj_compare_ints") == 6, hir
    finally:
        ferrojit.disable()
        ferrojit.enable(disable="")
        ferrojit.disable()
    ferrojit.compile(six_comparisons)
    # Zero, one digit, the first two-digit int, negatives, past 64 bits, bools and a float:
    # the machine-word path, the helper and the type guard's exit all give the interpreter's
    # answers.
    values = [0, 1, 2, 5, 2**30 - 1, 2**30, -1, -5, 10**20, -(10**20), True, False, 0.5]
    expected = {(a, b): six_comparisons(a, b) for a in values for b in values}
    ferrojit.enable(threshold=1000, deopt_limit=0)
    try:
        assert ferrojit.is_compiled(six_comparisons)
        got = {(a, b): six_comparisons(a, b) for a in values for b in values}
        assert got == expected
    finally:
        ferrojit.disable()
        ferrojit.enable(disable="")
        ferrojit.disable()


def three_ops(a, b):
    return a + b, a - b, a * b


def test_int_arithmetic_on_one_digit_ints_runs_in_machine_code():
    for _ in range(30):  # quickened: BINARY_OP_ADD_INT, _SUBTRACT_INT and _MULTIPLY_INT
        three_ops(3, 4)
    for isa in ("x86_64", "aarch64"):
        hir = ferrojit.inspect(three_ops, isa=isa)["hir"]
        assert hir.count("ArithWords") == 3 and hir.count("IsCompactInt") == 6, hir
        for sign in ("+", "-", "*"):
            assert re.search(r"ArithWords \S+ %s \S+" % re.escape(sign), hir), hir
        # Boxed by PyLong_FromLongLong; any other int goes to the helper.
        assert hir.count("PyLong_FromLongLong") == 3 and hir.count("fj_int_binary") == 3, hir
    ferrojit.enable(threshold=1000, disable="inline-int-arith")
    try:
        for isa in ("x86_64", "aarch64"):
            hir = ferrojit.inspect(three_ops, isa=isa)["hir"]
            assert "ArithWords" not in hir and hir.count("fj_int_binary") == 3, hir
    finally:
        ferrojit.disable()
        ferrojit.enable(disable="")
        ferrojit.disable()
    ferrojit.compile(three_ops)
    # Zero, small ints (cached objects), the largest one-digit int and the first two-digit
    # one, products past one digit, negatives, past 64 bits, bools and a float: the word path,
    # the helper and the type guard's exit all give the interpreter's values and types.
    values = [0, 1, 2, 5, 255, 256, 2**30 - 1, 2**30, -1, -5, 1 - 2**30, 10**20, -(10**20)]
    values += [True, False, 0.5]
    expected = {(a, b): repr(three_ops(a, b)) for a in values for b in values}
    ferrojit.enable(threshold=1000, deopt_limit=0)
    try:
        assert ferrojit.is_compiled(three_ops)
        got = {(a, b): repr(three_ops(a, b)) for a in values for b in values}
        assert got == expected
        # Results in the small-int range are the interpreter's cached objects.
        total, difference, product = three_ops(100, 100)
        assert total is int("200") and difference is int("0") and product == 10000
    finally:
        ferrojit.disable()
        ferrojit.enable(disable="")
        ferrojit.disable()


def c_function_calls(x, d, out):
    out.append(len(x))  # builtin taking one object; list.append, a method descriptor
    out.append(isinstance(x, list))  # builtin taking a vector
    out.append(type(x))
    out.append(d.get(len(x), -1))  # method descriptor taking a vector
    out.append(x.copy())  # method descriptor taking nothing
    out.append(str(len(x)))
    out.append(tuple(x))
    out.append(list(x))  # a builtin class with a vectorcall
    return out


def call_one(fn, x):
    return fn(x)


class ListKind(list):
    pass


def test_calls_the_interpreter_specialised_for_c_functions_call_them_directly():
    for _ in range(30):  # quickened: the PRECALLs specialise for the C functions
        c_function_calls([1, 2], {2: "two"}, [])
        call_one(len, "abc")
    # Eighteen calls of C functions: eight appends, len three times, isinstance, type, get,
    # copy, str, tuple and list.
    for isa in ("x86_64", "aarch64"):
        hir = ferrojit.inspect(c_function_calls, isa=isa)["hir"]
        assert hir.count("fj_call_c(") == 18 and "fj_call(" not in hir, hir
    ferrojit.enable(threshold=1000, disable="c-calls")
    try:
        for isa in ("x86_64", "aarch64"):
            hir = ferrojit.inspect(c_function_calls, isa=isa)["hir"]
            assert "fj_call_c(" not in hir and hir.count("fj_call(") == 18, hir
    finally:
        ferrojit.disable()
        ferrojit.enable(disable="")
        ferrojit.disable()
    ferrojit.compile(c_function_calls)
    ferrojit.compile(call_one)
    # A list subclass (its self is not exactly the descriptor's type), a dict without the
    # key, and call_one's site (specialised for len) given other callables: a Python
    # function, a bound method, a method descriptor, a class, len with a wrong argument.
    def cases():
        return [
            (c_function_calls, ([1, 2], {2: "two"}, [])),
            (c_function_calls, (ListKind([3]), {}, ListKind())),
            (call_one, (len, [1, 2, 3])),
            (call_one, (lambda v: v * 2, 21)),
            (call_one, ("x".join, ["a", "b"])),
            (call_one, (str.upper, "abc")),
            (call_one, (list, "ab")),
            (call_one, (str, 5)),
            (call_one, (tuple, 5)),
            (call_one, (len, 5)),
        ]

    def outcome(fn, args):
        try:
            return repr(fn(*args))
        except TypeError as e:
            return "TypeError: %s" % e

    expected = [outcome(fn, args) for fn, args in cases()]
    ferrojit.enable(threshold=1000, deopt_limit=0)
    try:
        assert ferrojit.is_compiled(c_function_calls) and ferrojit.is_compiled(call_one)
        assert [outcome(fn, args) for fn, args in cases()] == expected
    finally:
        ferrojit.disable()
        ferrojit.enable(disable="")
        ferrojit.disable()


def unpack_two(t):
    a, b = t
    return a * 10 + b


def unpack_three(t):
    a, b, c = t
    return (a, b, c)


class TupleKind(tuple):
    pass


def outcomes(fn, cases):
    out = []
    for case in cases:
        try:
            out.append(fn(case))
        except ValueError as e:
            out.append(str(e))
    return out


def sum_items(xs):
    total = 0
    for x in xs:
        total += x
    return total


def test_for_over_a_list_or_tuple_takes_each_item_in_machine_code():
    # The loop's FOR_ITER checks for a list or tuple iterator and reads the item at its index
    # inline; fj_for_iter stays on the other arm (other iterators, and the loop's end).
    for isa in ("x86_64", "aarch64"):
        on = ferrojit.inspect(sum_items, isa=isa)
        assert "SeqIterNext" in on["hir"] and on["hir"].count("fj_for_iter") == 1, on["hir"]
    ferrojit.enable(threshold=1000, disable="inline-for-iter")
    try:
        for isa in ("x86_64", "aarch64"):
            off = ferrojit.inspect(sum_items, isa=isa)
            assert "SeqIterNext" not in off["hir"] and "fj_for_iter" in off["hir"], off["hir"]
    finally:
        ferrojit.disable()
        ferrojit.enable(disable="")
        ferrojit.disable()
    ferrojit.compile(sum_items)
    half_used = iter([1, 2, 3])
    next(half_used)
    cases = lambda: [[1, 2, 3], (4, 5), [], (), range(4), {6: 0}, half_used, "ab"]
    ferrojit.enable(threshold=1000)
    try:
        assert ferrojit.is_compiled(sum_items)
        got = []
        for case in cases():
            try:
                got.append(sum_items(case))
            except TypeError as e:
                got.append(str(e))
    finally:
        ferrojit.disable()
    assert got == [6, 9, 0, 0, 6, 6, 5, "unsupported operand type(s) for +=: 'int' and 'str'"]


class Made:
    def __init__(self, a, b=2):
        self.total = a + b


def make_many(n):
    total = 0
    for i in range(n):
        total += Made(i).total + Made(i, 0).total
    return total


class Chain:
    def __init__(self, k):
        self.child = Chain(k - 1) if k else None


def test_calling_a_class_makes_the_instance_and_calls_a_compiled_init_directly():
    # The runtime's path: calls of classes made in machine code make their instances
    # themselves (`constructors-in-machine-code`, tested below with its own classes).
    machine = "constructors-in-machine-code"
    ferrojit.enable(threshold=1000, disable=machine)
    ferrojit.disable()
    ferrojit.compile(Made.__init__)
    ferrojit.compile(make_many)
    expected = 2 * sum(range(50)) + 2 * 50
    made = {}
    for knobs in (machine, machine + ",direct-constructors"):
        ferrojit.enable(threshold=1000, disable=knobs)
        try:
            before = ferrojit.stats()["direct_constructions"]
            refs = sys.getrefcount(Made)
            assert make_many(50) == expected
            assert sys.getrefcount(Made) == refs
            made[knobs] = ferrojit.stats()["direct_constructions"] - before
        finally:
            ferrojit.disable()
    assert made == {machine: 100, machine + ",direct-constructors": 0}, made
    # Two recursion levels a construction, as type.__call__ then the __init__ frame take: the
    # same depth and message as the interpreter's.
    def deepest():
        try:
            Chain(100000)
        except RecursionError as e:
            return str(e), len(traceback.extract_tb(e.__traceback__))
    interpreted = deepest()
    ferrojit.compile(Chain.__init__)
    # (Site-cache feedback would retire the code after 200 entries, and the interpreter would
    # then meet the limit.)
    ferrojit.enable(threshold=1000, disable="site-cache-feedback," + machine)
    try:
        before = ferrojit.stats()["direct_constructions"]
        Chain(50)
        assert ferrojit.stats()["direct_constructions"] - before == 50  # all but the outermost
        compiled = deepest()
        assert ferrojit.is_compiled(Chain.__init__)
    finally:
        ferrojit.disable()
        ferrojit.enable(disable="")
        ferrojit.disable()
    assert compiled == interpreted


def scaled(v, factor):
    return v * factor + v / factor - factor


def test_generic_float_arithmetic_with_ints_computes_in_doubles():
    # Compiled before it ran, its BINARY_OPs are generic: + - * / call the numeric helper, which
    # takes float-with-int operands itself (the interpreter's float slots after conversion).
    for isa in ("x86_64", "aarch64"):
        hir = ferrojit.inspect(scaled, isa=isa)["hir"]
        assert hir.count("fj_binary_op_numeric") == 4 and "fj_binary_op(" not in hir, hir
    ferrojit.enable(threshold=1000, disable="mixed-float-arith")
    try:
        for isa in ("x86_64", "aarch64"):
            hir = ferrojit.inspect(scaled, isa=isa)["hir"]
            assert "fj_binary_op_numeric" not in hir and hir.count("fj_binary_op(") == 4, hir
    finally:
        ferrojit.disable()
        ferrojit.enable(disable="")
        ferrojit.disable()
    cases = [(1.5, 2), (3, 0.5), (2.0, -4.0), (-0.0, 1), (7, 2), (1 << 40, 0.5), (1.0, 1 << 31)]
    expected = [scaled(v, f) for v, f in cases]
    ferrojit.compile(scaled)
    ferrojit.enable(threshold=1000)
    try:
        assert ferrojit.is_compiled(scaled)
        got = [scaled(v, f) for v, f in cases]
        with pytest.raises(ZeroDivisionError, match="float division by zero"):
            scaled(2.5, 0)
    finally:
        ferrojit.disable()
    assert [repr(g) for g in got] == [repr(e) for e in expected]


def float_poly(x, y):
    return x * y + x - y


def test_specialised_float_arithmetic_runs_in_machine_code():
    for _ in range(30):  # quickened: BINARY_OP_{MULTIPLY,ADD,SUBTRACT}_FLOAT
        float_poly(1.5, 2.5)
    instructions = {"x86_64": ("mulsd", "addsd", "subsd"), "aarch64": ("fmul", "fadd", "fsub")}
    for isa, mnemonics in instructions.items():
        code = ferrojit.inspect(float_poly, isa=isa)
        assert code["hir"].count("FloatArith") == 3 and "fj_float_binary" not in code["hir"]
        asm = code["asm"]
        assert all(asm.count(m + " ") == 1 for m in mnemonics), asm
    ferrojit.enable(threshold=1000, disable="inline-float-arith")
    try:
        for isa, mnemonics in instructions.items():
            code = ferrojit.inspect(float_poly, isa=isa)
            assert "FloatArith" not in code["hir"] and code["hir"].count("fj_float_binary") == 3
            assert not any(m + " " in code["asm"] for m in mnemonics)
    finally:
        ferrojit.disable()
        ferrojit.enable(disable="")
        ferrojit.disable()
    cases = [(1.5, 2.5), (0.1, 0.2), (-0.0, 0.0), (1e308, 10.0), (float("inf"), 1.0)]
    expected = [repr(float_poly(x, y)) for x, y in cases]
    ferrojit.compile(float_poly)
    ferrojit.enable(threshold=1000)
    try:
        assert ferrojit.is_compiled(float_poly)
        got = [repr(float_poly(x, y)) for x, y in cases]
        shared = 2.0
        assert float_poly(shared, shared) == 4.0 and shared == 2.0
    finally:
        ferrojit.disable()
    assert got == expected


def float_norm(x, y, z, s):
    d = x * x + y * y + z * z
    return s * d


def float_rebound(x, n):
    a = x * x
    x = n
    return a + x * x


def float_merged(x, flag):
    if flag:
        y = x * 2.0
    else:
        y = 1.5
    return x * y


def test_a_type_already_proved_is_not_checked_again():
    for _ in range(30):  # quickened: BINARY_OP_{MULTIPLY,ADD}_FLOAT
        float_norm(1.0, 2.0, 3.0, 0.5)
        float_rebound(1.5, 2.5)
        float_merged(1.5, True)
        float_merged(1.5, False)
    shapes = _shapes(float_norm, "guard-elimination")
    for isa in ("x86_64", "aarch64"):
        on, off = shapes["on", isa], shapes["off", isa]
        # Off: both operands of each of the six operations. On: each argument once; the second
        # read of the same local, the products and sums (floats by construction) and `d` (a
        # local that holds a sum) are known.
        assert off["hir"].count("GuardType") == 12, off["hir"]
        assert on["hir"].count("GuardType") == 4, on["hir"]
        assert on["instructions"] < off["instructions"], (on["instructions"], off["instructions"])
    for isa in ("x86_64", "aarch64"):
        # A store of an argument of unknown type into x: x is checked again after it.
        hir = ferrojit.inspect(float_rebound, isa=isa)["hir"]
        assert hir.count("GuardType") == 2, hir
        # x is checked on one path to the merge only: checked again after it.
        hir = ferrojit.inspect(float_merged, isa=isa)["hir"]
        assert hir.count("GuardType") == 2, hir
    cases = [
        (float_norm, (1.0, 2.0, 3.0, 0.5)),
        (float_norm, (1.0, 2, 3.0, 0.5)),
        (float_rebound, (1.5, 2.5)),
        (float_rebound, (1.5, 3)),
        (float_rebound, (1.5, "no")),
        (float_merged, (2.5, True)),
        (float_merged, (3, False)),
        (float_merged, ([1], False)),
    ]

    def outcomes():
        got = []
        for fn, args in cases:
            try:
                got.append(repr(fn(*args)))
            except TypeError as e:
                got.append("TypeError: %s" % e)
        return got

    expected = outcomes()
    before = ferrojit.stats()["guards_removed"]
    for fn in (float_norm, float_rebound, float_merged):
        ferrojit.compile(fn)
    # float_rebound: x's second read twice, `a` and the product; float_merged: y's type (a
    # float on both paths) and its "unbound local" check (stored on both paths).
    assert ferrojit.stats()["guards_removed"] - before == 8 + 4 + 2
    ferrojit.enable(threshold=1000)
    try:
        assert all(ferrojit.is_compiled(fn) for fn, _ in cases)
        got = outcomes()
    finally:
        ferrojit.disable()
    assert got == expected, (got, expected)


def bound_on_both_paths(flag, n):
    if flag:
        v = n + 1
    else:
        v = n - 1
    while n > 0:
        n = n - 1
        v = v + n
    return v


def deleted_on_one_path(flag, delete):
    if flag:
        v = 1
    else:
        v = 2
    if delete:
        del v
    return v


def test_a_local_stored_on_every_path_is_read_without_an_unbound_check():
    for _ in range(30):
        bound_on_both_paths(True, 3)
        bound_on_both_paths(False, 3)
        deleted_on_one_path(True, False)
    shapes = _shapes(bound_on_both_paths, "guard-elimination")
    for isa in ("x86_64", "aarch64"):
        on, off = shapes["on", isa]["hir"], shapes["off", isa]["hir"]
        # Off: v's first reads in the loop and at the return check it (the builder knows
        # stores within a block only); on: v is stored on both paths into the merge and again
        # in the loop.
        assert off.count("GuardNotNull") == 2, off
        assert on.count("GuardNotNull") == 0, on
        # `del v` needs no check (v is stored on both paths); after the merge where one path
        # deleted it, the return's read keeps its check.
        hir = ferrojit.inspect(deleted_on_one_path, isa=isa)["hir"]
        assert hir.count("GuardNotNull") == 1 and 'deopt @11 [] "unbound local"' in hir, hir
    expected = [bound_on_both_paths(True, 4), bound_on_both_paths(False, 0)]
    ferrojit.compile(bound_on_both_paths)
    ferrojit.compile(deleted_on_one_path)
    ferrojit.enable(threshold=1000)
    try:
        assert ferrojit.is_compiled(bound_on_both_paths) and ferrojit.is_compiled(deleted_on_one_path)
        got = [bound_on_both_paths(True, 4), bound_on_both_paths(False, 0)]
        assert deleted_on_one_path(False, False) == 2
        with pytest.raises(UnboundLocalError) as raised:
            deleted_on_one_path(True, True)
        assert raised.traceback[-1].lineno + 1 == deleted_on_one_path.__code__.co_firstlineno + 7
    finally:
        ferrojit.disable()
    assert got == expected


# six_comparisons with a code object of its own, quickened for floats.
float_order = types.FunctionType(six_comparisons.__code__.replace(co_name="float_order"), globals(), "float_order")


def test_float_comparisons_run_in_machine_code():
    for _ in range(30):  # quickened: COMPARE_OP_FLOAT_JUMP six times
        float_order(1.5, 2.5)
        float_order(2.5, 1.5)
    shapes = _shapes(float_order, "inline-float-compare")
    mnemonics = {"x86_64": ("cmpltsd", "cmplesd", "cmpeqsd", "cmpneqsd"), "aarch64": ("fcmp",)}
    for isa in ("x86_64", "aarch64"):
        on, off = shapes["on", isa], shapes["off", isa]
        assert on["hir"].count("CompareFloats") == 6 and "fj_compare_floats" not in on["hir"], on["hir"]
        assert off["hir"].count("fj_compare_floats") == 6 and "CompareFloats" not in off["hir"]
        assert all(m in on["asm"] for m in mnemonics[isa]), on["asm"]
        assert not any(m in off["asm"] for m in mnemonics[isa])
        # Six helper calls fewer (each clobbers the caller-saved registers).
        assert on["lir"].count("call ") == off["lir"].count("call ") - 6, (on["lir"], off["lir"])
    nan, inf = float("nan"), float("inf")
    cases = [(1.5, 2.5), (2.5, 1.5), (2.0, 2.0), (-0.0, 0.0), (nan, 1.0), (1.0, nan), (nan, nan),
             (inf, inf), (-inf, -1e308), (1e-320, 0.0), (3, 2.0), (2.0, True)]
    expected = [float_order(x, y) for x, y in cases]
    ferrojit.compile(float_order)
    ferrojit.enable(threshold=1000)
    try:
        assert ferrojit.is_compiled(float_order)
        got = [float_order(x, y) for x, y in cases]
    finally:
        ferrojit.disable()
    assert got == expected, (got, expected)


def test_unpacking_a_tuple_or_list_of_the_right_length_reads_its_items_in_machine_code():
    for _ in range(30):  # quickened: UNPACK_SEQUENCE_TWO_TUPLE and UNPACK_SEQUENCE_LIST
        unpack_two((1, 2))
        unpack_three([1, 2, 3])
    for isa in ("x86_64", "aarch64"):
        two = ferrojit.inspect(unpack_two, isa=isa)["hir"]
        three = ferrojit.inspect(unpack_three, isa=isa)["hir"]
        # Both kinds inline whichever the interpreter saw (the one it saw tested first): the
        # type, a list's item array, the size, then the items.
        for hir, first, n in ((two, "tuple", 2), (three, "list", 3)):
            assert hir.count("LoadWord") == 3 + n, hir
            tuple_at, list_at = hir.find("Const <type tuple>"), hir.find("Const <type list>")
            assert tuple_at >= 0 and list_at >= 0, hir
            assert (tuple_at < list_at) == (first == "tuple"), hir
    ferrojit.enable(threshold=1000, disable="inline-unpack")
    try:
        for isa in ("x86_64", "aarch64"):
            hir = ferrojit.inspect(unpack_two, isa=isa)["hir"]
            assert "LoadWord" not in hir and "fj_unpack_sequence" in hir, hir
    finally:
        ferrojit.disable()
        ferrojit.enable(disable="")
        ferrojit.disable()
    ferrojit.compile(unpack_two)
    ferrojit.compile(unpack_three)
    # Right and wrong lengths, the other kind of sequence, a subclass, iterators and strs: the
    # helper takes whatever the inline read does not, with the interpreter's errors.
    two_cases = lambda: [(1, 2), [3, 4], TupleKind((5, 6)), iter((7, 8)), (1,), (1, 2, 3), "xy"]
    three_cases = lambda: [[1, 2, 3], (4, 5, 6), [1, 2], "abc", range(3), iter([1, 2, 3, 4])]
    expected = outcomes(unpack_two, two_cases()), outcomes(unpack_three, three_cases())
    ferrojit.enable(threshold=1000)
    try:
        assert ferrojit.is_compiled(unpack_two) and ferrojit.is_compiled(unpack_three)
        got = outcomes(unpack_two, two_cases()), outcomes(unpack_three, three_cases())
        assert got == expected
        assert got[0][:4] == [12, 34, 56, 78] and got[1][2] == "not enough values to unpack (expected 3, got 2)"
    finally:
        ferrojit.disable()
        ferrojit.enable(disable="")
        ferrojit.disable()


class Spot:
    def __init__(self, x):
        self.x = x


def get_x(p):
    return p.x


def get_x_too(p):
    return p.x


def test_site_caches_become_feedback_for_attribute_loads_the_interpreter_left_generic():
    # Compiled before it ever ran: the LOAD_ATTR is unspecialised and takes the site cache.
    for isa in ("x86_64", "aarch64"):
        hir = ferrojit.inspect(get_x, isa=isa)["hir"]
        assert "fj_getattr_cached" in hir and "InstanceValues" not in hir
    ferrojit.compile(get_x)
    ferrojit.compile(get_x_too)
    spots = [Spot(i) for i in range(10)]
    ferrojit.enable(threshold=1000)
    try:
        assert sum(get_x(spots[i % 10]) for i in range(300)) == 1350
        # After 200 entries the site cache's one type became feedback: the code was retired and
        # compiles again on the next call past the threshold (here: on request).
        assert not ferrojit.is_compiled(get_x)
        before = ferrojit.stats()["recompilations"]
        ferrojit.compile(get_x)
        assert ferrojit.stats()["recompilations"] - before == 1
        for isa in ("x86_64", "aarch64"):  # now an inline slot read
            assert "InstanceValues" in ferrojit.inspect(get_x, isa=isa)["hir"]
        assert get_x(spots[3]) == 3
        assert get_x(type("Other", (), {"x": "class attribute"})()) == "class attribute"
        ferrojit.enable(threshold=1000, disable="site-cache-feedback")
        assert sum(get_x_too(spots[i % 10]) for i in range(300)) == 1350
        assert ferrojit.is_compiled(get_x_too)
        assert "InstanceValues" not in ferrojit.inspect(get_x_too)["hir"]
    finally:
        ferrojit.disable()
        ferrojit.enable(disable="")
        ferrojit.disable()


class Shape:
    def __init__(self, i):
        self.side = i


class Square(Shape):
    pass


class Circle(Shape):
    pass


class Tall(Shape):
    def __init__(self, i):
        self.height = 2  # `side` comes second in this class's shared keys
        super().__init__(i)


def side_of(shape):
    return shape.side


def side_of_too(shape):
    return shape.side


def test_an_attribute_load_that_sees_several_types_reads_each_inline():
    shapes = [cls(i) for i in range(30) for cls in (Shape, Square, Circle, Tall)]
    total = sum(s.side for s in shapes)
    for fn, knob in ((side_of, ""), (side_of_too, "poly-attrs")):
        ferrojit.compile(fn)  # before it ran: the site is generic
        ferrojit.enable(threshold=1000, disable=knob)
        try:
            assert sum(fn(shapes[i % 120]) for i in range(300)) == sum(
                shapes[i % 120].side for i in range(300)
            )
            # On, the feedback retired the code for a recompilation; off, nothing was learnt.
            assert ferrojit.is_compiled(fn) == bool(knob)
            ferrojit.compile(fn)
            for isa in ("x86_64", "aarch64"):
                hir = ferrojit.inspect(fn, isa=isa)["hir"]
                # On: one check per type, then a read per place the attribute sits (index 0
                # for three classes, 1 for Tall). Off: the site's four types leave it generic
                # (the single-type feedback does not apply).
                assert hir.count("HasTypeVersion") == (4 if not knob else 0), (knob, isa, hir)
                assert hir.count("LoadWord") == (2 if not knob else 0), (knob, isa, hir)
            assert sum(fn(s) for s in shapes) == total
            # What the chain does not cover still reads right: a fourth type, a class
            # attribute, a materialised `__dict__`, a deleted attribute, a changed class.
            assert fn(type("Other", (Shape,), {})(5)) == 5
            assert fn(type("Plain", (), {"side": "class"})()) == "class"
            odd = Square(7)
            odd.__dict__["extra"] = 1
            assert fn(odd) == 7
            gone = Circle(8)
            del gone.side
            with pytest.raises(AttributeError, match="side"):
                fn(gone)
            circle = Circle(9)
            Circle.side = property(lambda self: "property")  # a data descriptor wins
            try:
                assert fn(circle) == "property" and fn(Square(9)) == 9
            finally:
                del Circle.side
            assert fn(circle) == 9
        finally:
            ferrojit.disable()
    ferrojit.enable(disable="")
    ferrojit.disable()


class Job:
    def __init__(self, i):
        self.i = i

    def weight(self):
        return self.i


class Light(Job):
    pass


class Heavy(Job):
    def weight(self):
        return 10 * self.i


class Packed:  # no instance dict: the type check alone proves nothing shadows the method
    __slots__ = ("i",)

    def __init__(self, i):
        self.i = i

    def weight(self):
        return -self.i


def weigh(job):
    return job.weight()


def weigh_too(job):
    return job.weight()


def test_a_method_load_that_sees_several_types_finds_each_inline():
    jobs = [cls(i) for i in range(30) for cls in (Job, Light, Heavy, Packed)]
    expected = [j.weight() for j in jobs]
    for fn, knob in ((weigh, ""), (weigh_too, "poly-methods")):
        for _ in range(50):  # the interpreter specialises the site for Job (with values)
            fn(jobs[0])
        ferrojit.compile(fn)
        ferrojit.enable(threshold=1000, disable=knob)
        try:
            assert [fn(jobs[i % 120]) for i in range(300)] == [expected[i % 120] for i in range(300)]
            ferrojit.compile(fn)
            for isa in ("x86_64", "aarch64"):
                hir = ferrojit.inspect(fn, isa=isa)["hir"]
                # On: every type inline, each with one check that it does not shadow the
                # method (the keys version where the interpreter specialised the site, the
                # keys' entry count where the cache learnt the type), but Packed, which has no
                # instance dict. Off: only the type the interpreter specialised for.
                assert hir.count("HasTypeVersion") == (4 if not knob else 1), (knob, isa, hir)
                assert hir.count("SharedKeysAre") == (3 if not knob else 0), (knob, isa, hir)
                assert ("SharedKeysAre v2 version ==" in hir) == (not knob), (knob, isa, hir)
                assert "fj_load_method_cached" in hir
            hits = ferrojit.stats()["method_cache_hits"]
            assert [fn(j) for j in jobs] == expected
            # On, no type takes the cached helper; off, those but the interpreter's do (the
            # first run's shadowing attribute keeps Heavy out of the second run's cache).
            assert (ferrojit.stats()["method_cache_hits"] > hits) == bool(knob)
            # What the chain does not cover still finds the right thing: a fifth type, a
            # materialised `__dict__` and one that shadows the method, an attribute that
            # shadows it in the shared keys, a changed class.
            assert fn(type("Other", (Light,), {})(5)) == 5
            roomy = Light(7)
            roomy.__dict__
            assert fn(roomy) == 7
            roomy.__dict__["weight"] = lambda: "own dict"
            assert fn(roomy) == "own dict"
            shadow = Heavy(3)
            shadow.weight = lambda: "own attribute"
            assert fn(shadow) == "own attribute" and fn(Heavy(4)) == 40
            Light.weight = lambda self: "changed"
            try:
                assert fn(Light(1)) == "changed" and fn(Job(2)) == 2
            finally:
                del Light.weight
            assert [fn(j) for j in jobs] == expected
        finally:
            ferrojit.disable()
    ferrojit.enable(disable="")
    ferrojit.disable()


class Part:
    def __init__(self, i):
        self.i = i

    def mass(self):
        return self.i


class Bolt(Part):
    pass


class Nut(Part):
    def mass(self):
        return 2 * self.i


def total_mass(parts):
    t = 0
    for p in parts:
        t += p.mass()
    return t


def total_mass_too(parts):
    t = 0
    for p in parts:
        t += p.mass()
    return t


def test_a_long_loop_whose_site_cache_keeps_serving_gets_its_feedback():
    # One call runs the loop 1,200 times, far from the 200 entries after which a function's
    # site caches are read: the cache that served 1,000 loads asks for it at the return.
    parts = [cls(i) for i in range(400) for cls in (Part, Bolt, Nut)]
    expected = sum(p.mass() for p in parts)
    for fn, knob in ((total_mass, ""), (total_mass_too, "hot-site-feedback")):
        ferrojit.compile(fn)  # before it ran: the method site is generic, served by its cache
        ferrojit.enable(threshold=1000, disable=knob)
        try:
            assert fn(parts) == expected
            # On, the feedback retired the code for a recompilation; off, nothing was read.
            assert ferrojit.is_compiled(fn) == bool(knob)
            ferrojit.compile(fn)
            for isa in ("x86_64", "aarch64"):
                hir = ferrojit.inspect(fn, isa=isa)["hir"]
                assert hir.count("HasTypeVersion") == (3 if not knob else 0), (knob, isa, hir)
            assert fn(parts) == expected
        finally:
            ferrojit.disable()
    ferrojit.enable(disable="")
    ferrojit.disable()


class Dot:
    def __init__(self, i):
        self.x = i
        self.y = 0


class BigDot(Dot):
    pass


class FlipDot(Dot):
    def __init__(self, i):
        self.y = 1  # `x` comes second in this class's shared keys
        self.x = i


def move(dot, v):
    dot.x = v


def move_too(dot, v):
    dot.x = v


def test_an_attribute_store_that_sees_several_types_stores_each_inline():
    dots = [cls(i) for i in range(30) for cls in (Dot, BigDot, FlipDot)]
    for fn, knob in ((move, ""), (move_too, "poly-stores")):
        ferrojit.compile(fn)  # before it ran: the site is generic
        ferrojit.enable(threshold=1000, disable=knob)
        try:
            for i in range(300):
                fn(dots[i % 90], i)
            assert [d.x for d in dots] == [k + (270 if k < 30 else 180) for k in range(90)]
            # On, the feedback retired the code for a recompilation; off, nothing was learnt.
            assert ferrojit.is_compiled(fn) == bool(knob)
            ferrojit.compile(fn)
            for isa in ("x86_64", "aarch64"):
                hir = ferrojit.inspect(fn, isa=isa)["hir"]
                # On: one check per type, then a store per place the attribute sits (index 0
                # for two classes, 1 for FlipDot). Off: the generic store alone.
                assert hir.count("HasTypeVersion") == (3 if not knob else 0), (knob, isa, hir)
                assert hir.count("StoreWord") == (2 if not knob else 0), (knob, isa, hir)
                assert ("fj_setattr_cached" in hir) == (not knob), (knob, isa, hir)
            for i, d in enumerate(dots):
                fn(d, -i)
            assert [d.x for d in dots] == [-i for i in range(90)]
            assert [list(vars(d)) for d in dots[:3]] == [["x", "y"], ["x", "y"], ["y", "x"]]
            # What the chain does not cover still stores right: an emptied slot (filled again
            # at the end of the insertion order), a materialised `__dict__`, a fourth type, a
            # property added to the class afterwards, a `__setattr__`.
            emptied = FlipDot(5)
            del emptied.x
            fn(emptied, 6)
            assert vars(emptied) == {"y": 1, "x": 6} and list(vars(emptied)) == ["y", "x"]
            gone = Dot(1)
            del gone.x
            fn(gone, 2)
            assert list(vars(gone)) == ["y", "x"] and gone.x == 2
            roomy = BigDot(7)
            roomy.__dict__["extra"] = 1
            fn(roomy, 8)
            assert roomy.__dict__ == {"x": 8, "y": 0, "extra": 1}
            other = type("Other", (Dot,), {})(9)
            fn(other, 10)
            assert other.x == 10
            seen = []
            BigDot.x = property(lambda self: "property", lambda self, v: seen.append(v))
            try:
                fn(BigDot(1), 11)
                assert seen == [1, 11]  # `__init__`'s store, then this one
            finally:
                del BigDot.x
            FlipDot.__setattr__ = lambda self, k, v: object.__setattr__(self, k, v * 2)
            try:
                flip = FlipDot(1)
                fn(flip, 12)
                assert flip.x == 24
            finally:
                del FlipDot.__setattr__
            fn(dots[2], 13)
            assert dots[2].x == 13
        finally:
            ferrojit.disable()
    ferrojit.enable(disable="")
    ferrojit.disable()


class Roomy:
    def __init__(self, i):
        self.i = i
        self.__dict__  # materialised: LOAD_METHOD can only check this instance's own dict

    def value(self):
        return self.i


def call_value(o):
    return o.value()


def call_value_too(o):
    return o.value()


def test_method_cache_serves_instances_with_their_own_dict():
    # Compiled before it ran: the LOAD_METHOD is generic and goes through its site cache.
    for isa in ("x86_64", "aarch64"):
        assert "fj_load_method_cached" in ferrojit.inspect(call_value, isa=isa)["hir"]
    objs = [Roomy(i) for i in range(50)]
    original = Roomy.value
    ferrojit.compile(call_value)
    ferrojit.compile(call_value_too)
    ferrojit.enable(threshold=1000, disable="site-cache-feedback")
    try:
        before = ferrojit.stats()["method_cache_hits"]
        assert sum(call_value(o) for o in objs) == 1225
        assert ferrojit.stats()["method_cache_hits"] - before == 49  # the first one fills it
        objs[7].value = lambda: "shadowed"  # the instance's dict now shadows the method
        assert call_value(objs[7]) == "shadowed" and call_value(objs[8]) == 8
        Roomy.value = lambda self: -self.i  # the type changed: its version fails the entry
        assert call_value(objs[9]) == -9
        ferrojit.enable(threshold=1000, disable="method-cache-dicts,site-cache-feedback")
        before = ferrojit.stats()["method_cache_hits"]
        assert sum(call_value_too(o) for o in objs if o is not objs[7]) == -1218
        assert ferrojit.stats()["method_cache_hits"] == before
    finally:
        Roomy.value = original
        ferrojit.disable()
        ferrojit.enable(disable="")
        ferrojit.disable()


def test_bad_optimisation_names_are_clear_errors():
    with pytest.raises(ValueError, match="unknown optimisation 'nope'|unknown optimisation \"nope\""):
        ferrojit.enable(disable="nope")
    assert not ferrojit.is_enabled()
    r = run_jit(PROGRAMS / "arith_and_branches.py", extra=["--disable", "compile-time-globals,bogus"])
    assert r.returncode == 2
    assert "unknown optimisation" in r.stderr and "compile-time-globals" in r.stderr
    env = clean_env(FERROJIT="1", FERROJIT_DISABLE="x")
    r = subprocess.run([sys.executable, "-c", "print('hi')"], capture_output=True, text=True, env=env)
    assert r.returncode == 2
    assert "FERROJIT_DISABLE" in r.stderr and "known: compile-time-globals" in r.stderr
    assert "inline-dict-attrs" in r.stderr and "direct-call-defaults" in r.stderr


def walk(node):
    total = 1
    for child in node:
        total += walk(child)
    return total


def flat(xs):
    total = 0
    for x in xs:
        total += x
    return total


def test_loop_threshold_waits_for_a_function_its_loop_did_not_quicken():
    # walk() calls itself before its loop turns: on its second call the interpreter has not
    # quickened it (no feedback yet), so it waits for the call threshold. flat()'s loop
    # quickens it during its first call, so it compiles on its second.
    tree = [[[]], [[], []]]  # 6 calls of walk, 5 back-edges
    ferrojit.enable(threshold=20, loop_threshold=1, disable="osr")  # the call-count policy alone
    try:
        assert walk(tree) == 6 and flat(range(50)) == 1225
        assert flat(range(3)) == 3
        assert ferrojit.is_compiled(flat)
        assert not ferrojit.is_compiled(walk)
        for _ in range(4):
            walk(tree)
        assert ferrojit.is_compiled(walk)
        assert walk([tree, tree]) == 13
    finally:
        ferrojit.disable()
        ferrojit.enable(disable="")
        ferrojit.disable()


def test_perf_map_names_compiled_functions():
    code = "import os\ndef hot(x):\n    return x + 1\nhot(1)\nprint(os.getpid())\n"
    env = clean_env(FERROJIT="1", FERROJIT_THRESHOLD="0", FERROJIT_PERF_MAP="1")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    path = "/tmp/perf-%s.map" % r.stdout.strip()
    try:
        lines = open(path).read().splitlines()
    finally:
        os.remove(path)
    hot = [line.split() for line in lines if line.endswith("py::<string>:hot")]
    assert len(hot) == 1, lines
    start, size = int(hot[0][0], 16), int(hot[0][1], 16)
    assert start > 0 and 16 < size < 4096


def countdown(n):
    while n > 0:
        yield n
        n -= 1
    return "liftoff"


def test_generators_resume_in_compiled_code():
    for isa in ("x86_64", "aarch64"):
        r = ferrojit.inspect(countdown, isa=isa)
        hir = r["hir"]
        # Entered only to resume: one test of where the frame was suspended (after
        # RETURN_GENERATOR or at the yield), each resume taking the frame's stack.
        assert hir.count("SuspendedAt @") == 1 and hir.count("TakeFrameStack") == 2, hir
        assert hir.count("Yield ") == 1 and "keeps []" in hir
        assert r["code_bytes"] > 0
    ferrojit.compile(countdown)
    ferrojit.enable(threshold=1000)
    try:
        before = ferrojit.stats()["native_calls"]
        g = countdown(3)
        assert next(g) == 3 and g.gi_frame.f_locals == {"n": 3}
        assert list(g) == [2, 1]
        # Four resumes (three yields and the return) ran native code; the call that made the
        # generator ran in the interpreter.
        assert ferrojit.stats()["native_calls"] - before == 4
        with pytest.raises(StopIteration) as stop:
            next(countdown(0))
        assert stop.value.value == "liftoff"
    finally:
        ferrojit.disable()


def classify(subject):
    match subject:
        case {"x": x, **rest}:
            return ("mapping", x, len(rest))
        case [a, *rest]:
            return ("sequence", a, len(rest))
        case complex(real=r) if r:
            return ("complex", r)
        case int(n):
            return ("int", n)
        case _:
            return None


def test_pattern_matching_compiles_on_both_isas_and_matches_as_the_interpreter_does():
    subjects = [{"x": 1, "y": 2}, {"y": 1}, [1, 2, 3], (4,), 2j + 1, 5, True, "s", None]
    expected = [classify(s) for s in subjects]
    for isa in ("x86_64", "aarch64"):
        helpers = ferrojit.inspect(classify, isa=isa)["hir"]
        for name in ("fj_match_keys", "fj_match_class", "fj_match_kind", "fj_get_len"):
            assert name in helpers, (isa, name)
    ferrojit.compile(classify)
    assert ferrojit.is_compiled(classify)
    ferrojit.enable(threshold=1000)
    try:
        assert [classify(s) for s in subjects] == expected
    finally:
        ferrojit.disable()


def sum_range(start, stop, step):
    total = 0
    for i in range(start, stop, step):
        total += i
    return total


def test_for_over_a_range_steps_the_iterator_in_machine_code():
    # The range arm reads index, len, start and step and calls only PyLong_FromLongLong to box
    # the item; fj_for_iter stays for the loop's end and other iterators. Off: no range arm.
    boxing = {}
    for isa in ("x86_64", "aarch64"):
        on = ferrojit.inspect(sum_range, isa=isa)
        boxing[isa] = on["lir"].count("PyLong_FromLongLong(")
        assert "SeqIterNext" in on["hir"] and on["lir"].count("fj_for_iter(") == 1, on["lir"]
    ferrojit.enable(threshold=1000, disable="inline-range-iter")
    try:
        for isa in ("x86_64", "aarch64"):
            off = ferrojit.inspect(sum_range, isa=isa)
            assert off["lir"].count("PyLong_FromLongLong(") == boxing[isa] - 1, off["lir"]
            assert "SeqIterNext" in off["hir"], isa
    finally:
        ferrojit.disable()
        ferrojit.enable(disable="")
        ferrojit.disable()
    big = 2**62
    cases = [
        (0, 10, 1), (10, 0, -3), (5, 5, 1), (-7, 300, 7), (big - 20, big, 3),
        (-big, -big + 10, 2), (2**63 + 3, 2**63 + 11, 2), (0, 1000, 1),
    ]
    expected = [sum(range(*c)) for c in cases]
    ferrojit.compile(sum_range)
    assert ferrojit.is_compiled(sum_range)
    ferrojit.enable(threshold=1000)
    try:
        assert [sum_range(*c) for c in cases] == expected
    finally:
        ferrojit.disable()


def test_a_range_loop_fails_to_box_an_item_as_the_interpreter_does(tmp_path):
    # One allocation fails (the i-th after set_nomemory; the loop body allocates nothing, so
    # most of them are the range's items): the loop stops with MemoryError at the same item as
    # in the interpreter, and the iterator has stepped past it, as rangeiter_next leaves it.
    code = (
        "import _testcapi\n"
        "def f(it):\n"
        "    for i in it:\n"
        "        pass\n"
        "for _ in range(3): f(range(1000, 1100))\n"
        "it = iter(range(1000, 100000))\n"
        "_testcapi.set_nomemory(%d, %d)\n"
        "try:\n"
        "    f(it)\n"
        "except MemoryError:\n"
        "    _testcapi.remove_mem_hooks()\n"
        "    print('MemoryError', next(it))\n"
        "else:\n"
        "    _testcapi.remove_mem_hooks()\n"
        "    print('done', next(it, None))\n"
    )
    for i in (0, 1, 2, 5, 40):
        runs = []
        for env in (clean_env(), clean_env(FERROJIT="1", FERROJIT_THRESHOLD="0")):
            r = subprocess.run(
                [sys.executable, "-c", code % (i, i + 1)], capture_output=True, env=env
            )
            runs.append((r.returncode, r.stdout))
        assert runs[0] == runs[1], (i, runs)
        assert runs[0][0] == 0 and runs[0][1].startswith(b"MemoryError"), (i, runs)


def test_statistics_survive_an_exhausted_allocator(tmp_path):
    # CPython's test_exceptions.test_memory_error_in_PyErr_PrintEx with the JIT and statistics
    # on: with Python's allocator failing from the i-th allocation on, the program must still
    # end with its MemoryError (exit 1 or 120), never abort, and the statistics line is written.
    code = "import _testcapi\nclass C: pass\n_testcapi.set_nomemory(0, %d)\nC()\n"
    stats = tmp_path / "s.jsonl"
    env = clean_env(FERROJIT="1", FERROJIT_THRESHOLD="0", FERROJIT_STATS=str(stats))
    for i in range(1, 20):
        r = subprocess.run([sys.executable, "-c", code % i], capture_output=True, env=env)
        assert r.returncode in (1, 120), (i, r.returncode, r.stderr[-2000:])
        assert b"MemoryError" in r.stderr, (i, r.stderr[-2000:])
    assert len(read_stats(stats)) == 19


async def awaited_fib(n):
    if n <= 1:
        return n
    return await awaited_fib(n - 1) + await awaited_fib(n - 2)


def drive(coro):
    """Runs a coroutine that never suspends, as pyperformance's coroutines does."""
    try:
        while True:
            coro.send(None)
    except StopIteration as stop:
        return stop.value


def test_await_makes_and_resumes_compiled_coroutines_directly():
    # Two awaits: each gets its awaitable and sends into it in machine code's helpers.
    for isa in ("x86_64", "aarch64"):
        hir = ferrojit.inspect(awaited_fib, isa=isa)["hir"]
        assert hir.count("fj_get_awaitable(") == 2 and hir.count("fj_send(") == 2, hir
    expected = drive(awaited_fib(12))
    # awaited_fib(12) runs 465 coroutines: 464 are awaited, made by a call from compiled
    # code and resumed by its SEND; the knobs switch each direct path off on its own.
    # (osr off everywhere here: the drivers' loops would be watched, and compiled code exits at
    # its eval-breaker checks meanwhile.)
    for disabled, made, resumed in [
        ("osr", 464, 464),
        ("osr,direct-generator-calls", 0, 464),
        ("osr,direct-resume", 464, 0),
    ]:
        ferrojit.enable(threshold=1000, disable=disabled)
        try:
            ferrojit.compile(awaited_fib)
            before = ferrojit.stats()
            assert drive(awaited_fib(12)) == expected == 144
            after = ferrojit.stats()
            assert after["direct_generators"] - before["direct_generators"] == made, disabled
            assert after["direct_resumes"] - before["direct_resumes"] == resumed, disabled
        finally:
            ferrojit.disable()
            ferrojit.enable(disable="")
            ferrojit.disable()
    ferrojit.enable(threshold=1000, disable="compile-send")
    try:
        with pytest.raises(RuntimeError, match="opcode GET_AWAITABLE"):
            ferrojit.inspect(awaited_fib)
    finally:
        ferrojit.disable()
        ferrojit.enable(disable="")
        ferrojit.disable()


class Ticks:
    """An async iterator and an async context manager whose methods are coroutines."""

    def __init__(self, n):
        self.n = n
        self.log = []

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self.n == 0:
            raise StopAsyncIteration
        self.n -= 1
        return self.n

    async def __aenter__(self):
        self.log.append("enter")
        return self

    async def __aexit__(self, *exc):
        self.log.append("exit")
        return False


async def ticks_total(n):
    total = 0
    async with Ticks(n) as ticks:
        async for i in ticks:
            total += i
            if i == 0:
                # Out by `break`: a loop that ends on StopAsyncIteration leaves through its
                # handler, and the code after it would be the interpreter's.
                break
    return total, ticks.log


def test_async_with_and_async_for_compile_in_coroutines():
    # The normal paths in machine code: the context manager's methods and each item's
    # awaitable through helpers, every await a SEND (__aenter__, __anext__, __aexit__); the
    # block's exceptional exit is a handler, which the interpreter runs.
    for isa in ("x86_64", "aarch64"):
        hir = ferrojit.inspect(ticks_total, isa=isa)["hir"]
        for helper, n in [
            ("fj_before_async_with(", 1),
            ("fj_get_aiter(", 1),
            ("fj_get_anext(", 1),
            ("fj_get_awaitable(", 2),
            ("fj_send(", 3),
        ]:
            assert hir.count(helper) == n, (isa, helper, hir)
    ferrojit.enable(threshold=1000, disable="osr")
    try:
        for f in (ticks_total, Ticks.__aenter__, Ticks.__anext__, Ticks.__aexit__):
            ferrojit.compile(f)
        before = ferrojit.stats()
        assert drive(ticks_total(5)) == (10, ["enter", "exit"])
        after = ferrojit.stats()
        # Resumed directly: __aenter__, five __anext__ (4 down to 0, then break), __aexit__.
        assert after["direct_resumes"] - before["direct_resumes"] == 7
    finally:
        ferrojit.disable()
        ferrojit.enable(disable="")
        ferrojit.disable()
    ferrojit.enable(threshold=1000, disable="compile-send")
    try:
        with pytest.raises(RuntimeError, match="opcode BEFORE_ASYNC_WITH"):
            ferrojit.inspect(ticks_total)
    finally:
        ferrojit.disable()
        ferrojit.enable(disable="")
        ferrojit.disable()


async def async_squares(n):
    for i in range(n):
        yield i * i


def drain(agen):
    """The values of an async generator whose body never awaits, by hand."""
    out = []
    while True:
        try:
            agen.asend(None).send(None)
        except StopIteration as stop:
            out.append(stop.value)
        except StopAsyncIteration:
            return out


def test_async_generators_compile_and_wrap_each_yield():
    for isa in ("x86_64", "aarch64"):
        hir = ferrojit.inspect(async_squares, isa=isa)["hir"]
        assert hir.count("fj_async_gen_wrap(") == 1, hir
    ferrojit.enable(threshold=1000, disable="osr")
    try:
        ferrojit.compile(async_squares)
        before = ferrojit.stats()["native_calls"]
        assert drain(async_squares(4)) == [0, 1, 4, 9]
        # Every resume (four yields, then the end) ran the compiled code.
        assert ferrojit.stats()["native_calls"] - before == 5
    finally:
        ferrojit.disable()
        ferrojit.enable(disable="")
        ferrojit.disable()


@types.coroutine
def legacy_delegates(coro):
    return (yield from coro)


def test_types_coroutine_generators_compile_and_delegate_to_coroutines():
    # `yield from` a coroutine is allowed in a types.coroutine generator: its helper is told so.
    for isa in ("x86_64", "aarch64"):
        hir = ferrojit.inspect(legacy_delegates, isa=isa)["hir"]
        assert re.search(r"(v\d+):Cint = CInt 1\n.*fj_get_yield_from_iter\(v\d+, \1\)", hir), hir
    ferrojit.enable(threshold=1000)
    try:
        ferrojit.compile(legacy_delegates)
        assert drive(legacy_delegates(awaited_fib(10))) == 55
    finally:
        ferrojit.disable()


class Squares:
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        for i in range(self.n):
            yield i * i


def total_of(iterable):
    total = 0
    for v in iterable:
        total += v
    return total


def test_for_loops_make_and_resume_compiled_generators_directly():
    for isa in ("x86_64", "aarch64"):
        hir = ferrojit.inspect(total_of, isa=isa)["hir"]
        assert "fj_get_iter(" in hir and "fj_for_iter(" in hir, hir
    expected = [sum(i * i for i in range(n)) for n in range(10)]
    # Ten loops over Squares(n): iter() calls the compiled __iter__ directly, which makes the
    # generator; each loop resumes it n + 1 times (n squares, then its return).
    # (osr off: the list comprehension's loop would be watched, see above.)
    for disabled, made, resumed in [
        ("osr", 10, 55),
        ("osr,direct-iter-calls", 0, 55),
        ("osr,direct-resume", 10, 0),
    ]:
        ferrojit.enable(threshold=1000, disable=disabled)
        try:
            ferrojit.compile(total_of)
            ferrojit.compile(Squares.__iter__)
            before = ferrojit.stats()
            assert [total_of(Squares(n)) for n in range(10)] == expected
            after = ferrojit.stats()
            assert after["direct_generators"] - before["direct_generators"] == made, disabled
            assert after["direct_resumes"] - before["direct_resumes"] == resumed, disabled
        finally:
            ferrojit.disable()
            ferrojit.enable(disable="")
            ferrojit.disable()


def count_up(n):
    total = 0
    for i in range(n):
        total += i
    while n > 0:
        n -= 7
    return total, n


def test_a_function_compiled_for_osr_has_an_entry_at_each_loop_header():
    # Two loops: two back edges, each with an entry block that dispatches on prev_instr and
    # reads the header's stack from the frame (the for loop's iterator; nothing for the while).
    edges = [i.offset // 2 for i in dis.get_instructions(count_up) if i.opname.startswith(("JUMP_BACKWARD", "POP_JUMP_BACKWARD"))]
    assert len(edges) == 2, edges
    for isa in ("x86_64", "aarch64"):
        plain = ferrojit.inspect(count_up, isa=isa)["hir"]
        hir = ferrojit.inspect(count_up, isa=isa, loop_entries=True)["hir"]
        assert "SuspendedAt" not in plain and "ReadStack" not in plain, plain
        assert sorted(int(m) for m in re.findall(r"SuspendedAt @(\d+)", hir)) == sorted(edges), hir
        assert hir.count("ReadStack @0") == 1 and hir.count("TakeFrameStack") == 2, hir


def test_a_loop_in_a_function_called_once_moves_to_compiled_code(tmp_path):
    # main() is called once: its loops run compiled only if the frame moves at a back edge.
    script = tmp_path / "once.py"
    script.write_text(
        "def main(n):\n"
        "    total = 0\n"
        "    for i in range(n):\n"
        "        total += i % 7\n"
        "    return total\n"
        "print(main(200000))\n"
    )
    expected = str(sum(i % 7 for i in range(200000)))
    seen = {}
    for knobs in ([], ["--disable", "osr"]):
        stats = tmp_path / ("s%d.jsonl" % len(knobs))
        r = run_jit(script, threshold=1000, stats=stats, extra=knobs, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == expected
        s = read_stats(stats)[0]
        seen[bool(knobs)] = (s["osr_entries"], any(c.endswith("once.py:main") for c in s["compiled"]))
    assert seen[False][0] >= 1 and seen[False][1], seen
    assert seen[True] == (0, False), seen


def test_the_lab_config_that_ab_tests_each_knob_lists_every_knob():
    # lab/examples/knobs-ab.toml compares ferrojit with each knob off against all on: a knob
    # added to the JIT must be added there too.
    import tomllib

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab", "examples", "knobs-ab.toml")
    with open(path, "rb") as f:
        config = tomllib.load(f)
    swept = config["runtimes"]["ferrojit"]["knobs"]["FERROJIT_DISABLE"]
    assert swept[0] == "" and sorted(swept[1:]) == sorted(ferrojit.OPTIMISATIONS), swept
    compared = [c["baseline"]["knobs"]["FERROJIT_DISABLE"] for c in config["compare"]]
    assert sorted(compared) == sorted(ferrojit.OPTIMISATIONS)
    assert all(c["candidate"]["knobs"]["FERROJIT_DISABLE"] == "" for c in config["compare"])


_COUNTED_LOOP = """
import json, ferrojit
def f(n):
    t = 0
    for i in range(n):
        t += i
    return t
f(3); f(3)
raw = [ferrojit._ferrojit.stats_json()]
for n in (60, 120, 180):  # below 257: every i is a cached small int
    f(n)
    raw.append(ferrojit._ferrojit.stats_json())
print(json.dumps({"executed": [json.loads(s)["instructions_executed"] for s in raw],
                  "compiled": ferrojit.is_compiled(f), "result": f(10)}))
"""


def test_generated_code_counts_the_instructions_it_runs_when_asked():
    """FERROJIT_COUNT_INSTRUCTIONS=1 (or `run --count-instructions`, or
    `enable(count_instructions=True)`): the statistics' count of
    instructions run in generated code grows by the same amount for each further 60
    iterations of a compiled loop; without it the count is null."""
    for how in ("env", "cli", "api"):
        if how == "env":
            env = clean_env(FERROJIT="1", FERROJIT_THRESHOLD="0", FERROJIT_COUNT_INSTRUCTIONS="1")
            argv = [sys.executable, "-c", _COUNTED_LOOP]
        elif how == "api":
            env = clean_env()
            code = "import ferrojit\nferrojit.enable(threshold=0, count_instructions=True)\n" + _COUNTED_LOOP
            argv = [sys.executable, "-c", code]
        else:
            env = clean_env()
            argv = [sys.executable, "-m", "ferrojit", "run", "--threshold", "0", "--count-instructions", "-c", _COUNTED_LOOP]
        r = subprocess.run(argv, capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["compiled"] and out["result"] == 45
        a, b, c, d = out["executed"]
        assert 0 < a < b < c < d, out
        assert (c - b) - (b - a) == (d - c) - (c - b) > 0, (how, out)
    env = clean_env(FERROJIT="1", FERROJIT_THRESHOLD="0")
    r = subprocess.run([sys.executable, "-c", _COUNTED_LOOP], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["executed"] == [None] * 4


_VICTIM = """
import json, ferrojit
def victim(n):
    return n * 2 + 1
def bystander(n):
    return n - 1
total = sum(victim(i) + bystander(i) for i in range(200))
stats = ferrojit.stats()
print(json.dumps({"total": total, "refused": stats["refused_functions"], "compiled": stats["compiled"]}))
"""


def test_a_panic_in_the_compiler_refuses_the_function_and_the_program_runs_on():
    # FERROJIT_PANIC_IN_COMPILER makes the compiler panic on one function (fault injection).
    # The panic does not reach CPython (which would abort the process): the function is
    # refused with the panic's message, stays with the interpreter, and nothing is printed.
    env = clean_env(FERROJIT="1", FERROJIT_THRESHOLD="10", FERROJIT_PANIC_IN_COMPILER="victim")
    r = subprocess.run([sys.executable, "-c", _VICTIM], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr
    out = json.loads(r.stdout)
    assert out["total"] == sum(i * 2 + 1 + i - 1 for i in range(200))
    [(where, reason)] = [(w, why) for w, why in out["refused"].items() if w.endswith(":victim")]
    assert reason.startswith("the compiler panicked: fault injected by FERROJIT_PANIC_IN_COMPILER=victim at "), reason
    assert any(w.endswith(":bystander") for w in out["compiled"]), out["compiled"]
    assert not any(w.endswith(":victim") for w in out["compiled"]), out["compiled"]


class Stepper:
    def __init__(self):
        self.n = 0

    def step(self, k):
        self.n += k
        return self.n

    def check(self, k):
        if k == 7:
            raise ValueError(f"bad {k}")
        return k

    def add(self, a, b):
        return a + b

    def peek(self, v):
        return sys._getframe(), locals()

    def down(self, n):
        return 0 if n == 0 else 1 + self.down(n - 1)


def steps(s, n):
    total = 0
    for i in range(n):
        total += s.step(i)
    return total


def checks(s, n):
    total = 0
    for i in range(n):
        total += s.check(i)
    return total


def adds(s, pairs):
    sums = []
    for a, b in pairs:
        sums.append(s.add(a, b))
    return sums


def peeks(s, v):
    return s.peek(v)


def _machine_code_calls():
    return ferrojit.stats()["machine_code_calls"]


def triple(x):
    return 3 * x


def triples(n):
    t = 0
    for i in range(n):
        t += triple(i)
    return t


class Doubler:
    def __init__(self):
        self.y = 2

    def step(self, k):
        return self.y * k


def mixed_steps(objs):
    total = 0
    for i, o in enumerate(objs):
        total += o.step(i)
    return total


def test_a_method_call_of_several_types_picks_its_callee_in_machine_code():
    # Stepper.step and Doubler.step from one site: the site cache learns both types, the
    # function is compiled again with both cases inline, and the call picks the callee by code.
    objs = [Stepper(), Doubler()] * 5
    expected = mixed_steps([Stepper(), Doubler()] * 5)
    ferrojit.enable(threshold=20)
    try:
        for _ in range(400):
            mixed_steps(objs)
        hir = ferrojit.inspect(mixed_steps)["hir"]
        assert "CallCompiled method Stepper.step|Doubler.step(" in hir or \
            "CallCompiled method Doubler.step|Stepper.step(" in hir, hir
        for o in objs:
            o.n = 0
        before = _machine_code_calls()
        got = mixed_steps(objs)
        assert _machine_code_calls() - before == 10
    finally:
        ferrojit.disable()
    assert got == mixed_steps([Stepper(), Doubler()] * 5) == expected


def test_calls_of_a_global_function_run_in_machine_code():
    global triple
    for _ in range(30):
        triples(3)
    shapes = _shapes(triples, "calls-in-machine-code")
    for isa in ("x86_64", "aarch64"):
        on, off = shapes["on", isa], shapes["off", isa]
        assert "CallCompiled function triple(" in on["hir"] and "fj_call(" not in on["hir"], on["hir"]
        assert "CallHelper fj_call(" in off["hir"] and "CallCompiled" not in off["hir"], off["hir"]
        assert "call native code at %" in on["lir"] and "native code" not in off["lir"]
    ferrojit.compile(triples)
    ferrojit.compile(triple)
    original = triple
    ferrojit.enable(threshold=1000)
    try:
        before = _machine_code_calls()
        assert triples(40) == 3 * sum(range(40))
        assert _machine_code_calls() - before == 40
        # The global rebound to another function (the dict's keys unchanged): its code is not
        # the one compiled against, so the runtime's path calls it.
        triple = lambda x: -x  # noqa: E731
        assert triples(5) == -10 and _machine_code_calls() - before == 40
    finally:
        triple = original
        ferrojit.disable()


def test_method_calls_of_compiled_functions_run_in_machine_code():
    s = Stepper()
    for _ in range(30):  # quickened: LOAD_METHOD_WITH_VALUES
        steps(s, 3)
    shapes = _shapes(steps, "calls-in-machine-code")
    for isa in ("x86_64", "aarch64"):
        on, off = shapes["on", isa], shapes["off", isa]
        assert "CallCompiled method Stepper.step(" in on["hir"] and "fj_call(" not in on["hir"], on["hir"]
        assert "CallHelper fj_call(" in off["hir"] and "CallCompiled" not in off["hir"], off["hir"]
        # The callee's native code is read from its code's state when the call runs, and
        # entered through a register (the runtime's helpers keep to `call`/`bl` with their
        # address, or through x17 where they are out of reach); fj_call stays as the slow path.
        assert "call native code at %" in on["lir"] and "call fj_call(" in on["lir"], on["lir"]
        assert "native code" not in off["lir"]
    expected = steps(Stepper(), 50)
    # The caller compiled before its callee: the call finds the callee's native code later.
    ferrojit.compile(steps)
    ferrojit.compile(Stepper.step)
    ferrojit.enable(threshold=1000)
    try:
        before, refs = _machine_code_calls(), sys.getrefcount(Stepper.step)
        code_refs = sys.getrefcount(Stepper.step.__code__)
        got = steps(Stepper(), 50)
        assert _machine_code_calls() - before == 50
        assert (sys.getrefcount(Stepper.step), sys.getrefcount(Stepper.step.__code__)) == (refs, code_refs)
    finally:
        ferrojit.disable()
    assert got == expected


def test_a_call_made_in_machine_code_raises_deopts_and_shows_its_frames_as_the_interpreter_does():
    def outcome(fn, *args):
        try:
            return fn(*args)
        except ValueError as e:
            frames = traceback.extract_tb(e.__traceback__)[1:]
            return str(e), [(f.name, f.lineno, f.line) for f in frames]
    pairs = [(1, 2), (3, 4), (1.5, 2), ("a", "b"), ([1], [2]), (2**70, 1), (5, 6)]
    s = Stepper()
    for _ in range(30):
        checks(s, 5)
        adds(s, pairs[:2])
        peeks(s, 1)
    interpreted = (outcome(checks, s, 10), outcome(checks, s, 7), adds(s, pairs))
    for f in (checks, adds, peeks, Stepper.check, Stepper.add, Stepper.peek):
        ferrojit.compile(f)
    ferrojit.enable(threshold=1000)
    try:
        before = _machine_code_calls()
        compiled = (outcome(checks, s, 10), outcome(checks, s, 7), adds(s, pairs))
        # 8 calls raise at the last; 7 return; 7 adds, of which 4 leave Stepper.add's int guard.
        assert _machine_code_calls() - before == 8 + 7 + 7
        # A frame object and f_locals outlive the callee's frame: the general clear gives the
        # frame object its data and its f_back link.
        frame, f_locals = peeks(s, "v")
        assert _machine_code_calls() - before == 8 + 7 + 7 + 1
    finally:
        ferrojit.disable()
    assert compiled == interpreted
    assert interpreted[0][0] == "bad 7" and [n for n, _, _ in interpreted[0][1]] == ["checks", "check"]
    assert f_locals == {"self": s, "v": "v"}
    assert frame.f_code is Stepper.peek.__code__ and frame.f_back.f_code is peeks.__code__
    assert frame.f_locals["v"] == "v" and frame.f_lineno == Stepper.peek.__code__.co_firstlineno + 1


def test_calls_in_machine_code_leave_tracing_recursion_and_a_replaced_code_to_the_runtime():
    s = Stepper()
    for _ in range(30):
        steps(s, 3)
        s.down(3)
    def deepest():
        try:
            s.down(100000)
        except RecursionError as e:
            return str(e), len(traceback.extract_tb(e.__traceback__))
    def profiled():
        events = []
        sys.setprofile(lambda frame, event, arg: events.append((frame.f_code.co_name, event)))
        try:
            total = steps(s, 4)
        finally:
            sys.setprofile(None)
        return total, [e for e in events if e[0] in ("steps", "step")]
    s.n = 0
    interpreted = (deepest(), profiled(), s.down(50))
    ferrojit.compile(steps)
    ferrojit.compile(Stepper.step)
    ferrojit.compile(Stepper.down)
    ferrojit.enable(threshold=1000, disable="site-cache-feedback")
    try:
        s.n = 0
        before = _machine_code_calls()
        compiled = (deepest(), profiled(), s.down(50))
        assert ferrojit.is_compiled(Stepper.down)
        # down's calls of itself; none while profiling (the runtime's path sees the hook).
        assert _machine_code_calls() - before > 50
        with_profile = _machine_code_calls()
        profiled()
        assert _machine_code_calls() == with_profile
        # Another code object under the method: its function no longer runs the compiled code.
        original = Stepper.step.__code__
        Stepper.step.__code__ = (lambda self, k: -k).__code__
        try:
            assert steps(s, 4) == -6 and _machine_code_calls() == with_profile
        finally:
            Stepper.step.__code__ = original
    finally:
        ferrojit.disable()
        ferrojit.enable(disable="")
        ferrojit.disable()
    assert compiled == interpreted


class Finder:
    def find(self, update=False):
        return 10 if update else 20

    def three(self, a, b=10, c=20):
        return a + 2 * b + 3 * c


def scaled_by(x, by=5):
    return x * by


def bound_calls(f, n):
    total = 0
    for i in range(n):
        total += f.find(update=True) + f.find() + f.three(i) + f.three(i, c=4)
        total += f.three(b=3, a=i) + scaled_by(i) + scaled_by(i, by=2) + scaled_by(by=3, x=i)
    return total


def test_calls_with_keywords_and_defaults_run_in_machine_code():
    for _ in range(30):  # quickened: LOAD_METHOD_WITH_VALUES
        bound_calls(Finder(), 3)
    shapes = _shapes(bound_calls, "machine-code-call-binding")
    for isa in ("x86_64", "aarch64"):
        on, off = shapes["on", isa], shapes["off", isa]
        # Each parameter from a passed word (a0 is self) or a default (d0 the first).
        for shape in ("method Finder.find(", "method Finder.find[a0 d0](", "method Finder.three[a0 a1 d0 d1](",
                      "method Finder.three[a0 a1 d0 a2](", "method Finder.three[a0 a2 a1 d1](",
                      "function scaled_by[a0 d0](", "function scaled_by(", "function scaled_by[a1 a0]("):
            assert "CallCompiled " + shape in on["hir"], (shape, on["hir"])
        assert "fj_call(" not in on["hir"], on["hir"]
        assert off["hir"].count("CallHelper fj_call(") == 8 and "CallCompiled" not in off["hir"], off["hir"]
    expected = bound_calls(Finder(), 40)
    for f in (bound_calls, Finder.find, Finder.three, scaled_by):
        ferrojit.compile(f)
    ferrojit.enable(threshold=1000)
    try:
        defaults = Finder.three.__defaults__
        refs = [sys.getrefcount(x) for x in (defaults, *defaults, Finder.three)]
        before = _machine_code_calls()
        got = bound_calls(Finder(), 40)
        assert _machine_code_calls() - before == 8 * 40
        assert [sys.getrefcount(x) for x in (defaults, *defaults, Finder.three)] == refs
    finally:
        ferrojit.disable()
    assert got == expected


def posonly(a, b=2, /):
    return a - b


def binding_errors(f, case):
    if case == 0:
        return f.three(1, a=2)  # a given twice
    if case == 1:
        return f.three(1, d=2)  # no such parameter
    if case == 2:
        return posonly(1, b=3)  # positional-only by name
    if case == 3:
        return f.three()  # a missing
    if case == 4:
        return f.three(1, 2, 3, 4)  # too many
    return f.three(5) + posonly(9)


def test_calls_binding_keywords_and_defaults_fail_and_follow_new_defaults_as_the_interpreter_does():
    def outcomes():
        out = []
        for case in range(6):
            try:
                out.append(binding_errors(Finder(), case))
            except TypeError as e:
                out.append(str(e))
        for defaults in ((100, 200), (7,), None, (1, 2, 3)):
            Finder.three.__defaults__ = defaults
            try:
                out.append(bound_calls(Finder(), 3))
            except TypeError as e:
                out.append(str(e))
        Finder.three.__defaults__ = (10, 20)
        return out

    expected = outcomes()
    assert sum(isinstance(o, str) for o in expected) == 7, expected
    for _ in range(30):
        bound_calls(Finder(), 3)
        binding_errors(Finder(), 5)
    for f in (bound_calls, binding_errors, Finder.find, Finder.three, scaled_by, posonly):
        ferrojit.compile(f)
    assert "CallCompiled function posonly[a0 d0](" in ferrojit.inspect(binding_errors)["hir"]
    ferrojit.enable(threshold=1000)
    try:
        # The first call of `outcomes` arms OSR, whose pending calls keep the eval breaker set:
        # compiled code called meanwhile exits to the interpreter at its entry.
        first = outcomes()
        before = _machine_code_calls()
        got = outcomes()
        # The calls of bound_calls with the defaults' count unchanged ((100, 200), (1, 2, 3)
        # has three where two were compiled in) and the good case of binding_errors.
        assert _machine_code_calls() - before >= 8 * 3 + 2
        assert first == got
    finally:
        ferrojit.disable()
        Finder.three.__defaults__ = (10, 20)
    assert got == expected


class Walker:
    def __init__(self, i):
        self.pos = i

    def step(self, k):
        return self.pos + k


def own_dict_walker(i):
    w = Walker(i)
    # The values become a dict of the instance's own, with a key the type's shared keys lack.
    w.__dict__["extra%d" % (i % 3)] = i
    return w


def walk_all(walkers):
    total = 0
    for w in walkers:
        total += w.step(1)
    return total


def test_a_method_of_instances_with_a_dict_of_their_own_is_found_inline_and_called_in_machine_code():
    walkers = [own_dict_walker(i) for i in range(10)]
    expected = walk_all(walkers)
    ferrojit.compile(walk_all)
    ferrojit.enable(threshold=1000)
    try:
        # The site cache's hits ask for feedback: walk_all is compiled again with the case inline.
        for _ in range(300):
            assert walk_all(walkers) == expected
    finally:
        ferrojit.disable()
    shapes = _shapes(walk_all, "own-dict-methods")
    for isa in ("x86_64", "aarch64"):
        on, off = shapes["on", isa], shapes["off", isa]
        assert "fj_own_dict_lacks(" in on["hir"] and "CallCompiled method Walker.step(" in on["hir"], on["hir"]
        assert "call fj_own_dict_lacks(" in on["lir"], on["lir"]
        assert "fj_own_dict_lacks" not in off["hir"] and "CallCompiled" not in off["hir"], off["hir"]
        assert "CallHelper fj_load_method_cached(" in off["hir"] and "CallHelper fj_call(" in off["hir"]
    ferrojit.enable(threshold=1000)
    original = Walker.step
    try:
        before = _machine_code_calls()
        assert walk_all(walkers) == expected
        assert _machine_code_calls() - before == 10
        # An attribute of the instance's own shadows the method; a new method on the class
        # changes the type's version: both go the generic way.
        walkers[3].step = lambda k: -k
        assert walk_all(walkers) == expected - (3 + 1) - 1
        del walkers[3].step
        Walker.step = lambda self, k: 2 * k
        assert walk_all(walkers) == 20
    finally:
        Walker.step = original
        ferrojit.disable()
    assert walk_all(walkers) == expected


class Point3:
    def __init__(self, x, y=12345, z=3):
        self.x = x
        self.y = y
        self.z = z


class ReturnsFive:
    def __init__(self):
        return 5


class RaisesInInit:
    def __init__(self, a):
        raise ValueError(a)


class Nested:
    def __init__(self, depth):
        self.inner = Nested(depth - 1) if depth else None


def make_points(n):
    total = 0
    for i in range(n):
        p = Point3(i, z=i)
        total += p.x + p.y + p.z
    return total


def construction_outcomes(depth):
    out = []
    for make in (lambda: ReturnsFive(), lambda: RaisesInInit(3), lambda: Nested(depth)):
        try:
            out.append(type(make()).__name__)
        except (TypeError, ValueError, RecursionError) as e:
            out.append((type(e).__name__, str(e), len(traceback.extract_tb(e.__traceback__))))
    return out


def test_calls_of_a_class_make_the_instance_and_call_init_in_machine_code():
    for _ in range(30):
        make_points(3)
    shapes = _shapes(make_points, "constructors-in-machine-code")
    for isa in ("x86_64", "aarch64"):
        on, off = shapes["on", isa], shapes["off", isa]
        assert "CallCompiled class Point3 -> Point3.__init__[a0 a1 d0 a2](" in on["hir"], on["hir"]
        assert "fj_call(" not in on["hir"]
        assert "call fj_new_instance(" in on["lir"] and "call native code at %" in on["lir"], on["lir"]
        assert "CallHelper fj_call(" in off["hir"] and "CallCompiled" not in off["hir"], off["hir"]
    expected = make_points(40)
    ferrojit.compile(make_points)
    ferrojit.compile(Point3.__init__)
    ferrojit.enable(threshold=1000)
    try:
        refs = sys.getrefcount(Point3), sys.getrefcount(Point3.__init__), sys.getrefcount(Point3.__init__.__defaults__[0])
        before = _machine_code_calls()
        assert make_points(40) == expected
        assert _machine_code_calls() - before == 40
        assert (sys.getrefcount(Point3), sys.getrefcount(Point3.__init__), sys.getrefcount(Point3.__init__.__defaults__[0])) == refs
    finally:
        ferrojit.disable()


def test_a_class_call_made_in_machine_code_fails_recurses_and_changes_as_the_interpreter_does():
    # The depth reaches the recursion limit: the RecursionError comes at the same depth, with
    # as many traceback entries, as in the interpreter.
    depth = sys.getrecursionlimit() + 10
    expected = construction_outcomes(depth)
    assert [o[0] for o in expected] == ["TypeError", "ValueError", "RecursionError"], expected
    for _ in range(30):
        construction_outcomes(5)
        make_points(3)
    functions = [construction_outcomes, make_points, ReturnsFive.__init__, RaisesInInit.__init__, Nested.__init__,
                 Point3.__init__]
    for f in functions:
        ferrojit.compile(f)
    assert "CallCompiled class Nested -> Nested.__init__(" in ferrojit.inspect(Nested.__init__)["hir"]
    original, original_code = Point3.__init__, Point3.__init__.__code__
    ferrojit.enable(threshold=1000)
    try:
        construction_outcomes(5)  # arms OSR for its loop once (see the binding test)
        before = _machine_code_calls()
        assert construction_outcomes(depth) == expected
        assert _machine_code_calls() - before > 100
        # A new __init__ changes the class's version; a new __code__ is another code: both go
        # the runtime's way.
        Point3.__init__ = lambda self, x, y=0, z=0: setattr(self, "x", -x) or setattr(self, "y", y) or setattr(self, "z", z)
        assert make_points(3) == -3 + 3
        Point3.__init__ = original
        Point3.__init__.__code__ = (lambda self, x, y=0, z=0: setattr(self, "x", x) or setattr(self, "y", 7) or setattr(self, "z", 0)).__code__
        assert make_points(3) == 3 + 21
    finally:
        Point3.__init__.__code__ = original_code
        Point3.__init__ = original
        ferrojit.disable()


def test_a_callee_code_that_dies_leaves_the_other_calls_in_machine_code():
    import gc
    import weakref

    ns = {}
    exec("def doomed(x):\n    return x + 1\n\n"
         "def calls_doomed(n):\n    t = 0\n    for i in range(n):\n        t += doomed(i)\n    return t\n", ns)
    for _ in range(30):
        triples(3)
        ns["calls_doomed"](3)
    for f in (ns["doomed"], ns["calls_doomed"], triple, triples):
        ferrojit.compile(f)
    doomed_code = weakref.ref(ns["doomed"].__code__)
    ferrojit.enable(threshold=1000)
    try:
        before = _machine_code_calls()
        assert ns["calls_doomed"](10) == 55 and _machine_code_calls() - before == 10
        ns.clear()
        gc.collect()
        assert doomed_code() is None  # a code object named as a callee died
        # Its callers' cell says so; callers of other code are not touched.
        before = _machine_code_calls()
        assert triples(10) == 135 and _machine_code_calls() - before == 10
    finally:
        ferrojit.disable()


class Victim:
    def __init__(self, x, y=12346):
        self.x = x
        self.y = y


def make_victims(n):
    ys = []
    for i in range(n):
        ys.append(Victim(i).y)
    return ys


class Saboteur:
    def __del__(self):
        # Runs in a collection that an allocation starts: the class's `__init__` (whose only
        # owner is the class) is replaced while a class call made in machine code makes its
        # instance.
        Victim.__init__ = lambda self, x, y=-1: setattr(self, "y", y)


def test_a_class_call_whose_init_is_replaced_while_the_instance_is_made_keeps_what_it_uses_alive():
    import gc

    for _ in range(30):
        make_victims(3)
    ferrojit.compile(make_victims)
    ferrojit.compile(Victim.__init__)
    assert "CallCompiled class Victim -> Victim.__init__" in ferrojit.inspect(make_victims)["hir"]
    original, threshold = Victim.__init__, gc.get_threshold()
    ferrojit.enable(threshold=1000)
    try:
        gc.collect()
        saboteur = Saboteur()
        saboteur.cycle = saboteur
        del saboteur
        gc.set_threshold(1)  # the next tracked allocation collects the saboteur
        got = make_victims(20)
    finally:
        gc.set_threshold(*threshold)
        Victim.__init__ = original
        ferrojit.disable()
    assert Victim.__init__ is original
    # Calls before the collection use the old __init__, calls after it the new one.
    assert set(got) <= {12346, -1} and got[-1] == -1, got
