"""The operator's view of a node: `pycni status` and `pycni gc`.

Pure rules (which lists the runtime loads, which attachments are still valid, how output reads)
are functions over data; the disk, kernel, runtime and plugin executions each happen at one edge:
`libcni.load_dir`, `node.read` (gathering `stores`, `cache`, `firewall` and `ifbs`, which run
tools and read files through `edges`), `cni.cri.client.list_sandboxes`, `libcni.execute`
(libcni's semantics, which the bench shares).
"""
