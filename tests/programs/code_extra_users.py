"""Another extension's use of code objects' extra slots (PEP 523's `_PyCode_SetExtra`), as
CPython's test_code does with ctypes: its free function is called for the code objects it gave a
value, and only for those, also for code objects ferrojit gave state of its own. (CPython 3.11
calls an index's free function for every slot a code object's extras hold, NULL included; a
code object sized for every index would call this Python callback during interpreter shutdown,
where it crashed.)"""
import ctypes

api = ctypes.pythonapi
FREEFUNC = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
request_index = api._PyEval_RequestCodeExtraIndex
request_index.argtypes = (FREEFUNC,)
request_index.restype = ctypes.c_ssize_t
set_extra = api._PyCode_SetExtra
set_extra.argtypes = (ctypes.py_object, ctypes.c_ssize_t, ctypes.c_void_p)
set_extra.restype = ctypes.c_int

freed = []


def on_free(pointer):
    freed.append(pointer)


FREE = FREEFUNC(on_free)
INDEX = request_index(FREE)


def make_functions(n):
    return [eval("lambda x: x + %d" % i) for i in range(n)]


def call_all(functions, rounds):
    total = 0
    for _ in range(rounds):
        for f in functions:
            total = f(total)
    return total


# Code objects created after the index exists, run (and so compiled) but never given a value.
plain = make_functions(20)
print("sum", call_all(plain, 30))
del plain
print("frees after dropping unmarked code:", freed)

# Code objects given a value: each is freed once with its own value.
marked = make_functions(5)
print("sum", call_all(marked, 30))
for i, f in enumerate(marked):
    set_extra(f.__code__, INDEX, 1000 + i)
del f
del marked
print("frees after dropping marked code:", sorted(freed))

# Functions that live until shutdown, compiled, none marked: shutdown must not call on_free.
survivors = make_functions(10)
print("sum", call_all(survivors, 30))
