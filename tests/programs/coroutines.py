"""Coroutines: `await` chains that never suspend (recursive, as in pyperformance's coroutines)
and ones that do (asyncio, a hand-made awaitable), values sent in and returned, exceptions
through every level with their tracebacks, StopIteration inside a coroutine, a coroutine
awaited twice or while it is being awaited, objects that cannot be awaited, `__await__`
returning something wrong, send/throw/close by hand, `cr_frame`/`cr_await` and `sys._getframe`
while suspended, a coroutine never awaited, and generators made by calls from compiled code
(`yield from` chains)."""

import asyncio
import sys
import traceback
import types
import warnings


async def fibonacci(n):
    if n <= 1:
        return n
    return await fibonacci(n - 1) + await fibonacci(n - 2)


def run(coro):
    """Drives a coroutine that never suspends, as pyperformance's coroutines does."""
    try:
        while True:
            coro.send(None)
    except StopIteration as stop:
        return stop.value


async def add_later(a, b):
    await asyncio.sleep(0)
    return a + b


async def gather_sums(n):
    total = 0
    for i in range(n):
        total += await add_later(i, i)
    results = await asyncio.gather(*(add_later(i, 1) for i in range(5)))
    return total, results


class Ticket:
    """An awaitable whose `__await__` is a generator: each await suspends once."""

    def __init__(self, value):
        self.value = value

    def __await__(self):
        sent = yield ("ticket", self.value)
        return (self.value, sent)


async def uses_tickets(k):
    got = []
    for i in range(k):
        got.append(await Ticket(i))
    return got


async def deep_fail(n):
    if n == 0:
        raise ValueError("bottom of the chain")
    return await deep_fail(n - 1)


async def catches(n):
    try:
        return await deep_fail(n)
    except ValueError as e:
        return "caught: %s" % e


async def raises_stop():
    raise StopIteration("inside a coroutine")


async def wraps_stop():
    return await raises_stop()


async def awaits_twice():
    c = fibonacci(3)
    first = await c
    try:
        await c
    except RuntimeError as e:
        return first, str(e)


class NotAwaitable:
    pass


class AwaitsCoroutine:
    def __await__(self):
        return fibonacci(2)


class AwaitsNumber:
    def __await__(self):
        return 42


async def awaits(thing):
    return await thing


async def suspended_inside(k):
    frame = sys._getframe()
    outer = frame.f_back.f_code.co_name if frame.f_back else None
    value = await Ticket(k)
    return outer, value, frame.f_lineno


async def outer_of(k):
    return await suspended_inside(k)


@types.coroutine
def legacy_sleep():
    value = yield "legacy"
    return value


async def awaits_legacy():
    return await legacy_sleep()


@types.coroutine
def legacy_delegates(k):
    # A types.coroutine generator may `yield from` a coroutine, and a generator.
    first = yield from add_later(k, 1)
    second = yield from legacy_sleep()
    return first, second


def plain_delegates():
    yield from add_later(1, 2)


async def awaits_legacy_delegates(k):
    return await legacy_delegates(k)


async def being_awaited(shared):
    return await shared


def tree(depth):
    if depth == 0:
        yield depth
        return
    yield from tree(depth - 1)
    yield depth
    yield from tree(depth - 1)


def counts_tree(depth):
    return sum(1 for _ in tree(depth))


def delegating(n):
    got = yield from echo(n)
    yield ("done", got)


def echo(n):
    total = 0
    for _ in range(n):
        total += yield total
    return total


class Tree:
    """As in pyperformance's generators: `__iter__` is a generator delegating to the children."""

    def __init__(self, left, value, right):
        self.left, self.value, self.right = left, value, right

    def __iter__(self):
        if self.left:
            yield from self.left
        yield self.value
        if self.right:
            yield from self.right


def build(values):
    if not values:
        return None
    i = len(values) // 2
    return Tree(build(values[:i]), values[i], build(values[i + 1:]))


class Countdown:
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        n = self.n
        while n > 0:
            yield n
            n -= 1
        return "ignored"


class NumberIter:
    def __iter__(self):
        return 42


class ListIter:
    def __iter__(self):
        return iter([1, 2])


class NotIterable:
    __iter__ = None


class FailingIter:
    def __iter__(self):
        raise LookupError("no iterator today")


class Reversed(Countdown):
    def __iter__(self):
        yield from reversed(list(super().__iter__()))


def walk(obj):
    return [x for x in obj]


def iterate_all(objects):
    out = []
    for obj in objects:
        try:
            out.append(walk(obj))
        except (TypeError, LookupError) as e:
            frames = [(f.name, f.lineno) for f in traceback.extract_tb(e.__traceback__)]
            out.append("%s: %s %s" % (type(e).__name__, e, frames))
    return out


def origin_child():
    async def child():
        return sys._getframe().f_back is None
    return child


async def origin_parent():
    c = origin_child()()
    origin = [(name, line) for _, line, name in c.cr_origin]
    return await c, origin


def main():
    for _ in range(3):
        print("fibonacci", run(fibonacci(15)))
    print("asyncio", asyncio.run(gather_sums(6)))
    c = uses_tickets(3)
    print("first suspension", c.send(None))
    print("then", c.send("a"), c.send("b"))
    try:
        c.send("c")
    except StopIteration as stop:
        print("tickets", stop.value)
    for n in (0, 3, 40):
        print(run(catches(n)))
    try:
        run(deep_fail(4))
    except ValueError:
        lines = traceback.format_exc().splitlines()
        print("traceback of", len(lines), "lines;", lines[-1])
        print([l.strip() for l in lines if l.strip().startswith("return await") or "raise" in l])
    try:
        run(wraps_stop())
    except RuntimeError as e:
        print("RuntimeError:", e, "| cause:", repr(e.__cause__))
    print("awaited twice", run(awaits_twice()))
    for thing in (NotAwaitable(), AwaitsCoroutine(), AwaitsNumber(), 7):
        try:
            run(awaits(thing))
        except TypeError as e:
            print("TypeError:", e)
    c = outer_of(5)
    print("suspended", c.send(None))
    inner = c.cr_await
    print("cr_await", type(inner).__name__, inner.cr_frame.f_code.co_name, inner.cr_frame.f_lineno)
    try:
        c.send("resumed")
    except StopIteration as stop:
        print("value", stop.value)
    c = outer_of(6)
    c.send(None)
    try:
        c.throw(KeyError("thrown in"))
    except KeyError as e:
        print("thrown through:", e)
    c = outer_of(7)
    c.send(None)
    c.close()
    print("closed", c.cr_frame)
    c = awaits_legacy()
    print("legacy", c.send(None))
    try:
        c.send("sent back")
    except StopIteration as stop:
        print("legacy value", stop.value)
    for k in range(3):
        c = awaits_legacy_delegates(k)
        steps = [c.send(None)]
        try:
            while True:
                steps.append(c.send("s%d" % len(steps)))
        except StopIteration as stop:
            print("legacy delegates", steps, stop.value)
    try:
        next(plain_delegates())
    except TypeError as e:
        print("TypeError:", e)
    shared = uses_tickets(2)
    waiter = being_awaited(shared)
    waiter.send(None)
    try:
        run(being_awaited(shared))
    except RuntimeError as e:
        print("RuntimeError:", e)
    waiter.close()
    try:
        fibonacci(2).send(1)
    except TypeError as e:
        print("TypeError:", e)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fibonacci(3)
        import gc

        gc.collect()
    print("warnings", [str(w.message) for w in caught])
    for _ in range(3):
        print("tree", counts_tree(8))
    g = delegating(4)
    print(next(g), g.send(1), g.send(2), g.send(3), g.send(4))
    t = build(list(range(40)))
    for _ in range(3):
        print("Tree", sum(walk(t)), walk(t)[:5])
    objects = [Countdown(3), NumberIter(), ListIter(), NotIterable(), FailingIter(), Reversed(4)]
    for _ in range(3):
        print(iterate_all(objects))
    Countdown.__iter__ = lambda self: iter(["replaced"])
    print(iterate_all(objects))
    sys.set_coroutine_origin_tracking_depth(2)
    for _ in range(3):
        print("origin", run(origin_parent()))
    sys.set_coroutine_origin_tracking_depth(0)


main()
