from _leakcheck import leakcheck


def collatz(n):
    steps = 0
    while n != 1:
        if n % 2 == 0:
            n = n // 2
        else:
            n = 3 * n + 1
        steps += 1
    return steps


def mixed(a, b):
    r = a * b - a // (b or 1) + a % 7
    r = r ** 2 if r < 1000 else -r
    f = a / 3 + b * 0.5
    big = (a << 70) | b
    return r, round(f, 6), big, big >> 65, a ^ b, a & b, ~a, -b, +a


def compare_all(a, b):
    return [a < b, a <= b, a == b, a != b, a > b, a >= b, a is b, a is not b]


for i in range(1, 40):
    print(i, collatz(i), mixed(i, i % 5), compare_all(i, 20))
print(mixed(10**30, 7))
print(compare_all("abc", "abd"), compare_all(1.5, 1))
leakcheck("collatz", lambda: collatz(27))
leakcheck("mixed", lambda: mixed(123456789, 3))
