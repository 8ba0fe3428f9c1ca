"""Attributes in `__slots__` members and in instances' own dicts (the interpreter's
LOAD_ATTR_SLOT / STORE_ATTR_SLOT and LOAD_ATTR_WITH_HINT): reads, stores, replaced values,
members never set or deleted, a subclass, a dict changed behind the code's back."""

from _leakcheck import leakcheck


class Vec:
    __slots__ = ("x", "y", "z")

    def __init__(self, x, y, z):
        self.x = x
        self.y = y
        self.z = z

    def norm2(self):
        return self.x * self.x + self.y * self.y + self.z * self.z

    def scale(self, k):
        self.x = self.x * k
        self.y = self.y * k
        self.z = self.z * k
        return self


class Vec4(Vec):
    __slots__ = ("w",)


def total(vs):
    t = 0
    for v in vs:
        t += v.scale(2).norm2()
    return t


vs = [Vec(i, i + 1, i + 2) for i in range(30)]
for _ in range(3):
    print(total(vs))

half = Vec4.__new__(Vec4)
half.x = 1
try:
    print(half.norm2())
except AttributeError as e:
    print("AttributeError", e)
v = Vec(1.5, 2, "s")
del v.z
try:
    v.norm2()
except AttributeError as e:
    print("AttributeError", e)
v.z = 3
print(v.norm2(), total([Vec(1, 2, 3), Vec4(4, 5, 6)]))


class Bag:
    def __init__(self, n):
        self.n = n
        for i in range(n):
            setattr(self, "extra%d" % (i * 7 % n), i)  # keys in another order each time: no shared keys

    def size(self):
        return self.n + self.extra0


def sizes(bags):
    out = []
    for b in bags:
        out.append(b.size() + b.n)
    return out


bags = [Bag(k) for k in range(1, 40)]
for _ in range(3):
    print(sum(sizes(bags)))
bags[3].__dict__.clear()
bags[3].__dict__["n"] = 100
bags[3].__dict__["extra0"] = -1
print(sizes(bags[:5]))
del bags[4].extra0
try:
    sizes(bags[:5])
except AttributeError as e:
    print("AttributeError", e)
Bag.extra0 = property(lambda self: "from the type")
try:
    print(sizes(bags[5:8]))
except TypeError as e:
    print("TypeError", e)
del Bag.extra0

import math
import random as _random


def module_reads(n):
    t = 0.0
    for i in range(n):
        t += math.sqrt(i) + math.floor(i / 3)
    return t


print(module_reads(50))
math_sqrt = math.sqrt
math.sqrt = lambda x: 1.0  # rebinding keeps the entry: the new value is read
print(module_reads(5))
del math.sqrt  # an empty entry: the generic lookup raises
try:
    module_reads(5)
except AttributeError as e:
    print("AttributeError", e)
math.sqrt = math_sqrt
math.extra_name_to_grow_the_dict = 1  # new keys: the version guard fails, same results
print(module_reads(5))


def seed_of(mod):
    return mod.random  # LOAD_ATTR_MODULE seen with one module, then another object


for _ in range(12):
    seed_of(_random)
print(seed_of(type("NotAModule", (), {"random": "class attribute"})))

leakcheck("total", lambda: total(vs))
leakcheck("module_reads", lambda: module_reads(20))
leakcheck("sizes", lambda: sizes(bags[10:20]))
