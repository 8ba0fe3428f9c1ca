"""pyperformance's unmodified richards under the real pyperf, with the JIT on in pyperf's worker
processes: the benchmark's own result check must pass and every function of the benchmark that
gets hot must be compiled."""

import os
import subprocess
import sys
from pathlib import Path

import pyperformance
import pytest

from conftest import TIMEOUT, clean_env, read_stats

BENCH = Path(pyperformance.__file__).parent / "data-files" / "benchmarks" / "bm_richards" / "run_benchmark.py"


# At threshold 0 everything that runs is compiled (no feedback); at 2 only what was called more
# than twice (with the interpreter's feedback): Richards.run and schedule run once per iteration.
EVERYWHERE = ["schedule", "Richards.run"]
HOT = ["TaskState.isTaskHoldingOrWaiting", "Task.runTask", "Task.qpkt", "HandlerTask.fn", "WorkTask.fn", "DeviceTask.fn", "IdleTask.fn", "Task.findtcb"]


@pytest.mark.parametrize("threshold", [0, 2])
def test_richards_under_pyperf_compiles_its_hot_functions(tmp_path, threshold):
    stats = tmp_path / "stats.jsonl"
    env = clean_env(FERROJIT="1", FERROJIT_THRESHOLD=str(threshold), FERROJIT_STATS=str(stats))
    inherit = ["FERROJIT", "FERROJIT_THRESHOLD", "FERROJIT_STATS"] + [k for k in ("QEMU_LD_PREFIX",) if k in env]
    cmd = [sys.executable, str(BENCH), "-p", "2", "-n", "1", "-w", "1", "-l", "1", "--inherit-environ", ",".join(inherit), "-o", str(tmp_path / "out.json")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    # The parent process only imports the benchmark; the workers run it.
    workers = [s for s in read_stats(stats) if any(name.endswith(":Task.runTask") for name in s["compiled"])]
    assert len(workers) >= 2, "the JIT did not compile richards in pyperf's workers: %s" % read_stats(stats)
    for s in workers:
        ours = [n.split(":", 1)[1] for n in s["compiled"] if n.startswith(str(BENCH))]
        refused = {k: v for k, v in s["refused_functions"].items() if k.startswith(str(BENCH)) and v != "module or class body"}
        assert not refused, refused
        for must in HOT + (EVERYWHERE if threshold == 0 else []):
            assert must in ours, (must, ours)
        assert s["functions_failed"] == 0, s["failed_reasons"]
