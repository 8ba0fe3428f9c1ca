"""Switches the JIT on at interpreter start-up when FERROJIT=1 (imported by the
`ferrojit-autoload.pth` file an installed ferrojit puts in site-packages)."""

import ferrojit

ferrojit._enable_from_environment()
