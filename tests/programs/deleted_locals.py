"""`del` of locals: a deleted parameter read again (UnboundLocalError), deleting twice, a local
deleted in a loop and bound again, a deleted local's object finalised at the `del`, and a
deleted name seen through `f_locals`."""

import sys

from _leakcheck import leakcheck


class Noisy:
    def __init__(self, tag):
        self.tag = tag

    def __del__(self):
        print("del", self.tag)


def drop_param(x, flag):
    y = x * 2
    del x
    if flag:
        return x
    return y


def twice(flag):
    v = 1
    del v
    if flag:
        del v
    return "ok"


def rebinding(n):
    out = []
    for i in range(n):
        item = [i]
        out.append(item)
        del item
    return out, "item" in sys._getframe().f_locals


def finalise_at_del():
    obj = Noisy("at del")
    print("before del")
    del obj
    print("after del")


for _ in range(30):
    drop_param(2, False)
    twice(False)
    rebinding(3)
print("drop", drop_param(4, False), twice(False), rebinding(3))
for call in (lambda: drop_param(1, True), lambda: twice(True)):
    try:
        call()
    except UnboundLocalError as e:
        print("UnboundLocalError", e)
finalise_at_del()
finalise_at_del()
leakcheck("rebinding", lambda: rebinding(5))
leakcheck("drop_param", lambda: drop_param([1], False))
