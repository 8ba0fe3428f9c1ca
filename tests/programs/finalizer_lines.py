"""Finalizers and warnings that run when compiled code drops the last reference see the line
that dropped it: `x = None`, `del x`, a discarded call result, a reassigned local, and a
ResourceWarning from an unclosed file, reported with its line."""
import sys
import warnings


class Noisy:
    def __init__(self, tag):
        self.tag = tag

    def __del__(self):
        caller = sys._getframe(1)
        print("finalizer", self.tag, caller.f_code.co_name, caller.f_lineno)


def rebind(n):
    obj = Noisy("rebind")
    total = n + 1
    obj = None
    return total


def delete(n):
    obj = Noisy("del")
    total = n * 2
    del obj
    return total


def discard(n):
    Noisy("discard")
    return n - 1


def reassign(n):
    obj = Noisy("first")
    obj = Noisy("second")
    return n


def unclosed(path):
    fh = open(path)
    size = 0
    fh = None
    return size


def main():
    for i in range(12):
        rebind(i)
        delete(i)
        discard(i)
        reassign(i)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(12):
            unclosed(__file__)
    print(sorted({(w.category.__name__, w.lineno) for w in caught}))


main()
