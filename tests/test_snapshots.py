"""Snapshot tests of printed IR: HIR and LIR are ISA-independent; the allocated LIR is kept for
both ISAs. Addresses (which vary from run to run) are replaced by ADDR before comparing.
Set FERROJIT_UPDATE_SNAPSHOTS=1 to rewrite the files, then review the diff."""

import os
import re
from pathlib import Path

import pytest

import ferrojit
import snapshot_subjects

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("FERROJIT_UPDATE_SNAPSHOTS") == "1"


def normalise(text):
    return re.sub(r"0x[0-9a-f]{5,}", "ADDR", text)


def check(name, text):
    path = SNAPSHOTS / name
    text = normalise(text)
    if UPDATE:
        path.write_text(text)
    assert path.exists(), "no snapshot %s: run with FERROJIT_UPDATE_SNAPSHOTS=1 and review it" % path.name
    assert text == path.read_text(), "snapshot %s differs" % path.name


@pytest.mark.parametrize("func", [snapshot_subjects.branchy, snapshot_subjects.method_call, snapshot_subjects.containers], ids=lambda f: f.__name__)
def test_printed_ir(func):
    x86 = ferrojit.inspect(func, isa="x86_64")
    arm = ferrojit.inspect(func, isa="aarch64")
    same = lambda k: normalise(x86[k]) == normalise(arm[k])
    assert same("hir") and same("lir"), "HIR and LIR must not depend on the ISA"
    check("%s.hir" % func.__name__, x86["hir"])
    check("%s.lir" % func.__name__, x86["lir"])
    check("%s.x86_64.regalloc" % func.__name__, x86["regalloc"])
    check("%s.aarch64.regalloc" % func.__name__, arm["regalloc"])
