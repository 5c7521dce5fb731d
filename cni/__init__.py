"""pycni: CNI plugins for Kubernetes nodes (bridge, host-local, bandwidth, loopback)."""
