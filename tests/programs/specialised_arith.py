"""Arithmetic and comparisons the interpreter specialises for exact ints, floats and strs,
then fed other things after warming up: ints past one digit (2**30) and past 64 bits, bools
(an int subclass), a float subclass, NaN, mixed int and float, str equality; `while` loops
whose test jumps backward; functions made at run time, with defaults, and list
comprehensions."""

from _leakcheck import leakcheck


def int_ops(a, b):
    s = a + b
    d = a - b
    p = a * b
    if a < b:
        return s, d, p, "lt"
    if a == b:
        return s, d, p, "eq"
    return s, d, p, "gt"


def float_ops(x, y):
    r = x * y + x - y
    if x <= y:
        return r, True
    return r, False


def same_name(a, b):
    if a == b:
        return "same"
    if a != b:
        return "differ"
    return "neither"


def count_down(n, step=3):
    steps = 0
    while n > 0:
        n = n - step
        steps += 1
    return steps, n


class Meters(float):
    def __add__(self, other):
        return Meters(float(self) + float(other) + 1000)

    def __mul__(self, other):
        return Meters(float(self) * 10)


for i in range(40):
    int_ops(i, 7)
    float_ops(i * 0.5, 3.25)
    same_name("a%d" % (i % 3), "a1")
    count_down(i)
print(int_ops(3, 4), int_ops(2**30 - 1, 1), int_ops(-(2**30), 2**30), int_ops(2**62, 2**62))
print(int_ops(10**20, -(10**20)), int_ops(True, 2), int_ops(5, False), int_ops(1.5, 2))
print(float_ops(1.5, 2.5), float_ops(float("nan"), 1.0), float_ops(float("inf"), float("inf")))
print(float_ops(2, 3.0), float_ops(Meters(2.0), 1.0), float_ops(1e308, 1e308))
print(same_name("x", "x"), same_name("x", "y"), same_name("a1", "a" + "1"), same_name(1, 1.0))
print(count_down(10), count_down(2**40, 2**37), count_down(7.5), count_down(-1))
try:
    int_ops("a", 1)
except TypeError as e:
    print("TypeError", e)
try:
    count_down(None)
except TypeError as e:
    print("TypeError", e)


def make_adders(n):
    def adder(x, k=n, *, scale=2):
        return (x + k) * scale

    return adder


def squares(xs):
    return [x * x for x in xs if x % 2]


for i in range(30):
    make_adders(i)(1)
    squares(range(i))
print(make_adders(5)(1), make_adders(5)(1, scale=10), make_adders("a")("b"), squares(range(12)))
print(make_adders.__code__.co_consts[1] is make_adders(1).__code__, make_adders(3).__defaults__,
      make_adders(3).__kwdefaults__, make_adders(3).__qualname__)

def pick(xs, i, ys):
    xs[i] = xs[i] + ys[i]
    return xs[i], ys[i]


class Row(list):
    def __getitem__(self, i):
        return 100


for i in range(30):
    pick([1, 2, 3], i % 3, (10, 20, 30))
print(pick([1, 2, 3], -1, (10, 20, 30)), pick([1.5, 2.5], True, (1, 2)), pick(Row([1, 2]), 0, (5, 6)))
print(pick([1, 2], 1, [7, 8]), pick({0: "a"}, 0, ("b",)), pick([[1], [2]], 0, ([3],)))
for bad in (5, 2**40, -4):
    try:
        pick([1, 2, 3], bad, (1, 2, 3))
    except IndexError as e:
        print("IndexError", e)
try:
    pick([1, 2], 0, (1,)[1:])
except IndexError as e:
    print("IndexError", e)


def accumulate(xs):
    total = 0.0
    for x in xs:
        total = total + x * 2.0 - 1.0
    return total


print(accumulate([0.5] * 40), accumulate([1, 2.5]), accumulate([Meters(1.0), 2.0]))
leakcheck("pick", lambda: pick([1, 2, 3], 1, (4, 5, 6)))
leakcheck("accumulate", lambda: accumulate([0.25] * 10))
leakcheck("int_ops", lambda: int_ops(2**40, 3))
leakcheck("float_ops", lambda: float_ops(0.5, 0.25))
leakcheck("count_down", lambda: count_down(100))
leakcheck("make_adders", lambda: make_adders(1)(2))
leakcheck("squares", lambda: squares(range(20)))
