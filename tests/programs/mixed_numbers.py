"""Arithmetic at sites whose operand types vary (floats with ints, ints, big ints, bools, float
subclasses, strs): compiled code computes a float with a one-digit int in doubles and leaves
everything else to the generic operators, with the same results, signs of zero, infinities,
NaNs and errors."""

import math


class Money(float):
    def __add__(self, other):
        return "Money.__add__"


def combine(a, b):
    return (a + b, a - b, a * b, a / b if b else "skip", b - a)


def accumulate(xs, factor):
    total = 0
    for x in xs:
        total += x * factor
        total -= x / 2
    return total


def inplace(a, b):
    a += b
    a -= b
    a *= b
    a /= b
    return a


values = [3, -3, 0, 2.5, -0.0, 0.0, 1 << 40, -(1 << 29), (1 << 30) - 1, 1 << 30, True,
          float("inf"), 1e308, 7.0, Money(1.5)]
for _ in range(12):
    rows = []
    for a in values:
        for b in values:
            try:
                rows.append(combine(a, b))
            except (ZeroDivisionError, OverflowError) as e:
                rows.append(type(e).__name__ + ": " + str(e))
    acc = [accumulate([1, 2.5, 3, -4], f) for f in (2, 0.5, -1, 1 << 31)]
    ins = [inplace(2.0, 3), inplace(5, 0.5), inplace(1.5, -2)]
print(len(rows))
for r in rows:
    print(repr(r))
print(acc, ins)
print(combine(float("nan"), 1)[0] != combine(float("nan"), 1)[0])
for a, b in [(1.0, 0), (3, 0.0), (0.0, 0.0)]:
    try:
        print(a / b)
    except ZeroDivisionError as e:
        print("ZeroDivisionError:", e)
try:
    combine("s", 1.0)
except TypeError as e:
    print("TypeError:", e)
print(math.copysign(1, combine(-0.0, 0)[0]), math.copysign(1, combine(0, -0.0)[1]))
