"""Hosted registries' quirks, reproduced by a proxy in front of a real registry."""

from __future__ import annotations

import json

from attest.oci.descriptor import OCI_INDEX, referrers_tag

from ..helpers import (
    PROVENANCE,
    manifest_exists,
    push_image,
    run_attest,
    tags,
    through,
    unique_repository,
)
from ..quirk_proxy import QuirkProxy, Quirks


def test_header_without_api_still_gets_the_fallback(registry_of):
    # ECR and Docker Hub (2024) sent OCI-Subject before they served the API.
    registry = registry_of("distribution")
    repository = unique_repository("ecr")
    image = push_image(registry.host, repository)
    with QuirkProxy(registry.url, Quirks(oci_subject_without_api=True)) as proxy:
        result = run_attest("attach", through(proxy, image), "--bundle", PROVENANCE).json()
        put = [r for r in proxy.log if r.method == "PUT" and "/manifests/sha256:" in r.path]
    assert result["mode"] == "tag"
    assert put, "the referrer manifest was pushed through the proxy"
    index = tags(registry.host, repository)
    assert result["fallback_tag"] in index


def test_api_without_header_and_400_for_unknown_digests_uses_the_api(registry_of):
    # Quay: serves /referrers without OCI-Subject and answers 400 for unknown digests.
    registry = registry_of("ggcr-referrers")
    repository = unique_repository("quay")
    image = push_image(registry.host, repository)
    with QuirkProxy(registry.url, Quirks(referrers_400_unknown_digest=True)) as proxy:
        result = run_attest("attach", through(proxy, image), "--bundle", PROVENANCE).json()
        probes = [r.path for r in proxy.log if "/referrers/" in r.path]
    assert (result["mode"], result["fallback_tag"]) == ("api", None)
    assert [t for t in tags(registry.host, repository) if t.startswith("sha256-")] == []
    # Probed with the real subject, never the zero digest that Quay rejects.
    digest = image.rsplit("@", 1)[1]
    assert probes and all(p.endswith(f"/referrers/{digest}") for p in probes)


def test_tag_resolving_to_the_subject_is_an_error_and_nothing_is_written(registry_of):
    # GitLab resolves sha256-<hex> tags as the digest sha256:<hex>.
    registry = registry_of("distribution")
    repository = unique_repository("gitlab")
    image = push_image(registry.host, repository)
    with QuirkProxy(registry.url, Quirks(tag_resolves_to_subject=True)) as proxy:
        result = run_attest("attach", through(proxy, image), "--bundle", PROVENANCE)
        writes = [r for r in proxy.log if r.method in ("PUT", "POST", "PATCH", "DELETE")]
    assert result.code == 1
    assert "resolves to the image itself" in result.stderr
    assert result.stderr.count("\n") == 1
    assert writes == []
    assert tags(registry.host, repository) == ["v1"]


def test_html_404_from_a_proxy_registry_means_no_api(registry_of):
    registry = registry_of("distribution")
    repository = unique_repository("html")
    image = push_image(registry.host, repository)
    with QuirkProxy(registry.url, Quirks(referrers_html_404=True)) as proxy:
        result = run_attest("attach", through(proxy, image), "--bundle", PROVENANCE).json()
        listed = run_attest("referrers", through(proxy, image)).json()
    assert result["mode"] == "tag"
    assert [d["digest"] for d in listed] == [result["manifest_digest"]]


def _empty_index(method: str, path: str) -> tuple[int, dict[str, str], bytes] | None:
    if method == "GET" and "/referrers/" in path:
        body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        return 200, {"Content-Type": OCI_INDEX}, json.dumps(body).encode()
    return None


def test_an_api_that_never_lists_our_referrer_falls_back_to_the_tag(registry_of):
    # A registry answering 200 with an empty index for every subject, but not indexing.
    registry = registry_of("distribution")
    repository = unique_repository("liar")
    image = push_image(registry.host, repository)
    with QuirkProxy(registry.url, Quirks(faults=_empty_index)) as proxy:
        result = run_attest("attach", through(proxy, image), "--bundle", PROVENANCE)
        forced = run_attest(
            "attach", through(proxy, image), "--bundle", PROVENANCE, "--referrers-mode", "api"
        )
    assert json.loads(result.stdout)["mode"] == "tag"
    assert "did not list our referrer" in result.stderr
    assert referrers_tag(image.rsplit("@", 1)[1]) in tags(registry.host, repository)
    assert forced.code == 1
    assert "does not list" in forced.stderr


def _forbidden_referrers(method: str, path: str) -> tuple[int, dict[str, str], bytes] | None:
    if "/referrers/" in path:
        body = {
            "errors": [{"code": "DENIED", "message": "requested access to the resource is denied"}]
        }
        return 403, {"Content-Type": "application/json"}, json.dumps(body).encode()
    return None


def test_an_ambiguous_probe_is_an_error_not_a_silent_fallback(registry_of):
    registry = registry_of("distribution")
    repository = unique_repository("denied")
    image = push_image(registry.host, repository)
    with QuirkProxy(registry.url, Quirks(faults=_forbidden_referrers)) as proxy:
        result = run_attest("attach", through(proxy, image), "--bundle", PROVENANCE)
    assert result.code == 1
    assert "403 DENIED: requested access to the resource is denied" in result.stderr
    assert "/referrers/" in result.stderr
    assert tags(registry.host, repository) == ["v1"]


def test_a_missing_image_is_one_clear_error(registry_of):
    registry = registry_of("olareg")
    repository = unique_repository("missing")
    push_image(registry.host, repository)
    missing = f"{registry.host}/{repository}@sha256:{'0' * 64}"
    result = run_attest("attach", missing, "--bundle", PROVENANCE)
    assert result.code == 1
    assert result.stderr.startswith("error: HEAD http://")
    assert "push the image before attesting it" in result.stderr
    assert not manifest_exists(registry.host, repository, referrers_tag("sha256:" + "0" * 64))
