"""The pycni demo: pods on cbr0 from conf/examples, driven the way a container runtime drives CNI."""
