"""Locals and constants read without a reference of their own (borrowed-refs): rebinding a
local while its old value is in use (`x = f(x)`, `node = node.next`, `del`), exits with
borrowed values on the stack (a guard failing after warm-up, attribute errors, exceptions
caught in the same function), and reference counts printed as CPython sees them."""
import sys
from _leakcheck import leakcheck


class Node:
    def __init__(self, value, next=None):
        self.value = value
        self.next = next


def walk(node):
    total = 0
    while node is not None:
        total = total + node.value
        node = node.next
    return total


def rebind(x):
    x = str(x) + "!"
    x = x + x
    return len(x), x


def delete_after_use(items):
    first = items[0]
    size = len(first)
    del first
    try:
        return first
    except UnboundLocalError as e:
        return size, type(e).__name__


def scaled(p, k):
    return p.value * k, k * 1000


def attribute_error(p):
    try:
        return p.missing + 1
    except AttributeError:
        return p.value


def refcounts(obj):
    local = obj
    before = sys.getrefcount(local)
    alias = local
    after = sys.getrefcount(local)
    del alias
    return after - before


def compare_chain(a, b, c):
    return a < b < c, a == a, b is b, (a, b, c)


def main():
    chain = None
    for v in range(50):
        chain = Node(v, chain)
    for _ in range(40):
        assert walk(chain) == sum(range(50))
        rebind(7)
        delete_after_use(["abc"])
        scaled(Node(3), 2)
        attribute_error(Node(9))
        compare_chain(1, 2, 3)
    print(walk(chain), rebind(7), rebind("ab"), delete_after_use(["abc", "d"]))
    # After warm-up on ints: floats, strs and big ints fail the int guards with the borrowed
    # k and the constant on the stack.
    print(scaled(Node(3), 2), scaled(Node(1.5), 2.5), scaled(Node("a"), 2), scaled(Node(2**70), 3))
    try:
        scaled(Node(None), 1)
    except TypeError as e:
        print("TypeError", e)
    print(attribute_error(Node(4)))
    try:
        attribute_error(object())
    except AttributeError as e:
        print("AttributeError", e)
    print(refcounts(object()), refcounts(chain), compare_chain(1, 2.5, 3))
    node = Node(1)
    counts = sys.getrefcount(node)
    for _ in range(200):
        scaled(node, 1.5)
        attribute_error(node)
        walk(node)
    print("node refcount unchanged:", sys.getrefcount(node) == counts)
    leakcheck("walk", lambda: walk(chain))
    leakcheck("scaled/deopt", lambda: scaled(Node(1.5), 2.5))
    leakcheck("attribute_error", lambda: attribute_error(Node(2)))
    leakcheck("delete_after_use", lambda: delete_after_use(["xy"]))


main()
