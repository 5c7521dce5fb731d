"""All kernel work of pycni: netlink (rtnetlink over AF_NETLINK), namespaces, tc, sysctl.

Standard library only, and cheap to import: a plugin's cost is its start-up.  Nothing is
imported here; import the submodule you need.  Plugins talk to the kernel only through
these modules.

Errors are OSError carrying errno, with a message naming the operation and, when the
kernel sends one, its own explanation: "[Errno 17] create bridge cni0: File exists".
EEXIST arrives as FileExistsError, ENOENT as FileNotFoundError, ESRCH as
ProcessLookupError; ENODEV, EADDRNOTAVAIL, EACCES... as plain OSError (check `.errno`).

cni.net.netns — namespaces (`path` is e.g. /var/run/netns/NAME or /proc/PID/ns/net)
    open_handle(path: str | None = None) -> Handle     netlink handle bound to that netns
    entered(path)                    context manager: this thread runs inside, then returns
    netns_fd(path) -> int            O_CLOEXEC fd for create_veth/set_link; caller closes
    is_netns(path) -> bool           exists and is a network namespace
    same_as_current(path) -> bool    it is the namespace this thread is in

cni.net.netlink — Handle: a NETLINK_ROUTE socket; context manager, close().  Dumps are
    retried while the kernel reports NLM_F_DUMP_INTR (up to 10 times, then EINTR).

cni.net.link — every function takes the Handle first
    Link(index, name, kind, mac, mtu, up, operstate, master, link, link_netnsid, promisc,
         txqlen, flags, slave_kind, vlan_filtering, vlan_id, alias ("" if none))
    get_link(h, name_or_index) -> Link | None
    list_links(h) -> list[Link]
    create_bridge(h, name, mtu=None, vlan_filtering=False, up=False) -> Link
    create_veth(h, name, peer_name, peer_netns_fd=None, mtu=None, mac=None, peer_mac=None,
                up=False) -> Link                      (the local end; .link = peer ifindex)
    create_ifb(h, name, mtu=None, txqlen=0, up=False, alias=None) -> Link   (alias: IFLA_IFALIAS)
    create_vlan(h, name, parent, vid, mtu=None, up=False) -> Link
    set_link(h, index, up=None, mtu=None, master=None (0: no master), mac=None,
             promisc=None, netns_fd=None, name=None, txqlen=None)
    set_bridge(h, index, vlan_filtering=None)
    delete_link(h, index)
    set_bridge_port(h, index, hairpin=None, isolated=None, learning=None, unicast_flood=None)
    get_bridge_port(h, index) -> BridgePort(hairpin, isolated, learning, unicast_flood,
                                            state) | None
    bridge_vlan_add(h, index, vid, pvid=False, untagged=False, self_=False)
    bridge_vlan_del(h, index, vid, self_=False)
    bridge_vlans(h, index) -> list[BridgeVlan(vid, pvid, untagged)]
    add_address(h, index, cidr: IPv4Interface | IPv6Interface, nodad=False)
    delete_address(h, index, cidr)
    list_addresses(h, index=None, family=None (4 | 6)) -> list[Address(index, ip, scope,
                   flags, label; .tentative, .dadfailed, .permanent)]
    add_route(h, dst: IPv4Network | IPv6Network, gw=None, oif=None, scope=None,
              table=None (main), priority=None, mtu=None, advmss=None, src=None,
              replace=False)
    delete_route(h, dst, gw=None, oif=None, table=None, priority=None, scope=None)
    list_routes(h, family=None (4 | 6), table=254 (None: all)) -> list[Route(dst, gw, oif,
                scope, priority, table, protocol, type, src, mtu, advmss)]
    mac_str(raw: bytes) -> str       "aa:bb:cc:dd:ee:ff", lower case

cni.net.tc — rates in bytes/s, sizes in bytes, buffer in scheduler ticks
    tick_in_usec(), usec_to_ticks(us), ticks_to_usec(ticks), xmittime(rate, size) -> ticks
    add_tbf(h, index, rate, buffer, limit, burst=None, handle=0x10000, parent=TC_H_ROOT,
            replace=False)
    add_ingress_qdisc(h, index)
    delete_qdisc(h, index, parent=TC_H_ROOT, handle=0)
    list_qdiscs(h, index=None) -> list[Qdisc(index, kind, handle, parent, rate, buffer,
                                              limit)]       (rate/buffer/limit: tbf only)
    add_mirred_redirect_filter(h, index, target, parent=INGRESS_HANDLE, prio=1,
                               protocol=ETH_P_ALL, classid=0x10001)
    delete_filter(h, index, parent, prio, protocol=ETH_P_ALL)
    list_filters(h, index, parent=INGRESS_HANDLE) -> list[Filter(index, kind, prio,
                 protocol, handle, parent, classid, actions=[Action(kind, verdict,
                 eaction, target)])]

cni.net.sysctl — /proc/sys of the thread's current netns
    read(key) -> str, write(key, value), conf_key(family, ifname, leaf) -> key
    key: "net/ipv4/ip_forward" or "net.ipv6.conf.eth0.accept_dad"

Example (bridge ADD, shortened):
    from cni.net import link, netns
    with netns.open_handle() as host, netns.open_handle(cni_netns) as cont:
        try:
            br = link.create_bridge(host, "cni0", mtu=1500, up=True)
        except FileExistsError:
            br = link.get_link(host, "cni0")
        fd = netns.netns_fd("/proc/self/ns/net")
        try:
            veth = link.create_veth(cont, "eth0", "veth1234abcd", peer_netns_fd=fd)
        finally:
            os.close(fd)
        link.set_link(host, veth.link, master=br.index, up=True)
"""
