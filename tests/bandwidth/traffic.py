"""A TCP throughput probe between two network namespaces, in one process.

Each socket is created while the calling thread has entered its namespace (setns), and stays
there; one thread sends as fast as it can, the caller receives. The rate is measured at the
receiver over a window that starts once the token bucket's worth (`skip` bytes) has arrived, so
the initial burst does not count.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from cni.net.netns import entered

CHUNK = 1 << 16


def _socket_in(netns_path: str) -> socket.socket:
    with entered(netns_path):
        return socket.socket(socket.AF_INET, socket.SOCK_STREAM)


def measure(sender_ns: str, receiver_ns: str, receiver_ip: str, *, skip: int, window: float,
            timeout: float = 30.0) -> float:
    """Bits per second of TCP payload over `window` seconds after the first `skip` bytes."""
    listener = _socket_in(receiver_ns)
    client = _socket_in(sender_ns)
    stop = threading.Event()
    try:
        listener.bind((receiver_ip, 0))
        listener.listen(1)
        listener.settimeout(timeout)
        client.settimeout(timeout)
        client.connect((receiver_ip, listener.getsockname()[1]))
        conn, _ = listener.accept()
        conn.settimeout(timeout)

        def send() -> None:
            data = b"\0" * CHUNK
            try:
                while not stop.is_set():
                    client.sendall(data)
            except OSError:
                pass  # the receiver closed: done

        thread = threading.Thread(target=send, daemon=True)
        thread.start()
        buf = bytearray(CHUNK)
        total = 0
        deadline = time.monotonic() + timeout
        start = None
        start_bytes = 0
        while True:
            n = conn.recv_into(buf)
            if n == 0:
                raise AssertionError("the sender closed the connection early")
            total += n
            now = time.monotonic()
            if now > deadline:
                raise AssertionError(f"no measurement within {timeout}s ({total} bytes received)")
            if start is None:
                if total >= skip:
                    start, start_bytes = now, total
            elif now - start >= window:
                rate = (total - start_bytes) * 8 / (now - start)
                break
        stop.set()
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_RDWR)  # unblocks a sendall waiting on a full queue
        conn.close()
        thread.join(timeout=timeout)
        return rate
    finally:
        stop.set()
        client.close()
        listener.close()
