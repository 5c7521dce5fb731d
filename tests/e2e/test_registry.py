"""The test registry (``registry.py``) answers a pull as the OCI distribution API says: a tag resolves
to an index, the index names the manifest, the manifest names the blobs, each with its media type
and a digest header that matches its bytes; anything else is an error JSON, and writes are refused."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from ociimage import CONFIG_TYPE, INDEX_TYPE, MANIFEST_TYPE, busybox_image, digest_of
from registry import PullRegistry, split_reference

BUSYBOX = Path("/bin/busybox")
NAME = "e2e-test-images/busybox"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, object]]:
    if not BUSYBOX.is_file():
        pytest.skip(f"{BUSYBOX} missing (Debian package busybox-static)")
    image = busybox_image(BUSYBOX, ["sh"], files={"www/index.html": b"It works!\n"})
    registry = PullRegistry()
    registry.add(NAME, "1.29-2", image)
    port = registry.start()
    try:
        yield f"http://127.0.0.1:{port}", image
    finally:
        registry.stop()


def _get(url: str, method: str = "GET", data: bytes | None = None):
    req = urllib.request.Request(url, method=method, data=data)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_split_reference() -> None:
    assert split_reference("registry.k8s.io/pause:3.9") == ("registry.k8s.io", "pause", "3.9")
    assert split_reference("gcr.io/k8s-staging-cri-tools/hostnet-nginx-amd64") == (
        "gcr.io", "k8s-staging-cri-tools/hostnet-nginx-amd64", "latest")


def test_pull_by_tag_then_digest(served) -> None:
    base, image = served
    status, headers, body = _get(f"{base}/v2/")
    assert status == 200 and headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert json.loads(body) == {}

    # containerd asks a mirror with ?ns=<the host it stands for>
    status, headers, index = _get(f"{base}/v2/{NAME}/manifests/1.29-2?ns=registry.k8s.io")
    assert status == 200 and headers["Content-Type"] == INDEX_TYPE
    assert headers["Docker-Content-Digest"] == digest_of(index)
    (entry,) = json.loads(index)["manifests"]
    assert entry["mediaType"] == MANIFEST_TYPE and entry["platform"]["os"] == "linux"

    # the index itself by digest, then the manifest it names
    status, headers, again = _get(f"{base}/v2/{NAME}/manifests/{digest_of(index)}")
    assert (status, again) == (200, index)
    status, headers, manifest = _get(f"{base}/v2/{NAME}/manifests/{entry['digest']}")
    assert status == 200 and headers["Content-Type"] == MANIFEST_TYPE
    assert digest_of(manifest) == entry["digest"] == image.digest and len(manifest) == entry["size"]

    doc = json.loads(manifest)
    assert doc["config"]["mediaType"] == CONFIG_TYPE
    for desc in (doc["config"], *doc["layers"]):
        status, headers, _ = _get(f"{base}/v2/{NAME}/blobs/{desc['digest']}", method="HEAD")
        assert status == 200 and int(headers["Content-Length"]) == desc["size"]
        status, headers, blob = _get(f"{base}/v2/{NAME}/blobs/{desc['digest']}")
        assert status == 200 and digest_of(blob) == desc["digest"] == headers["Docker-Content-Digest"]


def test_unknown_and_writes(served) -> None:
    base, image = served
    for url, code in ((f"{base}/v2/{NAME}/manifests/9.9", "MANIFEST_UNKNOWN"),
                      (f"{base}/v2/other/manifests/{image.digest}", "MANIFEST_UNKNOWN"),
                      (f"{base}/v2/other/blobs/{next(iter(image.blobs))}", "BLOB_UNKNOWN")):
        status, headers, body = _get(url)
        assert status == 404 and headers["Content-Type"] == "application/json", url
        assert json.loads(body)["errors"][0]["code"] == code, url
    status, _, body = _get(f"{base}/v2/{NAME}/blobs/uploads/", method="POST", data=b"x")
    assert status == 405 and json.loads(body)["errors"][0]["code"] == "UNSUPPORTED"
    status, _, _ = _get(f"{base}/v2/{NAME}/manifests/1.29-2", method="PUT", data=b"{}")
    assert status == 405
    # the refused writes changed nothing
    assert _get(f"{base}/v2/{NAME}/manifests/1.29-2")[0] == 200
