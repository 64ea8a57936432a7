from __future__ import annotations

import json

import pytest
import requests

from attest.oci.client import Manifest
from attest.oci.descriptor import OCI_INDEX, OCI_MANIFEST, Descriptor, canonical_json, digest_of
from attest.oci.errors import FallbackTagError
from attest.oci.referrers import (
    Capability,
    CapabilityCache,
    _FallbackIndex,
    classify_referrers_response,
)

SUBJECT = Descriptor(OCI_MANIFEST, "sha256:" + "5" * 64, 500)
OURS = Descriptor(
    OCI_MANIFEST,
    "sha256:" + "1" * 64,
    800,
    "application/vnd.dev.sigstore.bundle.v0.3+json",
    {"dev.sigstore.bundle.content": "dsse-envelope"},
)


def _response(status: int, content_type: str = "", body: bytes = b"") -> requests.Response:
    response = requests.Response()
    response.status_code = status
    if content_type:
        response.headers["Content-Type"] = content_type
    response._content = body
    return response


def _errors(code: str) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": code.lower()}]}).encode()


@pytest.mark.parametrize(
    ("status", "content_type", "body", "verdict"),
    [
        (200, OCI_INDEX, b'{"manifests":[]}', Capability.SUPPORTED),
        (200, OCI_INDEX + "; charset=utf-8", b"{}", Capability.SUPPORTED),
        (200, "application/json", b"{}", Capability.UNSUPPORTED),
        (200, "text/html", b"<html>login</html>", Capability.UNSUPPORTED),
        (404, "text/plain", b"404 page not found", Capability.UNSUPPORTED),
        (404, "application/json", _errors("MANIFEST_UNKNOWN"), Capability.UNSUPPORTED),
        (404, "application/json", _errors("METHOD_UNKNOWN"), Capability.UNSUPPORTED),
        (404, "application/json", _errors("NAME_UNKNOWN"), None),
        (400, "application/json", _errors("MANIFEST_INVALID"), Capability.UNSUPPORTED),
        (405, "", b"", Capability.UNSUPPORTED),
        (406, "", b"", Capability.UNSUPPORTED),
        (401, "application/json", _errors("UNAUTHORIZED"), None),
        (403, "", b"", None),
        (500, "", b"", None),
        (503, "", b"", None),
    ],
)
def test_classify_referrers_response(status, content_type, body, verdict):
    assert classify_referrers_response(_response(status, content_type, body)) is verdict


def test_capability_is_set_once():
    cache = CapabilityCache()
    assert cache.get("r", "a") is Capability.UNKNOWN
    assert cache.settle("r", "a", Capability.SUPPORTED) is Capability.SUPPORTED
    assert cache.settle("r", "a", Capability.UNSUPPORTED) is Capability.SUPPORTED
    assert cache.get("r", "a") is Capability.SUPPORTED
    # Per registry and repository.
    assert cache.get("r", "b") is Capability.UNKNOWN
    assert cache.get("other", "a") is Capability.UNKNOWN


def _manifest(body: object, media_type: str = OCI_INDEX, etag: str | None = None) -> Manifest:
    data = canonical_json(body)
    return Manifest(data, media_type, digest_of(data), etag)


def test_missing_tag_starts_an_empty_index():
    index = _FallbackIndex.parse(None, "t", SUBJECT, "r/a")
    assert json.loads(index.with_entries([OURS.to_json()])) == {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [OURS.to_json()],
    }
    assert index.etag is None


def test_merge_keeps_every_existing_entry_and_index_field():
    existing = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "annotations": {"kept": "yes"},
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": "sha256:" + "2" * 64, "size": 9},
            # Written by an old cosign: wrong artifactType, no annotations; kept as is.
            {
                "mediaType": OCI_MANIFEST,
                "digest": "sha256:" + "3" * 64,
                "size": 9,
                "artifactType": "application/vnd.oci.empty.v1+json",
            },
            {"garbage": True},
        ],
    }
    index = _FallbackIndex.parse(_manifest(existing, etag='"e1"'), "t", SUBJECT, "r/a")
    assert index.etag == '"e1"'
    merged = json.loads(index.with_entries([OURS.to_json()]))
    assert merged["annotations"] == {"kept": "yes"}
    assert merged["manifests"] == [*existing["manifests"], OURS.to_json()]
    assert merged["manifests"][-1]["artifactType"] == OURS.artifact_type
    assert merged["manifests"][-1]["annotations"] == OURS.annotations
    assert not index.contains(OURS.digest)
    assert _FallbackIndex.parse(_manifest(merged), "t", SUBJECT, "r/a").contains(OURS.digest)


def test_tag_resolving_to_the_subject_is_refused():
    body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    subject_manifest = _manifest(body)
    subject = Descriptor(OCI_INDEX, subject_manifest.digest, len(subject_manifest.data))
    with pytest.raises(FallbackTagError, match="resolves to the image itself"):
        _FallbackIndex.parse(subject_manifest, "t", subject, "r/a")


@pytest.mark.parametrize(
    ("body", "media_type"),
    [
        ({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}, OCI_MANIFEST),
        (
            {"schemaVersion": 2, "manifests": []},
            "application/vnd.docker.distribution.manifest.list.v2+json",
        ),
        ({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": {}}, OCI_INDEX),
    ],
)
def test_tag_holding_something_else_is_refused(body, media_type):
    with pytest.raises(FallbackTagError, match="not an OCI image index"):
        _FallbackIndex.parse(_manifest(body, media_type), "t", SUBJECT, "r/a")
