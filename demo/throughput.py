"""TCP throughput between two network namespaces, measured at the receiver, standard library only.

One thread sends as fast as it can; the caller receives, ignores the first `skip` bytes (a
token bucket's worth may pass at line rate) and counts the bytes of the next `window` seconds.
The demo shows a shaped pod's rate with it, and the bandwidth tests hold shaping to the
configured rate with the same probe.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from cni.net import netns

CHUNK = 1 << 16


def _socket_in(path: str) -> socket.socket:
    with netns.entered(path):  # a socket stays in the namespace it was created in
        return socket.socket(socket.AF_INET, socket.SOCK_STREAM)


def tcp_rate(sender_ns: str, receiver_ns: str, receiver_ip: str, skip: int = 1 << 20,
             window: float = 1.0, timeout: float = 20.0) -> float:
    """Payload bits per second from `sender_ns` to `receiver_ip` (an address in `receiver_ns`)."""
    listener, client = _socket_in(receiver_ns), _socket_in(sender_ns)
    stop = threading.Event()

    def send() -> None:
        data = b"\0" * CHUNK
        with contextlib.suppress(OSError):
            while not stop.is_set():
                client.sendall(data)

    try:
        listener.bind((receiver_ip, 0))
        listener.listen(1)
        for s in (listener, client):
            s.settimeout(timeout)
        client.connect((receiver_ip, listener.getsockname()[1]))
        conn, _ = listener.accept()
        conn.settimeout(timeout)
        thread = threading.Thread(target=send, daemon=True)
        thread.start()
        buf = bytearray(CHUNK)
        total, start, start_bytes = 0, 0.0, -1
        deadline = time.monotonic() + timeout
        while True:
            n = conn.recv_into(buf)
            now = time.monotonic()
            if n == 0 or now > deadline:
                raise RuntimeError(f"transfer to {receiver_ip} stalled after {total} bytes")
            total += n
            if start_bytes < 0:
                if total >= skip:
                    start, start_bytes = now, total
            elif now - start >= window:
                rate = (total - start_bytes) * 8 / (now - start)
                break
        stop.set()
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_RDWR)
        conn.close()
        thread.join(timeout)
        return rate
    finally:
        stop.set()
        client.close()
        listener.close()
