"""Differential tests: each program in programs/ runs under plain CPython and under ferrojit
(compiling at threshold 0, and at threshold 10, after CPython quickened a function called 8
times, so that the feedback in its inline caches is used), and
must print the same output, the same tracebacks, and exit the same way; ferrojit must actually
have compiled code for it."""

import functools

import pytest

from conftest import PROGRAMS, read_stats, run_jit, run_plain

CASES = sorted(p for p in PROGRAMS.glob("*.py") if not p.name.startswith("_"))


@functools.lru_cache(maxsize=None)
def plain_result(path):
    r = run_plain(path)
    return r.returncode, r.stdout, r.stderr


@pytest.mark.parametrize("threshold", [0, 10])
@pytest.mark.parametrize("program", CASES, ids=lambda p: p.stem)
def test_same_behaviour_as_cpython(program, threshold, stats_file):
    code, out, err = plain_result(program)
    r = run_jit(program, threshold=threshold, stats=stats_file)
    assert r.stdout == out
    assert r.stderr == err
    assert r.returncode == code
    stats = read_stats(stats_file)
    assert len(stats) == 1
    compiled = [name for name in stats[0]["compiled"] if name.startswith(str(program))]
    assert compiled, "nothing from %s was compiled: %s" % (program.name, stats[0])
    assert stats[0]["functions_failed"] == 0, stats[0]["failed_reasons"]


def test_no_jit_runs_the_interpreter(stats_file):
    program = PROGRAMS / "arith_and_branches.py"
    r = run_jit(program, stats=stats_file, extra=["--no-jit"])
    assert r.returncode == 0, r.stderr
    assert r.stdout == plain_result(program)[1]
    assert read_stats(stats_file)[0]["functions_compiled"] == 0
