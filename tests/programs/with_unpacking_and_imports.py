"""`with` blocks (normal exit, an exception inside, `return` from inside, nested, `__exit__`
swallowing the exception, objects that are not context managers), `*` and `**` in calls and
displays (`f(*args, **kw)`, a keyword given twice, `**` of a non-mapping, `*` of a
non-iterable, generators and custom mappings as arguments), set and dict displays and
comprehensions, and `import` and `from ... import` inside functions (including a replaced `__import__`, and names
that are not there)."""

import builtins

from _leakcheck import leakcheck


class Managed:
    def __init__(self, log, swallow=False):
        self.log = log
        self.swallow = swallow

    def __enter__(self):
        self.log.append("enter")
        return self

    def __exit__(self, kind, value, tb):
        self.log.append("exit " + (kind.__name__ if kind else "clean"))
        return self.swallow


def use(flag, swallow=False):
    log = []
    with Managed(log, swallow) as m:
        log.append("body")
        if flag == "raise":
            raise ValueError("inside")
        if flag == "return":
            return log, m.swallow
        with Managed(log):
            log.append("inner")
    log.append("after")
    return log


for _ in range(30):
    use("plain")
print("with", use("plain"), use("return"), use("raise", swallow=True))
try:
    use("raise")
except ValueError as e:
    print("ValueError", e)


class NoEnter:
    pass


class NoExit:
    def __enter__(self):
        return self


def bad_with(obj):
    with obj:
        return 1


for bad in (NoEnter(), NoExit(), 5):
    try:
        bad_with(bad)
    except TypeError as e:
        print("TypeError", e)


def target(a, b=2, *rest, c=3, **kw):
    return a, b, rest, c, sorted(kw.items())


def forward(*args, **kwargs):
    return target(*args, **kwargs)


def spread(xs, extra):
    return target(*xs, 9, *extra, c=4, **{"z": 1}, **extra_kw(extra))


def extra_kw(extra):
    return {"n%d" % i: v for i, v in enumerate(extra)}


class Keys:
    def keys(self):
        return ["k"]

    def __getitem__(self, key):
        return key.upper()


for i in range(30):
    forward(i, i, x=i)
    spread([1, 2], (3,))
print("calls", forward(1), forward(1, 2, 3, c=5, d=6), spread([1], (7, 8)))
print("mapping", forward(1, **Keys()), target(*(i for i in range(4))), forward(*"ab"))
for args, kwargs in (((1,), {"a": 2}), ((), 5), (5, {}), ((1,), Keys())):
    try:
        print(forward(*args, **kwargs))
    except TypeError as e:
        print("TypeError", e)
try:
    target(1, **{"b": 1}, **{"b": 2})
except TypeError as e:
    print("TypeError", e)


def displays(xs, d):
    s = {1, 2, *xs}
    l = [*xs, *s, 0]
    t = (*xs, *l)
    m = {**d, "x": 0, **{"y": 1}}
    sc = {x % 3 for x in xs}
    dc = {x: x * x for x in xs if x}
    return sorted(s), l[:3], len(t), sorted(m.items()), sorted(sc), sorted(dc.items())


for _ in range(30):
    displays([1, 2, 3], {"a": 1})
print("displays", displays([3, 4, 4], {"b": 2}))
for bad in (5, [[1]]):
    try:
        print(displays(bad, {}))
    except TypeError as e:
        print("TypeError", e)
try:
    displays([1], [1, 2])
except TypeError as e:
    print("TypeError", e)


def local_imports(name):
    import math
    import os.path
    import json as j
    from os.path import join, dirname as dn
    import xml.dom.minidom as md

    return math.floor(2.5), os.path.basename(name), j.dumps([1]), join("a", dn(name)), md.__name__


for _ in range(30):
    local_imports("/a/b")
print("imports", local_imports("/x/y.txt"))
real_import = builtins.__import__


def fake_import(name, globals=None, locals=None, fromlist=(), level=0):
    print("importing", name, fromlist, level)
    return real_import(name, globals, locals, fromlist, level)


builtins.__import__ = fake_import
try:
    print("replaced", local_imports("/p/q")[1])
finally:
    builtins.__import__ = real_import


def missing_import(which):
    if which == 0:
        import no_such_module_anywhere

        return no_such_module_anywhere
    if which == 1:
        from os import no_such_name

        return no_such_name
    from builtins import no_such_builtin

    return no_such_builtin


for which in range(3):
    try:
        missing_import(which)
    except ImportError as e:
        print(type(e).__name__, e, e.name, e.path)
leakcheck("with", lambda: use("plain"))
leakcheck("with-raise", lambda: use("raise", swallow=True))
leakcheck("forward", lambda: forward(1, 2, x=3))
leakcheck("spread", lambda: spread([1, 2], (3,)))
leakcheck("displays", lambda: displays([1, 2, 3], {"a": 1}))
leakcheck("imports", lambda: local_imports("/a/b"))
