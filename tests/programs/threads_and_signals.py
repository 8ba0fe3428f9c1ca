"""Loops in compiled code must still let other threads run and signal handlers fire: every
backward jump checks the eval breaker, as the interpreter does. A JIT that forgets this hangs
here, so a watchdog (a C thread, which needs no GIL) ends the process after 120 s."""

import faulthandler
import signal
import sys
import threading

faulthandler.dump_traceback_later(120, exit=True)

stop = False


def spin_while_not_stopped():
    n = 0
    while not stop:  # the loop edge is POP_JUMP_BACKWARD_IF_FALSE
        n += 1
    return n > 0


def spin_until_flag(flags):
    n = 0
    while True:  # the loop edge is JUMP_BACKWARD
        if flags:
            return n > 0
        n += 1


def count_down(k):
    while k is not None and k > 0:
        k -= 1
    return k


results = []
t = threading.Thread(target=lambda: results.append(spin_while_not_stopped()))
t.start()
# The main thread needs the GIL back from the spinning thread to get here at all.
for _ in range(3):
    threading.Event().wait(0.05)
stop = True
t.join()
print("thread stopped:", results)

flags = []
signal.signal(signal.SIGALRM, lambda signum, frame: flags.append(signum))
signal.setitimer(signal.ITIMER_REAL, 0.2)
print("signal seen:", spin_until_flag(flags), flags == [signal.SIGALRM])

print([count_down(i) for i in range(30)][-3:])
sys.exit(0)
