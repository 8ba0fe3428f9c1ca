"""ferrojit as a user installs and runs it: from its wheel (the suite runs in a venv that
`cargo xtask test` made and installed the wheel into with pip), switched on by FERROJIT=1 in any
process of that venv without PYTHONPATH, and a command line that hands the program every
argument after it, as `python` does."""

import importlib.metadata
import json
import os
import subprocess
import sys

import ferrojit
from conftest import clean_env, read_stats


def python(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env or clean_env(), cwd=cwd)


def ferrojit_run(*args, env=None, cwd=None):
    return python("-m", "ferrojit", "run", *args, env=env, cwd=cwd)


def without_pythonpath(**extra):
    env = clean_env(**extra)
    env.pop("PYTHONPATH", None)
    return env


def test_installed_from_the_wheel_with_a_version():
    assert os.path.realpath(ferrojit.__file__).startswith(os.path.realpath(sys.prefix)), (ferrojit.__file__, sys.prefix)
    assert importlib.metadata.version("ferrojit") == ferrojit.__version__
    r = python("-m", "ferrojit", "--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ferrojit %s " % ferrojit.__version__), r.stdout


def test_the_environment_switch_needs_no_pythonpath(tmp_path):
    stats = tmp_path / "s.jsonl"
    code = "import sys; print('ferrojit' in sys.modules and sys.modules['ferrojit'].is_enabled())"
    r = python("-c", code, env=without_pythonpath(FERROJIT="1", FERROJIT_STATS=str(stats)))
    assert r.stdout.strip() == "True", r.stderr
    assert len(read_stats(stats)) == 1
    # Without the switch, start-up does not even import ferrojit.
    r = python("-c", code, env=without_pythonpath())
    assert r.stdout.strip() == "False", r.stderr


def test_flags_after_a_module_belong_to_the_module(tmp_path):
    data = tmp_path / "d.json"
    data.write_text('{"b": 1, "a": [1, 2]}')
    for args in (["--sort-keys", str(data)], ["--help"]):
        plain = python("-m", "json.tool", *args)
        r = ferrojit_run("-m", "json.tool", *args)
        assert (r.returncode, r.stdout, r.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert '"a"' in python("-m", "json.tool", "--sort-keys", str(data)).stdout


def test_flags_after_a_script_and_after_double_dash_belong_to_the_script(tmp_path):
    script = tmp_path / "show_argv.py"
    script.write_text("import sys\nprint(sys.argv[1:])\n")
    r = ferrojit_run("--threshold", "0", str(script), "-v", "--threshold", "3", "-m", "x")
    assert r.stdout.strip() == "['-v', '--threshold', '3', '-m', 'x']", r.stderr
    r = ferrojit_run("--", str(script), "--stats", "-")
    assert r.stdout.strip() == "['--stats', '-']", r.stderr


def test_dash_c_runs_code_as_python_does():
    for code in ("import sys; print(sys.argv, sys.path[0] == '', __name__)", "def f():\n    1 / 0\nf()"):
        plain = python("-c", code, "-x", "--y")
        r = ferrojit_run("-c", code, "-x", "--y")
        assert (r.returncode, r.stdout, r.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert "ZeroDivisionError" in plain.stderr and plain.returncode == 1


def test_environment_variables_keep_their_meaning_under_run(tmp_path):
    stats = tmp_path / "s.jsonl"
    env = clean_env(FERROJIT_THRESHOLD="100000000", FERROJIT_DISABLE="compile-time-globals")
    r = ferrojit_run("--stats", str(stats), "-c", "pass", env=env)
    assert r.returncode == 0, r.stderr
    r = ferrojit_run("--stats", str(stats), "--threshold", "5", "-c", "pass", env=env)
    assert r.returncode == 0, r.stderr
    from_env, flag_wins = read_stats(stats)
    assert from_env["threshold"] == 100000000
    assert from_env["disabled"] == ["compile-time-globals"]
    assert flag_wins["threshold"] == 5
    r = ferrojit_run("-c", "pass", env=clean_env(FERROJIT_THRESHOLD="lots"))
    assert r.returncode == 2 and "FERROJIT_THRESHOLD must be a non-negative integer" in r.stderr


def test_a_program_is_required_and_bad_options_are_clear_errors():
    r = python("-m", "ferrojit", "run")
    assert r.returncode == 2 and "run needs a SCRIPT, -m MODULE or -c CODE" in r.stderr
    r = python("-m", "ferrojit", "run", "--bogus", "x.py")
    assert r.returncode == 2 and "unrecognized arguments: --bogus" in r.stderr


def test_the_jit_switches_on_after_site_has_finished(tmp_path):
    # site adds exit/quit/help... to builtins after reading .pth files: code compiled before
    # that would guard a stale builtins dictionary and leave at the first call.
    stats = tmp_path / "s.jsonl"
    code = "import builtins, ferrojit; print(hasattr(builtins, 'quit'), ferrojit.is_enabled())"
    r = python("-c", code, env=without_pythonpath(FERROJIT="1", FERROJIT_THRESHOLD="0", FERROJIT_STATS=str(stats)))
    assert r.stdout.split() == ["True", "True"], r.stderr
    (s,) = read_stats(stats)
    assert s["functions_compiled"] > 0
    assert not [k for k in s["deopts"] if "builtins keys changed" in k], s["deopt_sites"]


def test_code_counts_compare_both_isas_on_the_program_s_compiled_functions(tmp_path):
    # Two functions compiled by the program (threshold 0) plus whatever the start-up compiled:
    # each one counts on both ISAs, with instructions, bytes and mnemonics of its own ISA.
    out = tmp_path / "counts.json"
    code = "def f(x):\n    return x + 1\ndef g(n):\n    return [f(i) for i in range(n)]\ng(50)\n"
    r = ferrojit_run("--threshold", "0", "--code-counts", str(out), "-c", code)
    assert r.returncode == 0, r.stderr
    counts = json.loads(out.read_text())
    x86, arm = counts["isas"]["x86_64"], counts["isas"]["aarch64"]
    assert x86["functions"] == arm["functions"] >= 2
    for c, ret in ((x86, "ret"), (arm, "ret")):
        assert c["instructions"] > 10 * c["functions"] and c["code_bytes"] > c["instructions"]
        assert c["mnemonics"][ret] >= c["functions"]
    assert "movabs" in x86["mnemonics"] and "movabs" not in arm["mnemonics"]
    assert "blr" in arm["mnemonics"] or "bl" in arm["mnemonics"]
    table = ferrojit_run("--threshold", "0", "--code-counts", "-", "-c", code)
    assert table.returncode == 0 and "aarch64/x86_64" in table.stderr, table.stderr
    assert ferrojit_run("--no-jit", "--code-counts", "-", "-c", "pass").returncode == 2
