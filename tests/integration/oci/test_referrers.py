"""attach and referrers against real registries, read back by real clients."""

from __future__ import annotations

import json

import pytest

from attest.oci.artifact import bundle_artifact
from attest.oci.descriptor import OCI_INDEX, Descriptor, referrers_tag

from ..conftest import ALL_KINDS, API_KINDS, TAG_KINDS
from ..helpers import (
    BUNDLE_TYPE,
    CUSTOM_ISSUER,
    PROVENANCE,
    PROVENANCE_PRIVATE,
    get_json,
    listed_type,
    manifest_exists,
    oras_spec,
    push_image,
    push_index,
    run_attest,
    run_tool,
    tags,
    unique_repository,
)

ANNOTATIONS = {
    "org.opencontainers.image.created": "2025-11-18T08:31:39.000Z",
    "dev.sigstore.bundle.content": "dsse-envelope",
    "dev.sigstore.bundle.predicateType": "https://slsa.dev/provenance/v1",
}


def _fallback_tags(host: str, repository: str) -> list[str]:
    return [t for t in tags(host, repository) if t.startswith("sha256-")]


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_attach_uses_the_api_exactly_where_the_registry_serves_it(registry_of, kind, tmp_path):
    registry = registry_of(kind)
    repository = unique_repository(kind)
    image = push_image(registry.host, repository)
    digest = image.rsplit("@", 1)[1]

    result = run_attest("attach", image, "--bundle", PROVENANCE).json()

    assert result["subject"] == image
    assert manifest_exists(registry.host, repository, result["manifest_digest"])
    manifest = get_json(registry.host, repository, result["manifest_digest"])
    assert manifest["subject"]["digest"] == digest
    assert manifest["annotations"] == ANNOTATIONS
    if kind in API_KINDS:
        assert result == {**result, "mode": "api", "fallback_tag": None}
        # The user's request: no sha256-<digest> tag on a registry with the API.
        assert _fallback_tags(registry.host, repository) == []
        assert not manifest_exists(registry.host, repository, referrers_tag(digest))
    else:
        assert result["mode"] == "tag"
        assert result["fallback_tag"] == referrers_tag(digest)
        index = get_json(registry.host, repository, referrers_tag(digest))
        assert index["mediaType"] == OCI_INDEX
        assert index["manifests"] == [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": result["manifest_digest"],
                "size": manifest_size(registry.host, repository, result["manifest_digest"]),
                "artifactType": BUNDLE_TYPE,
                "annotations": ANNOTATIONS,
            }
        ]

    # Real clients list what we wrote, with the right artifactType and annotations.
    oras = json.loads(
        run_tool(
            "oras",
            "discover",
            "--plain-http",
            *oras_spec(kind),
            "--format",
            "json",
            image,
            home=tmp_path,
        )
    )
    regctl = json.loads(
        run_tool(
            "regctl",
            "--host",
            f"reg={registry.host},tls=disabled",
            "artifact",
            "list",
            image,
            "--format",
            "{{json .}}",
            home=tmp_path,
        )
    )
    for listed in (oras["referrers"], regctl["descriptors"]):
        assert [(d["digest"], d["artifactType"], d["annotations"]) for d in listed] == [
            (result["manifest_digest"], listed_type(kind), ANNOTATIONS)
        ]


def manifest_size(host: str, repository: str, digest: str) -> int:
    return len(json.dumps(get_json(host, repository, digest), separators=(",", ":")).encode())


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_attaching_twice_adds_no_second_referrer_and_other_bundles_are_merged(registry_of, kind):
    registry = registry_of(kind)
    repository = unique_repository(kind)
    image = push_image(registry.host, repository)

    first = run_attest("attach", image, "--bundle", PROVENANCE).json()
    again = run_attest("attach", image, "--bundle", PROVENANCE).json()
    other = run_attest("attach", image, "--bundle", CUSTOM_ISSUER).json()
    third = run_attest("attach", image, "--bundle", PROVENANCE_PRIVATE).json()

    assert again == first
    listed = run_attest("referrers", image).json()
    assert sorted(d["digest"] for d in listed) == sorted(
        {first["manifest_digest"], other["manifest_digest"], third["manifest_digest"]}
    )
    assert all(d["artifactType"] == listed_type(kind) for d in listed)
    if kind in TAG_KINDS:
        assert _fallback_tags(registry.host, repository) == [first["fallback_tag"]]


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_index_subjects_keep_their_media_type(registry_of, kind):
    registry = registry_of(kind)
    repository = unique_repository(kind)
    image = push_index(registry.host, repository)

    result = run_attest("attach", image, "--bundle", PROVENANCE).json()

    manifest = get_json(registry.host, repository, result["manifest_digest"])
    assert manifest["subject"]["mediaType"] == OCI_INDEX
    assert [d["digest"] for d in run_attest("referrers", image).json()] == [
        result["manifest_digest"]
    ]


def test_tag_reference_resolves_to_the_digest(registry_of):
    registry = registry_of("olareg")
    repository = unique_repository("tagref")
    image = push_image(registry.host, repository)
    result = run_attest("attach", f"{registry.host}/{repository}:v1", "--bundle", PROVENANCE).json()
    assert result["subject"] == image


@pytest.mark.parametrize("kind", API_KINDS)
def test_forced_tag_mode_writes_the_fallback_even_with_the_api(registry_of, kind):
    registry = registry_of(kind)
    repository = unique_repository(kind)
    image = push_image(registry.host, repository)
    result = run_attest("attach", image, "--bundle", PROVENANCE, "--referrers-mode", "tag").json()
    assert result["mode"] == "tag"
    index = get_json(registry.host, repository, result["fallback_tag"])
    assert [m["digest"] for m in index["manifests"]] == [result["manifest_digest"]]


@pytest.mark.parametrize("kind", API_KINDS)
def test_api_mode_on_an_api_registry(registry_of, kind):
    registry = registry_of(kind)
    repository = unique_repository(kind)
    image = push_image(registry.host, repository)
    result = run_attest("attach", image, "--bundle", PROVENANCE, "--referrers-mode", "api").json()
    assert (result["mode"], result["fallback_tag"]) == ("api", None)
    assert _fallback_tags(registry.host, repository) == []


@pytest.mark.parametrize("kind", TAG_KINDS)
def test_api_mode_without_the_api_fails_before_writing_anything(registry_of, kind):
    registry = registry_of(kind)
    repository = unique_repository(kind)
    image = push_image(registry.host, repository)
    before = tags(registry.host, repository)

    result = run_attest("attach", image, "--bundle", PROVENANCE, "--referrers-mode", "api")

    assert result.code == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "does not serve the OCI referrers API" in result.stderr
    assert tags(registry.host, repository) == before
    subject = get_json(registry.host, repository, image.rsplit("@", 1)[1])
    expected = bundle_artifact(
        PROVENANCE.read_bytes(),
        Descriptor(
            subject["mediaType"],
            image.rsplit("@", 1)[1],
            manifest_size(registry.host, repository, image.rsplit("@", 1)[1]),
        ),
    )
    assert not manifest_exists(registry.host, repository, expected.descriptor.digest)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_referrers_lists_what_oras_and_regctl_attach(registry_of, kind, tmp_path):
    registry = registry_of(kind)
    repository = unique_repository(kind)
    image = push_image(registry.host, repository)
    sbom = tmp_path / "sbom.json"
    sbom.write_text('{"spdxVersion": "SPDX-2.3"}')
    run_tool(
        "oras",
        "attach",
        "--plain-http",
        "--artifact-type",
        "application/spdx+json",
        "--annotation",
        "from=oras",
        image,
        f"{sbom.name}:application/spdx+json",
        home=tmp_path,
    )
    attached = run_attest("attach", image, "--bundle", PROVENANCE).json()

    listed = run_attest("referrers", image).json()
    assert len(listed) == 2
    ours = next(d for d in listed if d["digest"] == attached["manifest_digest"])
    theirs = next(d for d in listed if d["digest"] != attached["manifest_digest"])
    assert ours["artifactType"] == listed_type(kind)
    assert theirs["annotations"]["from"] == "oras"
    if kind != "ggcr-referrers":
        assert theirs["artifactType"] == "application/spdx+json"

    only_ours = run_attest("referrers", image, "--artifact-type", BUNDLE_TYPE).json()
    # go-containerregistry's registry lists both with the empty config type.
    expected = [] if kind == "ggcr-referrers" else [attached["manifest_digest"]]
    assert [d["digest"] for d in only_ours] == expected
    assert run_attest("referrers", image, "--artifact-type", "application/none").json() == []


def test_existing_fallback_entries_are_kept_even_malformed_ones(registry_of):
    registry = registry_of("distribution")
    repository = unique_repository("keep")
    image = push_image(registry.host, repository)
    digest = image.rsplit("@", 1)[1]
    other = push_image(registry.host, repository, seed="other").rsplit("@", 1)[1]
    from attest.oci.client import RegistryClient
    from attest.oci.descriptor import canonical_json

    existing = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "annotations": {"written-by": "someone else"},
        "manifests": [
            # An old cosign entry: artifactType of the empty config, no annotations.
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": other,
                "size": manifest_size(registry.host, repository, other),
                "artifactType": "application/vnd.oci.empty.v1+json",
            },
        ],
    }
    client = RegistryClient(registry.host)
    client.put_manifest(repository, referrers_tag(digest), canonical_json(existing), OCI_INDEX)

    result = run_attest("attach", image, "--bundle", PROVENANCE).json()

    index = get_json(registry.host, repository, referrers_tag(digest))
    assert index["annotations"] == {"written-by": "someone else"}
    assert index["manifests"][0] == existing["manifests"][0]
    assert index["manifests"][1]["digest"] == result["manifest_digest"]
    assert len(index["manifests"]) == 2


def test_a_fallback_tag_that_is_not_an_index_is_left_alone(registry_of):
    registry = registry_of("distribution")
    repository = unique_repository("notindex")
    image = push_image(registry.host, repository)
    digest = image.rsplit("@", 1)[1]
    # Somebody tagged an ordinary image as sha256-<subject>.
    squatter = push_image(registry.host, repository, seed="squatter").rsplit("@", 1)[1]
    from attest.oci.client import RegistryClient

    client = RegistryClient(registry.host)
    squatting = client.get_manifest(repository, squatter)
    assert squatting is not None
    client.put_manifest(repository, referrers_tag(digest), squatting.data, squatting.media_type)

    result = run_attest("attach", image, "--bundle", PROVENANCE)

    assert result.code == 1
    assert "not an OCI image index" in result.stderr
    assert result.stderr.count("\n") == 1
    assert client.get_manifest(repository, referrers_tag(digest)).digest == squatter  # type: ignore[union-attr]
