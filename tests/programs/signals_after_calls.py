"""A signal handler runs where the interpreter runs it: at the end of the call during which the
signal arrived (CPython 3.11 checks its eval breaker after each call), so that an exception it
raises comes from that call's line and nothing after the call runs. Signals come from
`os.kill` (the handler raises) and `_thread.interrupt_main` (KeyboardInterrupt), at warm-up and
in compiled code, in straight-line code, in a loop and in a callee."""
import os
import signal
import _thread


def handler(signum, frame):
    raise ZeroDivisionError("from the handler")


signal.signal(signal.SIGUSR1, handler)


def signal_me(how):
    if how == "kill":
        os.kill(os.getpid(), signal.SIGUSR1)
    else:
        _thread.interrupt_main()


def where(e):
    tb = e.__traceback__
    lines = []
    while tb is not None:
        lines.append((tb.tb_frame.f_code.co_name, tb.tb_lineno))
        tb = tb.tb_next
    return type(e).__name__, lines


def straight(log, how):
    try:
        signal_me(how)
        log.append("after the call")
        log.append("and after that")
    except (ZeroDivisionError, KeyboardInterrupt) as e:
        log.append(where(e))


def in_loop(log, how, n):
    total = 0
    try:
        for i in range(n):
            total += i
            if i == n // 2:
                if how == "kill":
                    os.kill(os.getpid(), signal.SIGUSR1)
                else:
                    _thread.interrupt_main()
                log.append("after the call at %d" % i)
    except (ZeroDivisionError, KeyboardInterrupt) as e:
        log.append((where(e), total))


for round in range(24):
    how = "kill" if round % 2 else "interrupt"
    log = []
    straight(log, how)
    in_loop(log, how, 50)
    if round % 6 == 0 or round >= 22:
        print(round, log)
