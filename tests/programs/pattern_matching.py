"""match statements: literal, capture, sequence (with star), mapping (with **rest), class
(positional through __match_args__, keyword, self-matching builtins), guards, or-patterns,
and the errors pattern matching raises."""

from dataclasses import dataclass


@dataclass
class Point:
    x: int
    y: int


class Legacy:
    def __init__(self, a, b):
        self.a = a
        self.b = b


class BadArgs:
    __match_args__ = ["x"]


class Keys:
    a = "a"
    also_a = "a"


def describe(subject):
    match subject:
        case 0 | 1:
            return "small int %r" % subject
        case int(n) if n < 0:
            return "negative %d" % n
        case str() as s:
            return "string of %d" % len(s)
        case []:
            return "empty sequence"
        case [x]:
            return "one: %r" % (x,)
        case [first, *middle, last]:
            return "first %r, %d in the middle, last %r" % (first, len(middle), last)
        case {"kind": "circle", "r": r}:
            return "circle r=%r" % r
        case {"kind": kind, **rest}:
            return "%s with %s" % (kind, sorted(rest))
        case Point(0, y=0):
            return "origin"
        case Point(x, y) if x == y:
            return "diagonal %d" % x
        case Point(x=x):
            return "point x=%d" % x
        case Legacy(a=1, b=b):
            return "legacy b=%r" % b
        case None:
            return "none"
        case _:
            return "other %s" % type(subject).__name__


def errors():
    for subject, pattern in ((Point(1, 2), "too_many"), (Legacy(1, 2), "positional"), ({"a": 1, "b": 2}, "dup"), (1, "bad_args"), (1, "not_type")):
        try:
            if pattern == "too_many":
                match subject:
                    case Point(1, 2, 3):
                        pass
            elif pattern == "positional":
                match subject:
                    case Legacy(1):
                        pass
            elif pattern == "dup":
                match subject:
                    case {Keys.a: 1, Keys.also_a: 2}:
                        pass
                    case _:
                        pass
            elif pattern == "bad_args":
                match BadArgs():
                    case BadArgs(1):
                        pass
            else:
                t = len
                match subject:
                    case t():
                        pass
        except (TypeError, ValueError, SyntaxError) as e:
            print(pattern, type(e).__name__, e)


def lengths(items):
    total = 0
    for item in items:
        match item:
            case (a, b):
                total += a * b
            case (a, b, c, *_):
                total += a + b + c
            case _:
                total -= 1
    return total


subjects = [0, 1, -5, "abc", [], [7], (1, 2, 3, 4), {"kind": "circle", "r": 2}, {"kind": "sq", "w": 1, "h": 2},
            Point(0, 0), Point(3, 3), Point(4, 5), Legacy(1, "b"), Legacy(2, 2), None, 3.5, {"x": 1}]
for _ in range(12):
    out = [describe(s) for s in subjects]
print("\n".join(out))
for _ in range(12):
    n = lengths([(1, 2), (1, 2, 3), 5, (4, 5, 6, 7), [2, 2]])
print(n)
errors()

import sys

# Matching takes no reference it does not give back (the subject, its attributes, the values).
held = Point(7, [1])
mapping = {"kind": "k", "v": [2]}
before = sys.getrefcount(held), sys.getrefcount(held.y), sys.getrefcount(mapping), sys.getrefcount(mapping["v"])
for _ in range(50):
    describe(held)
    describe(mapping)
    lengths([held, mapping, (1, 2)])
after = sys.getrefcount(held), sys.getrefcount(held.y), sys.getrefcount(mapping), sys.getrefcount(mapping["v"])
print("reference counts unchanged:", before == after)
