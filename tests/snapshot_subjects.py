"""Functions whose compiled forms tests/test_snapshots.py compares with stored snapshots.
Changing this file changes their bytecode: update the snapshots with
FERROJIT_UPDATE_SNAPSHOTS=1 and review the diff."""


def branchy(a, b):
    if a is None:
        return b
    total = a + b
    while total > 10:
        total = total - 3
    return total


def method_call(obj, items):
    for item in items:
        obj.add(item, key=1)
    return obj.result


def containers(x):
    return [x, (x, 2), {"k": x}]
