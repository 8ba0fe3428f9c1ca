"""Compiled functions calling compiled functions (ferrojit pushes and pops those frames itself):
frame objects that outlive their call (kept by sys._getframe or by a traceback), f_back chains,
line numbers, locals, exceptions crossing several levels, deopts inside a callee, recursion
depth, argument reference counts, and leaks."""

import sys
import traceback

from _leakcheck import leakcheck


def keep_frame(a, b):
    total = a + b
    frame = sys._getframe()
    total = total * 2
    return frame


def middle(x):
    y = x + 1
    return keep_frame(x, y)


def outer(x):
    z = x * 3
    return middle(z)


def describe(frame):
    names = []
    f = frame
    while f is not None and len(names) < 4:
        names.append((f.f_code.co_name, f.f_lineno))
        f = f.f_back
    locs = {k: v for k, v in frame.f_locals.items() if k != "frame"}
    return names, sorted(locs.items())


def fail(n):
    if n > 2:
        raise ValueError("too big: %d" % n)
    return n


def relay(n):
    return fail(n) + 1


def catch_it(n):
    try:
        return relay(n)
    except ValueError as e:
        tb = e.__traceback__
        frames = []
        while tb is not None:
            frames.append((tb.tb_frame.f_code.co_name, tb.tb_lineno, sorted(tb.tb_frame.f_locals)))
            tb = tb.tb_next
        return frames


class Plain:
    def __init__(self, v):
        self.v = v

    def get(self):
        return self.v


class Other:
    def __init__(self, v):
        self.w = v

    @property
    def v(self):
        return self.w * 10


def read_v(o):
    return o.v


def via(o):
    return read_v(o) + 1


def depth(n):
    try:
        return depth(n + 1)
    except RecursionError:
        return n


def pass_through(o):
    return o


def hold(o):
    return pass_through(o)


for i in range(30):
    f = outer(i)
    print(describe(f)[0][0][0], describe(f)[1])
    print(catch_it(i % 5))
    print(via(Plain(i)))

print(describe(outer(7)))
# After the callees got hot: a callee's attribute switches to a property (deopt in the callee).
for i in range(3):
    print(via(Other(i)), via(Plain(i)))

token = object()
before = sys.getrefcount(token)
for _ in range(100):
    hold(token)
print("refcount delta", sys.getrefcount(token) - before)

first = depth(0)
second = depth(0)
print("recursion depth repeatable", first == second)

try:
    relay(9)
except ValueError:
    traceback.print_exc(file=sys.stdout)

leakcheck("kept frames", lambda: outer(3))
leakcheck("caught errors", lambda: catch_it(4))
leakcheck("plain calls", lambda: via(Plain(2)))
relay(10)
