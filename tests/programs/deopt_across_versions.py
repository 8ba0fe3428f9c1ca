"""Two speculating sites in one function, failing in turns: the first site's failures recompile
the function while the second still speculates, and the second's failures before and after
that recompilation add up (run with `--deopt-limit 3`: at most 4 exits a site)."""

from _leakcheck import leakcheck


def pair(a, b, c, d):
    x = a + b  # site A: ints when compiled
    y = c + d  # site B: ints when compiled
    return x, y


for i in range(30):
    pair(i, 1, i, 2)
out = []
for _ in range(2):
    out.append(pair(1, 2, 1.5, 2))  # B fails twice
for _ in range(4):
    out.append(pair(1.5, 2, 1, 2))  # A fails past the limit: recompiled, A generic
for _ in range(4):
    out.append(pair(1, 2, 2.5, 2))  # B fails twice more: its total passes the limit
for i in range(5):
    out.append(pair(i, i, i + 0.5, 1))
print(out)
leakcheck("pair", lambda: pair(1, 2, 3, 4))
