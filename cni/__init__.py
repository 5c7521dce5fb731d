"""pycni: CNI plugins for Kubernetes nodes (bridge, ptp, host-local, bandwidth, loopback, portmap).

Start-up cost is the product: every CNI call is a fresh process, so every module imported on a
plugin's call path costs milliseconds on every ADD and DEL. Hence, throughout:
- no `typing` at run time: `TYPE_CHECKING = False` guards the imports annotations need, and
  annotations stay strings (`from __future__ import annotations`);
- no `dataclasses`, `enum`, `re`, `json`, `contextlib`, `subprocess`, `socket` on the plain path:
  `cni.record`, `cni.fastjson`, hand-written context managers and try/except stand in for them;
  modules that need one (the firewall, tracebacks) import it where it is used.
- `ipaddress` (with functools, collections and the rest it imports) only for text that is
  not canonical, and where portmap's mappings and CHECK's route listing compute with it:
  `cni.addrtext` values (bytes and a prefix) carry kernel addresses, the bridge's IPAM answer and
  a prevResult that is only passed on; host-local walks its ranges as integers.
- no `hashlib` (it loads every algorithm it offers): `cni.names` takes `_sha512` itself.
- no `os` (os.environ is built on the collections ABCs): `cni.sysapi` gives the posix
  calls, the environment and the path helpers the plugins use; subprocess brings os where it runs.
tests/bundle/test_startup.py holds every plugin to this; what each import costs is measured there
and by the bench (`python -m bench`), not written here, where it would go stale. The module map is
docs/ARCHITECTURE.md.
"""
