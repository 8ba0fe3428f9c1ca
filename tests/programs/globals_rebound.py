"""Globals added, rebound and deleted, and a builtin shadowed by a global, after the functions
reading them were compiled: every change of the module's keys fails their `LOAD_GLOBAL`
guards, and the results must follow each change."""

OFFSET = 1


def uses_globals(xs):
    return len(xs) + OFFSET


def warm(n):
    total = 0
    for i in range(n):
        total += uses_globals([i] * (i % 5))
    return total


print("start", warm(300))
NEW = 2  # a new key in the module's dict
print("added", warm(300))
globals()["ANOTHER"] = 3
print("added again", warm(300))
OFFSET = 10  # the same key, a new value
print("rebound", warm(300))
del NEW
print("deleted", warm(300))


def len(x):  # a global shadowing the builtin
    return 7


print("shadowed", warm(300))
del len
print("unshadowed", warm(300))
del OFFSET
try:
    warm(1)
except NameError as e:
    print("NameError:", e)
