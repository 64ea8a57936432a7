"""attest cleanup on real registries, with garbage seeded by us and by other clients."""

from __future__ import annotations

import json

import requests

from attest.oci.client import RegistryClient
from attest.oci.descriptor import OCI_INDEX, canonical_json, referrers_tag

from ..helpers import (
    CUSTOM_ISSUER,
    PROVENANCE,
    PROVENANCE_PRIVATE,
    get_json,
    oras_spec,
    push_image,
    run_attest,
    run_tool,
    unique_repository,
)


def _state(host: str, repository: str) -> dict[str, str | None]:
    """Every tag and the digest it resolves to: what a dry run must leave as it was."""
    client = RegistryClient(host)
    return {tag: client.manifest_digest(repository, tag) for tag in client.tags(repository)}


def _attach_tag_mode(image: str, *bundles) -> list[str]:
    digests = []
    for bundle in bundles:
        result = run_attest("attach", image, "--bundle", str(bundle), "--referrers-mode", "tag")
        digests.append(result.json()["manifest_digest"])
    return digests


def _oras_fallback(kind: str, image: str, tmp_path) -> None:
    sbom = tmp_path / "sbom.json"
    sbom.write_text('{"spdxVersion": "SPDX-2.3"}')
    spec = oras_spec(kind) or ["--distribution-spec", "v1.1-referrers-tag"]
    run_tool(
        "oras",
        "attach",
        "--plain-http",
        *spec,
        "--artifact-type",
        "application/spdx+json",
        image,
        "sbom.json:application/spdx+json",
        home=tmp_path,
    )


def test_cleanup_on_a_registry_without_the_api(registry_of, tmp_path):
    registry = registry_of("distribution")
    host, repository = registry.host, unique_repository("cleanup")
    client = RegistryClient(host)
    kept_image = push_image(host, repository, seed="kept")
    orphan_image = push_image(host, repository, seed="orphan")
    dangling_image = push_image(host, repository, seed="dangling")
    _attach_tag_mode(kept_image, PROVENANCE)
    _oras_fallback("distribution", kept_image, tmp_path)
    _attach_tag_mode(orphan_image, PROVENANCE)
    gone, survivor = _attach_tag_mode(dangling_image, PROVENANCE, CUSTOM_ISSUER)
    dangling_tag = referrers_tag(dangling_image.rsplit("@", 1)[1])
    # A squatter: an ordinary image tagged like a fallback tag. Left alone.
    squatter = push_image(host, repository, seed="squatter")
    squatting = client.get_manifest(repository, squatter.rsplit("@", 1)[1])
    # Another tool's odd entry (an old cosign's: the empty config type, no annotations) in
    # the same index: never removed. distribution only takes entries that exist.
    index = get_json(host, repository, dangling_tag)
    odd = {
        "mediaType": squatting.media_type,
        "digest": squatting.digest,
        "size": len(squatting.data),
        "artifactType": "application/vnd.oci.empty.v1+json",
    }
    index["manifests"].append(odd)
    client.put_manifest(repository, dangling_tag, canonical_json(index), OCI_INDEX)
    squat_tag = "sha256-" + "e" * 64
    client.put_manifest(repository, squat_tag, squatting.data, squatting.media_type)
    # The garbage: a deleted image, a deleted referrer.
    client.delete_manifest(repository, orphan_image.rsplit("@", 1)[1])
    client.delete_manifest(repository, gone)
    before = _state(host, repository)

    planned = run_attest("cleanup", f"{host}/{repository}")

    assert planned.code == 0, planned.stderr
    assert _state(host, repository) == before, "a dry run changes nothing"
    plan = json.loads(planned.stdout)
    kinds = {a["tag"]: a["action"] for a in plan["actions"]}
    orphan_tag = referrers_tag(orphan_image.rsplit("@", 1)[1])
    assert kinds == {orphan_tag: "delete-orphaned-tag", dangling_tag: "remove-dangling-entries"}
    assert squat_tag in plan["kept"]
    assert referrers_tag(kept_image.rsplit("@", 1)[1]) in plan["kept"]

    applied = run_attest("cleanup", f"{host}/{repository}", "--apply").json()

    assert all(a["done"] for a in applied["actions"]), json.dumps(applied, indent=1)
    after = _state(host, repository)
    assert orphan_tag not in after
    assert after[squat_tag] == before[squat_tag]
    assert (
        after[referrers_tag(kept_image.rsplit("@", 1)[1])]
        == (before[referrers_tag(kept_image.rsplit("@", 1)[1])])
    )
    rewritten = get_json(host, repository, dangling_tag)["manifests"]
    assert [e.get("digest") for e in rewritten] == [survivor, odd["digest"]]
    assert odd in rewritten


def test_cleanup_migrates_fallback_tags_when_the_registry_serves_the_api(registry_of, tmp_path):
    registry = registry_of("olareg")
    host, repository = registry.host, unique_repository("migrate")
    image = push_image(host, repository, seed="migrate")
    orphan = push_image(host, repository, seed="gone")
    ours = _attach_tag_mode(image, PROVENANCE, PROVENANCE_PRIVATE)
    _oras_fallback("olareg", image, tmp_path)
    _attach_tag_mode(orphan, CUSTOM_ISSUER)
    requests.delete(
        f"http://{host}/v2/{repository}/manifests/{orphan.rsplit('@', 1)[1]}", timeout=10
    ).raise_for_status()
    fallback = referrers_tag(image.rsplit("@", 1)[1])
    entries = {e["digest"] for e in get_json(host, repository, fallback)["manifests"]}
    assert set(ours) <= entries and len(entries) == 3
    before = _state(host, repository)

    plan = run_attest("cleanup", f"{host}/{repository}").json()
    assert _state(host, repository) == before
    assert {a["action"] for a in plan["actions"]} == {"migrate-to-api", "delete-orphaned-tag"}

    applied = run_attest("cleanup", f"{host}/{repository}", "--apply").json()

    assert all(a["done"] for a in applied["actions"]), json.dumps(applied, indent=1)
    assert [t for t in _state(host, repository) if t.startswith("sha256-")] == []
    # Every referrer the tag held is still found, now through the API alone.
    listed = {d["digest"] for d in run_attest("referrers", image).json()}
    assert listed == entries


def test_cleanup_as_the_action_runs_it(registry_of, tmp_path):
    from ..action_runner import ActionRunner

    registry = registry_of("distribution")
    host, repository = registry.host, unique_repository("action-cleanup")
    orphan = push_image(host, repository, seed="orphan")
    _attach_tag_mode(orphan, PROVENANCE)
    RegistryClient(host).delete_manifest(repository, orphan.rsplit("@", 1)[1])
    orphan_tag = referrers_tag(orphan.rsplit("@", 1)[1])
    before = _state(host, repository)
    runner = ActionRunner(tmp_path)

    dry = runner.run({"cleanup": f"{host}/{repository}"})

    assert dry.code == 0, dry.stdout + dry.stderr
    assert _state(host, repository) == before
    (plan,) = json.loads(dry.outputs["cleanup-plan"])
    assert [a["action"] for a in plan["actions"]] == ["delete-orphaned-tag"]
    assert "### Cleanup plan (dry run)" in dry.summary and orphan_tag in dry.summary

    applied = runner.run({"cleanup": f"{host}/{repository}", "cleanup-apply": "true"})

    assert applied.code == 0, applied.stdout + applied.stderr
    assert orphan_tag not in _state(host, repository)
    assert "### Cleanup applied" in applied.summary


def test_cleanup_is_not_combined_with_attesting(tmp_path):
    from ..action_runner import ActionRunner

    result = ActionRunner(tmp_path).run({"cleanup": "ghcr.io/o/app", "subject-path": "x"})
    assert result.code == 1
    assert result.errors == [
        "cleanup runs on its own: leave out the subject, predicate and push inputs"
    ]
