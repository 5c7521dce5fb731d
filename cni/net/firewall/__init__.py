"""Firewall rules through the iptables and nft executables: one backend module per tool, and one
module per feature that lays out its rules on them.

    tools.py       finding and running the executables; FirewallError; which backend by default
    iptables.py    iptables backend: iptables-save reading (through cni.layout.iptables_save),
                   iptables-restore batches, chain removal
    nftables.py    nftables backend: nft batches, JSON listings, rule removal by handle
    masq.py        bridge's ipMasq on either backend, laid out as the reference plugin lays it out
                   (names and comments: cni.layout.masq), removing only what records its owner
    spoofcheck.py  bridge's MAC spoof check (nftables `bridge nat`)

Rule generation is pure (the `*_script` functions over names and listings); only the backends'
`restore`, `save`, `apply` and `listing` run a tool. Nothing here is imported by a plain ADD: the
package pulls in subprocess, json and hashlib, which only attachments with firewall rules pay for.
"""
