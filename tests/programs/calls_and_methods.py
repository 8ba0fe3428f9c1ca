import sys
from _leakcheck import leakcheck


class Point:
    def __init__(self, x, y):
        self.x = x
        self.y = y

    def norm1(self):
        return abs(self.x) + abs(self.y)

    def moved(self, dx=0, dy=0):
        return Point(self.x + dx, self.y + dy)

    def __repr__(self):
        return "Point(%r, %r)" % (self.x, self.y)


def kw(a, b=2, *args, c=3, **kwargs):
    return (a, b, args, c, sorted(kwargs.items()))


def use_points(n):
    total = 0
    p = Point(0, 0)
    for i in range(n):
        p = p.moved(dx=1, dy=-2)
        total += p.norm1()
    return total, p


def calls():
    out = []
    out.append(kw(1))
    out.append(kw(1, 5, 6, 7, c=9, d=10))
    out.append(kw(b=4, a=3))
    bound = Point(3, 4).norm1
    out.append(bound())
    out.append(len([1, 2, 3]) + max(4, 5, key=lambda v: -v))
    out.append("-".join(str(i) for i in range(4)))
    out.append([1, 2, 3].pop())
    out.append(sorted({3: 1, 1: 2}.items()))
    return out


for i in range(30):
    print(use_points(i), calls())
p = Point(1, 2)
print(sys.getrefcount(p), p)
q = p.moved()
print(sys.getrefcount(p), sys.getrefcount(q))
leakcheck("use_points", lambda: use_points(10))
leakcheck("calls", calls)
