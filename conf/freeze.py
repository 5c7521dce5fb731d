"""Build step: the plugins' modules as C arrays the launcher hands to the interpreter as frozen.

Every CNI call is a new process that imports 25-60 modules. Found through the path finder, each
costs a directory stat, an open, a read and the importer's own Python on top of running its
code; served from the executable's frozen table (CPython's `PyImport_FrozenModules`, meant for
embedding applications), only the unmarshal and the module's code remain.

The code frozen is the bundle's own: the .pyc files PyInstaller collected into `_internal`
(compiled with the bundle's optimisation level by the interpreter the bundle carries), their
16-byte header dropped. Which modules: those importing the given modules loads, found by
importing them from the bundle in a child of the same interpreter, less the ones libpython
already holds frozen. Anything else still loads from `_internal`, as before: the launcher sets
`sys._stdlib_dir` so a frozen package's `__path__` is its folder there.

The top-level extension modules that importing loads from the bundle (`_json`, `_socket`...:
which ones depends on how the interpreter was built; Debian's has most of them inside libpython)
are listed too, as an inittab of built-ins (`PyImport_ExtendInittab`): each entry's init function
has the launcher dlopen() that .so from `_internal` and call its `PyInit_<name>`, so the import
goes through the built-in importer instead of the path finder (no directory listing, no spec and
loader Python). Only modules whose file really is an extension module inside the bundle are listed.

    python3 conf/freeze.py INTERNAL OUT.c MODULE... [--skip PREFIX...]

A MODULE that is a package stands for every module under it, less the PREFIXes.
"""

from __future__ import annotations

import os
import subprocess
import sys

PYC_HEADER = 16
# Loaded by the child below, not by a plugin call.
PROBE_ONLY = {"__main__"}

PROBE = r"""
import sys, _imp
# (not importlib.machinery: the importlib package would be counted as loaded, and frozen)
from _frozen_importlib_external import ExtensionFileLoader
internal = sys.argv[1]
sys.path[:] = [internal, f"{internal}/python{sys.version_info[0]}.{sys.version_info[1]}/lib-dynload"]
sys._MEIPASS = internal
sys.frozen = True
for name in sys.argv[2:]:
    __import__(name)
for name, module in sorted(sys.modules.items()):
    if _imp.is_frozen(name):
        kind = "frozen"
    elif isinstance(getattr(getattr(module, "__spec__", None), "loader", None), ExtensionFileLoader):
        kind = "extension"
    else:
        kind = "other"
    print(name, kind, getattr(module, "__file__", None) or "-", sep="\t")
"""


def pyc_path(internal: str, name: str) -> tuple[str, bool] | None:
    """The bundle's .pyc of a module, and whether it is a package's `__init__`."""
    base = os.path.join(internal, *name.split("."))
    if os.path.isfile(os.path.join(base, "__init__.pyc")):
        return os.path.join(base, "__init__.pyc"), True
    if os.path.isfile(base + ".pyc"):
        return base + ".pyc", False
    return None


def expand(internal: str, name: str, skip: list[str]) -> list[str]:
    """A module, or every module of a package (its folder walked), less the skipped."""
    found = pyc_path(internal, name)
    if found is None or not found[1]:
        return [name]
    out = []
    top = os.path.join(internal, *name.split("."))
    for folder, dirs, files in os.walk(top):
        dirs.sort()
        rel = os.path.relpath(folder, internal).replace(os.sep, ".")
        for f in sorted(files):
            if f.endswith(".pyc"):
                mod = rel if f == "__init__.pyc" else f"{rel}.{f[:-4]}"
                if not any(mod == s or mod.startswith(s + ".") for s in skip):
                    out.append(mod)
    return out


def loaded_by(internal: str, modules: list[str]) -> tuple[list[str], dict[str, str]]:
    """What importing the modules from the bundle loads, less what libpython holds frozen; and of
    those, the extension modules loaded from a file inside the bundle, with that file's path
    relative to it."""
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", PROBE, internal, *modules],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"freeze: importing the modules from {internal} failed:\n{proc.stderr}")
    top = os.path.realpath(internal)
    names, extensions = [], {}
    for line in proc.stdout.splitlines():
        name, kind, path = line.split("\t")
        if kind == "frozen" or name in PROBE_ONLY:
            continue
        names.append(name)
        if kind == "extension" and builtin_able(name):
            rel = os.path.relpath(os.path.realpath(path), top)
            if not rel.startswith(".." + os.sep) and os.path.isfile(os.path.join(top, rel)):
                extensions[name] = rel
    return names, extensions


def builtin_able(name: str) -> bool:
    """Whether the launcher can serve the module as a built-in: a top-level name (the built-in
    importer of Debian's 3.11.2 declines any module of a package, such as cni.net._setns, which
    then loads from the bundle as before), and an ASCII one (its init function is PyInit_<name>;
    others use PyInitU_ and punycode)."""
    return name.isascii() and name.isidentifier()


def c_array(ident: str, data: bytes) -> str:
    rows = (", ".join(str(b) for b in data[i:i + 24]) for i in range(0, len(data), 24))
    return f"static const unsigned char {ident}[] = {{\n" + ",\n".join(rows) + "\n};\n"


def c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_extensions(extensions: dict[str, str]) -> str:
    """The extension modules as inittab entries, each with its own init function (an inittab init
    takes no argument) calling the launcher's pycni_load_extension with the module's index."""
    names = sorted(extensions)
    rows = [f"    {{{c_string(n)}, {c_string(extensions[n])}, \"PyInit_{n}\"}},"
            for n in names]
    parts = ["static const struct pycni_extension pycni_extensions[] = {\n" + "\n".join(rows)
             + "\n    {NULL, NULL, NULL},\n};\n"]
    parts += [f"static PyObject *pycni_init_{i}(void) {{ return pycni_load_extension({i}); }}\n"
              for i in range(len(names))]
    entries = [f"    {{{c_string(n)}, pycni_init_{i}}}," for i, n in enumerate(names)]
    parts.append("static struct _inittab pycni_inittab[] = {\n" + "".join(e + "\n" for e in entries)
                 + "    {NULL, NULL},\n};\n")
    return "\n".join(parts)


def render(internal: str, names: list[str], extensions: dict[str, str]) -> str:
    parts = ["/* Generated by conf/freeze.py from the bundle's .pyc files; do not edit. */\n"]
    entries = []
    for i, name in enumerate(names):
        found = pyc_path(internal, name)
        if found is None:  # an extension or built-in module: nothing to freeze
            continue
        path, is_package = found
        with open(path, "rb") as f:
            code = f.read()[PYC_HEADER:]
        parts.append(c_array(f"frozen_{i}", code))
        entries.append(f'    {{"{name}", frozen_{i}, (int)sizeof frozen_{i}, {int(is_package)}, NULL}},')
    parts.append("static const struct _frozen pycni_frozen[] = {\n" + "\n".join(entries)
                 + "\n    {NULL, NULL, 0, 0, NULL},\n};\n")
    parts.append(render_extensions(extensions))
    return "\n".join(parts)


def main(argv: list[str]) -> int:
    skip: list[str] = []
    if "--skip" in argv:
        at = argv.index("--skip")
        argv, skip = argv[:at], argv[at + 1:]
    internal, out, modules = argv[0], argv[1], argv[2:]
    wanted = [m for name in modules for m in expand(internal, name, skip)]
    names, extensions = loaded_by(internal, wanted)
    with open(out + ".new", "w") as f:
        f.write(render(internal, names, extensions))
    os.replace(out + ".new", out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
