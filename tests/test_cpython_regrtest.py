"""CPython's own regression tests (a subset that runs in a few minutes) with ferrojit compiling
everything at threshold 0, against the plain interpreter on the same subset in the same run: a
module that passes without the JIT must pass with it."""

import subprocess
import sys

import pytest

from conftest import TIMEOUT, clean_env, read_stats

MODULES = """
test_int test_bool test_list test_tuple test_dict test_scope test_class test_raise test_opcodes
test_augassign test_compare test_contains test_unary test_keywordonlyarg test_extcall
test_positional_only_arg test_richcmp test_iter test_enumerate test_sort test_exception_variations
test_with test_string test_genexps test_listcomps test_setcomps test_dictcomps test_binop
test_bisect test_heapq test_operator test_funcattrs test_property test_super test_isinstance
test_slice test_range test_exceptions test_grammar test_named_expressions test_unpack
test_dataclasses test_types test_set test_userdict test_userlist test_defaultdict test_deque
test_textwrap test_shlex test_fractions test_statistics test_json test_functools test_itertools
test_sys_settrace test_sys_setprofile test_frame test_traceback test_fstring test_format test_bdb
test_trace test_profile test_cprofile test_pdb test_coroutines test_code
""".split()


def start_regrtest(module, jit, stats=None):
    env = clean_env(FERROJIT="1", FERROJIT_THRESHOLD="0", FERROJIT_STATS=str(stats)) if jit else clean_env()
    return subprocess.Popen(
        [sys.executable, "-m", "test", module], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def finish(proc):
    """The finished run of a started regrtest process (killed past the timeout)."""
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_the_test_package_is_present():
    r = subprocess.run([sys.executable, "-c", "import test.libregrtest"], capture_output=True, text=True)
    assert r.returncode == 0, "CPython's test package is missing for %s: %s" % (sys.executable, r.stderr)


@pytest.mark.parametrize("module", MODULES)
def test_no_new_failures_with_the_jit(module, tmp_path):
    # The plain run is only needed to tell a new failure from one this machine has anyway, so
    # it runs when the JIT's run failed (the tests themselves run on all cores, pytest-xdist).
    stats = tmp_path / "stats.jsonl"
    jit = finish(start_regrtest(module, jit=True, stats=stats))
    if jit.returncode != 0:
        plain = finish(start_regrtest(module, jit=False))
        assert plain.returncode != 0, "passes without the JIT, fails with it:\n" + jit.stdout[-4000:] + jit.stderr[-4000:]
    compiled = sum(s["functions_compiled"] for s in read_stats(stats))
    assert compiled > 0, "the JIT compiled nothing while running %s" % module
