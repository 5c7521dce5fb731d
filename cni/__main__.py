"""Multi-call entry: the name the executable was started as picks the plugin.

One bundle serves every type through symlinks (`/opt/cni/bin/bridge -> .pycni-<id>/pycni`).
Started under any other name (its own, `pycni`) it is the operator's command (`cni.cli`), which
also runs a plugin given as its first argument (`pycni bridge`).
"""

from __future__ import annotations

import sys

from cni import sysapi


def entry(argv: list[str]) -> int:
    from cni.plugins import MODULES, load

    name = sysapi.basename(argv[0])
    if name not in MODULES and len(argv) > 1 and argv[1] in MODULES:
        name = argv[1]
    if name in MODULES:
        from cni.contract.dispatch import main

        return main(name, load)
    from cni.cli import main as command

    return command(argv[1:])


# The bundle's launcher (conf/launcher.c) calls entry(sys.argv) and exits as below by itself;
# this is the start for `python -m cni` and PyInstaller's onefile builds.
if __name__ == "__main__":
    code = entry(sys.argv)
    # Skip the interpreter's teardown (a measurable share of each call): the answer is written and
    # flushed, files are closed by the kernel and flocks released with them, and no atexit work is registered.
    sys.stdout.flush()
    sys.stderr.flush()
    sysapi._exit(code)
