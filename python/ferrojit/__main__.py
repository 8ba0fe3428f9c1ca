"""Command line: `python -m ferrojit run [options] (SCRIPT | -m MODULE) [ARGS...]`."""

import argparse
import os
import runpy
import sys
import traceback

import ferrojit

USAGE = "python -m ferrojit run [--threshold N] [--loop-threshold N] [--deopt-limit N] [--disable OPT[,OPT]] [--stats FILE|-] [--dump DIR] [--no-jit] (SCRIPT | -m MODULE) [ARGS...]"


def _parser():
    p = argparse.ArgumentParser(prog="python -m ferrojit", description="ferrojit, a JIT compiler for CPython 3.11")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", usage=USAGE, help="run a script or module with the JIT on")
    run.add_argument("--threshold", type=_threshold, default=None, help="calls before a function is compiled (0: first call)")
    run.add_argument(
        "--loop-threshold", type=_threshold, default=None, help="the same for functions with a loop, when smaller (default 1)"
    )
    run.add_argument(
        "--deopt-limit",
        type=_threshold,
        default=None,
        help="exits a failing speculation may take before its function is recompiled without it (0: never; default %d)"
        % ferrojit.DEFAULT_DEOPT_LIMIT,
    )
    run.add_argument(
        "--disable",
        metavar="OPT[,OPT]",
        help="switch optimisations off, for A/B runs (%s)" % ", ".join(ferrojit.OPTIMISATIONS),
    )
    run.add_argument("--stats", metavar="FILE", help="append a JSON line of statistics to FILE at exit (-: stdout)")
    run.add_argument("--dump", metavar="DIR", help="write HIR, LIR and disassembly of each compiled function to DIR")
    run.add_argument("--no-jit", action="store_true", help="the same process set-up with the JIT off (for A/B runs)")
    run.add_argument("-m", dest="module", metavar="MODULE", help="run a library module as a script")
    run.add_argument("target", nargs=argparse.REMAINDER, help="SCRIPT [ARGS...] (or ARGS... after -m MODULE)")
    return p


def _threshold(text):
    try:
        return ferrojit._check_threshold(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e))


def _export_environment(args):
    """Child processes (pyperf's workers, subprocesses) see the same knobs."""
    os.environ["FERROJIT"] = "0" if args.no_jit else "1"
    knobs = (
        ("FERROJIT_THRESHOLD", args.threshold),
        ("FERROJIT_LOOP_THRESHOLD", args.loop_threshold),
        ("FERROJIT_DEOPT_LIMIT", args.deopt_limit),
        ("FERROJIT_DISABLE", args.disable),
        ("FERROJIT_STATS", args.stats),
        ("FERROJIT_DUMP", args.dump),
    )
    for name, value in knobs:
        if value is not None:
            os.environ[name] = str(value)


def _print_user_traceback(exc, entry_file):
    """Print the traceback as `python SCRIPT` would: without runpy's and ferrojit's frames."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != entry_file and _is_launcher_frame(tb):
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb)


def _is_launcher_frame(tb):
    name = tb.tb_frame.f_code.co_filename
    return name == __file__ or name.endswith(os.path.join("", "runpy.py")) or "<frozen runpy>" in name


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.module is None and not args.target:
        _parser().error("run needs a SCRIPT or -m MODULE")
    _export_environment(args)
    if not args.no_jit:
        try:
            ferrojit.enable(
                threshold=args.threshold,
                stats=args.stats,
                dump=args.dump,
                loop_threshold=args.loop_threshold,
                deopt_limit=args.deopt_limit,
                disable=args.disable,
            )
        except (RuntimeError, ValueError) as e:
            sys.stderr.write("ferrojit: %s\n" % e)
            return 2
    elif args.stats:
        # Same process set-up: statistics (all zero) still get written.
        ferrojit._ferrojit.configure(args.threshold, args.stats, None, args.loop_threshold, args.deopt_limit)
        ferrojit._register_stats_writer()
    if args.module is not None:
        sys.argv = [args.module] + args.target
        entry = None
        run = lambda: runpy.run_module(args.module, run_name="__main__", alter_sys=True)
    else:
        script = args.target[0]
        if not os.path.exists(script):
            sys.stderr.write("%s: can't open file %r: [Errno 2] No such file or directory\n" % (sys.executable, script))
            return 2
        sys.argv = list(args.target)
        sys.path[0] = os.path.dirname(os.path.abspath(script))
        entry = os.path.abspath(script)
        run = lambda: runpy.run_path(entry, run_name="__main__")
    try:
        run()
    except SystemExit:
        raise
    except BaseException as e:  # noqa: B902 - report like the interpreter, then exit 1
        _print_user_traceback(e, entry)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
