"""The kernel edge: every netlink message, namespace switch, sysctl and firewall tool run of pycni.

Standard library only, cheap to import, and nothing is imported here: import the module you need.
Plugins talk to the kernel only through these modules; nothing here knows CNI.

    netlink.py      rtnetlink over AF_NETLINK: framing, attributes, `Handle` (request, dump)
    netns.py        network namespaces: enter one, open a Handle inside one, is it a netns
    link.py         links: look up, create (bridge, veth, ifb), change, delete
    addr.py         addresses of a link, with their DAD state
    route.py        routes: add one, list a table (`KernelRoute`)
    bridge_port.py  bridge port flags and a port's VLANs
    tc.py           qdiscs (tbf, ingress) and the u32 mirred redirect filter
    sysctl.py       /proc/sys of the current namespace
    firewall/       iptables and nftables backends and the rule layouts built on them

Every function that talks netlink takes the Handle first; the handle decides the namespace.
Errors are OSError carrying errno, with a message naming the operation and, when the kernel sends
one, its own explanation ("[Errno 17] create bridge cni0: File exists"): EEXIST arrives as
FileExistsError, ENOENT as FileNotFoundError; ENODEV, EADDRNOTAVAIL... as plain OSError.
The modules' docstrings and signatures are the reference; this list is only the map.
"""
