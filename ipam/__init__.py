"""host-local IPAM: address ranges, the allocation order, the on-disk store and the plugin.

`config` and `allocator` are pure functions over data; `store` is the only module that touches
the disk; `hostlocal` ties them to the CNI verbs.
"""
