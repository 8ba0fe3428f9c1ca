import sys


def callee():
    f = sys._getframe(1)
    return f.f_code.co_name, f.f_lineno, sorted(f.f_locals)


def caller(a):
    b = a + 1
    info = callee()
    return info, b


def lineno_here():
    x = 1
    y = x + 1
    return sys._getframe().f_lineno + y


def gen(n):
    for i in range(n):
        yield i * 2


def closure(n):
    def inner(k):
        return n + k

    return inner(1)


for i in range(25):
    print(caller(i), lineno_here(), list(gen(3)), closure(i))

traced = []


def tracer(frame, event, arg):
    if frame.f_code.co_name == "caller":
        traced.append((event, frame.f_lineno))
    return tracer


sys.settrace(tracer)
caller(1)
sys.settrace(None)
print("traced", traced)

profiled = []
sys.setprofile(lambda frame, event, arg: profiled.append((frame.f_code.co_name, event)) if frame.f_code.co_name in ("caller", "callee") else None)
caller(2)
sys.setprofile(None)
print("profiled", profiled)
