"""Recursion levels as CPython counts them: each Python frame one level, a C function called as
the interpreter calls it (an unspecialised call site one level for any C function; compiled code
at threshold 0 was compiled from unspecialised code and counts so), a generator resumed by
`next` its own level. Measured on first calls (cold in both), then where RecursionError strikes,
through plain recursion, a generator chain and a builtin. CPython's test_exceptions
(`test_recursion_normalizing_exception`) relies on these counts. Depths and limits are relative
to the module's own level (`python -m ferrojit run` adds the levels of runpy)."""
import contextlib
import sys

import _testinternalcapi

depth = _testinternalcapi.get_recursion_depth


@contextlib.contextmanager
def measured():
    yield depth()


def through_context_manager():
    with measured() as d:
        return d


def generator():
    yield depth()


def through_next():
    return next(generator())


def through_builtins():
    return abs(depth()), max(depth(), 0), sorted([depth()])[0]


def nested(n):
    if n:
        return nested(n - 1)
    return depth()


def recurse(n):
    try:
        return recurse(n + 1)
    except RecursionError:
        return n


def recurse_through_builtin(n):
    try:
        return max(recurse_through_builtin(n + 1), 0)
    except RecursionError:
        return n


def chain(n):
    try:
        yield from chain(n + 1)
    except RecursionError:
        yield n


BASE = depth()


def measure():
    levels = (through_context_manager(), through_next(), *through_builtins(), nested(5))
    return tuple(level - BASE for level in levels)


print("depths on first calls:", measure())
for _ in range(40):
    measure()
for limit in (60, 200, 1000):
    sys.setrecursionlimit(BASE + limit)
    print("limit", limit, "recursion", recurse(0), "via max", recurse_through_builtin(0), "generators", next(chain(0)))
