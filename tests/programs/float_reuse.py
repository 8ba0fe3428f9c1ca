"""Float arithmetic the interpreter specialised, computed in machine code: results written into
an operand nobody else holds, never into one that is shared (the same float on both sides, a
float kept in a list or a local, a constant), with signs of zero, infinities and NaN."""

from _leakcheck import leakcheck


def poly(x, y):
    t = x * x + y * y - x * y
    return t * t - (x - y) * (x + y)


def kept(xs, y):
    a = xs[0]
    b = a * y
    c = a + a
    return a, b, c, xs[0]


def chain(x):
    for _ in range(5):
        x = x * 1.5 - 0.25
    return x


for _ in range(40):
    results = [poly(1.5, -2.25), poly(-0.0, 0.0), poly(float("inf"), 1.0), poly(1e200, 1e200),
               kept([2.5], 4.0), chain(1.0), chain(-0.0)]
print(results)
print(poly(float("nan"), 2.0) != poly(float("nan"), 2.0))
shared = 3.75
print(poly(shared, shared), shared)
leakcheck("poly", lambda: poly(0.5, 0.25))
leakcheck("kept", lambda: kept([0.5], 2.0))
