import builtins
from _leakcheck import leakcheck

SCALE = 2


def scaled(x):
    return x * SCALE + len("ab")


class Box:
    kind = "box"

    def __init__(self, v):
        self.v = v

    def describe(self):
        return "%s:%r" % (self.kind, self.v)


def read(b):
    return b.v, b.describe(), b.kind


for i in range(30):
    print(scaled(i), read(Box(i)))

SCALE = 10  # rebinding a global after the function got hot
print([scaled(i) for i in range(5)])

old_len = builtins.len
builtins.len = lambda s: 100  # rebinding a builtin
print([scaled(i) for i in range(3)])
builtins.len = old_len
print([scaled(i) for i in range(3)])

Box.kind = "crate"  # changing a class attribute
print([read(Box(i)) for i in range(3)])

Box.describe = lambda self: "patched " + str(self.v)  # replacing a method
print([read(Box(i)) for i in range(3)])

b = Box(1)
b.v = "now a string"  # attribute switching type
print(read(b))
b.__dict__["extra"] = 1  # materialising the instance dict
print(read(b), b.extra)
del Box.kind
try:
    read(Box(5))
except AttributeError as e:
    print("AttributeError", e)


# Adding a key to builtins or to the module's globals changes the dict's keys version: a
# compiled LOAD_GLOBAL that pushes a NULL before the callable must leave the interpreter a
# stack without that NULL when it hands over.
def calls_globals(x):
    return x + len("abc") + scaled(x)


print([calls_globals(i) for i in range(25)])
builtins.ferrojit_new_builtin = 1
print([calls_globals(i) for i in range(3)])
new_module_global = 2
print([calls_globals(i) for i in range(3)])
del builtins.ferrojit_new_builtin


def shadow():
    return len


print(shadow() is builtins.len)
len = lambda s: -1  # noqa: E731 - a module global now shadows the builtin
print(shadow()("x"), scaled(1))
del len
print(shadow() is builtins.len)
leakcheck("scaled", lambda: scaled(3))
