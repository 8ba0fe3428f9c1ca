"""ferrojit's differential fuzzer: random programs (progen.py) run by plain CPython and by
ferrojit at several thresholds must exit the same way and print exactly the same stdout and
stderr.

Usage (from the repository root; `cargo xtask python` runs the ISA's CPython with ferrojit
importable, `--arch aarch64` the emulated arm64 one):

    cargo xtask python -- tests/fuzz/fuzz.py --seconds 600 --seed 1000
    cargo xtask python --arch aarch64 -- tests/fuzz/fuzz.py --count 20 --seed 0
    target/venv/x86_64/bin/python tests/fuzz/fuzz.py --count 50 --seed 0 --thresholds 0,5
    python tests/fuzz/fuzz.py --show 17         # print the program of seed 17

Seeds S, S+1, ... run until --count programs ran or --seconds passed (whichever comes first;
--count 20 when neither is given). Each program runs once under plain CPython and once per
threshold under `python -m ferrojit run --threshold N`, in a fresh process with
PYTHONHASHSEED=0, no FERROJIT_* variables, and a timeout. A difference in return code, stdout or
stderr, a crash, a timeout, or a program failing under plain CPython is a mismatch: the program
and a report (the threshold, return codes, unified diffs of the outputs, the command that
reproduces it) are saved to OUT as seed-S.py and seed-S.txt, one line is printed, and the
fuzzer goes on. The summary at the end lists the mismatching seeds; the exit status is 1 if
there was any, else 0.

Every mismatch found becomes a differential test (a minimised program in tests/programs/).
"""

import argparse
import difflib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import progen  # noqa: E402

TIMEOUT = 60
DEFAULT_THRESHOLDS = (0, 5)
PROGRAM = "prog.py"


class Outcome:
    """How one run of a program ended."""

    def __init__(self, cmd, returncode, stdout, stderr, seconds, timed_out=False, stats=None):
        self.cmd = cmd
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.seconds = seconds
        self.timed_out = timed_out
        self.stats = stats

    def key(self):
        return (self.timed_out, self.returncode, self.stdout, self.stderr)


def clean_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("FERROJIT")}
    env["PYTHONHASHSEED"] = "0"
    return env


def run(script, threshold=None, timeout=TIMEOUT):
    """Runs script (in its own folder, by its bare name) under plain CPython (threshold None) or
    under ferrojit compiling after threshold calls."""
    script = Path(script)
    stats_path = None
    cmd = [sys.executable]
    if threshold is not None:
        stats_path = script.parent / ("stats-%s.jsonl" % threshold)
        if stats_path.exists():
            stats_path.unlink()
        cmd += ["-m", "ferrojit", "run", "--threshold", str(threshold), "--stats", str(stats_path)]
    cmd.append(script.name)
    start = time.monotonic()
    try:
        r = subprocess.run(cmd, cwd=script.parent, capture_output=True, timeout=timeout, env=clean_env())
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode("utf-8", "replace")
        err = (e.stderr or b"").decode("utf-8", "replace")
        return Outcome(cmd, None, out, err, time.monotonic() - start, timed_out=True)
    seconds = time.monotonic() - start
    stats = None
    if stats_path is not None and stats_path.exists():
        lines = [line for line in stats_path.read_text().splitlines() if line.strip()]
        if lines:
            try:
                stats = json.loads(lines[-1])
            except ValueError:
                stats = None
    return Outcome(cmd, r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace"), seconds,
                   stats=stats)


def write_program(seed, folder):
    path = Path(folder) / PROGRAM
    path.write_text(progen.generate(seed))
    return path


def describe(outcome):
    if outcome.timed_out:
        return "timed out after %.0f s" % outcome.seconds
    if outcome.returncode < 0:
        return "killed by signal %d" % -outcome.returncode
    return "exit code %d" % outcome.returncode


def compare(plain, jit):
    """None if the two runs behaved the same, else a short description of the difference."""
    if plain.key() == jit.key():
        return None
    what = []
    if jit.timed_out or (jit.returncode is not None and jit.returncode < 0):
        what.append("ferrojit " + describe(jit))
    elif plain.returncode != jit.returncode or plain.timed_out:
        what.append("%s vs %s" % (describe(plain), describe(jit)))
    if plain.stdout != jit.stdout:
        what.append("stdout differs")
    if plain.stderr != jit.stderr:
        what.append("stderr differs")
    return ", ".join(what)


def check(seed, thresholds=DEFAULT_THRESHOLDS, timeout=TIMEOUT, folder=None):
    """Runs seed's program plainly and at each threshold. Returns (source, plain outcome,
    {threshold: jit outcome}, [(threshold or None, problem)]): None stands for a program that
    fails under plain CPython (a generator bug)."""
    with tempfile.TemporaryDirectory(prefix="ferrojit-fuzz-") as tmp:
        path = write_program(seed, folder or tmp)
        source = path.read_text()
        plain = run(path, None, timeout)
        problems = []
        if plain.timed_out or plain.returncode != 0 or plain.stderr:
            problems.append((None, "plain CPython: %s%s" % (describe(plain), ", stderr output" if plain.stderr else "")))
        jits = {}
        for threshold in thresholds:
            jit = run(path, threshold, timeout)
            jits[threshold] = jit
            problem = compare(plain, jit)
            if problem:
                problems.append((threshold, problem))
    return source, plain, jits, problems


def _diff(a, b, name, limit=200):
    lines = list(difflib.unified_diff(a.splitlines(), b.splitlines(), "plain " + name, "ferrojit " + name, lineterm="", n=2))
    if len(lines) > limit:
        lines = lines[:limit] + ["... (%d more diff lines)" % (len(lines) - limit)]
    return "\n".join(lines)


def report(seed, plain, jits, problems):
    """The text of seed-S.txt."""
    out = ["ferrojit differential fuzzer: seed %d" % seed, "python: %s" % sys.executable,
           "plain CPython: %s in %.2f s" % (describe(plain), plain.seconds)]
    for threshold, problem in problems:
        if threshold is None:
            out += ["", "== plain CPython failed: %s" % problem, "-- stderr:", plain.stderr[-5000:]]
            continue
        jit = jits[threshold]
        out += ["", "== threshold %d: %s" % (threshold, problem),
                "reproduce: %s -m ferrojit run --threshold %d seed-%d.py" % (sys.executable, threshold, seed),
                "return codes: plain %s, ferrojit %s (%.2f s)" % (plain.returncode, jit.returncode, jit.seconds)]
        if plain.stdout != jit.stdout:
            out += ["-- stdout diff:", _diff(plain.stdout, jit.stdout, "stdout")]
        if plain.stderr != jit.stderr:
            out += ["-- stderr diff:", _diff(plain.stderr, jit.stderr, "stderr")]
    return "\n".join(out) + "\n"


def save(out_dir, seed, source, text):
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / ("seed-%d.py" % seed)).write_text(source)
    (out_dir / ("seed-%d.txt" % seed)).write_text(text)


def _thresholds(text):
    try:
        values = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated integers, got %r" % text)
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError("expected non-negative thresholds, got %r" % text)
    return values


def main(argv=None):
    parser = argparse.ArgumentParser(description="Differential fuzzer: plain CPython vs ferrojit on random programs.")
    parser.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--count", type=int, help="number of programs (default 20 without --seconds)")
    parser.add_argument("--seconds", type=float, help="start no new program after this many seconds")
    parser.add_argument("--thresholds", type=_thresholds, default=DEFAULT_THRESHOLDS,
                        help="comma-separated ferrojit thresholds (default 0,5)")
    parser.add_argument("--out", type=Path, default=REPO / "target" / "fuzz",
                        help="where mismatching programs and reports go (default target/fuzz)")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds per run (default %d)" % TIMEOUT)
    parser.add_argument("--show", type=int, metavar="SEED", help="print SEED's program and exit")
    args = parser.parse_args(argv)
    if args.show is not None:
        sys.stdout.write(progen.generate(args.show))
        return 0
    count = args.count if args.count is not None or args.seconds is not None else 20
    start = time.monotonic()
    seed = args.seed
    ran = 0
    mismatches = []
    failed_reasons = Counter()
    compiled = 0
    plain_time = jit_time = slowest = 0.0
    while (count is None or ran < count) and (args.seconds is None or time.monotonic() - start < args.seconds):
        source, plain, jits, problems = check(seed, args.thresholds, args.timeout)
        ran += 1
        plain_time += plain.seconds
        for jit in jits.values():
            jit_time += jit.seconds
            slowest = max(slowest, jit.seconds)
            if jit.stats:
                compiled += sum(1 for name in jit.stats.get("compiled", ()) if PROGRAM in name)
                failed_reasons.update(jit.stats.get("failed_reasons", {}))
        if problems:
            mismatches.append(seed)
            save(args.out, seed, source, report(seed, plain, jits, problems))
            print("seed %d: MISMATCH %s -> %s" % (seed, "; ".join(
                "%s: %s" % ("plain" if t is None else "threshold %d" % t, p) for t, p in problems),
                args.out / ("seed-%d.txt" % seed)), flush=True)
        if ran % 25 == 0:
            print("... %d programs (seeds %d-%d), %d mismatches, %.0f s" % (ran, args.seed, seed, len(mismatches),
                                                                        time.monotonic() - start), flush=True)
        seed += 1
    elapsed = time.monotonic() - start
    print("fuzz: %d programs (seeds %d-%d) at thresholds %s in %.0f s (per run: plain %.2f s, ferrojit %.2f s, "
          "slowest %.2f s); %d functions compiled" % (
              ran, args.seed, seed - 1, ",".join(map(str, args.thresholds)), elapsed, plain_time / max(ran, 1),
              jit_time / max(ran * len(args.thresholds), 1), slowest, compiled))
    if failed_reasons:
        print("fuzz: compilations that failed (fell back to the interpreter): %s" % dict(failed_reasons))
    if mismatches:
        print("fuzz: %d mismatches, seeds %s (reports in %s)" % (len(mismatches), " ".join(map(str, mismatches)), args.out))
        return 1
    print("fuzz: no mismatches")
    return 0


if __name__ == "__main__":
    sys.exit(main())
