"""Generic attribute and method sites go through ferrojit's per-site polymorphic caches. Each
thing a cache entry assumes is broken here after the sites got hot: a class gains a property of
an instance attribute's name, an instance's attributes turn into a dict, an instance attribute
shadows a method, an attribute is deleted, a base class's method is replaced, more types than a
cache holds; results, errors and reference counts must stay CPython's."""

import sys

from _leakcheck import leakcheck


class A:
    def __init__(self, v):
        self.v = v
        self.tag = "a"

    def kind(self):
        return "A"


class B(A):
    def kind(self):
        return "B"


class C(A):
    pass


class D(A):
    def kind(self):
        return "D"


class E(A):
    pass


class F(A):
    def kind(self):
        return "F"


class NoDict:
    __slots__ = ("v",)

    def __init__(self, v):
        self.v = v

    def kind(self):
        return "NoDict"


def read(o):
    return o.v


def call_kind(o):
    return o.kind()


def both(o):
    try:
        return read(o), call_kind(o)
    except AttributeError as e:
        return "AttributeError: %s" % e


def kind_of(o):
    return o.kind()


def v_of(o):
    return o.v


# More types than a cache holds.
zoo = [A(1), B(2), C(3), D(4), E(5), F(6), NoDict(7)]
for _ in range(40):
    out = [both(o) for o in zoo]
print(out)

# Sites that saw three types while warming up (CPython leaves them generic or specialises one).
trio = [B(1), D(2), F(3)]
for _ in range(40):
    out = [(kind_of(o), v_of(o)) for o in trio]
print(out)
shadowed = [B(4), D(5), F(6)]
for o in shadowed:
    o.kind = lambda: "shadowed"
print([(kind_of(o), v_of(o)) for o in shadowed + trio])
for o in trio:
    del o.v
print([kind_of(o) for o in trio])
for o in trio:
    try:
        v_of(o)
    except AttributeError as e:
        print("AttributeError:", e)

# An instance's attributes become a dict.
a = A(10)
print(both(a))
a.__dict__["extra"] = 1
print(both(a), both(A(11)))

# An instance attribute shadows a method (the shared keys grow).
b = B(20)
b.kind = lambda: "shadowed"
print(both(b), both(B(21)))

# An attribute is deleted.
c = C(30)
del c.v
print(both(c), both(C(31)))

# A class gains a property with an instance attribute's name.
D.v = property(lambda self: "property of D", lambda self, value: None)
print(both(D(40)), both(A(41)))
del D.v
print(both(D(42)))

# A base class's method is replaced.
A.kind = lambda self: "A, replaced"
print([both(o) for o in zoo])

# A slotted class's method is replaced.
NoDict.kind = lambda self: "NoDict, replaced"
print(both(NoDict(50)))

token = object()
holder = A(token)
before = sys.getrefcount(token)
for _ in range(200):
    read(holder)
    call_kind(holder)
print("refcount delta", sys.getrefcount(token) - before)

leakcheck("cached reads", lambda: [both(o) for o in zoo])
