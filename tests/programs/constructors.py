"""Calling classes from compiled code: `object.__new__` and a compiled `__init__` called
directly (plain, inherited, with defaults and `__slots__`), and every case that must end as
CPython's `type.__call__` ends: a custom `__new__`, `__init__` returning a value or being a
generator, raising, an abstract class, wrong argument counts."""
import sys
class V:
    def __init__(self, x, y):
        self.x = x
        self.y = y
class W(V):
    pass
class Bad:
    def __init__(self):
        return 3
class Gen:
    def __init__(self):
        yield 1
class Slots:
    __slots__ = ("a",)
    def __init__(self, a=5):
        self.a = a
class WithNew:
    def __new__(cls, *a):
        return super().__new__(cls)
    def __init__(self, q):
        self.q = q
class Raises:
    def __init__(self, n):
        if n:
            raise ValueError(n)
        self.n = n
import abc
class Abstract(abc.ABC):
    @abc.abstractmethod
    def m(self): ...
    def __init__(self):
        pass
def make(n):
    out = []
    for i in range(n):
        out.append(V(i, i + 1).x + W(i, 2).y + Slots().a + Slots(i).a + WithNew(i).q)
    return sum(out)
def errors():
    res = []
    for cls, args in [(Bad, ()), (Gen, ()), (Raises, (1,)), (Raises, (0,)), (Abstract, ()), (V, (1,)), (V, (1, 2, 3))]:
        try:
            o = cls(*args)
            res.append(type(o).__name__)
        except Exception as e:
            res.append("%s: %s" % (type(e).__name__, e))
    return res
for _ in range(30):
    r = make(20)
    e = errors()
print(r)
print(e)
print(sys.getrefcount(V), sys.getrefcount(Slots))
