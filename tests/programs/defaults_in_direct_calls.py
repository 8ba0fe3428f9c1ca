"""Calls that leave trailing parameters to their defaults (as deepcopy's `memo=None`,
logging's `exc_info=None`): between compiled functions these are direct calls that fill the
defaults themselves. Shared mutable defaults, `__defaults__` replaced or removed, too few and
too many arguments, recursion, a frame that outlives its call, reference counts."""

import sys

from _leakcheck import leakcheck

SENTINEL = object()


def collect(x, seen=[], tag=SENTINEL, depth=0):
    seen.append(x)
    return (len(seen), tag is SENTINEL, depth)


def walk(node, memo=None, depth=0):
    if memo is None:
        memo = {}
    memo[id(node)] = depth
    for child in node:
        walk(child, memo, depth + 1)
    return memo


def escape(a, b=10, c="c"):
    return sys._getframe()


def driver(n):
    out = []
    for i in range(n):
        out.append(collect(i))
        out.append(collect(i, [], "t"))
        out.append(collect(i, [], "t", 5))
    return out


def only_positional(a, b=2, /, c=3):
    return a + b + c


def run(n):
    return [only_positional(i) + only_positional(i, 1) + only_positional(i, 1, 1) for i in range(n)]


print(driver(30)[-6:])
print(len(collect.__defaults__[0]))
tree = [[[], [[]]], [], [[[[]]]]]
for _ in range(30):
    memo = walk(tree)
print(sorted(memo.values()))
print(run(25)[-3:])
frames = [escape(i) for i in range(30)]
print(frames[-1].f_locals, frames[-1].f_lineno)

before = sys.getrefcount(SENTINEL)
driver(50)
print("refcount of a default unchanged:", sys.getrefcount(SENTINEL) - before)

collect.__defaults__ = ("new", 1)  # fewer defaults: `seen` is required now
try:
    print(driver(2))
except TypeError as e:
    print("TypeError", e)
collect.__defaults__ = (-1, [], "new", 7)  # a default for every parameter, even the first
print(driver(2)[-3:], collect())
collect.__defaults__ = None
try:
    driver(1)
except TypeError as e:
    print("TypeError", e)
collect.__defaults__ = ([], SENTINEL, 0)
try:
    print(only_positional(1, 2, 3, 4))
except TypeError as e:
    print("TypeError", e)

leakcheck("driver", lambda: driver(5))
leakcheck("walk", lambda: walk(tree))
leakcheck("escape", lambda: escape(1))
