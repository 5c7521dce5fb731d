"""The warm path: one pre-initialised interpreter serves plugin calls by forking a child per call.

A plugin call that starts CPython pays for the interpreter and its imports every time. `pycni
serve` (server.py) imports every plugin module once and listens on a root-only unix socket; the
bundle's launcher (conf/warm.h) hands it each call with its descriptors, argv, environment, umask
and working directory (protocol.py), and a child forked for that call alone (child.py) runs it
as the cold path would. Nothing here is on the cold path: a plugin call never imports this package.
"""
