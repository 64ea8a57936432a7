from __future__ import annotations

import base64
import json

import pytest

from attest.errors import UsageError
from attest.oci.artifact import BUNDLE_V03, bundle_artifact
from attest.oci.descriptor import OCI_INDEX, OCI_MANIFEST, Descriptor, digest_of
from tests.shared_data import github_bundles

BUNDLES = github_bundles()
SUBJECT = Descriptor(OCI_INDEX, "sha256:" + "c" * 64, 1234)


def _bundle(name: str) -> bytes:
    path = BUNDLES / name
    assert path.is_file(), f"test data missing: {path}"
    return path.read_bytes()


def test_manifest_has_exactly_githubs_shape():
    bundle = _bundle("attest-build-provenance-13532655.sigstore.json")
    artifact = bundle_artifact(bundle, SUBJECT)
    manifest = json.loads(artifact.manifest)
    assert list(manifest) == [
        "schemaVersion",
        "mediaType",
        "artifactType",
        "config",
        "layers",
        "subject",
        "annotations",
    ]
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["artifactType"] == BUNDLE_V03
    assert manifest["config"] == {
        "mediaType": "application/vnd.oci.empty.v1+json",
        "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        "size": 2,
    }
    assert manifest["layers"] == [
        {"mediaType": BUNDLE_V03, "digest": digest_of(bundle), "size": len(bundle)}
    ]
    # The subject is the image's real descriptor, index media type included.
    assert manifest["subject"] == {"mediaType": OCI_INDEX, "digest": SUBJECT.digest, "size": 1234}
    assert manifest["annotations"] == {
        "org.opencontainers.image.created": "2025-11-18T08:31:39.000Z",
        "dev.sigstore.bundle.content": "dsse-envelope",
        "dev.sigstore.bundle.predicateType": "https://slsa.dev/provenance/v1",
    }
    assert artifact.descriptor.digest == digest_of(artifact.manifest)
    assert artifact.descriptor.size == len(artifact.manifest)
    assert artifact.descriptor.annotations == manifest["annotations"]
    assert artifact.blobs == (bundle, b"{}")


def test_same_bundle_gives_the_same_manifest_and_different_bundles_do_not():
    one = _bundle("attest-build-provenance-13532655.sigstore.json")
    other = _bundle("attest-build-provenance-13531551.sigstore.json")
    assert bundle_artifact(one, SUBJECT).manifest == bundle_artifact(one, SUBJECT).manifest
    assert bundle_artifact(one, SUBJECT).descriptor != bundle_artifact(other, SUBJECT).descriptor


def test_predicate_type_is_read_from_the_bundle():
    bundle = json.loads(_bundle("attest-build-provenance-13532655.sigstore.json"))
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["predicateType"] = "https://spdx.dev/Document/v2.3"
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    artifact = bundle_artifact(json.dumps(bundle).encode(), SUBJECT)
    annotations = artifact.descriptor.annotations or {}
    assert annotations["dev.sigstore.bundle.predicateType"] == "https://spdx.dev/Document/v2.3"


def test_legacy_media_type_is_rewritten_without_parameters():
    bundle = json.loads(_bundle("attest-build-provenance-13532655.sigstore.json"))
    bundle["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.2"
    artifact = bundle_artifact(json.dumps(bundle).encode(), SUBJECT)
    assert artifact.descriptor.artifact_type == "application/vnd.dev.sigstore.bundle.v0.2+json"


def test_tlog_time_dates_a_bundle_without_certificate():
    bundle = json.loads(_bundle("attest-build-provenance-13532655.sigstore.json"))
    del bundle["verificationMaterial"]["certificate"]
    bundle["verificationMaterial"]["publicKey"] = {"hint": "k"}
    bundle["verificationMaterial"]["tlogEntries"][0]["integratedTime"] = "1700000000"
    artifact = bundle_artifact(json.dumps(bundle).encode(), SUBJECT)
    annotations = artifact.descriptor.annotations or {}
    assert annotations["org.opencontainers.image.created"] == "2023-11-14T22:13:20.000Z"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "invalid JSON"),
        (b"[]", "no mediaType"),
        (b'{"mediaType": "application/json"}', "mediaType"),
        (
            b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",'
            b' "verificationMaterial": {}}',
            "neither dsseEnvelope nor messageSignature",
        ),
    ],
)
def test_bad_bundles_are_usage_errors_naming_the_source(data, message):
    with pytest.raises(UsageError, match=message) as info:
        bundle_artifact(data, SUBJECT, source="--bundle x.json")
    assert info.value.message.startswith("--bundle x.json:")
