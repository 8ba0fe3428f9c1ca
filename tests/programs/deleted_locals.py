"""`del` of locals, cells, attributes and globals, and class statements inside functions: a
deleted parameter read again (UnboundLocalError), deleting twice, a local deleted in a loop and
bound again, a deleted local's object finalised at the `del`, a deleted name seen through
`f_locals`, `del` of a captured variable, of an attribute (missing, a property's deleter, a
slot), of a global (missing: NameError), and classes made in a function (with a closure)."""

import sys

from _leakcheck import leakcheck


class Noisy:
    def __init__(self, tag):
        self.tag = tag

    def __del__(self):
        print("del", self.tag)


def drop_param(x, flag):
    y = x * 2
    del x
    if flag:
        return x
    return y


def twice(flag):
    v = 1
    del v
    if flag:
        del v
    return "ok"


def rebinding(n):
    out = []
    for i in range(n):
        item = [i]
        out.append(item)
        del item
    return out, "item" in sys._getframe().f_locals


def finalise_at_del():
    obj = Noisy("at del")
    print("before del")
    del obj
    print("after del")


def drop_cell(flag):
    value = Noisy("cell")

    def peek():
        return value.tag

    seen = peek()
    del value
    if flag:
        return peek()
    return seen


class WithDeleter:
    __slots__ = ("a", "_b")

    @property
    def b(self):
        return self._b

    @b.deleter
    def b(self):
        print("deleter runs")
        del self._b


def drop_attrs(obj, which):
    if which == "a":
        obj.a = 1
        del obj.a
        return hasattr(obj, "a")
    if which == "b":
        obj._b = 2
        del obj.b
        return hasattr(obj, "_b")
    del obj.a


SCRATCH = 1


def drop_global(flag):
    global SCRATCH
    SCRATCH = flag
    del SCRATCH
    if flag:
        del SCRATCH
    return "SCRATCH" in globals()


def make_class(base, extra):
    class Made(base):
        label = extra

        def describe(self):
            return "%s/%s/%s" % (type(self).__name__, self.label, extra)

    return Made


for _ in range(30):
    drop_param(2, False)
    drop_attrs(WithDeleter(), "a")
    drop_global(False)
    make_class(object, 1)
    twice(False)
    rebinding(3)
print("drop", drop_param(4, False), twice(False), rebinding(3))
for call in (lambda: drop_param(1, True), lambda: twice(True)):
    try:
        call()
    except UnboundLocalError as e:
        print("UnboundLocalError", e)
finalise_at_del()
finalise_at_del()
print("cell", drop_cell(False))
try:
    drop_cell(True)
except NameError as e:
    print(type(e).__name__, e)
print("attrs", drop_attrs(WithDeleter(), "a"), drop_attrs(WithDeleter(), "b"))
try:
    drop_attrs(WithDeleter(), "c")
except AttributeError as e:
    print("AttributeError", e)
print("global", drop_global(False))
try:
    drop_global(True)
except NameError as e:
    print("NameError", e, e.name)
Made = make_class(dict, "x")
print("class", Made().describe(), Made.__qualname__, Made.__mro__[1].__name__, make_class(object, 2)().describe())
leakcheck("rebinding", lambda: rebinding(5))
leakcheck("drop_param", lambda: drop_param([1], False))
leakcheck("drop_global", lambda: drop_global(False))
leakcheck("make_class", lambda: make_class(object, 1)().describe())
