"""ferrojit: a JIT compiler for CPython 3.11, for x86-64 and AArch64.

    import ferrojit
    ferrojit.enable(threshold=20)   # compile functions after 20 calls (0: on the first call)
    ...
    ferrojit.stats()                # what was compiled, refused, deopted; code bytes

`python -m ferrojit run SCRIPT` runs a script with the JIT on; `FERROJIT=1` switches it on in any
process that can import ferrojit (see sitecustomize.py beside this package).
"""

import os
import sys

if sys.version_info[:2] != (3, 11):
    raise ImportError(
        "ferrojit supports CPython 3.11 only; this is %d.%d (%s)"
        % (sys.version_info[0], sys.version_info[1], sys.executable)
    )

from . import _ferrojit

ISA = _ferrojit.ISA
DEFAULT_THRESHOLD = _ferrojit.DEFAULT_THRESHOLD
DEFAULT_LOOP_THRESHOLD = _ferrojit.DEFAULT_LOOP_THRESHOLD
DEFAULT_DEOPT_LIMIT = _ferrojit.DEFAULT_DEOPT_LIMIT
OPTIMISATIONS = tuple(_ferrojit.OPTIMISATIONS)
__version__ = _ferrojit.__version__

__all__ = ["enable", "disable", "is_enabled", "stats", "compile", "is_compiled", "inspect", "ISA"]


def enable(threshold=None, stats=None, dump=None, loop_threshold=None, deopt_limit=None, disable=None,
           count_instructions=False):
    """Switch the JIT on.

    threshold: calls in the interpreter before a function is compiled (0: first call).
    loop_threshold: the same for functions with a loop, when smaller (default 1: their loop
    quickens them during the first call, so they compile on the second).
    deopt_limit: how often a failing speculation (a type or version the interpreter's feedback
    promised) may send a function back to the interpreter before the function is compiled
    again with that instruction's generic path (0: never recompile; default 100).
    stats: a file to append one JSON line of statistics to at exit ("-": standard output).
    dump: a folder for each compiled function's HIR, LIR (before and after allocation) and
    disassembly.
    disable: optimisations to switch off, as a comma-separated string or a list of names
    (OPTIMISATIONS lists them), for A/B measurements.
    count_instructions: code compiled from now on counts the instructions it executes
    (stats()["instructions_executed"]; as FERROJIT_COUNT_INSTRUCTIONS=1, which child processes
    then inherit); a measurement mode, several times slower.
    """
    if disable is not None and not isinstance(disable, str):
        disable = ",".join(disable)
    if threshold is not None:
        threshold = _check_threshold(threshold)
    if loop_threshold is not None:
        loop_threshold = _check_threshold(loop_threshold, "loop_threshold")
    if deopt_limit is not None:
        deopt_limit = _check_threshold(deopt_limit, "deopt_limit")
    if count_instructions:
        _ferrojit.count_instructions()
        os.environ["FERROJIT_COUNT_INSTRUCTIONS"] = "1"
    _ferrojit.enable(
        threshold,
        None if stats is None else os.fspath(stats),
        None if dump is None else os.fspath(dump),
        loop_threshold,
        deopt_limit,
        disable,
    )
    _register_stats_writer()


def disable():
    """Switch the JIT off (compiled code is kept for a later enable())."""
    _ferrojit.disable()


def is_enabled():
    return _ferrojit.is_enabled()


def stats():
    """The statistics of this process as a dict (made without running Python code, so that
    reading them does not move them)."""
    return _ferrojit.stats()


def compile(func):
    """Compile `func` now; raises RuntimeError with the reason when it cannot."""
    _ferrojit.compile(func)


def is_compiled(func):
    """Whether `func` has native code."""
    return _ferrojit.is_compiled(func)


def inspect(func, isa=None, loop_entries=False):
    """Run the compiler on `func` for `isa` ("x86_64" or "aarch64", default: this machine's)
    without installing the code; returns its HIR, LIR, allocation, disassembly and sizes.
    loop_entries: compile it as on-stack replacement does, with an entry at each loop header."""
    return _ferrojit.inspect(func, isa, loop_entries)


ISAS = ("x86_64", "aarch64")


def compiled_functions():
    """The live function objects whose code this process runs compiled."""
    import gc
    import types

    return [o for o in gc.get_objects() if type(o) is types.FunctionType and _ferrojit.is_compiled(o)]


def code_counts(functions=None, isas=ISAS):
    """Static counts of the code `functions` (default: every compiled function) compile to on
    each of `isas`, from one host: per ISA the functions counted, instructions, code bytes (the
    literal pool not counted) and each mnemonic's count. A function the compiler refuses for an
    ISA counts on none (listed under "refused")."""
    functions = compiled_functions() if functions is None else list(functions)
    out = {isa: {"functions": 0, "instructions": 0, "code_bytes": 0, "mnemonics": {}} for isa in isas}
    refused = []
    for f in functions:
        try:
            codes = {isa: _ferrojit.inspect(f, isa, False) for isa in isas}
        except RuntimeError as e:
            refused.append("%s: %s" % (getattr(f, "__qualname__", f), e))
            continue
        for isa, code in codes.items():
            c = out[isa]
            c["functions"] += 1
            c["instructions"] += code["instructions"]
            c["code_bytes"] += code["code_bytes"] - code["literal_pool_bytes"]
            for line in code["asm"].splitlines():
                words = line.split(": ", 1)[-1].split()
                if words:
                    c["mnemonics"][words[0]] = c["mnemonics"].get(words[0], 0) + 1
    return {"isas": out, "refused": refused}


def format_code_counts(counts, top=12):
    """`code_counts` as a table: totals side by side with the ratio of the second ISA to the
    first, then each ISA's most frequent mnemonics."""
    isas = list(counts["isas"])
    c = counts["isas"]
    lines = ["%-14s" % "" + "".join("%14s" % isa for isa in isas) + ("%16s" % ("%s/%s" % (isas[1], isas[0])) if len(isas) == 2 else "")]
    for key in ("functions", "instructions", "code_bytes"):
        row = "%-14s" % key + "".join("%14s" % format(c[isa][key], ",") for isa in isas)
        if len(isas) == 2 and c[isas[0]][key]:
            row += "%16.3f" % (c[isas[1]][key] / c[isas[0]][key])
        lines.append(row)
    for isa in isas:
        common = sorted(c[isa]["mnemonics"].items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        lines.append("%s: %s" % (isa, ", ".join("%s %s" % (m, format(n, ",")) for m, n in common)))
    if counts["refused"]:
        lines.append("not counted (refused for an ISA): %d" % len(counts["refused"]))
    return "\n".join(lines) + "\n"


def _check_threshold(value, what="threshold"):
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = -1
    if n < 0 or str(value).strip() in ("", "-0"):
        raise ValueError("%s must be a non-negative integer, got %r" % (what, value))
    return n


def _register_stats_writer():
    """The statistics line is written by the extension once the interpreter has finalised
    (after every atexit handler, with no Python code run for it)."""
    _ferrojit.register_stats_writer()


_ENVIRONMENT_NUMBERS = (
    ("FERROJIT_THRESHOLD", "threshold"),
    ("FERROJIT_LOOP_THRESHOLD", "loop_threshold"),
    ("FERROJIT_DEOPT_LIMIT", "deopt_limit"),
)


def _environment_knobs():
    """enable()'s arguments from FERROJIT_THRESHOLD, FERROJIT_LOOP_THRESHOLD,
    FERROJIT_DEOPT_LIMIT, FERROJIT_DISABLE, FERROJIT_STATS and FERROJIT_DUMP (those that are
    set); a bad number raises ValueError naming its variable."""
    knobs = {}
    for name, key in _ENVIRONMENT_NUMBERS:
        value = os.environ.get(name)
        if value is not None:
            try:
                knobs[key] = _check_threshold(value)
            except ValueError:
                raise ValueError("%s must be a non-negative integer, got %r" % (name, value)) from None
    for name, key in (("FERROJIT_STATS", "stats"), ("FERROJIT_DUMP", "dump"), ("FERROJIT_DISABLE", "disable")):
        if os.environ.get(name):
            knobs[key] = os.environ[name]
    return knobs


def _enable_from_environment():
    """Switch the JIT on from the FERROJIT_* variables (FERROJIT=1 at start-up)."""
    try:
        knobs = _environment_knobs()
    except ValueError as e:
        sys.stderr.write("ferrojit: %s\n" % e)
        sys.stderr.flush()
        os._exit(2)
    try:
        enable(**knobs)
    except ValueError as e:
        # enable() checks the numbers first, so a ValueError here is about the names.
        sys.stderr.write("ferrojit: FERROJIT_DISABLE: %s\n" % e)
        sys.stderr.flush()
        os._exit(2)
