"""A pull-only OCI registry on 127.0.0.1, for runtimes that pull images by name with no network.

It implements the read side of the OCI distribution API, which is all a pull uses:
``GET/HEAD /v2/``, ``/v2/<name>/manifests/<tag or digest>`` and ``/v2/<name>/blobs/<digest>``,
with the media type as Content-Type and the ``Docker-Content-Digest`` header. A tag resolves to an
OCI image index naming the image's one manifest for its platform (as multi-platform images on the
real registries do); the index and the manifest can also be pulled by digest. Everything else is
refused with 405, and an unknown name, tag or digest gets 404 with the API's error JSON.

The listening socket can be made inside another network namespace (a node's, whose 127.0.0.1 is
its own), while the server runs on a thread of the test process. ``write_hosts`` writes
containerd's ``hosts.toml`` files that send pulls for registry host names to it.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ociimage import INDEX_TYPE, MANIFEST_TYPE, OciImage, digest_of

CLONE_NEWNET = 0x40000000
_PATH = re.compile(r"^/v2/(?P<name>[a-z0-9]+(?:[._/-][a-z0-9]+)*)/(?P<kind>manifests|blobs)/"
                   r"(?P<ref>[A-Za-z0-9_.:+-]+)$")


def split_reference(ref: str) -> tuple[str, str, str]:
    """``host/name:tag`` -> (host, name, tag); a missing tag is ``latest``, as Docker's rule."""
    host, _, rest = ref.partition("/")
    name, _, tag = rest.rpartition(":") if ":" in rest else (rest, "", "latest")
    return host, name, tag


def _listen_in_netns(netns: str | None) -> socket.socket:
    """A TCP socket listening on 127.0.0.1 (a free port) in the network namespace at ``netns``.

    setns(2) with CLONE_NEWNET moves only the calling thread, so a short-lived thread moves,
    makes the socket (which stays in that namespace) and ends; the test process is left alone."""
    made: list[socket.socket] = []
    failed: list[BaseException] = []

    def work() -> None:
        try:
            if netns is not None:
                libc = ctypes.CDLL(None, use_errno=True)
                fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    if libc.setns(fd, CLONE_NEWNET) != 0:
                        err = ctypes.get_errno()
                        raise OSError(err, f"setns({netns}): {os.strerror(err)}")
                finally:
                    os.close(fd)
            made.append(socket.create_server(("127.0.0.1", 0), backlog=64))
        except BaseException as exc:  # handed to the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=work, name="registry-listen")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return made[0]


class PullRegistry:
    """Images by ``name`` and tag; serve with :meth:`start`, always :meth:`stop`."""

    def __init__(self) -> None:
        self._manifests: dict[tuple[str, str], tuple[str, bytes]] = {}  # (name, tag|digest)
        self._blobs: dict[tuple[str, str], bytes] = {}  # (name, digest)
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status), as served
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def add(self, name: str, tag: str, image: OciImage) -> None:
        """Serve ``image`` as ``name:tag`` (``name`` without the registry host)."""
        index = image.index()
        for ref in (tag, digest_of(index)):
            self._manifests[(name, ref)] = (INDEX_TYPE, index)
        self._manifests[(name, image.digest)] = (MANIFEST_TYPE, image.manifest)
        for digest, blob in image.blobs.items():
            self._blobs[(name, digest)] = blob

    def lookup(self, name: str, kind: str, ref: str) -> tuple[str, bytes] | None:
        """(media type, content) of a manifest or blob, None when this registry has no such thing."""
        if kind == "manifests":
            return self._manifests.get((name, ref))
        blob = self._blobs.get((name, ref))
        return None if blob is None else ("application/octet-stream", blob)

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return self._server.server_address[1]

    def start(self, netns: str | None = None) -> int:
        """Listen on 127.0.0.1 (in the network namespace at ``netns`` if given); returns the port."""
        sock = _listen_in_netns(netns)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self), bind_and_activate=False)
        server.socket.close()
        server.socket, server.server_address = sock, sock.getsockname()
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="registry", daemon=True)
        self._thread.start()
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def write_hosts(self, config_dir: Path, hosts: list[str]) -> None:
        """containerd's registry configuration (``config_path``): each of ``hosts`` pulled from here."""
        url = f"http://127.0.0.1:{self.port}"
        for host in hosts:
            (config_dir / host).mkdir(parents=True, exist_ok=True)
            (config_dir / host / "hosts.toml").write_text(
                f'server = "{url}"\n\n[host."{url}"]\n  capabilities = ["pull", "resolve"]\n')


def _handler(registry: PullRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "pycni-test-registry"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            registry.requests.append((self.command, self.path, status))
            self.send_response(status)
            for key, value in {**headers, "Content-Length": str(len(body)),
                               "Docker-Distribution-API-Version": "registry/2.0"}.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _error(self, status: int, code: str, message: str) -> None:
            body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
            self._send(status, body, {"Content-Type": "application/json"})

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]  # containerd adds ?ns=<host> when it uses a mirror
            if path in ("/v2", "/v2/"):
                self._send(200, b"{}", {"Content-Type": "application/json"})
                return
            match = _PATH.match(path)
            if match is None:
                self._error(404, "NAME_UNKNOWN", f"no such path {path}")
                return
            found = registry.lookup(match["name"], match["kind"], match["ref"])
            if found is None:
                code = "MANIFEST_UNKNOWN" if match["kind"] == "manifests" else "BLOB_UNKNOWN"
                self._error(404, code, f"{match['name']}: {match['ref']} unknown")
                return
            media_type, body = found
            self._send(200, body, {"Content-Type": media_type, "Docker-Content-Digest": digest_of(body)})

        do_HEAD = do_GET

        def _refuse(self) -> None:
            # The request's body is never read, so the connection cannot carry another request.
            self.close_connection = True
            body = json.dumps({"errors": [{"code": "UNSUPPORTED", "message": "pull-only"}]}).encode()
            self._send(405, body, {"Content-Type": "application/json", "Connection": "close"})

        do_POST = do_PUT = do_PATCH = do_DELETE = _refuse

    return Handler
