"""Loops in functions that are called once (on-stack replacement): the interpreter starts the
call, and the frame moves to compiled code at a loop header once the loop has gone round, with
its locals and its value stack (a `for` loop's iterator) as they stand. Then: results,
exceptions and their tracebacks (line numbers), `sys._getframe`, deleted locals, a loop inside
`try` (which stays in the interpreter), a loop body with its own `try`, generators consumed by
the loop, nested loops, early `break` and `for ... else`, a loop too short to move, and
tracing switched on in the middle of a loop."""
import sys
import traceback


def sum_of_squares(n):
    total = 0
    for i in range(n):
        total += i * i
    return total


def collatz_steps(limit):
    longest, best = 0, 0
    start = 1
    while start < limit:
        n, steps = start, 0
        while n != 1:
            n = n // 2 if n % 2 == 0 else 3 * n + 1
            steps += 1
        if steps > longest:
            longest, best = steps, start
        start += 1
    return best, longest


def fails_late(n):
    acc = []
    for i in range(n):
        acc.append(i)
        if i == n - 3:
            raise ValueError("late failure at %d of %d" % (i, len(acc)))
    return acc


def frame_lines(n):
    lines = []
    for i in range(n):
        if i % 250 == 0:
            lines.append(sys._getframe().f_lineno)
    return lines


def deletes_locals(n):
    kept = 0
    for i in range(n):
        tmp = i * 3
        if i % 2:
            del tmp
        else:
            kept += tmp
    try:
        return kept, tmp
    except UnboundLocalError as e:
        return kept, str(e)


def loop_inside_try(n):
    try:
        total = 0
        for i in range(n):
            total += i
            if i == n // 2:
                raise KeyError(i)
        return total
    except KeyError as e:
        return ("caught", e.args, total)


def try_inside_loop(n):
    errors = 0
    for i in range(n):
        try:
            if i % 97 == 0:
                raise ZeroDivisionError(i)
        except ZeroDivisionError:
            errors += 1
    return errors


def squares(n):
    for i in range(n):
        yield i * i


def consumes_generator(n):
    total = 0
    for v in squares(n):
        total += v
    return total


def nested(rows, cols):
    grid = []
    for r in range(rows):
        row = []
        for c in range(cols):
            row.append(r * cols + c)
        grid.append(sum(row))
    return grid[:3], grid[-1]


def breaks_early(items):
    for i, item in enumerate(items):
        if item == "stop":
            break
    else:
        return ("no stop", len(items))
    return ("stopped at", i)


def short_loop():
    out = []
    for c in "ab":
        out.append(c.upper())
    return out


calls = []


def tracer(frame, event, arg):
    if event == "call":
        calls.append(frame.f_code.co_name)
    return None


def helper(i):
    return i + 1


def traced_half_way(n):
    total = 0
    for i in range(n):
        if i == n // 2:
            sys.settrace(tracer)
        total += helper(i)
    sys.settrace(None)
    return total, len(calls)


print(sum_of_squares(20000))
print(collatz_steps(3000))
try:
    fails_late(1000)
except ValueError:
    traceback.print_exc(file=sys.stdout)
print(frame_lines(1000))
print(deletes_locals(1001))
print(deletes_locals(1000))
print(loop_inside_try(1000))
print(try_inside_loop(1000))
print(consumes_generator(2000))
print(nested(60, 70))
print(breaks_early(["x"] * 500 + ["stop"] + ["y"] * 10))
print(breaks_early(["x"] * 500))
print(short_loop())
print(traced_half_way(400))
