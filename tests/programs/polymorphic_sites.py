"""Attribute and method sites that see several types: once compiled with the type the
interpreter saw, the other types take the generic path (no deopt), with the same results,
errors and reference counts."""

from _leakcheck import leakcheck


class Rect:
    def __init__(self, w, h):
        self.w = w
        self.h = h

    def area(self):
        return self.w * self.h


class Square(Rect):
    def __init__(self, side):
        self.side = side
        self.w = side
        self.h = side

    def area(self):
        return self.side * self.side


class Slotted:
    __slots__ = ("w", "h")

    def __init__(self, w, h):
        self.w = w
        self.h = h

    def area(self):
        return self.w * self.h + 0.5


def measure(shape):
    return shape.w + shape.h, shape.area()


def grow(shape, k):
    shape.w = shape.w * k
    return shape.w


shapes = [Rect(2, 3)] * 20 + [Square(4), Slotted(1, 2), Rect(5, 6), Square(7), Slotted(3, 3)] * 5
print([measure(s) for s in shapes][-6:])
print([grow(s, 2) for s in shapes[-5:]])


class Odd:
    w = "class attribute"

    @property
    def h(self):
        return "property"

    def area(self):
        raise ValueError("no area for Odd")


try:
    measure(Odd())
except ValueError as e:
    print("ValueError", e)
try:
    measure(object())
except AttributeError as e:
    print("AttributeError", e)
try:
    grow(Slotted(1, 1).__class__, 1)
except Exception as e:  # noqa: BLE001 - the exact type is what is being compared
    print(type(e).__name__, e)
leakcheck("measure", lambda: measure(shapes[-1]) and measure(shapes[0]))
leakcheck("grow", lambda: grow(Rect(1, 2), 3) and grow(Square(2), 1))
