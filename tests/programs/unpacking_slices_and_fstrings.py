"""Tuple unpacking (exact tuples and lists, any other iterable, starred targets), slices,
`del x[k]`, f-strings, unary operators and constant-key dict displays: results, error
messages, tracebacks and leaks as in CPython."""

import traceback

from _leakcheck import leakcheck


def swap(pair):
    a, b = pair
    return b, a


def unpack_three(seq):
    x, y, z = seq
    return x * 100 + y * 10 + z


def starred(seq):
    first, *middle, last = seq
    head, *tail = seq
    *init, end = seq
    return first, middle, last, head, tail, init, end


def gen(n):
    yield from range(n)


def slices(s, i):
    return s[1:3], s[::2], s[i:], s[:-i], s[1:i:2]


def delete(d, k, lst):
    del d[k]
    del lst[0]
    return sorted(d), lst


class Money:
    def __init__(self, cents):
        self.cents = cents

    def __format__(self, spec):
        return ("$%d.%02d" % divmod(self.cents, 100)).rjust(int(spec.lstrip("<>^") or 0))

    def __repr__(self):
        return "Money(%d)" % self.cents

    def __neg__(self):
        return Money(-self.cents)


class Loud(str):
    pass


class LoudFormat:
    def __format__(self, spec):
        return Loud("loud:" + spec)


def fstrings(x, w, name):
    return f"{x}|{x!r}|{x!s}|{name!a}|{x:>{w}}|{w:05d}|{name}"


def unary(a):
    return -a, +a, ~a if isinstance(a, int) else None


def table(x, y):
    return {"x": x, "y": y, "sum": x + y}


def describe_errors(fn, *args):
    try:
        return fn(*args)
    except Exception as e:
        return "%s: %s" % (type(e).__name__, e)


for i in range(30):
    r = (
        swap((i, i + 1)),
        swap([i, "s"]),
        unpack_three((1, 2, i % 10)),
        unpack_three([3, 2, 1]),
        unpack_three(gen(3)),
        unpack_three("789") if False else unpack_three((7, 8, 9)),
        slices("abcdefgh", i % 4 + 1),
        slices(list(range(10)), 2),
        delete({"a": 1, "b": 2, i: 3}, i, [1, 2, 3]),
        fstrings(i, 6, "é%d" % i),
        fstrings(Money(i * 37), 9, "m"),
        unary(i - 15),
        unary(i / 4),
        unary(Money(i)) if False else (-Money(i)),
        table(i, 2 * i),
    )
print(r)
print(type(f"{LoudFormat():x}").__name__, f"{LoudFormat():spec}")
print(describe_errors(swap, (1, 2, 3)))
print(describe_errors(swap, [1]))
print(describe_errors(swap, 5))
print(describe_errors(swap, gen(5)))
print(describe_errors(unpack_three, {1: 1, 2: 2}))
print(describe_errors(unpack_three, "abc"), describe_errors(unpack_three, range(3)))
for _ in range(30):
    starred([1, 2, 3])
print(starred([1, 2, 3, 4]), starred((1, 2)), starred("xyz"), describe_errors(starred, gen(3)))
print(describe_errors(starred, [1]), describe_errors(starred, 5), describe_errors(starred, gen(1)))
print(describe_errors(delete, {}, "missing", [1]))
print(describe_errors(delete, {"a": 1}, "a", []))
print(describe_errors(unary, 1.5))
print(describe_errors(unary, "s"))
print(describe_errors(fstrings, 3, "wide", "n"))
print(describe_errors(slices, 5, 1))

try:
    swap((1, 2, 3, 4))
except ValueError:
    traceback.print_exc()

leakcheck("starred", lambda: starred([1, 2, 3, 4]))
leakcheck("unpack_three-gen", lambda: unpack_three(gen(3)))
leakcheck("unpack", lambda: (swap((1, 2)), unpack_three([1, 2, 3]), describe_errors(swap, (1,))))
leakcheck("slices and fstrings", lambda: (slices("abcdef", 2), fstrings(3, 4, "x"), table(1, 2)))
