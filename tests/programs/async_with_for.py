"""`async with` and `async for` in coroutines: context managers whose `__aenter__`/`__aexit__`
suspend or not, exceptions in the block (swallowed or not), the interpreter's TypeErrors for a
missing method or a result that cannot be awaited, `async for` over async generators and over
classes with `__aiter__`/`__anext__`, `break`/`continue`/`return` inside, an exception raised
by `__anext__`, values sent through every level, under asyncio and driven by hand, with
tracebacks."""

import asyncio
import traceback


def run(coro):
    """Drives a coroutine by hand, counting its suspensions."""
    steps = 0
    try:
        while True:
            coro.send(None)
            steps += 1
    except StopIteration as stop:
        return steps, stop.value


class Suspend:
    """Awaiting this suspends once, with `value` going up to the driver."""

    def __init__(self, value):
        self.value = value

    def __await__(self):
        got = yield self.value
        return got


class Log:
    def __init__(self, name, swallow=False, suspend=True):
        self.name = name
        self.swallow = swallow
        self.suspend = suspend
        self.events = []

    async def __aenter__(self):
        self.events.append("enter " + self.name)
        if self.suspend:
            await Suspend("in enter")
        return self

    async def __aexit__(self, kind, value, tb):
        self.events.append("exit %s %s" % (self.name, kind.__name__ if kind else None))
        if self.suspend:
            await Suspend("in exit")
        return self.swallow


async def uses_log(n, fail=False, swallow=False, suspend=True):
    log = Log("a", swallow, suspend)
    total = 0
    async with log as entered:
        total += n
        async with Log("b", suspend=suspend) as inner:
            total += len(inner.events)
        if fail:
            raise ValueError("in block %d" % n)
        total += entered is log
    return total, log.events


class NoAenter:
    async def __aexit__(self, *exc):
        return False


class NoAexit:
    async def __aenter__(self):
        return self


class EnterNotAwaitable:
    def __aenter__(self):
        return 42

    async def __aexit__(self, *exc):
        return False


class ExitNotAwaitable:
    async def __aenter__(self):
        return self

    def __aexit__(self, *exc):
        return "no"


class SyncOnly:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


async def enters(manager):
    async with manager:
        return "inside"


async def agen(n):
    for i in range(n):
        await Suspend(i)
        yield i * i


class Countdown:
    """An async iterator by hand: `__anext__` returns an awaitable that suspends or not."""

    def __init__(self, start, suspend=False):
        self.at = start
        self.suspend = suspend

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self.at <= 0:
            raise StopAsyncIteration
        if self.suspend:
            await Suspend(self.at)
        self.at -= 1
        return self.at + 1


class FailsAt:
    def __init__(self, at):
        self.at = at
        self.i = 0

    def __aiter__(self):
        return self

    async def __anext__(self):
        self.i += 1
        if self.i == self.at:
            raise KeyError("item %d" % self.i)
        return self.i


class NoAiter:
    pass


class AiterWithoutAnext:
    def __aiter__(self):
        return object()


class AnextNotAwaitable:
    def __aiter__(self):
        return self

    def __anext__(self):
        return 5


class AnextAwaitFails:
    def __aiter__(self):
        return self

    def __anext__(self):
        return self

    def __await__(self):
        raise OSError("await failed")


async def sums(iterable):
    total = 0
    seen = []
    async for x in iterable:
        if x == 3:
            continue
        if x > 50:
            break
        total += x
        seen.append(x)
    return total, seen


async def first_over(iterable, limit):
    async for x in iterable:
        if x > limit:
            return x
    return None


async def nested(n):
    out = []
    async with Log("outer") as log:
        async for i in Countdown(n, suspend=True):
            async for j in agen(i):
                out.append((i, j))
    return out, log.events


async def comprehension(n):
    return [x async for x in Countdown(n)], [await Suspend(x) for x in range(2)]


async def gathered(n):
    async def one(k):
        async with Log(str(k), suspend=False):
            await asyncio.sleep(0)
            async for x in Countdown(k):
                await asyncio.sleep(0)
        return k

    return await asyncio.gather(*(one(k) for k in range(n)))


def show(label, coro):
    try:
        print(label, run(coro))
    except Exception as e:
        print(label, type(e).__name__, e)
        print("".join(traceback.format_exception(e)).replace(__file__, "FILE"), end="")


def main():
    for _ in range(3):
        show("log", uses_log(5))
        show("log no suspend", uses_log(6, suspend=False))
        show("log swallow", uses_log(7, fail=True, swallow=True))
    show("log fail", uses_log(8, fail=True))
    for manager in [NoAenter(), NoAexit(), EnterNotAwaitable(), ExitNotAwaitable(), SyncOnly(), 3]:
        show("enters " + type(manager).__name__, enters(manager))
    for _ in range(3):
        show("sums agen", sums(agen(8)))
        show("sums countdown", sums(Countdown(6)))
        show("sums countdown suspend", sums(Countdown(60, suspend=True)))
        show("first_over", first_over(Countdown(9, suspend=True), 6))
        show("first_over none", first_over(agen(3), 100))
    for it in [FailsAt(4), NoAiter(), AiterWithoutAnext(), AnextNotAwaitable(), AnextAwaitFails(), None]:
        show("sums " + type(it).__name__, sums(it))
    for _ in range(2):
        show("nested", nested(3))
        show("comprehension", comprehension(4))
    c = sums(Countdown(4, suspend=True))
    print("sent", c.send(None), c.send("x"), c.send("y"))
    try:
        c.throw(RuntimeError("thrown in"))
    except RuntimeError as e:
        print("thrown", e)
    c = uses_log(1)
    print("closing", c.send(None))
    c.close()
    print("closed", c.cr_frame)
    for _ in range(2):
        print("gathered", asyncio.run(gathered(5)))


main()
