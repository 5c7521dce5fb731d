"""`pycni`, the bundle started under its own name: what an operator asks of an installed node.

Plugins are started by runtimes under their type's name; this is the one entry meant for people
and install scripts: `pycni --version` says what is installed, `pycni --plugins` lists the types
the bundle serves (the installer links exactly those), `pycni status` and `pycni gc` show and free
what the plugins hold on the node (`cni.ops`, imported only for them: it brings grpc), and
`pycni serve` runs the warm process that serves plugin calls (`cni.warm`).
"""

from __future__ import annotations

import sys

from cni.contract.versions import SUPPORTED
from cni.plugins import MODULES
from cni.version import VERSION

USAGE = """usage: pycni --version | --plugins | status [OPTIONS] | gc [OPTIONS] | serve [OPTIONS] | TYPE
  --version   pycni's version and the CNI spec versions it speaks
  --plugins   the plugin types this bundle serves, one per line
  status      the node's network lists, plugins, allocations and leftovers (--help for options)
  gc          free what attachments the runtime no longer holds left behind (--help for options)
  serve       run the warm process that serves plugin calls, in the foreground (--help for options)
  TYPE        run as that plugin (as if started through its /opt/cni/bin link)
"""


def version_line() -> str:
    return f"pycni {VERSION} (CNI spec versions {', '.join(SUPPORTED)})"


def main(args: list[str]) -> int:
    if args == ["--version"]:
        print(version_line())
        return 0
    if args == ["--plugins"]:
        print("\n".join(sorted(MODULES)))
        return 0
    if args and args[0] in ("status", "gc"):
        from cni.ops.commands import main as operate

        return operate(args[0], args[1:])
    if args and args[0] == "serve":
        from cni.__main__ import entry
        from cni.warm.server import main as serve

        return serve(args[1:], entry)
    if args in (["-h"], ["--help"]):
        sys.stdout.write(USAGE)
        return 0
    sys.stderr.write(USAGE)
    return 2
