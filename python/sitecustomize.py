"""Starts ferrojit in any Python process when FERROJIT=1 is in the environment.

This file sits beside the `ferrojit` package in the folder that the xtask builds and puts on
PYTHONPATH, so that processes started by other tools (pyperf's workers, for example) get the JIT
too. Python imports only the first `sitecustomize` on sys.path, so this one then runs the next
one, if the interpreter has its own.
"""

import os
import sys


def _chain_next_sitecustomize():
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    path = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is None or spec.origin is None or os.path.abspath(spec.origin) == os.path.abspath(__file__):
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


_chain_next_sitecustomize()

if os.environ.get("FERROJIT", "") not in ("", "0"):
    import ferrojit

    ferrojit._enable_from_environment()
