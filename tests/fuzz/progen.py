"""Random Python programs for ferrojit's differential fuzzer.

`generate(seed)` returns the source of a deterministic Python 3.11 program, built only from
`random.Random(seed)` (the same seed always gives the same text). The program is a random
composition of small building blocks, each defining module-level functions, classes and globals
and one or more test functions `t_<n>(i)` returning a value built from ints, floats, strs,
lists, tuples and dicts only:

- "mix" functions: random statement sequences (nested for/while loops over ranges, lists and
  tuples, if/elif/else, break/continue, try/except/else/finally) over int locals (values beyond
  one 30-bit digit, negatives; + - * // % << >> & | ^ ~, comparisons, chained comparisons),
  floats and mixed int/float arithmetic, strs (concatenation, indexing, slicing, %-formatting,
  f-strings, methods), lists/tuples/dicts (subscripts, stores, deletes, slices, starred and
  swapping unpacking), comprehensions (list/dict/set-of-ints/generator expressions), and calls
  of the program's helpers, globals and objects;
- classes with instance attributes, `__slots__`, properties, and a subclass overriding (and
  `super()`-calling) a method;
- calls with defaults, keyword-only parameters, *args and **kwargs, and wrong calls (TypeError);
- closures (nonlocal counters, default-argument capture, late binding);
- generators (yield, yield from with a return value, send, throw, close with finally);
- `with` on a logging context manager class that sometimes suppresses the exception;
- try/except/else/finally raising and catching ZeroDivisionError, IndexError, KeyError,
  TypeError, AttributeError and custom exception classes, `raise ... from ...`;
- recursion: bounded, and unbounded until RecursionError (the recursion limit is 200; main()
  runs in a thread of its own, so that the depth reached, printed, does not depend on the
  frames of `-m ferrojit run`'s launcher below the program);
- `async def` coroutines with chains of `await` (and an awaitable class that yields),
  driven by hand with `.send()`.

`main()` first calls every test function WARM (20-40) times, printing each result, so that a
small JIT threshold has compiled them after CPython quickened them; then, in one to three
rounds, it rebinds what compiled code may have specialised on (a global int becomes a float or
a str, a global function is replaced, `len`/`abs` are shadowed by module globals and later
unshadowed, class attributes and methods are replaced, instance attributes change type or are
deleted, an instance's `__class__` changes) and calls everything again (3-12 times, or 100-130
times so that failing speculations reach ferrojit's deopt limit and get recompiled without them).
Every top-level call is wrapped: an exception prints its type name, its message and the
(function, line) of each frame of its traceback, and the program goes on. The output has no addresses, ids, times or
hash-order dependence (sets hold only ints), and a program runs in well under a second.
"""

import random

BIG_INTS = [
    2**30 - 1, 2**30, 2**30 + 1, 2**31 + 7, -(2**30) - 3, -(2**31), 2**32 - 1, 10**12 + 39,
    -(10**15) - 1, 2**62 + 5, -(2**63), 123456789012345678901, 2**64 + 1,
]
SMALL_INTS = [0, 1, 2, 3, 5, 7, 9, 13, 31, 100, 255, -1, -2, -3, -7, -100]
FLOATS = ["0.5", "-1.25", "3.0", "2.5", "0.1", "-0.75", "1e10", "1e-3", "2.5e-7", "1234.5678", "-0.0"]
MODS = ["1000003", "(2**61 - 1)", "(10**9 + 7)", "(2**35)", "(2**31 - 1)", "99991"]
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"]
EXC_TYPES = ["ZeroDivisionError", "IndexError", "KeyError", "TypeError", "AttributeError", "ValueError"]

PRELUDE = '''\
import sys
import threading
import traceback

sys.setrecursionlimit(200)


def _run(label, fn, *args):
    try:
        result = fn(*args)
    except Exception as e:
        frames = [(f.name, f.lineno) for f in traceback.extract_tb(e.__traceback__)]
        if isinstance(e, RecursionError):
            frames = frames[:3] + ["... %d frames" % (len(frames) - 5)] + frames[-2:]
        print(label, "raised", type(e).__name__, repr(str(e)), frames)
    else:
        print(label, repr(result))


def _probe(n):
    try:
        return _probe(n + 1)
    except RecursionError:
        return n


def _fake_len(obj):
    return 3


def _fake_abs(obj):
    return "abs(%r)" % (obj,)


def _drive(coro):
    """Runs a coroutine by hand: what each send got back, and the coroutine's value."""
    got = []
    value = None
    try:
        while True:
            got.append(coro.send(value))
            value = len(got) * 10
    except StopIteration as e:
        return got, e.value


BASE_DEPTH = 0
'''


class _Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)
        self.counter = 0
        self.chunks = []  # module-level source, in order
        self.tests = []  # names of the test functions t_<n>(i)
        self.rebinds = []  # (kind, [lines of a rebinding function body, with its globals])
        self.int_globals = []  # names of module-level ints the code reads
        self.helpers = []  # names of module-level functions of two ints
        self.int_leaves = []  # extra int-valued expressions (attributes, method calls)
        self.hook_stmts = []  # extra statements mix functions may use
        self.dirty = set()  # names of the function being generated that may hold strs or lists

    # ---------------------------------------------------------------- helpers
    def fresh(self):
        self.counter += 1
        return self.counter

    def chance(self, p):
        return self.r.random() < p

    def pick(self, seq):
        return self.r.choice(seq)

    def const_int(self):
        if self.chance(0.35):
            return repr(self.pick(BIG_INTS)).join("()") if self.chance(0.5) else repr(self.pick(BIG_INTS))
        v = self.pick(SMALL_INTS)
        return "(%d)" % v if v < 0 else str(v)

    def const_float(self):
        f = self.pick(FLOATS)
        return "(%s)" % f if f.startswith("-") else f

    def int_expr(self, names, depth=2, dirty=(), pure=False):
        """An int expression over the int variables in names (may raise for rebound globals)."""
        return self.int_expr_t(names, depth, dirty, pure)[0]

    def int_expr_t(self, names, depth=2, dirty=(), pure=False):
        """(expression, whether it may be a str or list). What may be a sequence never gets
        multiplied (by a possibly huge int): the names in dirty, the globals and attributes a
        rebinding may turn into strs or lists, calls of helpers a rebinding may replace, and
        abs() (a rebinding may shadow it). Pure expressions use only names and constants."""
        dirty = set(dirty) | self.dirty
        if depth <= 0 or self.chance(0.3):
            roll = self.r.random()
            if roll < 0.55 and names:
                name = self.pick(names)
                return name, name in dirty
            if roll < 0.65 and self.int_globals and not pure:
                return self.pick(self.int_globals), True
            if roll < 0.7 and self.int_leaves and not pure:
                return self.pick(self.int_leaves), True
            return self.const_int(), False
        a, ta = self.int_expr_t(names, depth - 1, dirty, pure)
        b, tb = self.int_expr_t(names, depth - 1, dirty, pure)
        roll = self.r.random()
        if roll < 0.45:
            op = self.pick(["+", "-", "*", "+", "-"])
            if op == "*" and (ta or tb):
                op = "+"  # str * int could need gigabytes
            return "(%s %s %s)" % (a, op, b), ta or tb
        # with a str, list or None (no '%' in any str): TypeError or a number
        if roll < 0.55:
            return "(%s %s (%s or 7))" % (a, self.pick(["//", "%"]), b), False
        if roll < 0.63:
            return "(%s << (%s & %d))" % (a, b, self.pick([3, 7, 15, 31])), False
        if roll < 0.7:
            return "(%s >> (%s & %d))" % (a, b, self.pick([3, 15, 31, 63])), False
        if roll < 0.82:
            return "(%s %s %s)" % (a, self.pick(["&", "|", "^"]), b), False
        if roll < 0.88:
            return "(%s%s)" % (self.pick(["-", "~", "+"]), a), False
        if roll < 0.93 and not pure:
            return "abs(%s)" % a, True
        if roll < 0.97 and self.helpers and not pure:
            return "%s(%s, %s)" % (self.pick(self.helpers), a, b), True
        return "(%s if %s else %s)" % (a, self.bool_expr(names, 0), b), ta or tb

    def float_expr(self, names, depth=2):
        if depth <= 0 or self.chance(0.3):
            roll = self.r.random()
            if roll < 0.4:
                return "x"
            clean = [n for n in names if n not in self.dirty]
            if roll < 0.6 and clean:
                return self.pick(clean)
            if roll < 0.7:
                return "float(%s)" % self.int_expr(names, 0)
            return self.const_float()
        a = self.float_expr(names, depth - 1)
        b = self.float_expr(names, depth - 1)
        roll = self.r.random()
        if roll < 0.55:
            return "(%s %s %s)" % (a, self.pick(["+", "-", "*"]), b)
        if roll < 0.7:
            return "(%s / (%s or 0.5))" % (a, b)
        if roll < 0.78:
            return "(%s %s (%s or 1.5))" % (a, self.pick(["//", "%"]), b)
        if roll < 0.86:
            return "round(%s, %d)" % (a, self.r.randint(0, 4))
        return "(-%s)" % a

    def bool_expr(self, names, depth=1):
        roll = self.r.random()
        if depth > 0 and roll < 0.15:
            return "(%s %s %s)" % (self.bool_expr(names, depth - 1), self.pick(["and", "or"]),
                                   self.bool_expr(names, depth - 1))
        if depth > 0 and roll < 0.2:
            return "(not %s)" % self.bool_expr(names, depth - 1)
        if roll < 0.5:
            return "(%s %s %s)" % (self.int_expr(names, 1), self.pick(["<", "<=", ">", ">=", "==", "!="]),
                                   self.int_expr(names, 1))
        if roll < 0.62:
            ops = [self.pick(["<", "<="]), self.pick(["<", "<="])]
            return "(%s %s %s %s %s)" % (self.int_expr(names, 0), ops[0], self.int_expr(names, 1), ops[1],
                                         self.int_expr(names, 0))
        if roll < 0.72:
            return "(%s %% %d == %d)" % (self.int_expr(names, 1), self.pick([2, 3, 5]), self.r.randint(0, 1))
        if roll < 0.8:
            return "(x %s %s)" % (self.pick(["<", ">", "<=", ">=", "=="]), self.const_float())
        if roll < 0.86:
            return "(s %s %r)" % (self.pick(["<", ">", "==", "!="]), self.pick(WORDS))
        if roll < 0.93:
            return "(%s in lst)" % self.int_expr(names, 0)
        return "(%s in d)" % repr(self.pick(["a", "b", "zz", "al"]))

    # ---------------------------------------------------------------- mix functions
    def mix_block(self):
        k = self.fresh()
        name = "mix_%d" % k
        lines = ["def %s(i):" % name]
        lines.append("    n = i * %s + %s" % (self.const_int(), self.const_int()))
        lines.append("    m = %s - i" % self.const_int())
        lines.append("    x = i * %s + %s" % (self.const_float(), self.const_float()))
        word = self.pick(WORDS)
        lines.append("    s = %r + str(i)" % (word + self.pick(WORDS)[:3]))
        lines.append("    lst = [%s]" % ", ".join(str(self.r.randint(-50, 150)) for _ in range(self.r.randint(4, 7))))
        lines.append("    tup = (%s)" % ", ".join(str(self.r.randint(-20, 90)) for _ in range(self.r.randint(3, 5))))
        lines.append("    d = {'a': %d, 'b': %d, %r: i}" % (self.r.randint(0, 9), self.r.randint(-9, 9), word[:2]))
        lines.append("    out = []")
        self.loop_id = 0
        self.dirty = set()
        self.stmts(lines, 1, [], self.r.randint(5, 11))
        self.dirty = set()
        lines.append("    return out")
        self.chunks.append("\n".join(lines))
        self.tests.append(name)

    def stmts(self, lines, ind, loopvars, count):
        for _ in range(count):
            self.stmt(lines, ind, loopvars)

    def stmt(self, lines, ind, loopvars):
        pad = "    " * ind
        names = ["n", "m", "i"] + loopvars
        in_loop = bool(loopvars)
        roll = self.r.random()
        nested = len(loopvars) < 2 and ind < 4
        if roll < 0.1 and nested:
            self.loop_stmt(lines, ind, loopvars)
        elif roll < 0.17 and ind < 4:
            lines.append(pad + "if %s:" % self.bool_expr(names))
            self.stmts(lines, ind + 1, loopvars, self.r.randint(1, 3))
            if self.chance(0.3):
                lines.append(pad + "elif %s:" % self.bool_expr(names))
                self.stmts(lines, ind + 1, loopvars, self.r.randint(1, 2))
            if self.chance(0.6):
                lines.append(pad + "else:")
                self.stmts(lines, ind + 1, loopvars, self.r.randint(1, 2))
        elif roll < 0.27 and ind < 4:
            self.try_stmt(lines, ind, loopvars)
        elif roll < 0.31 and in_loop:
            lines.append(pad + "if %s:" % self.bool_expr(names))
            lines.append(pad + "    " + self.pick(["break", "continue"]))
        elif roll < 0.325:  # an exception the function may not catch: _run reports it
            lines.append(pad + self.risky(names))
        else:
            # multi-line templates: continuation lines get the first line's indentation
            lines.append(pad + self.simple(names, in_loop).replace("\n", "\n" + pad))

    def loop_stmt(self, lines, ind, loopvars):
        pad = "    " * ind
        self.loop_id += 1
        v = "j%d" % self.loop_id
        roll = self.r.random()
        if roll < 0.4:
            lines.append(pad + "for %s in range(%s):" % (v, self.pick(["%d" % self.r.randint(1, 6), "i %% %d" % self.r.randint(2, 7),
                                                                       "%d, %d" % (self.r.randint(-3, 0), self.r.randint(1, 5)),
                                                                       "%d, 0, -%d" % (self.r.randint(3, 8), self.r.randint(1, 3))])))
        elif roll < 0.6:
            lines.append(pad + "for %s in lst[:%d]:" % (v, self.r.randint(2, 6)))
            self.dirty.add(v)  # lst may hold what a rebound global or attribute was
        elif roll < 0.75:
            lines.append(pad + "for %s in tup:" % v)
        elif roll < 0.85:
            e = "e%d" % self.loop_id
            lines.append(pad + "for %s, %s in enumerate(tup[:%d]):" % (v, e, self.r.randint(1, 4)))
            lines.append(pad + "    %s = %s * %s" % (v, v, e))
        else:
            c = v
            lines.append(pad + "%s = 0" % c)
            lines.append(pad + "while %s < %d and %s:" % (c, self.r.randint(1, 5), self.bool_expr(["n", "m", "i"], 0)))
            lines.append(pad + "    %s += 1" % c)
        self.stmts(lines, ind + 1, loopvars + [v], self.r.randint(1, 3))

    def try_stmt(self, lines, ind, loopvars):
        pad = "    " * ind
        names = ["n", "m", "i"] + loopvars
        lines.append(pad + "try:")
        risky = self.chance(0.7)
        if risky:
            lines.append(pad + "    " + self.risky(names))
        self.stmts(lines, ind + 1, loopvars, self.r.randint(0 if risky else 1, 2))
        if self.chance(0.85):
            handled = self.r.sample(EXC_TYPES, self.r.randint(1, 3))
            lines.append(pad + "except (%s,) as exc:" % ", ".join(handled))
            lines.append(pad + "    out.append((type(exc).__name__, str(exc), exc.__traceback__.tb_lineno))")
            if self.chance(0.4):
                lines.append(pad + "except Exception as exc:")
                lines.append(pad + "    out.append(('other', type(exc).__name__, str(exc)))")
            if self.chance(0.3):
                lines.append(pad + "else:")
                lines.append(pad + "    out.append('else')")
            if self.chance(0.4):
                lines.append(pad + "finally:")
                lines.append(pad + "    out.append('finally')")
        else:
            lines.append(pad + "finally:")
            lines.append(pad + "    out.append('finally %d' % len(out))")

    def risky(self, names):
        ie = lambda: self.int_expr(names, 1)
        return self.pick([
            "out.append(%s // (%s %% 3))" % (ie(), ie()),
            "out.append(%s %% (%s %% 2))" % (ie(), ie()),
            "out.append(lst[%s %% 20])" % ie(),
            "out.append(tup[%s %% 9])" % ie(),
            "out.append(s[%s %% 15])" % ie(),
            "out.append(d[s[:%d]])" % self.r.randint(1, 3),
            "out.append(d[%s %% 4])" % ie(),
            "out.append(s + %s)" % ie(),
            "out.append(%s + s)" % ie(),
            "out.append(len(%s))" % ie(),
            "out.append(x / (%s %% 2))" % ie(),
            "out.append(tup.%s)" % self.pick(["nope", "append"]),
            "out.append(lst.%s)" % self.pick(["nope", "size"]),
            "out.append([1, 2][%s %% 5])" % ie(),
            "out.append(int(s))",
            "out.append(%s < s)" % ie(),
            "lst[%s %% 12] = %s" % (ie(), ie()),
            "del d[%r]" % self.pick(["a", "b", "zz"]),
        ])

    def times_template(self, template, ops, names, op_first):
        e, tainted = self.int_expr_t(names, 1)
        op = self.pick([o for o in ops if o != "*"] if tainted else ops)
        return template % ((op, e) if op_first else (e, op))

    def simple(self, names, in_loop):
        ie = lambda depth=2: self.int_expr(names, depth)
        mod = self.pick(MODS)
        fe = lambda: self.float_expr(names, 2)
        choices = [
            # ints
            lambda: "n = (%s) %% %s" % (ie(), mod) if self.chance(0.6) else "n = (%s) %% %s - %s" % (ie(), mod, self.const_int()),
            lambda: "m = (%s) %% %s - %s" % (ie(), mod, self.pick(["(2**40)", "500", "(10**10)"])),
            lambda: "out.append(%s)" % ie(3),
            lambda: "out.append(%s)" % self.bool_expr(names),
            lambda: "n, m = m, n",
            lambda: "n %s= %s" % (self.pick(["+", "-", "^", "|", "&"]), ie(1)),
            # floats and mixed
            lambda: "x = %s" % fe() if not in_loop else "x = (%s) %% 10007.25" % fe(),
            lambda: "out.append(%s)" % fe(),
            lambda: self.times_template("out.append((%s) %s x)", ["+", "-", "*", "<", ">=", "=="], names, False),
            lambda: self.times_template("out.append(int(x) %s %s)", ["+", "*", "//", "-"], names, True),
            # strs
            lambda: "s = (s + str(%s))[-12:]" % ie(1),
            lambda: "s = s[::-1]",
            lambda: "s = s[1:] + s[0]",
            lambda: "s = s.replace(%r, %r)" % (self.pick("aeiolr"), self.pick("xyzAE")),
            lambda: "s = s.%s()" % self.pick(["upper", "lower", "swapcase", "title"]),
            lambda: "out.append(s[%d])" % self.r.randint(-6, 5),
            lambda: "out.append(s[%s:%s])" % (self.r.randint(-8, 4), self.pick(["", str(self.r.randint(-3, 9))])),
            lambda: "out.append(s[::%d])" % self.pick([2, 3, -1, -2]),
            lambda: "out.append(f\"{%s:>14}|{x:.4g}|{s!r:.9}|{n %% 7:03d}\")" % ie(1),
            lambda: "out.append('%%s/%%d/%%.3f/%%r' %% (s, %s, x, tup[:2]))" % ie(1),
            lambda: "out.append(s.find(%r) + s.count(%r))" % (self.pick("aeiou"), self.pick("aeiou")),
            lambda: "out.append(%r.join(str(v) for v in lst[:4]))" % self.pick([",", "-", ""]),
            lambda: "out.append(s.split(%r))" % self.pick("aeiol"),
            lambda: "out.append(s * (i %% 3) + %r)" % self.pick(WORDS),
            # lists, tuples, dicts
            lambda: "lst.append((%s) %% 1000)" % ie(1),
            lambda: "if len(lst) > 12:\n    del lst[:4]",
            lambda: "lst[(%s) %% len(lst)] = %s" % (ie(1), ie(1)),
            lambda: "out.append(lst[%d])" % self.r.randint(-3, 2),
            lambda: "out.append(lst[%d:%d])" % (self.r.randint(-5, 2), self.r.randint(-2, 6)),
            lambda: "lst[1:3] = [%s, %s, %s]" % (ie(1), ie(0), ie(0)),
            lambda: "first, *rest = lst\nout.append((first, rest[-2:]))",
            lambda: "*init, last = tup\nout.append((last, len(init)))",
            lambda: "p, (q, r) = tup[0], tup[1:3]\nout.append(p * q - r)",
            lambda: "tup = (tup + ((%s) %% 100,))[-5:]" % ie(1),
            lambda: "out.append(tup[%d])" % self.r.randint(-3, 2),
            lambda: "out.append(tup %s (1, %d))" % (self.pick(["<", ">", "=="]), self.r.randint(-5, 50)),
            lambda: "d[s[:2]] = (%s) %% 1000" % ie(1),
            lambda: "d[%r] = d.get(%r, 0) + 1" % ((self.pick(["a", "b", "zz"]),) * 2),
            lambda: "out.append(d.get(s[:2], -1))",
            lambda: "out.append(list(d.items())[-3:])",
            lambda: "out.append(sorted(d.values()))",
            lambda: "for key, val in list(d.items())[:3]:\n    out.append(key + str(val))",
            # comprehensions
            lambda: "out.append([v * %d for v in lst if v %% 3 %s 1])" % (self.r.randint(-2, 5), self.pick(["==", "!="])),
            lambda: "out.append({v %% %d for v in lst + list(tup)})" % self.pick([5, 7, 11, 64, 1000]),
            lambda: "out.append({k: v for k, v in zip(%r, lst)})" % self.pick(["xyz", "pqrs", "ab"]),
            lambda: "out.append(sum(v * v for v in range(i %% %d)))" % self.r.randint(2, 12),
            lambda: "out.append([(a, b) for a in range(%d) for b in tup if a < b][:4])" % self.r.randint(1, 4),
            lambda: "out.append(%s(v > %d for v in lst))" % (self.pick(["any", "all"]), self.r.randint(-10, 100)),
            lambda: "out.append(max(lst) - min(tup))",
            lambda: "out.append(len(lst) + len(s) + len(d))",
        ]
        if self.hook_stmts:
            choices.append(lambda: self.pick(self.hook_stmts).replace("{INT}", ie(1)))
        return self.pick(choices)()

    # ---------------------------------------------------------------- globals and helpers
    def globals_block(self):
        k = self.fresh()
        g = "G_%d" % k
        h = "helper_%d" % k
        self.chunks.append("%s = %s" % (g, self.const_int()))
        body = self.int_expr(["a", "b"], 2, dirty=("a", "b"))
        self.chunks.append("def %s(a, b):\n    return (%s + %s) %% %s" % (h, body, g, self.pick(MODS)))
        self.int_globals.append(g)
        self.helpers.append(h)
        t = "t_%d" % k
        self.chunks.append(
            "def %s(i):\n"
            "    r = [%s(i, j) + len(%r) for j in range(%d)]\n"
            "    r.append(%s * i - abs(%s - i))\n"
            "    r.append(%s)\n"
            "    return r" % (t, h, self.pick(WORDS), self.r.randint(1, 4), g, self.const_int(), self.int_expr(["i"], 2)))
        self.tests.append(t)
        self.rebinds += [
            ("int-to-float", ["global %s" % g, "%s = %s" % (g, self.const_float())]),
            ("int-to-str", ["global %s" % g, "%s = %r" % (g, self.pick(WORDS))]),
            ("int-to-big", ["global %s" % g, "%s = %s" % (g, repr(self.pick(BIG_INTS)))]),
            ("function", ["global %s" % h, "%s = lambda a, b: %s" % (h, self.int_expr(["a", "b"], 1, dirty=("a", "b")))]),
            ("function-arity", ["global %s" % h, "def %s(a):" % h, "    return a"]),
            ("shadow-builtin", ["global len", "len = _fake_len"]),
            ("shadow-builtin", ["global abs", "abs = _fake_abs"]),
            ("unshadow-builtin", ["g = globals()", "g.pop('len', None)", "g.pop('abs', None)"]),
        ]

    # ---------------------------------------------------------------- classes
    def class_block(self):
        k = self.fresh()
        base, sub, slot, prop = "Base_%d" % k, "Sub_%d" % k, "Slot_%d" % k, "Prop_%d" % k
        obj = "OBJ_%d" % k
        get_body = self.int_expr(["self.v", "self.w"], 2, dirty=("self.v", "self.w"))
        super_call = self.chance(0.6)
        src = [
            "class %s:" % base,
            "    kind = %r" % self.pick(WORDS),
            "    count = 0",
            "",
            "    def __init__(self, v):",
            "        self.v = v",
            "        self.w = v * %s" % self.const_int(),
            "",
            "    def get(self):",
            "        return %s" % get_body,
            "",
            "    def describe(self):",
            "        return '%s:%r' % (self.kind, self.get())",
            "",
            "    def __repr__(self):",
            "        return '%s(%%r)' %% (self.v,)" % base,
            "",
            "",
            "class %s(%s):" % (sub, base),
            "    kind = %r" % self.pick(WORDS),
            "",
            "    def get(self):",
            ("        return super().get() * %d - self.v" % self.r.randint(-3, 9)) if super_call
            else ("        return self.v %s %s" % (self.pick(["-", "+", "^"]), self.const_int())),
            "",
            "",
            "class %s:" % slot,
            "    __slots__ = ('a', 'b')",
            "",
            "    def __init__(self, a):",
            "        self.a = a",
            "        self.b = %s - a" % self.const_int(),
            "",
            "    def total(self):",
            "        return self.a * %s + self.b" % self.const_int(),
            "",
            "",
            "class %s:" % prop,
            "    def __init__(self, v):",
            "        self._v = v",
            "",
            "    @property",
            "    def v(self):",
            "        return self._v * %s" % self.const_int(),
            "",
            "    @v.setter",
            "    def v(self, value):",
            "        self._v = value + %s" % self.const_int(),
            "",
            "",
            "%s = %s(%s)" % (obj, self.pick([base, sub]), self.const_int()),
            "SLOT_%d = %s(%s)" % (k, slot, self.const_int()),
        ]
        self.chunks.append("\n".join(src))
        t = "t_%d" % k
        body = [
            "def %s(i):" % t,
            "    objs = [%s(i), %s(i + %s)]" % (base, sub, self.const_int()),
            "    r = [o.get() for o in objs]",
            "    r.append(objs[i % 2].describe())",
            "    sl = %s(i)" % slot,
            "    sl.a += %s" % self.const_int(),
            "    r.append(sl.total())",
            "    p = %s(i)" % prop,
            "    p.v = i * %s" % self.const_int(),
            "    r.append(p.v)",
            "    %s.count += 1" % base,
            "    r.append((%s.count, %s.count))" % (base, sub),
            "    %s.v = (%s.v + i) %% 1000" % (obj, obj) if self.chance(0.5) else "    %s.w = i" % obj,
            "    r.append((%s.v, %s.w, %s.get(), %s.kind))" % (obj, obj, obj, obj),
            "    r.append(SLOT_%d.total())" % k,
            "    r.append(type(objs[1]).__name__)",
            "    return r",
        ]
        self.chunks.append("\n".join(body))
        self.tests.append(t)
        self.int_leaves += ["%s.v" % obj, "%s.get()" % obj, "SLOT_%d.a" % k]
        self.hook_stmts += ["%s.w = {INT}" % obj, "SLOT_%d.b = {INT}" % k, "out.append(%s(i).describe())" % sub]
        self.rebinds += [
            ("class-attr", ["%s.kind = %s" % (base, self.const_int())]),
            ("class-attr-del", ["del %s.kind" % sub]),
            ("method", ["%s.get = lambda self: %s" % (base, self.int_expr(["self.v"], 1, dirty=("self.v",)))]),
            ("method", ["%s.get = lambda self: 'patched ' + repr(self.v)" % sub]),
            ("method-del", ["del %s.get" % sub]),
            ("slot-method", ["%s.total = lambda self: (self.a, self.b)" % slot]),
            ("property", ["%s.v = property(lambda self: -self._v)" % prop]),
            ("instance-attr-type", ["%s.v = %s" % (obj, self.pick(["'text'", "2.5", "None", "[1, 2]"]))]),
            ("instance-attr-del", ["del %s.w" % obj]),
            ("instance-attr-del", ["del SLOT_%d.a" % k]),
            ("instance-class", ["%s.__class__ = %s" % (obj, self.pick([base, sub]))]),
            ("instance-dict", ["%s.__dict__['get'] = lambda: 'from the instance'" % obj]),
        ]

    # ---------------------------------------------------------------- calls
    def calls_block(self):
        k = self.fresh()
        f = "callee_%d" % k
        npos = self.r.randint(1, 3)
        ndef = self.r.randint(0, npos)
        params = []
        for j in range(npos):
            params.append("p%d" % j if j < npos - ndef else "p%d=%s" % (j, self.const_int()))
        star = self.chance(0.6)
        kwonly = self.chance(0.6)
        kwargs = self.chance(0.6)
        if star:
            params.append("*args")
        elif kwonly:
            params.append("*")
        if kwonly:
            params.append("kw=%s" % self.const_int())
        if kwargs:
            params.append("**kwargs")
        ret = ["p%d" % j for j in range(npos)]
        if star:
            ret.append("args")
        if kwonly:
            ret.append("kw")
        if kwargs:
            ret.append("sorted(kwargs.items())")
        self.chunks.append("def %s(%s):\n    return (%s,)" % (f, ", ".join(params), ", ".join(ret)))
        calls = []
        for _ in range(self.r.randint(3, 6)):
            args = []
            npass = self.r.randint(npos - ndef, npos + (2 if star else 0))
            for j in range(npass):
                args.append(self.int_expr(["i"], 1))
            roll = self.r.random()
            if roll < 0.2 and npass >= 1:
                args = ["*%s" % self.pick(["[%s]" % ", ".join(args), "(%s,)" % ", ".join(args)])]
            if kwonly and self.chance(0.5):
                args.append("kw=%s" % self.int_expr(["i"], 0))
            if kwargs and self.chance(0.5):
                args.append("extra=i")
                if self.chance(0.5):
                    args.append("**{'z': %s, 'y': 2}" % self.int_expr(["i"], 0))
            if npass < npos and self.chance(0.3):
                args.append("p%d=%s" % (npos - 1, self.int_expr(["i"], 0)))
            if self.chance(0.12):  # a TypeError (unless **kwargs takes it)
                args.append(self.pick(["bogus=1", "p0=3"]) if not any(a.startswith("p0=") for a in args) else "bogus=1")
            calls.append("%s(%s)" % (f, ", ".join(args)))
        body = ["def t_%d(i):" % k, "    r = []"]
        for c in calls:
            body += ["    try:", "        r.append(%s)" % c, "    except TypeError as e:", "        r.append(('TypeError', str(e)))"]
        body += ["    r.append(%s(*range(%d), **(%s)))" % (f, npos, "{'kw': i}" if kwonly else "{}")]
        body += ["    return r"]
        self.chunks.append("\n".join(body))
        self.tests.append("t_%d" % k)
        self.rebinds += [
            ("function", ["global %s" % f, "%s = lambda *a, **k: ('replaced', a, sorted(k.items()))" % f]),
            ("defaults", ["%s.__defaults__ = None" % f]),
            ("kwdefaults", ["%s.__kwdefaults__ = {'kw': 'new'}" % f]),
        ]

    # ---------------------------------------------------------------- closures
    def closure_block(self):
        k = self.fresh()
        mk = "make_counter_%d" % k
        self.chunks.append("\n".join([
            "def %s(start):" % mk,
            "    count = start",
            "",
            "    def inc(step=%s):" % self.const_int(),
            "        nonlocal count",
            "        count %s= step" % self.pick(["+", "-", "^"]),
            "        return count",
            "",
            "    def get():",
            "        return count * %s" % self.const_int(),
            "",
            "    return inc, get",
            "",
            "",
            "COUNTER_%d = %s(%s)" % (k, mk, self.const_int()),
        ]))
        self.chunks.append("\n".join([
            "def t_%d(i):" % k,
            "    inc, get = %s(i)" % mk,
            "    for j in range(i %% %d):" % self.r.randint(2, 7),
            "        inc(j)",
            "    r = [get(), inc(), COUNTER_%d[0](%s), COUNTER_%d[1]()]" % (k, self.const_int(), k),
            "    scaled = [lambda z, j=j: z * j + %s for j in range(%d)]" % (self.const_int(), self.r.randint(1, 4)),
            "    r.append([f(i) for f in scaled])",
            "    late = [lambda z: z - j for j in range(%d)]" % self.r.randint(1, 4),
            "    r.append([f(i) for f in late])",
            "    def inner(a, b=i):",
            "        return a * b + get()",
            "    r.append(inner(%s))" % self.int_expr(["i"], 1, pure=True),
            "    return r",
        ]))
        self.tests.append("t_%d" % k)
        self.rebinds += [("function", ["global %s" % mk, "old = %s" % mk,
                                       "%s = lambda start: old(start * 1.5)" % mk])]

    # ---------------------------------------------------------------- generators
    def generator_block(self):
        k = self.fresh()
        ga, gb, gc = "gen_a_%d" % k, "gen_b_%d" % k, "gen_c_%d" % k
        self.chunks.append("\n".join([
            "def %s(n):" % ga,
            "    for j in range(n):",
            "        if j %% 3 == %d:" % self.r.randint(0, 2),
            "            continue",
            "        yield j * %s" % self.const_int(),
            "    return n * %s" % self.const_int(),
            "",
            "",
            "def %s(n):" % gb,
            "    total = yield from %s(n)" % ga,
            "    yield ('total', total)",
            "    got = yield 'ready'",
            "    while got is not None:",
            "        try:",
            "            got = yield got * %s" % self.const_int(),
            "        except ValueError as e:",
            "            got = yield ('thrown', str(e))",
            "    return 'done'",
            "",
            "",
            "def %s(log):" % gc,
            "    try:",
            "        for j in range(%d):" % self.r.randint(2, 6),
            "            log.append(j)",
            "            yield j",
            "    finally:",
            "        log.append('closed')",
        ]))
        self.chunks.append("\n".join([
            "def t_%d(i):" % k,
            "    r = list(%s(i %% %d))" % (ga, self.r.randint(3, 9)),
            "    g = %s(i %% %d)" % (gb, self.r.randint(2, 6)),
            "    items = []",
            "    for v in g:",
            "        items.append(v)",
            "        if v == 'ready':",
            "            break",
            "    r.append(items)",
            "    r.append(g.send(i))",
            "    r.append(g.throw(ValueError('v%d' % i)))" if self.chance(0.6) else "    r.append(g.send(i + 1))",
            "    r.append(g.send(%s))" % self.int_expr(["i"], 1, pure=True),
            "    try:",
            "        g.send(None)",
            "    except StopIteration as e:",
            "        r.append(('stop', e.value))",
            "    log = []",
            "    c = %s(log)" % gc,
            "    r.append([next(c) for _ in range(%d)])" % self.r.randint(0, 2),
            "    c.close()",
            "    r.append(log)",
            "    r.append(sum(v for v in %s(i %% 6)))" % ga,
            "    r.append(list(zip(%s(4), %s(log))))" % (ga, gc),
            "    return r",
        ]))
        self.tests.append("t_%d" % k)
        self.rebinds += [("generator", ["global %s" % ga, "def %s(n):" % ga, "    yield 'replaced'", "    return -n"])]

    # ---------------------------------------------------------------- with
    def with_block(self):
        k = self.fresh()
        cm = "CM_%d" % k
        self.chunks.append("\n".join([
            "class %s:" % cm,
            "    def __init__(self, log, name, suppress):",
            "        self.log = log",
            "        self.name = name",
            "        self.suppress = suppress",
            "",
            "    def __enter__(self):",
            "        self.log.append('enter ' + self.name)",
            "        return self",
            "",
            "    def __exit__(self, et, ev, tb):",
            "        self.log.append('exit %s %s %s' % (self.name, et.__name__ if et else None, ev))",
            "        return self.suppress",
        ]))
        exc = self.pick(["1 // (i %% %d)" % self.r.randint(2, 4), "[0][i %% %d]" % self.r.randint(2, 3),
                         "{}['k%d' % (i % 3)] if i % 2 else i"])
        self.chunks.append("\n".join([
            "def t_%d(i):" % k,
            "    log = []",
            "    with %s(log, 'a', False) as c:" % cm,
            "        log.append(c.name * 2)",
            "    try:",
            "        with %s(log, 'b', i %% %d == 0):" % (cm, self.r.randint(2, 3)),
            "            log.append(%s)" % exc,
            "            log.append('body done')",
            "    except Exception as e:",
            "        log.append(('caught', type(e).__name__, str(e), e.__traceback__.tb_lineno))",
            "    with %s(log, 'x', False), %s(log, 'y', True):" % (cm, cm),
            "        raise KeyError(i)",
            "    for j in range(%d):" % self.r.randint(1, 3),
            "        with %s(log, 'loop%%d' %% j, True):" % cm,
            "            if j == 1:",
            "                continue",
            "            log.append(j)",
            "    return log",
        ]))
        self.tests.append("t_%d" % k)
        self.rebinds += [("method", ["%s.__exit__ = lambda self, *a: self.log.append('patched exit')" % cm])]

    # ---------------------------------------------------------------- exceptions
    def exception_block(self):
        k = self.fresh()
        err, suberr, thrower = "MyErr_%d" % k, "SubErr_%d" % k, "thrower_%d" % k
        branches = [
            "raise %s(j, 'bad %%d' %% j)" % err,
            "raise %s(j, 'worse')" % suberr,
            "return [1, 2][j]",
            "return {'a': 1}['k%d' % j]",
            "return j.nope",
            "return j + 'str'",
            "return 10 // (j - j)",
            "return j * %s" % self.const_int(),
        ]
        self.r.shuffle(branches)
        branches = branches[: self.r.randint(3, 6)]
        src = ["class %s(Exception):" % err,
               "    def __init__(self, code, msg):",
               "        super().__init__(msg)",
               "        self.code = code",
               "",
               "",
               "class %s(%s):" % (suberr, err),
               "    pass",
               "",
               "",
               "def %s(j):" % thrower]
        for idx, b in enumerate(branches[:-1]):
            src.append("    if j %% %d == %d:" % (len(branches), idx))
            src.append("        " + b)
        src.append("    " + branches[-1])
        self.chunks.append("\n".join(src))
        handlers = [
            ["    except %s as e:" % suberr, "        r.append(('sub', e.code, str(e), e.__traceback__.tb_next.tb_lineno))"],
            ["    except %s as e:" % err, "        r.append(('my', e.code, str(e), e.__traceback__.tb_next.tb_lineno))"],
            ["    except (IndexError, KeyError) as e:", "        r.append((type(e).__name__, str(e), e.__traceback__.tb_next.tb_lineno))"],
            ["    except ArithmeticError as e:", "        r.append(('arith', str(e)))"],
            ["    except Exception as e:", "        r.append(('exc', type(e).__name__, str(e)))"],
        ]
        chosen = [h for h in handlers if self.chance(0.75)] or handlers[-1:]
        body = ["def t_%d(i):" % k, "    r = []", "    for j in range(i, i + %d):" % self.r.randint(2, 5), "        try:",
                "            r.append(%s(j))" % thrower]
        for h in chosen:
            body += ["    " + line for line in h]
        if self.chance(0.5):
            body += ["        else:", "            r.append('else')"]
        if self.chance(0.6):
            body += ["        finally:", "            r.append('fin')"]
        body += [
            "    try:",
            "        try:",
            "            r.append(%s(i))" % thrower,
            "        except Exception as e:",
            "            raise %s(-1, 'wrapped') from e" % suberr,
            "    except %s as e:" % err,
            "        r.append((type(e).__name__, str(e), type(e.__cause__).__name__ if e.__cause__ else None))",
            "    try:",
            "        try:",
            "            raise %s(i, 'inner')" % err,
            "        finally:",
            "            r.append('inner finally')",
            "    except %s as e:" % err,
            "        r.append(e.code)",
            "    return r",
        ]
        self.chunks.append("\n".join(body))
        self.tests.append("t_%d" % k)
        self.rebinds += [
            ("function", ["global %s" % thrower, "def %s(j):" % thrower, "    raise %s(j, 'rebound')" % suberr]),
            ("class-attr", ["%s.__str__ = lambda self: 'custom str %%r' %% (self.code,)" % err]),
        ]

    # ---------------------------------------------------------------- recursion
    def recursion_block(self):
        k = self.fresh()
        rec, deep, probe = "rec_%d" % k, "deep_%d" % k, "probe_%d" % k
        mutual = self.chance(0.5)
        src = [
            "def %s(n):" % rec,
            "    if n <= %d:" % self.r.randint(0, 2),
            "        return %s" % self.const_int(),
            "    return %s(n - 1) %s (n %% %d)" % (rec, self.pick(["+", "-", "^", "*"]), self.r.randint(2, 9)),
            "",
            "",
            "def %s(n):" % deep,
            "    return %s(n + 1) + 1" % (deep if not mutual else "deep_b_%d" % k),
            "",
            "",
        ]
        if mutual:
            src += ["def deep_b_%d(n):" % k, "    return %s(n + 2) - 1" % deep, "", ""]
        src += [
            "def %s(n):" % probe,
            "    try:",
            "        return %s(n + 1)" % probe,
            "    except RecursionError:",
            "        return n",
        ]
        self.chunks.append("\n".join(src))
        self.chunks.append("\n".join([
            "def t_%d(i):" % k,
            "    r = [%s(i %% %d)]" % (rec, self.r.randint(5, 40)),
            "    try:",
            "        %s(i)" % deep,
            "    except RecursionError as e:",
            "        r.append(('RecursionError', str(e)))",
            "    r.append(%s(0) - BASE_DEPTH)" % probe,
            "    return r",
        ]))
        self.tests.append("t_%d" % k)
        self.rebinds += [("function", ["global %s" % rec, "%s = lambda n: -n" % rec])]

    # ---------------------------------------------------------------- coroutines
    def async_block(self):
        k = self.fresh()
        tick, leaf, mid, top = "Tick_%d" % k, "leaf_%d" % k, "mid_%d" % k, "top_%d" % k
        self.chunks.append("\n".join([
            "class %s:" % tick,
            "    def __init__(self, v):",
            "        self.v = v",
            "",
            "    def __await__(self):",
            "        got = yield ('tick', self.v)",
            "        return (got, self.v)",
            "",
            "",
            "async def %s(x):" % leaf,
            "    if x %% %d == %d:" % (self.r.randint(3, 6), self.r.randint(0, 2)),
            "        raise ValueError('leaf %d' % x)",
            "    return x * %s" % self.const_int(),
            "",
            "",
            "async def %s(x):" % mid,
            "    a = await %s(x)" % leaf,
            "    b = await %s(x)" % tick if self.chance(0.7) else "    b = None",
            "    try:",
            "        c = await %s(x + 1)" % leaf,
            "    except ValueError as e:",
            "        c = str(e)",
            "    return (a, b, c)",
            "",
            "",
            "async def %s(x):" % top,
            "    out = []",
            "    for j in range(%d):" % self.r.randint(1, 3),
            "        try:",
            "            out.append(await %s(x + j))" % mid,
            "        except ValueError as e:",
            "            out.append(('ValueError', str(e)))",
            "    return out",
        ]))
        self.chunks.append("\n".join([
            "def t_%d(i):" % k,
            "    r = [_drive(%s(i))]" % top,
            "    c = %s(i)" % leaf,
            "    try:",
            "        c.send(None)",
            "    except StopIteration as e:",
            "        r.append(('value', e.value))",
            "    except ValueError as e:",
            "        r.append(('error', str(e)))",
            "    return r",
        ]))
        self.tests.append("t_%d" % k)
        self.rebinds += [
            ("coroutine", ["global %s" % leaf, "async def %s(x):" % leaf, "    return ('rebound', x)"]),
            ("method", ["%s.__await__ = lambda self: iter([('patched', self.v)])" % tick]),
        ]

    # ---------------------------------------------------------------- the program
    def program(self):
        blocks = [self.class_block, self.calls_block, self.closure_block, self.generator_block, self.with_block,
                  self.exception_block, self.recursion_block, self.async_block]
        self.globals_block()
        if self.chance(0.5):
            self.globals_block()
        chosen = [b for b in blocks if self.chance(0.5)]
        if len(chosen) < 2:
            chosen = self.r.sample(blocks, 2)
        self.r.shuffle(chosen)
        for b in chosen:
            b()
        for _ in range(self.r.randint(1, 3)):
            self.mix_block()
        self.r.shuffle(self.tests)
        warm = self.r.randint(20, 40)
        main = ["def main():", "    global BASE_DEPTH", "    BASE_DEPTH = _probe(0)",
                "    for i in range(%d):" % warm]
        main += ["        _run(%r, %s, i)" % (t, t) for t in self.tests]
        rounds = self.r.randint(1, 3)
        rebind_fns = []
        for rnd in range(rounds):
            picked = self.r.sample(self.rebinds, min(len(self.rebinds), self.r.randint(2, 5)))
            main.append("    print('-- rebinding, round %d')" % (rnd + 1))
            for idx, (kind, lines) in enumerate(picked):
                fn = "rebind_%d_%d" % (rnd + 1, idx)
                rebind_fns.append("def %s():  # %s\n%s" % (fn, kind, "\n".join("    " + line for line in lines)))
                main.append("    _run(%r, %s)" % (fn, fn))
            # sometimes long enough for failing speculations to reach the deopt limit (100) and
            # their functions to be recompiled
            after = self.r.randint(3, 12) if self.chance(0.75) else self.r.randint(100, 130)
            main.append("    for i in range(%d, %d):" % (warm, warm + after))
            main += ["        _run(%r, %s, i)" % (t, t) for t in self.tests]
        # main() runs in a thread of its own: its recursion depth starts at 0 there, so how deep
        # recursion gets does not depend on the frames below (more under `-m ferrojit run`).
        run_main = 'if __name__ == "__main__":\n    thread = threading.Thread(target=main)\n    thread.start()\n    thread.join()'
        body = [PRELUDE] + self.chunks + rebind_fns + ["\n".join(main), run_main]
        return "\n\n\n".join(body) + "\n"


def generate(seed: int) -> str:
    """The source of the random program for seed (the same text for the same seed)."""
    return "# ferrojit differential fuzzer program, seed %d\n" % seed + _Gen(seed).program()


if __name__ == "__main__":
    import sys

    sys.stdout.write(generate(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
