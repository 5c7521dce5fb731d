"""host-local IPAM: address ranges, the allocation order, the on-disk store and the plugin.

`ranges` (addresses and canonical ranges), `config` (the `ipam` section decoded and checked) and
`allocator` (which address next) are pure functions over data; `store` is the only module that
touches the disk; `hostlocal` ties them to the CNI verbs.
"""
