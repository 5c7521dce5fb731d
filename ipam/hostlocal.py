"""The host-local IPAM plugin: addresses from configured ranges, kept in files on this host.

A drop-in replacement for the reference plugin: the same configuration keys and defaults, the same
files in the same directory, the same lock. It also answers STATUS and GC (spec 1.1.0).

The lock is held for a whole ADD (every range set and the rollback of a failed one), DEL, CHECK
and GC: wider than the reference's per-range-set lock, which only makes each call atomic.
"""

from __future__ import annotations

from cni import addrtext, safeopen, sysapi
from cni.contract.errors import INTERNAL, INVALID_CONFIG, IO_FAILURE, NOT_AVAILABLE, CNIError
from cni.contract.result import DNS, IPConfig, Result
from cni.contract.versions import SUPPORTED

from . import allocator, config, ranges
from .ranges import ip_name, parse_ip
from .store import Store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cni.contract.request import Request

    from .ranges import Addr

TYPE = "host-local"
IPAM = True  # an IPAM plugin: what `ipam.type` may name (cni.contract.delegate.find_ipam)
SCHEMA = "host-local"
CNI_ARGS_KEYS = frozenset({"IP"})
READS_PREV_RESULT = False  # an IPAM plugin has no use for it, and the reference never reads it
NEEDS_NETNS = False  # IPAM works on the host's files only
VERSIONS = SUPPORTED
prev_result_as_text = None


def _read_file(path: str) -> bytes:
    """resolvConf and rangeFromFile: regular files only, read with a bound (never a FIFO or device)."""
    return safeopen.read_regular(path)


def _parse(req: Request) -> config.IPAMConfig:
    return config.parse(req.config, req.args, req.version, read_file=_read_file)


def _dns(cfg: config.IPAMConfig) -> DNS:
    if not cfg.resolv_conf:
        return DNS()
    try:
        text = _read_file(cfg.resolv_conf).decode("utf-8", "replace")
    except OSError as e:
        raise CNIError(IO_FAILURE, f"failed to read resolvConf {cfg.resolv_conf}: {e.strerror}") from None
    return config.parse_resolv_conf(text)


def _addresses(names: list[str]) -> list[Addr]:
    return [ip for ip in map(parse_ip, names) if ip is not None]


def _cni_error(e: CNIError, prefix: str) -> CNIError:
    return CNIError(e.code, f"{prefix}{e.msg}", e.details)


def _refuse_own_netns(req: Request) -> None:
    """skel's code 8 when CNI_NETNS is the plugin's own namespace: the reference (v1.9.1) checks it
    for every plugin, IPAM too; a path that is no namespace, or gone, is not refused (as there)."""
    if req.netns:
        from cni.contract.dispatch import check_netns

        check_netns(req.netns, req.env, missing_ok=True)


def add(req: Request) -> Result:
    """One address per range set, requested ones where asked for, round robin otherwise.

    Refused with code 8 before anything is reserved when CNI_NETNS is the plugin's own namespace
    (the reference reserves first and then fails, leaving the address held)."""
    _refuse_own_netns(req)
    cfg = _parse(req)
    dns = _dns(cfg)
    cid, ifname = req.container_id, req.ifname
    per_set, leftover = allocator.assign_requested(cfg.ranges, cfg.requested)
    ips: list[IPConfig] = []
    with Store(cfg.data_dir, cfg.name) as store, store.locked():
        store.sweep()
        held = _addresses(store.held_by(cid, ifname))
        taken: list[str] = []
        try:
            for idx, rs in enumerate(cfg.ranges):
                try:
                    ip, r = _allocate(store, rs, idx, per_set[idx], held, cid, ifname, taken)
                except CNIError as e:
                    raise _cni_error(e, f"failed to allocate for range {idx}: ") from None
                address = addrtext.Cidr(raw=ip.raw, prefixlen=r.subnet.prefixlen)
                ips.append(IPConfig(address=address, gateway=r.gateway.ip()))
            if leftover:
                raise CNIError(INTERNAL, "failed to allocate all requested IPs: "
                               + " ".join(ip_name(ip) for ip in leftover))
        except BaseException:
            store.remove(taken)
            raise
    return Result(ips=ips, routes=list(cfg.routes), dns=dns)


def _allocate(store: Store, rs: ranges.RangeSet, idx: int, wanted: Addr | None, held: list[Addr],
              cid: str, ifname: str, taken: list[str]) -> tuple[Addr, ranges.Range]:
    """Reserve one address of range set idx: the requested one, or the next free one in round robin."""
    if wanted is not None:
        r = allocator.requested_range(rs, wanted)
        got = store.reserve_first([(ip_name(wanted), (wanted, r))], cid, ifname)
        if got is None:
            raise allocator.unavailable_error(rs, wanted)
    else:
        allocator.check_duplicate(rs, held, cid)
        last_text = store.last_reserved(idx)
        last = parse_ip(last_text) if last_text else None
        walk = ((ip_name(ip), (ip, r)) for ip, r in allocator.candidates(rs, last))
        got = store.reserve_first(walk, cid, ifname)
        if got is None:
            raise allocator.exhausted_error(rs)
    name, (ip, r) = got
    taken.append(name)
    store.set_last_reserved(idx, name)
    return ip, r


def delete(req: Request) -> None:
    """Release the attachment's addresses; an unknown attachment or a missing directory is success.

    Only the network name and the data directory are needed: a DEL never fails because of a
    range, a requested address or a netns that no longer exists.
    """
    name, data_dir = config.parse_location(req.config)
    if Store.exists(data_dir, name):
        with Store(data_dir, name) as store, store.locked():
            store.sweep()
            _, errors = store.release(req.container_id, req.ifname)
        if errors:
            raise CNIError(IO_FAILURE, f"failed to release the addresses of {req.container_id}",
                           "; ".join(errors))
    _refuse_own_netns(req)  # after the release, as the reference: the addresses are freed either way


def check(req: Request) -> None:
    """The attachment holds a reservation (which address is not compared, as in the reference)."""
    cfg = _parse(req)
    found = False
    if Store.exists(cfg.data_dir, cfg.name):
        with Store(cfg.data_dir, cfg.name) as store, store.locked():
            found = store.find(req.container_id, req.ifname)
    if not found:
        raise CNIError(INTERNAL, f"host-local: Failed to find address added by container {req.container_id}")


GC_GRACE_KEY = "pycni.dev/gc-grace-seconds"


def _gc_grace(req: Request) -> float | None:
    """`pycni gc` sends GC_GRACE_KEY: reservations younger than that many seconds stay, since its
    list of valid attachments was made from the runtime's answer a moment before this call, and a
    sandbox whose ADD began since is in no list yet. Runtimes (which serialise GC with ADD) omit it."""
    value = req.config.get(GC_GRACE_KEY)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise CNIError(INVALID_CONFIG, f"{GC_GRACE_KEY} must be a number of seconds >= 0, got {value!r}")
    import time

    return time.time() - value


def gc(req: Request) -> None:
    """Release every reservation whose attachment the runtime does not list as valid.

    No list at all means no attachment is valid. Every stale reservation is tried; the failures are
    reported together at the end.
    """
    name, data_dir = config.parse_location(req.config)
    valid = req.valid_attachments()
    keep_newer_than = _gc_grace(req)
    if not Store.exists(data_dir, name):
        return
    with Store(data_dir, name) as store, store.locked():
        store.sweep()
        _, errors = store.gc(valid, keep_newer_than)
    if errors:
        raise CNIError(IO_FAILURE, f"failed to release {len(errors)} stale reservation(s) in {store.path}",
                       "; ".join(errors))


def status(req: Request) -> None:
    """Ready when the data directory can be written and every range set has a free address.

    An ADD needs one address from each range set, so a single exhausted set makes it fail.
    """
    cfg = config.parse(req.config, {}, req.version, read_file=_read_file)
    problem = _unwritable(cfg.data_dir, cfg.name)
    if problem:
        raise CNIError(NOT_AVAILABLE, f"host-local: the IPAM data directory cannot be written: {problem}")
    if not Store.exists(cfg.data_dir, cfg.name):
        return
    with Store(cfg.data_dir, cfg.name, create=False) as store:
        reserved = _addresses(store.reserved_names())
    full = [i for i, rs in enumerate(cfg.ranges) if allocator.free_count(rs, reserved) <= 0]
    if full:
        sets = "; ".join(f"range set {i} ({ranges.range_set_str(cfg.ranges[i])})" for i in full)
        raise CNIError(NOT_AVAILABLE, f"host-local: no free addresses left in {sets}")


def _unwritable(data_dir: str, network: str) -> str:
    """Why an ADD could not write its reservation, or "" when it could."""
    try:
        if Store.exists(data_dir, network):
            # Under the store's lock, as an ADD writes: a concurrent ADD, DEL or GC sweeps every
            # temporary file it finds while it holds the lock, the probe's too.
            with Store(data_dir, network, create=False) as store, store.locked():
                store.probe_write()
            return ""
    except (OSError, CNIError) as e:
        return str(e) if isinstance(e, CNIError) else f"{sysapi.join(data_dir, network)}: {e.strerror}"
    # Not created yet: the nearest existing ancestor must be a writable directory.
    path = sysapi.abspath(sysapi.join(data_dir, network))
    while not sysapi.exists(path):
        parent = sysapi.dirname(path)
        if parent == path:
            break
        path = parent
    if not sysapi.isdir(path):
        return f"{path} is not a directory"
    if not sysapi.access(path, sysapi.W_OK | sysapi.X_OK):
        return f"{path} is not writable"
    return ""

