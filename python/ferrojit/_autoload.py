"""Switches the JIT on at interpreter start-up when FERROJIT=1 (imported by the
`ferrojit-autoload.pth` file an installed ferrojit puts in site-packages).

`site` reads `.pth` files before it adds `exit`, `quit`, `help`, `copyright`, `credits` and
`license` to builtins; code compiled before that would guard a builtins dictionary that is
about to change and leave at once. So while `site.main()` is still under way, the switch waits
until `site` has run `sitecustomize` (its last step for the interpreter's own site set-up)."""

import builtins
import sys


def _enable():
    import ferrojit

    ferrojit._enable_from_environment()


def _enable_after_sitecustomize(site):
    original = site.execsitecustomize

    def execsitecustomize():
        try:
            original()
        finally:
            site.execsitecustomize = original
            _enable()

    site.execsitecustomize = execsitecustomize


_site = sys.modules.get("site")
if _site is not None and not hasattr(builtins, "quit") and hasattr(_site, "execsitecustomize"):
    _enable_after_sitecustomize(_site)
else:
    _enable()
