import sys
import traceback
from _leakcheck import leakcheck


def may_fail(x):
    if x == 3:
        raise ValueError("three")
    return 10 // (x - 5)


def catches(n):
    out = []
    for i in range(n):
        try:
            out.append(may_fail(i))
        except ValueError as e:
            out.append("V:" + str(e))
        except ZeroDivisionError as e:
            out.append("Z:" + str(e))
        finally:
            out.append(i)
    return out


def attr_error(o):
    return o.missing_attribute


def name_error():
    return undefined_name_here  # noqa: F821


def unbound():
    if False:
        x = 1
    return x  # noqa: F821


def deep(n):
    if n == 0:
        return attr_error(object())
    return deep(n - 1)


for i in range(12):
    print(catches(i))

for fn in (lambda: attr_error(1), name_error, unbound, lambda: deep(5), lambda: may_fail(3), lambda: may_fail(5)):
    for _ in range(4):
        try:
            fn()
        except Exception:
            print("".join(traceback.format_exc().splitlines(True)[-3:]).strip())
            print("frames:", len(traceback.extract_tb(sys.exc_info()[2])))


def recurse(n):
    return recurse(n + 1) if n < 100000 else n


for _ in range(3):
    try:
        recurse(0)
    except RecursionError as e:
        print("RecursionError", e)
leakcheck("catches", lambda: catches(8))
leakcheck("errors", lambda: [getattr(sys, "nope", None) for _ in range(3)])
may_fail(3)
