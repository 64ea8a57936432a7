"""The registry client's wire behaviour, observed through a proxy in front of real registries."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest

from attest import _http
from attest.oci.artifact import bundle_artifact
from attest.oci.client import Registries
from attest.oci.descriptor import OCI_INDEX, digest_of, referrers_tag
from attest.oci.reference import Reference
from attest.oci.referrers import Referrers

from ..helpers import (
    BUNDLE_TYPE,
    CUSTOM_ISSUER,
    PROVENANCE,
    PROVENANCE_PRIVATE,
    distinct_bundles,
    push_image,
    run_attest,
    through,
    unique_repository,
)
from ..quirk_proxy import QuirkProxy, Quirks

FAST = _http.RetryPolicy(attempts=4, initial_wait=0.01, max_wait=0.05)


def _attach(referrers: Referrers, registries: Registries, image: str, bundle: bytes) -> str:
    reference = Reference.parse(image)
    result = referrers.attach(
        registries.client(reference.api_host), reference, lambda s: bundle_artifact(bundle, s)
    )
    return result.mode


@pytest.mark.parametrize(("kind", "mode"), [("olareg", "api"), ("distribution", "tag")])
def test_support_is_detected_once_per_repository_in_a_run(registry_of, kind, mode):
    registry = registry_of(kind)
    repository = unique_repository("once")
    first = push_image(registry.host, repository, seed="1")
    second = push_image(registry.host, repository, seed="2")
    with QuirkProxy(registry.url, Quirks()) as proxy, Registries() as registries:
        referrers = Referrers()
        assert (
            _attach(referrers, registries, through(proxy, first), PROVENANCE.read_bytes()) == mode
        )
        mark = len(proxy.log)
        other = CUSTOM_ISSUER.read_bytes()
        assert _attach(referrers, registries, through(proxy, second), other) == mode
        later = [f"{r.method} {r.path.split('?')[0]}" for r in proxy.log[mark:]]
    # Known support: no probe; the shared empty config is known: no blob HEAD.
    assert not any("/referrers/" in r for r in later)
    assert not any(r.startswith("HEAD") and "/blobs/" in r for r in later)
    if mode == "api":
        # Resolve the subject, upload the bundle in one POST, push the manifest: 3 requests.
        assert [r.split()[0] for r in later] == ["HEAD", "POST", "PUT"]
    else:
        # The same, the upload in two steps, then the tag: read, write, read back twice
        # (the second read, a pause later, catches a concurrent writer's overwrite): 8.
        assert [r.split()[0] for r in later] == [
            "HEAD",
            "GET",
            "POST",
            "PUT",
            "PUT",
            "PUT",
            "GET",
            "GET",
        ]


def test_blob_uploads_use_one_post_where_the_registry_completes_it(registry_of):
    uploads = {}
    for kind in ("olareg", "distribution"):
        registry = registry_of(kind)
        image = push_image(registry.host, unique_repository(f"mono-{kind}"))
        with QuirkProxy(registry.url, Quirks()) as proxy:
            run_attest("attach", through(proxy, image), "--bundle", PROVENANCE).json()
            uploads[kind] = [(r.method, r.status) for r in proxy.log if "/blobs/uploads/" in r.path]
    # olareg completes "POST ?digest=" monolithic uploads; distribution 2.8.2 opens a session,
    # after which we stop sending bodies with the POST.
    assert uploads["olareg"] == [("POST", 201), ("POST", 201)]
    assert uploads["distribution"] == [("POST", 202), ("PUT", 201), ("POST", 202), ("PUT", 201)]


def test_fallback_updates_send_if_match_and_read_back(registry_of):
    registry = registry_of("distribution")
    image = push_image(registry.host, unique_repository("ifmatch"))
    tag = referrers_tag(image.rsplit("@", 1)[1])
    with QuirkProxy(registry.url, Quirks()) as proxy:
        run_attest("attach", through(proxy, image), "--bundle", PROVENANCE).json()
        mark = len(proxy.log)
        run_attest("attach", through(proxy, image), "--bundle", CUSTOM_ISSUER).json()
        second = [r for r in proxy.log[mark:] if r.path.endswith(f"/manifests/{tag}")]
    assert [(r.method, r.status) for r in second] == [
        ("GET", 200),
        ("PUT", 201),
        ("GET", 200),
        ("GET", 200),
    ]
    # distribution answers with the quoted digest as ETag; we send it back.
    assert re.fullmatch(r'"sha256:[0-9a-f]{64}"', second[1].headers.get("If-Match", ""))


def test_transient_registry_errors_are_retried(registry_of):
    registry = registry_of("distribution")
    image = push_image(registry.host, unique_repository("flaky"))
    failures = {"left": 2}

    def flaky_manifest_put(method: str, path: str) -> tuple[int, dict[str, str], bytes] | None:
        if method == "PUT" and "/manifests/sha256:" in path and failures["left"]:
            failures["left"] -= 1
            return 503, {"Retry-After": "0"}, b"busy"
        return None

    with QuirkProxy(registry.url, Quirks(faults=flaky_manifest_put)) as proxy:
        with Registries(policy=FAST) as registries:
            mode = _attach(Referrers(), registries, through(proxy, image), PROVENANCE.read_bytes())
        puts = [r.status for r in proxy.log if r.method == "PUT" and "/manifests/sha256:" in r.path]
    assert mode == "tag"
    assert puts == [503, 503, 201]


def _paged(upstream_pages: dict[str, list[dict[str, object]]], filters_applied: bool):
    """Serve /referrers in pages of one entry, like registries with small page sizes."""

    def fault(method: str, path: str) -> tuple[int, dict[str, str], bytes] | None:
        match = re.match(r"/v2/(.+)/referrers/([^?]+)(?:\?(.*))?$", path)
        if method != "GET" or not match:
            return None
        name, digest, query = match.groups()
        params = dict(p.split("=", 1) for p in (query or "").split("&") if "=" in p)
        entries = upstream_pages[digest]
        if "artifactType" in params and filters_applied:
            wanted = params["artifactType"].replace("%2B", "+").replace("%2F", "/")
            entries = [e for e in entries if e["artifactType"] == wanted]
        page = int(params.get("page", "0"))
        headers = {"Content-Type": OCI_INDEX}
        if filters_applied and "artifactType" in params:
            headers["OCI-Filters-Applied"] = "artifactType"
        if page + 1 < len(entries):
            nxt = f"/v2/{name}/referrers/{digest}?page={page + 1}"
            if "artifactType" in params:
                nxt += f"&artifactType={params['artifactType']}"
            headers["Link"] = f'<{nxt}>; rel="next"'
        body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries[page : page + 1]}
        return 200, headers, json.dumps(body).encode()

    return fault


def test_referrers_follow_link_pages_and_filter_unless_the_registry_did(registry_of):
    registry = registry_of("olareg")
    repository = unique_repository("pages")
    image = push_image(registry.host, repository)
    digest = image.rsplit("@", 1)[1]
    entries = [
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": f"sha256:{i:064x}",
            "size": 10,
            "artifactType": BUNDLE_TYPE if i % 2 else "application/spdx+json",
        }
        for i in range(5)
    ]
    for filters_applied in (False, True):
        quirks = Quirks(faults=_paged({digest: entries}, filters_applied))
        with QuirkProxy(registry.url, quirks) as proxy:
            everything = run_attest("referrers", through(proxy, image)).json()
            ours = run_attest(
                "referrers", through(proxy, image), "--artifact-type", BUNDLE_TYPE
            ).json()
            pages = [r.path for r in proxy.log if "/referrers/" in r.path]
        assert everything == entries
        assert ours == [e for e in entries if e["artifactType"] == BUNDLE_TYPE]
        assert len(pages) == 5 + (2 if filters_applied else 5)


def test_three_bundles_in_one_run_share_one_fallback_index(registry_of):
    registry = registry_of("olareg-noapi")
    image = push_image(registry.host, unique_repository("run"))
    with Registries() as registries:
        referrers = Referrers()
        for bundle in (PROVENANCE, CUSTOM_ISSUER, PROVENANCE_PRIVATE):
            assert _attach(referrers, registries, image, bundle.read_bytes()) == "tag"
    listed = run_attest("referrers", image).json()
    assert len(listed) == 3


@pytest.mark.parametrize(("kind", "mode"), [("olareg", "api"), ("distribution", "tag")])
def test_batch_attach_updates_the_fallback_index_once(registry_of, kind, mode):
    registry = registry_of(kind)
    image = push_image(registry.host, unique_repository("batch"))
    bundles = [PROVENANCE, CUSTOM_ISSUER, PROVENANCE_PRIVATE]
    with QuirkProxy(registry.url, Quirks()) as proxy:
        args = [arg for b in bundles for arg in ("--bundle", str(b))]
        results = run_attest("attach", through(proxy, image), *args).json()
        tag_writes = [r for r in proxy.log if r.method == "PUT" and "/manifests/sha256-" in r.path]
    assert [r["mode"] for r in results] == [mode] * 3
    assert len(tag_writes) == (1 if mode == "tag" else 0)
    listed = {d["digest"] for d in run_attest("referrers", image).json()}
    assert listed == {r["manifest_digest"] for r in results}


def test_batch_attach_checks_every_bundle_before_writing(registry_of, tmp_path):
    registry = registry_of("distribution")
    image = push_image(registry.host, unique_repository("batchbad"))
    broken = tmp_path / "broken.json"
    broken.write_text("{}")
    with QuirkProxy(registry.url, Quirks()) as proxy:
        result = run_attest(
            "attach", through(proxy, image), "--bundle", str(PROVENANCE), "--bundle", str(broken)
        )
        writes = [r for r in proxy.log if r.method in ("PUT", "POST")]
    assert result.code == 1
    assert f"--bundle {broken}" in result.stderr
    assert writes == []


def test_batch_uploads_run_at_most_eight_manifests_ahead(registry_of, tmp_path):
    registry = registry_of("olareg")
    image = push_image(registry.host, unique_repository("ahead"))
    datas = [path.read_bytes() for path in distinct_bundles(tmp_path, 40)]
    bundle_hexes = {digest_of(data).split(":")[1] for data in datas}
    with QuirkProxy(registry.url, Quirks()) as proxy, Registries() as registries:
        reference = Reference.parse(through(proxy, image))
        Referrers().attach_all(
            registries.client(reference.api_host),
            reference,
            [lambda subject, data=data: bundle_artifact(data, subject) for data in datas],
        )
    uploads = manifests = 0
    for request in proxy.log:
        if request.method == "PUT" and "/manifests/sha256:" in request.path:
            manifests += 1
        elif request.method == "POST" and any(h in request.path for h in bundle_hexes):
            uploads += 1
            # Upload j starts once manifest j-9 is in: never more than 9 ahead of the log.
            assert uploads <= manifests + 9, (uploads, manifests)
    assert (uploads, manifests) == (40, 40)


def test_an_attach_list_batches_each_image_across_registries(registry_of, tmp_path):
    fallback, api = registry_of("distribution"), registry_of("olareg")
    first = push_image(fallback.host, unique_repository("lista"))
    second = push_image(fallback.host, unique_repository("listb"))
    third = push_image(api.host, unique_repository("listc"))
    for bundle in (PROVENANCE, CUSTOM_ISSUER, PROVENANCE_PRIVATE):
        (tmp_path / bundle.name).write_bytes(bundle.read_bytes())
    with QuirkProxy(fallback.url, Quirks()) as proxy:
        first, second = through(proxy, first), through(proxy, second)
        listing = [
            {"image": first, "bundles": [PROVENANCE.name, CUSTOM_ISSUER.name]},
            {"image": second, "bundles": [PROVENANCE.name]},
            {"image": third, "bundles": [PROVENANCE_PRIVATE.name]},
            # Named again: one batch for the image, the same bundle attached once.
            {"image": first, "bundles": [PROVENANCE.name]},
        ]
        (tmp_path / "attach.json").write_text(json.dumps(listing))
        result = run_attest("attach", "--list", tmp_path / "attach.json")
        tag_writes = [
            r.path for r in proxy.log if r.method == "PUT" and "/manifests/sha256-" in r.path
        ]
        listed = {
            image: {d["digest"] for d in run_attest("referrers", image).json()}
            for image in (first, second, third)
        }
    assert (result.code, result.stderr) == (0, "")
    results = json.loads(result.stdout)
    assert [(r["subject"], r["mode"]) for r in results] == [
        (first, "tag"),
        (first, "tag"),
        (second, "tag"),
        (third, "api"),
    ]
    # One fallback index update per image.
    assert len(tag_writes) == 2
    assert {r.split("/manifests/")[0] for r in tag_writes} == {
        f"/v2/{Reference.parse(image).repository}" for image in (first, second)
    }
    for image, digests in listed.items():
        assert digests == {r["manifest_digest"] for r in results if r["subject"] == image}


def test_an_attach_list_reports_each_failing_image_and_attaches_the_rest(registry_of, tmp_path):
    registry = registry_of("olareg")
    image = push_image(registry.host, unique_repository("listok"))
    missing = f"{registry.host}/{unique_repository('listgone')}@sha256:{'e' * 64}"
    listing = [
        {"image": missing, "bundles": [str(PROVENANCE)]},
        {"image": image, "bundles": [str(PROVENANCE)]},
    ]
    (tmp_path / "attach.yaml").write_text(json.dumps(listing))
    result = run_attest("attach", "--list", tmp_path / "attach.yaml")
    assert result.code == 1
    assert [r["subject"] for r in json.loads(result.stdout)] == [image]
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: {missing}: ")


class _InFlight:
    """A proxy fault that injects nothing: it holds each manifest PUT a moment and records
    how many were in flight at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.most = 0

    def __call__(self, method: str, path: str) -> None:
        if method != "PUT" or "/manifests/sha256:" not in path:
            return
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(0.05)
        with self.lock:
            self.now -= 1


@pytest.mark.parametrize(("kind", "together"), [("olareg", False), ("distribution", True)])
def test_manifests_wait_for_each_other_only_where_the_registry_indexes_them(
    registry_of, tmp_path, kind, together
):
    registry = registry_of(kind)
    image = push_image(registry.host, unique_repository("inflight"))
    datas = [path.read_bytes() for path in distinct_bundles(tmp_path, 16)]
    in_flight = _InFlight()
    with QuirkProxy(registry.url, Quirks(faults=in_flight)) as proxy, Registries() as registries:
        reference = Reference.parse(through(proxy, image))
        results = Referrers().attach_all(
            registries.client(reference.api_host),
            reference,
            [lambda subject, data=data: bundle_artifact(data, subject) for data in datas],
        )
    assert {r.mode for r in results} == {"api" if kind == "olareg" else "tag"}
    # With the referrers API the registry indexes each manifest's subject as it stores it
    # (olareg loses some when they arrive together); without it nothing is indexed.
    assert (in_flight.most > 1) is together, in_flight.most
