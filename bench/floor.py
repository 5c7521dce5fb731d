"""Our start-up floor: an empty program packaged exactly as the plugins are.

No plugin of ours can start faster than a bundle that only prints ``{}``, so that bundle is the
yardstick for how much of a call is our own work. It is built at bench time as ``build.sh`` builds
ours: PyInstaller with the options of the script (read from it, so the two cannot drift apart), then
the bundle's launcher (``build.sh launcher``) in place of PyInstaller's bootloader, running a module
whose ``entry`` prints ``{}``; only the module, the name and the output directories differ.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Used when build.sh cannot be read: the options it had when the bench was written.
FALLBACK_OPTIONS = ["--noconfirm", "--clean", "--onedir", "--exclude-module", "tkinter",
                    "--exclude-module", "unittest", "--exclude-module", "pydoc"]
# The empty program's module: the launcher runs its entry(sys.argv), as it runs cni.__main__'s.
EMPTY_MODULE = "pycni_empty"
# Options naming where things go (replaced by ours) and the ones we always set.
_LOCATION = {"--name", "-n", "--distpath", "--workpath", "--specpath", "--log-level"}


def build_sh_options(build_sh: Path = REPO / "build.sh") -> tuple[list[str], str]:
    """The PyInstaller options of build.sh's onedir bundle, and where they came from.

    ``build.sh options`` prints them (NUL-separated) from the same function its own build uses, so
    the two cannot drift apart; the options naming where things go are left to the caller.
    """
    try:
        proc = subprocess.run(["bash", str(build_sh), "options"], cwd=build_sh.parent, capture_output=True,
                              text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return list(FALLBACK_OPTIONS), f"fallback (build.sh options: {e})"
    tokens = [t for t in proc.stdout.split("\0") if t]
    if proc.returncode != 0 or not tokens:
        why = proc.stderr.strip() or "no output"
        return list(FALLBACK_OPTIONS), f"fallback (build.sh options: {why})"
    out: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        name = tok.split("=", 1)[0]
        if name in _LOCATION:
            i += 1 if "=" in tok else 2
            continue
        out.append(tok)
        i += 1
    return out, "build.sh"


def build_empty_bundle(work: Path) -> tuple[Path, list[str], str]:
    """Build the empty onedir bundle under ``work``; return its executable, the options, their origin."""
    options, origin = build_sh_options()
    work.mkdir(parents=True, exist_ok=True)
    (work / f"{EMPTY_MODULE}.py").write_text('def entry(argv):\n    print("{}")\n    return 0\n')
    script = work / "empty.py"
    script.write_text(f"import sys\nimport {EMPTY_MODULE}\nsys.exit({EMPTY_MODULE}.entry(sys.argv))\n")
    cmd = [sys.executable, "-m", "PyInstaller", *options, "--log-level", "WARN", "--name", "empty",
           "--distpath", str(work / "dist"), "--workpath", str(work / "build"),
           "--specpath", str(work), "--paths", str(work), "--hidden-import", EMPTY_MODULE, str(script)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"building the empty bundle failed:\n{proc.stderr[-2000:]}")
    exe = work / "dist" / "empty" / "empty"
    proc = subprocess.run(["bash", str(REPO / "build.sh"), "launcher", str(exe), EMPTY_MODULE, "empty"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"building the empty bundle's launcher failed:\n{proc.stderr[-2000:]}")
    return exe, options, origin


def pyinstaller_version() -> str:
    try:
        return importlib.metadata.version("pyinstaller")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
