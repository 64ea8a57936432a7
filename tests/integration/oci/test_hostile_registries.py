"""A hostile or broken registry is refused with a clear error and bounded memory."""

from __future__ import annotations

import json

import pytest

from attest.oci.descriptor import OCI_INDEX

from ..helpers import PROVENANCE, push_image, run_attest, through, unique_repository
from ..quirk_proxy import QuirkProxy, Quirks

FIVE_MIB = 5 * 1024 * 1024


def _huge_fallback_tag(method, path):
    if method == "GET" and "/manifests/sha256-" in path:
        body = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [],
                "annotations": {"x": "y" * FIVE_MIB},
            }
        ).encode()
        return 200, {"Content-Type": OCI_INDEX}, body
    return None


def _endless_pages(method, path):
    if method == "GET" and "/referrers/" in path:
        name, _, rest = path.partition("/referrers/")
        digest = rest.split("?")[0]
        page = int(rest.split("page=")[1]) if "page=" in rest else 0
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).encode()
        link = f'<{name}/referrers/{digest}?page={page + 1}>; rel="next"'
        return 200, {"Content-Type": OCI_INDEX, "Link": link}, body
    return None


def _not_json(method, path):
    if method == "GET" and "/referrers/" in path:
        return 200, {"Content-Type": OCI_INDEX}, b"{this is not json"
    return None


def _lying_digest(method, path):
    if method == "HEAD" and "/manifests/sha256:" in path:
        return (
            200,
            {
                "Content-Type": "application/vnd.oci.image.manifest.v1+json",
                "Docker-Content-Digest": "sha256:" + "6" * 64,
                "Content-Length": "10",
            },
            b"",
        )
    return None


@pytest.mark.parametrize(
    ("fault", "command", "message"),
    [
        (_huge_fallback_tag, "attach", "more than 4194304"),
        (_endless_pages, "referrers", "more than 100 pages"),
        (_not_json, "referrers", "not JSON"),
        (_lying_digest, "attach", "registry answered for sha256:6666"),
    ],
    ids=["huge-manifest", "endless-pagination", "malformed-json", "wrong-digest"],
)
def test_hostile_answers_are_refused(registry_of, fault, command, message):
    registry = registry_of("distribution")
    image = push_image(registry.host, unique_repository("hostile"))
    with QuirkProxy(registry.url, Quirks(faults=fault)) as proxy:
        args = [command, through(proxy, image)]
        if command == "attach":
            args += ["--bundle", str(PROVENANCE), "--referrers-mode", "tag"]
        result = run_attest(*args)
    assert result.code == 1
    assert result.stderr.count("\n") == 1
    assert message in result.stderr
