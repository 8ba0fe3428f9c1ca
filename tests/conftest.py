"""Shared helpers for ferrojit's Python-level tests: running programs under plain CPython and
under ferrojit in fresh processes (the same interpreter, so this works natively and under
qemu alike)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PROGRAMS = HERE / "programs"
TIMEOUT = int(os.environ.get("FERROJIT_TEST_TIMEOUT", "900"))


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FERROJIT")}
    env.update(extra)
    return env


def run_plain(script, *args, cwd=None):
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=cwd or Path(script).parent,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=clean_env(),
    )


def run_jit(script, *args, threshold=0, stats=None, extra=(), cwd=None):
    cmd = [sys.executable, "-m", "ferrojit", "run", "--threshold", str(threshold)]
    if stats is not None:
        cmd += ["--stats", str(stats)]
    cmd += list(extra) + [str(script), *args]
    return subprocess.run(cmd, cwd=cwd or Path(script).parent, capture_output=True, text=True, timeout=TIMEOUT, env=clean_env())


def read_stats(path):
    """Every JSON line ferrojit appended (one per process)."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


@pytest.fixture
def stats_file(tmp_path):
    return tmp_path / "stats.jsonl"
