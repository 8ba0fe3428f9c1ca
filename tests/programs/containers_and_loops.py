from _leakcheck import leakcheck


def build(n):
    lst = [i * i for i in range(n)]
    tup = (n, n + 1, "x")
    d = {"a": n, "b": lst[-1] if lst else None}
    d["c"] = tup[1]
    lst[0:0] = [-1]
    total = 0
    for v in lst:
        if v in (4, 9, 16):
            continue
        if v > 400:
            break
        total += v
    s = {1, 2, n}
    return total, tup, sorted(d.items()), n in s, len(lst), lst[1] if n else None


def nested(n):
    grid = [[0] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            grid[i][j] = i * j
    return sum(sum(row) for row in grid)


def logic(a, b, c):
    return (a and b) or c, a or b, not a, a and not b, (a or c) and b


for i in range(25):
    print(build(i), nested(i % 6), logic(i % 2, i % 3, i))
leakcheck("build", lambda: build(30))
leakcheck("nested", lambda: nested(5))
