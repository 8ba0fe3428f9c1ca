"""Shared by the differential programs: a coarse leak check whose printed verdict is the same on
plain CPython and under ferrojit unless one of them leaks per call."""

import gc
import sys


def leakcheck(label, fn, rounds=200):
    for _ in range(20):
        fn()
    gc.collect()
    before = sys.getallocatedblocks()
    for _ in range(rounds):
        fn()
    gc.collect()
    grown = sys.getallocatedblocks() - before
    print(label, "leak-free" if grown < rounds // 4 else "grew by %d blocks" % grown)
