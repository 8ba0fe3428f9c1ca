"""Async generators: values yielded and awaited in turn (each `yield` wrapped, each `await`
passed up unwrapped), `asend`/`athrow`/`aclose` by hand, `try`/`finally` and `async with`
inside, `return` and exceptions (StopAsyncIteration, RuntimeError for a StopIteration or
StopAsyncIteration raised inside, for a `yield` after GeneratorExit), `ag_running`/`ag_frame`/
`ag_await`, asyncio driving them (shutdown of unfinished ones, the firstiter/finalizer hooks),
and async generators made from compiled code many times over."""

import asyncio
import sys
import traceback


def run(coro):
    """Drives a coroutine by hand, collecting what its awaits pass up."""
    passed = []
    value = None
    try:
        while True:
            passed.append(coro.send(value))
            value = len(passed)
    except StopIteration as stop:
        return passed, stop.value


class Suspend:
    def __init__(self, value):
        self.value = value

    def __await__(self):
        got = yield self.value
        return got


async def squares(n):
    for i in range(n):
        got = await Suspend("before %d" % i)
        yield i * i + (got or 0)


async def collect(agen):
    return [x async for x in agen]


async def guarded(log):
    try:
        log.append("start")
        yield 1
        log.append("after 1")
        yield 2
    except KeyError as e:
        log.append("caught %r" % e)
        yield "recovered"
    finally:
        log.append("finally")
        await Suspend("in finally")


async def yields_after_exit():
    try:
        yield 1
    except GeneratorExit:
        yield 2


async def raises(kind):
    yield 1
    raise kind("inside")


async def returns_early(n):
    for i in range(n):
        if i == 2:
            return
        yield i


class Manager:
    def __init__(self, log):
        self.log = log

    async def __aenter__(self):
        self.log.append("enter")
        return self

    async def __aexit__(self, *exc):
        self.log.append("exit %s" % (exc[0].__name__ if exc[0] else None))


async def with_inside(log, n):
    async with Manager(log):
        for i in range(n):
            yield i
            await Suspend(i)


async def by_hand():
    log = []
    g = guarded(log)
    out = [await g.asend(None), await g.asend(None)]
    out.append(await g.athrow(KeyError("k")))
    try:
        await g.asend(None)
    except StopAsyncIteration:
        out.append("stopped")
    g2 = guarded(log)
    out.append(await g2.__anext__())
    await g2.aclose()
    out.append(g2.ag_frame is None)
    g3 = yields_after_exit()
    await g3.__anext__()
    try:
        await g3.aclose()
    except RuntimeError as e:
        out.append(str(e))
    return out, log


async def failures():
    out = []
    for kind in (ValueError, StopIteration, StopAsyncIteration):
        g = raises(kind)
        try:
            async for x in g:
                out.append(x)
        except Exception as e:
            out.append((type(e).__name__, str(e), type(e.__cause__).__name__))
    out.append([x async for x in returns_early(5)])
    return out


async def state():
    g = squares(2)
    seen = [g.ag_running, g.ag_await, g.ag_frame.f_lineno]
    a = g.asend(None)
    seen.append(a.send(None))
    seen.append(type(g.ag_await).__name__)
    try:
        a.send(5)
    except StopIteration as stop:
        seen.append(stop.value)
    return seen


async def many(n):
    total = 0
    for i in range(n):
        async for x in squares(3):
            total += x
    return total


def show(label, coro):
    try:
        print(label, run(coro))
    except Exception as e:
        print(label, type(e).__name__, e)
        print("".join(traceback.format_exception(e)).replace(__file__, "FILE"), end="")


async def with_asyncio():
    async def ticker(n):
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    total = 0
    async for i in ticker(5):
        total += i
    unfinished = ticker(10)
    await unfinished.__anext__()
    return total


def main():
    for _ in range(3):
        show("collect", collect(squares(4)))
        log = []
        show("with_inside", collect(with_inside(log, 3)))
        print("log", log)
        show("by_hand", by_hand())
        show("failures", failures())
        show("state", state())
    show("many", many(20))
    fired = []
    sys.set_asyncgen_hooks(firstiter=lambda g: fired.append("first " + g.__name__),
                           finalizer=lambda g: fired.append("final " + g.__name__))
    g = squares(3)
    show("hooked", g.__anext__())
    del g
    sys.set_asyncgen_hooks(None, None)
    print("fired", fired)
    for _ in range(2):
        print("asyncio", asyncio.run(with_asyncio()))


main()
