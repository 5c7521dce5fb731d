"""Benchmark of pycni's plugins against the reference Go plugins; run ``sudo python3 -m bench``."""
