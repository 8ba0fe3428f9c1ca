"""Command line: `python -m ferrojit run [options] (SCRIPT | -m MODULE | -c CODE) [ARGS...]`,
`python -m ferrojit --version`."""

import argparse
import os
import runpy
import sys
import traceback
import types

import ferrojit

USAGE = "python -m ferrojit run [--threshold N] [--loop-threshold N] [--deopt-limit N] [--disable OPT[,OPT]] [--stats FILE|-] [--dump DIR] [--code-counts FILE|-] [--count-instructions] [--no-jit] (SCRIPT | -m MODULE | -c CODE | -- SCRIPT) [ARGS...]"

# ferrojit's own options of `run` that take a value; everything from the program on (SCRIPT,
# -m MODULE, -c CODE, or what follows `--`) belongs to the program, flags included, as with
# `python SCRIPT ARGS...`.
_VALUE_OPTIONS = ("--threshold", "--loop-threshold", "--deopt-limit", "--disable", "--stats", "--dump", "--code-counts")


def _parser():
    p = argparse.ArgumentParser(prog="python -m ferrojit", description="ferrojit, a JIT compiler for CPython 3.11")
    p.add_argument("-V", "--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        usage=USAGE,
        help="run a script, module or command with the JIT on",
        description="Options left unset take their FERROJIT_* environment variable; a flag wins over it.",
    )
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
    run.add_argument(
        "--code-counts",
        metavar="FILE",
        help="when the program ends, compile every compiled function for both ISAs and write their instructions, "
        "bytes and mnemonics side by side (-: a table on stderr; FILE: JSON)",
    )
    run.add_argument(
        "--count-instructions",
        action="store_true",
        help="generated code counts the instructions it executes (statistics: instructions_executed; "
        "several times slower: a measurement mode)",
    )
    run.add_argument("--no-jit", action="store_true", help="the same process set-up with the JIT off (for A/B runs)")
    run.add_argument("-m", dest="module", metavar="MODULE", help="run a library module as a script (ARGS go to it)")
    run.add_argument("-c", dest="code", metavar="CODE", help="run CODE as `python -c` does (ARGS go to it)")
    run.add_argument("target", nargs="*", metavar="SCRIPT [ARGS...]", help="the script and its arguments")
    return p


def _version():
    return "ferrojit %s (CPython %s, %s)" % (ferrojit.__version__, sys.version.split()[0], ferrojit.ISA)


def _split_program(argv):
    """Splits `run`'s arguments into ferrojit's options and the program's part: ([options],
    kind, what, [args]) with kind "script", "module" or "code" (None when no program is named)."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest = argv[i + 1 :]
            return argv[:i], ("script" if rest else None), (rest[0] if rest else None), rest[1:]
        if arg in ("-m", "-c"):
            if i + 1 == len(argv):
                return argv, None, None, []  # argparse reports the missing value
            kind = "module" if arg == "-m" else "code"
            return argv[:i], kind, argv[i + 1], argv[i + 2 :]
        if arg.startswith("-m") or arg.startswith("-c"):  # -mMODULE, -cCODE
            kind = "module" if arg[1] == "m" else "code"
            return argv[:i], kind, arg[2:], argv[i + 1 :]
        if arg in _VALUE_OPTIONS:
            i += 2
            continue
        if arg.startswith("-") and arg != "-":
            i += 1
            continue
        return argv[:i], "script", arg, argv[i + 1 :]
    return argv, None, None, []


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
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] != "run":
        _parser().parse_args(argv)  # --version, --help, or the error naming the sub-command
        return 2
    options, kind, what, program_args = _split_program(argv[1:])
    args = _parser().parse_args(["run"] + options)
    if kind is None:
        _parser().error("run needs a SCRIPT, -m MODULE or -c CODE")
    if args.count_instructions:
        # Read by the runtime at its first compilation, and inherited by child processes.
        os.environ["FERROJIT_COUNT_INSTRUCTIONS"] = "1"
    if not args.no_jit:
        error = _enable(args)
        if error:
            return error
    elif args.stats:
        # Same process set-up: statistics (all zero) still get written.
        ferrojit._ferrojit.configure(args.threshold, args.stats, None, args.loop_threshold, args.deopt_limit)
        ferrojit._register_stats_writer()
    _export_environment(args)
    if args.code_counts:
        if args.no_jit:
            _parser().error("--code-counts counts compiled code: it needs the JIT on")
        return _with_code_counts(args.code_counts, lambda: _run_program(kind, what, program_args))
    return _run_program(kind, what, program_args)


def _with_code_counts(destination, run):
    """Runs the program, then writes the static code counts of what it compiled (also when it
    exits with SystemExit, as pyperf's workers do)."""
    try:
        return run()
    finally:
        counts = ferrojit.code_counts()
        if destination == "-":
            sys.stderr.write(ferrojit.format_code_counts(counts))
        else:
            import json

            with open(destination, "w") as f:
                json.dump(counts, f, indent=1, sort_keys=True)


def _enable(args):
    """Switch the JIT on: each knob from its flag, else from its FERROJIT_* variable."""
    try:
        knobs = ferrojit._environment_knobs()
    except ValueError as e:
        sys.stderr.write("ferrojit: %s\n" % e)
        return 2
    flags = {
        "threshold": args.threshold,
        "loop_threshold": args.loop_threshold,
        "deopt_limit": args.deopt_limit,
        "stats": args.stats,
        "dump": args.dump,
        "disable": args.disable,
    }
    knobs.update({k: v for k, v in flags.items() if v is not None})
    try:
        ferrojit.enable(**knobs)
    except (RuntimeError, ValueError) as e:
        sys.stderr.write("ferrojit: %s\n" % e)
        return 2
    return 0


def _run_program(kind, what, program_args):
    """Runs the script, module or code as `python` would, with `sys.argv` as it would set it."""
    if kind == "module":
        sys.argv = [what] + program_args
        entry = None
        sys.path[0] = os.getcwd()
        run = lambda: runpy.run_module(what, run_name="__main__", alter_sys=True)
    elif kind == "code":
        sys.argv = ["-c"] + program_args
        entry = "<string>"
        sys.path[0] = ""
        run = lambda: _run_code(what)
    else:
        if not os.path.exists(what):
            sys.stderr.write("%s: can't open file %r: [Errno 2] No such file or directory\n" % (sys.executable, what))
            return 2
        sys.argv = [what] + program_args
        sys.path[0] = os.path.dirname(os.path.abspath(what))
        entry = os.path.abspath(what)
        run = lambda: runpy.run_path(entry, run_name="__main__")
    try:
        run()
    except SystemExit:
        raise
    except BaseException as e:  # noqa: B902 - report like the interpreter, then exit 1
        _print_user_traceback(e, entry)
        return 1
    return 0


def _run_code(code):
    """`python -c CODE`: the code runs as a fresh `__main__` module."""
    main = types.ModuleType("__main__")
    main.__builtins__ = __builtins__
    sys.modules["__main__"] = main
    exec(compile(code, "<string>", "exec"), main.__dict__)


if __name__ == "__main__":
    sys.exit(main())
