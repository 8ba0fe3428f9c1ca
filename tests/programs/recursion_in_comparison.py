"""The recursion limit reached inside a comparison of big ints (a RecursionError "in
comparison" from `PyObject_RichCompare`) in a function the interpreter specialised for small
ints (`COMPARE_OP_INT_JUMP`), at every depth around the limit. (Compiled code once released
the NULL that comparison returned and crashed.)"""

import sys

sys.setrecursionlimit(150)
BIG = 2**70


def below(a, b):
    if a < b:
        return 1
    return 0


def down(depth, compare, x, y):
    # The comparison at every level: where the limit falls inside it, RichCompare raises.
    compare(x, y)
    return down(depth - 1, compare, x, y) + 1


def climb(extra, compare, x, y):
    # `extra` frames first, so the limit falls on every instruction of the recursion in turn.
    if extra:
        return climb(extra - 1, compare, x, y)
    try:
        return down(1000, compare, x, y)
    except RecursionError as e:
        return str(e)


for i in range(60):
    below(i, i + 1)
for extra in range(6):
    print(extra, climb(extra, below, BIG, BIG + 1), climb(extra, below, -BIG, 3))
