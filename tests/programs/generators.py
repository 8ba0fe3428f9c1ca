"""Generators resumed by compiled code: values sent in, yields with values below them on the
stack (inside a call's arguments and a display), `return` values in StopIteration, exceptions
raised inside (tracebacks and line numbers) and thrown in, `close()` and finalisation with
`try/finally` and `with`, PEP 479 (StopIteration inside becomes RuntimeError), closures and
generator expressions, `gi_frame` introspection while suspended, nested generators, and
`yield from` (of generators, lists and iterators; values sent through it, its return value,
exceptions from the inner generator, a coroutine refused)."""

import sys

from _leakcheck import leakcheck


def count(n):
    i = 0
    while i < n:
        yield i
        i += 1
    return "counted %d" % n


def echo():
    total = 0
    while True:
        got = yield total
        if got is None:
            break
        total += got
    return total


def deep_stack(xs):
    # Each yield happens with values below it on the stack.
    out = [1, (yield "first"), 3]
    pair = max(len(out), (yield "second"))
    tail = []
    for x in xs:
        tail.append((x, (yield x)))
    return out, pair, tail


def failing(n):
    for i in range(n):
        yield i
    raise ValueError("failed after %d" % n)


class Resource:
    def __init__(self, name, log):
        self.name = name
        self.log = log

    def __enter__(self):
        self.log.append("open " + self.name)
        return self

    def __exit__(self, *exc):
        self.log.append("close " + self.name + (" " + exc[0].__name__ if exc[0] else ""))


def guarded(log):
    try:
        with Resource("r", log):
            for i in range(3):
                yield i
    finally:
        log.append("finally")


def leaks_stop():
    yield 1
    raise StopIteration("inside")


def closure_gen(base):
    step = base * 2

    def bump(x):
        return x + step

    for i in range(3):
        yield bump(i)


def nested(n):
    if n == 0:
        yield "leaf"
        return
    for item in nested(n - 1):
        yield "%d:%s" % (n, item)


def delegate(n):
    got = yield from count(n)
    inner = yield from echo()
    rest = yield from ["x", "y"]
    return got, inner, rest


def tree(depth):
    if depth:
        yield from tree(depth - 1)
        yield depth
        yield from tree(depth - 1)


def delegate_failing():
    yield from failing(1)


async def coro():
    return 1


def yields_from_coroutine():
    c = coro()
    try:
        yield from c
    finally:
        c.close()


def where():
    yield sys._getframe().f_lineno
    frame = sys._getframe()
    yield frame.f_code.co_name, frame.f_back is not None


def drive(gen):
    out = [next(gen)]
    try:
        while True:
            out.append(gen.send(len(out)))
    except StopIteration as stop:
        return out, stop.value


for _ in range(30):
    sum(count(5))
    list(nested(2))
    list(closure_gen(1))
    list(tree(2))
print("count", list(count(4)), sum(x * x for x in count(10) if x % 2))
c = count(2)
print("return", next(c), next(c), end=" ")
try:
    next(c)
except StopIteration as e:
    print(repr(e.value))
e = echo()
next(e)
print("echo", e.send(3), e.send(4), end=" ")
try:
    e.send(None)
except StopIteration as stop:
    print("total", stop.value)
d = deep_stack("ab")
print("deep", next(d), d.send("two"), d.send(7), d.send("A"), end=" ")
try:
    d.send("B")
except StopIteration as stop:
    print(stop.value)
try:
    for v in failing(2):
        print("got", v)
except ValueError as err:
    tb = err.__traceback__
    while tb.tb_next:
        tb = tb.tb_next
    print("ValueError", err, "line", tb.tb_lineno, tb.tb_frame.f_code.co_name)
f = failing(5)
next(f)
try:
    f.throw(KeyError("thrown"))
except KeyError as err:
    print("KeyError", err)
print("after throw", list(f))
log = []
g = guarded(log)
print("guarded", next(g), next(g), log)
g.close()
print("closed", log, g.gi_frame)
log = []
g = guarded(log)
next(g)
del g
print("collected", log)
log = []
print("exhausted", list(guarded(log)), log)
try:
    list(leaks_stop())
except RuntimeError as err:
    print("RuntimeError", err, type(err.__cause__).__name__)
dg = delegate(2)
print("delegate", next(dg), next(dg), next(dg), dg.send(5), dg.send(6), end=" ")
print(dg.send(None), next(dg), end=" ")
try:
    next(dg)
except StopIteration as stop:
    print(stop.value)
print("tree", list(tree(3)), sum(tree(4)))
try:
    list(delegate_failing())
except ValueError as err:
    print("ValueError via yield from", err)
try:
    list(yields_from_coroutine())
except TypeError as err:
    print("TypeError", err)
print("closure", list(closure_gen(5)), "nested", list(nested(3)), "driven", drive(deep_stack("pq")))
w = where()
print("where", next(w), next(w))
s = count(10)
next(s)
next(s)
print("suspended at", s.gi_frame.f_lineno, s.gi_frame.f_locals, s.gi_running)
leakcheck("count", lambda: sum(count(20)))
leakcheck("deep", lambda: drive(deep_stack("xyz")))
leakcheck("guarded-close", lambda: next(guarded([])))
leakcheck("nested", lambda: list(nested(3)))
leakcheck("tree", lambda: list(tree(3)))
leakcheck("delegate", lambda: list(delegate(3)))
