"""`for` over lists and tuples (whose iterators compiled code steps in machine code) while the
list changes under the loop, with shared and half-used iterators, subclasses, and the other
iterables that take the helper."""


class Items(list):
    pass


class Pair(tuple):
    pass


def total(xs):
    s = 0
    for x in xs:
        s += x
    return s


def grow_while_looping(n):
    xs = [1]
    seen = []
    for x in xs:
        seen.append(x)
        if len(xs) < n:
            xs.append(x + 1)
    return seen


def shrink_while_looping():
    xs = list(range(10))
    seen = []
    for x in xs:
        seen.append(x)
        del xs[0]
    return seen, xs


def clear_while_looping():
    xs = [1, 2, 3, 4]
    seen = []
    for x in xs:
        seen.append(x)
        xs.clear()
    return seen


def shared_iterator(xs):
    it = iter(xs)
    pairs = []
    for a in it:
        for b in it:
            pairs.append((a, b))
            break
    return pairs, list(it)


def with_else_and_break(xs, stop):
    for x in xs:
        if x == stop:
            break
    else:
        return "no break"
    return "broke at %r" % (x,)


def raising_inside(xs):
    out = []
    try:
        for x in xs:
            out.append(10 // x)
    except ZeroDivisionError as e:
        out.append(str(e))
    return out


def nested_tuples(rows):
    s = 0
    for row in rows:
        for v in row:
            s += v
    return s


for round_ in range(25):
    results = [
        total([1, 2, 3]),
        total((4, 5)),
        total([]),
        total(()),
        total(Items([7, 8])),
        total(Pair((9, 10))),
        total(range(4)),
        total({1: "a", 2: "b"}),
        total(x for x in (1, 2)),
        grow_while_looping(6),
        shrink_while_looping(),
        clear_while_looping(),
        shared_iterator([1, 2, 3, 4, 5]),
        shared_iterator((1, 2, 3)),
        with_else_and_break([1, 2, 3], 2),
        with_else_and_break((1, 2, 3), 9),
        raising_inside([5, 2, 0, 1]),
        nested_tuples([(1, 2), [3, 4], (5,)]),
    ]
print(results)
half_used = iter([1, 2, 3, 4])
next(half_used)
print(total(half_used), total(half_used))
try:
    total([1, "two"])
except TypeError as e:
    print("TypeError:", e)
