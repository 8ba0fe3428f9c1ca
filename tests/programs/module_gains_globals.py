"""A module that gains globals after its functions were compiled, as a script does when it
defines more names after calling what it defined first: each new key fails the keys-version
guards of every compiled `LOAD_GLOBAL` in the module (a builtin's too)."""

SCALE = 2


def area(w, h):
    return abs(w) * abs(h)


def total(n):
    s = 0
    for i in range(n):
        s += area(i, SCALE)
    return s


for step in range(3):
    print("before", step, total(50))
    globals()["added_%d" % step] = step
    print("after", step, total(50))

results = [total(50) for _ in range(60)]
print(len(set(results)), results[-1])
SCALE = 3
print(total(50))
