"""Speculations that keep failing: a method site that sees a second class after warming up on
one, globals whose keys keep changing, attributes set in `__init__` only on some calls (a slot
that stays empty), and an instance whose `__dict__` was materialised. Run with a low
`--deopt-limit`, the failing sites become generic and their functions are recompiled; the output
must not change."""

from _leakcheck import leakcheck


class Circle:
    def __init__(self, r, label=None):
        self.r = r
        if label is not None:
            self.label = label

    def area(self):
        return 3 * self.r * self.r


class Square:
    def __init__(self, s):
        self.s = s

    def area(self):
        return self.s * self.s


def total_area(shapes):
    t = 0
    for s in shapes:
        t += s.area()
    return t


def describe(c):
    return getattr(c, "label", "-"), c.r


warm = [Circle(i) for i in range(20)]
print(total_area(warm))
mixed = [Circle(i) if i % 2 else Square(i) for i in range(40)]
for _ in range(10):
    print(total_area(mixed), end=" ")
print()
print([describe(Circle(i, "c%d" % i if i % 3 == 0 else None)) for i in range(12)])

odd = Circle(4, "odd")
odd.__dict__["extra"] = "materialised"
print(describe(odd), odd.extra, total_area([odd, Square(2)]))


def uses_globals(x):
    return x + OFFSET + len("ab")


OFFSET = 1
for n in range(30):
    globals()["churn_%d" % n] = n  # a new key each time: the keys version changes
    print(uses_globals(n), end=" ")
print()
for n in range(30):
    del globals()["churn_%d" % n]
print(uses_globals(100))

leakcheck("total_area", lambda: total_area(mixed))
leakcheck("describe", lambda: describe(Circle(3, "x")))
