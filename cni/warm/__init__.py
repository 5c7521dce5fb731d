"""The warm path: one pre-initialised interpreter serves plugin calls, each in a child of its own.

A plugin call that starts CPython pays for the interpreter and its imports every time. `pycni
serve` (server.py) imports every plugin module once and listens on a root-only unix socket; the
bundle's launcher (conf/warm.h) hands it each call with its descriptors, argv, environment, umask
and working directory (protocol.py), and a child that serves that call alone runs it as the
cold path would (child.py): one forked ahead of the call, its pages already copied (spare.py).
Nothing here is on the cold path: a plugin call never imports this package.
"""
