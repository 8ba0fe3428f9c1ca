"""Closures and cells: functions whose locals are captured (MAKE_CELL, arguments among them),
inner functions and comprehensions that read and write them (COPY_FREE_VARS, LOAD_DEREF,
STORE_DEREF via `nonlocal`, LOAD_CLOSURE), a cell read before it is bound (NameError from the
inner function, UnboundLocalError from the outer one), zero-argument `super()` (the `__class__`
cell), decorators, annotations on an inner function, `f_locals` of a frame with cells, and a
cell that holds the last reference to an object with a finalizer."""

import sys

from _leakcheck import leakcheck


def counter(start):
    count = start

    def bump(step=1):
        nonlocal count
        count += step
        return count

    return bump


c = counter(10)
for _ in range(30):
    c()
print("counter", c(), c(5))


def scale_all(xs, factor):
    return [x * factor for x in xs]


def nested_comprehension(rows, offset):
    return [[v + offset for v in row if v != offset] for row in rows]


for _ in range(30):
    scale_all([1, 2, 3], 2)
print("scale", scale_all([1, 2.5, "a"], 3), nested_comprehension([[1, 2], [3, 4]], 2))


def read_before_bind(flag):
    def inner():
        return late

    if flag:
        return inner()
    late = "bound"
    return inner()


for _ in range(30):
    read_before_bind(False)
print("late", read_before_bind(False))
try:
    read_before_bind(True)
except NameError as e:
    print(type(e).__name__, e)


def outer_unbound(flag):
    if flag:
        print(value)
    value = 1

    def get():
        return value

    return get()


for _ in range(30):
    outer_unbound(False)
try:
    outer_unbound(True)
except UnboundLocalError as e:
    print(type(e).__name__, e)


class Base:
    def __init__(self, name):
        self.name = name

    def describe(self):
        return "base " + self.name


class Derived(Base):
    def __init__(self, name, extra):
        super().__init__(name)
        self.extra = extra

    def describe(self):
        return super().describe() + " derived " + str(self.extra) + " " + __class__.__name__


for i in range(30):
    d = Derived("d%d" % i, i)
print("super", d.describe(), d.name, d.extra)


def logged(fn):
    calls = []

    def wrapper(*args):
        calls.append(args)
        return fn(*args)

    wrapper.calls = calls
    return wrapper


@logged
def add(a, b):
    return a + b


for i in range(30):
    add(i, 1)
print("decorated", add(2, 3), len(add.calls))


def annotated_maker(k):
    def f(x: int, y: "str" = "s") -> list:
        return [x, y, k]

    return f


for _ in range(30):
    g = annotated_maker(1)
print("annotations", g(2), g.__annotations__, g.__defaults__)


def cells_in_locals(a):
    b = a * 2

    def use():
        return a + b

    seen = sys._getframe().f_locals
    return sorted((k, type(v).__name__) for k, v in seen.items()), use()


for _ in range(30):
    cells_in_locals(1)
print("f_locals", cells_in_locals(5))


class Noisy:
    def __init__(self, tag):
        self.tag = tag

    def __del__(self):
        print("del", self.tag)


def replace_in_cell():
    held = Noisy("first")

    def swap(new):
        nonlocal held
        held = new

    swap(Noisy("second"))
    print("after swap", held.tag)
    swap(None)
    print("after clear")


for _ in range(3):
    replace_in_cell()
print("cell vars", counter.__code__.co_cellvars, c.__code__.co_freevars)
leakcheck("counter", lambda: counter(1)(2))
leakcheck("scale_all", lambda: scale_all([1, 2, 3], 2))
leakcheck("derived", lambda: Derived("x", 1).describe())
leakcheck("read_before_bind", lambda: read_before_bind(False))
