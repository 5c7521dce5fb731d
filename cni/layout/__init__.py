"""What pycni writes on a host, in one place: the names, tags and formats a plugin leaves behind.

A plugin writes these and a later call (its own DEL, GC, CHECK, another attachment's ADD) or the
operator's `pycni status`/`gc` reads them back. Each submodule owns one kind of thing, both
directions: how it is written and how it is read, so a writer and its readers cannot drift apart.
Everything here is pure (text and names in, text and names out); the kernel, the firewall tools and
the disk are touched by the callers. The base layer: nothing here imports from above it.
"""
