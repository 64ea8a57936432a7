"""Prove that the test registries and the quirk proxy behave as the integration tests assume.

Raw ``requests`` only (no project code): push a tiny image and an artifact whose ``subject``
points at it, then look at the ``OCI-Subject`` header and the referrers API of each registry
kind, and at every quirk of :mod:`tests.integration.quirk_proxy`.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from tests.integration.quirk_proxy import QuirkProxy, Quirks
from tests.integration.servers import Registry, start_registry

pytestmark = pytest.mark.integration

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
ARTIFACT_TYPE = "application/vnd.attest.test+json"
ACCEPT_MANIFESTS = f"{OCI_MANIFEST}, {OCI_INDEX}"
TIMEOUT = 10

USER, PASSWORD = "alice", "s3cret-pass"


# -- registry fixtures (one process per kind for the whole module) -------------------------


def _registry(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with start_registry(kind, tmp_path_factory.mktemp(kind)) as registry:
        yield registry


@pytest.fixture(scope="module")
def distribution(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    yield from _registry("distribution", tmp_path_factory)


@pytest.fixture(scope="module")
def olareg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    yield from _registry("olareg", tmp_path_factory)


@pytest.fixture(scope="module")
def olareg_noapi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    yield from _registry("olareg-noapi", tmp_path_factory)


@pytest.fixture(scope="module")
def ggcr_referrers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    yield from _registry("ggcr-referrers", tmp_path_factory)


FIXTURE_OF_KIND = {
    "distribution": "distribution",
    "olareg": "olareg",
    "olareg-noapi": "olareg_noapi",
    "ggcr-referrers": "ggcr_referrers",
}


# -- raw OCI push helpers ------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def repo_name() -> str:
    return f"attest-test/{uuid.uuid4().hex[:12]}"


def push_blob(session: requests.Session, base: str, name: str, data: bytes) -> dict[str, Any]:
    start = session.post(f"{base}/v2/{name}/blobs/uploads/", timeout=TIMEOUT)
    assert start.status_code == 202, start.text
    location = urljoin(start.url, start.headers["Location"])
    digest = sha256(data)
    sep = "&" if "?" in location else "?"
    put = session.put(
        f"{location}{sep}digest={digest}",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
        timeout=TIMEOUT,
    )
    assert put.status_code == 201, put.text
    return {"digest": digest, "size": len(data)}


def put_manifest(
    base: str,
    name: str,
    body: bytes,
    *,
    ref: str | None = None,
    media_type: str = OCI_MANIFEST,
    session: requests.Session | None = None,
) -> requests.Response:
    return (session or requests.Session()).put(
        f"{base}/v2/{name}/manifests/{ref or sha256(body)}",
        data=body,
        headers={"Content-Type": media_type},
        timeout=TIMEOUT,
    )


@dataclass
class Pushed:
    name: str
    image: bytes
    image_digest: str
    image_response: requests.Response
    artifact: bytes
    artifact_digest: str
    artifact_response: requests.Response


def push_image_and_artifact(
    base: str, name: str, session: requests.Session | None = None
) -> Pushed:
    s = session or requests.Session()
    config = push_blob(s, base, name, b"{}")
    layer = push_blob(s, base, name, b"attest integration layer " + name.encode())
    image = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, **config},
            "layers": [{"mediaType": OCI_LAYER, **layer}],
        }
    )
    image_response = put_manifest(base, name, image, session=s)
    assert image_response.status_code == 201, image_response.text
    empty = push_blob(s, base, name, b"{}")
    artifact = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": ARTIFACT_TYPE,
            "config": {"mediaType": OCI_EMPTY, **empty},
            "layers": [{"mediaType": OCI_EMPTY, **empty}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": sha256(image), "size": len(image)},
            "annotations": {"org.example.test": "yes"},
        }
    )
    artifact_response = put_manifest(base, name, artifact, session=s)
    assert artifact_response.status_code == 201, artifact_response.text
    return Pushed(
        name, image, sha256(image), image_response, artifact, sha256(artifact), artifact_response
    )


def get_referrers(
    base: str, name: str, digest: str, session: requests.Session | None = None
) -> requests.Response:
    return (session or requests.Session()).get(
        f"{base}/v2/{name}/referrers/{digest}", headers={"Accept": OCI_INDEX}, timeout=TIMEOUT
    )


def listed_digests(response: requests.Response) -> list[str]:
    index = response.json()
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == OCI_INDEX
    return [m["digest"] for m in index["manifests"]]


def media_type(response: requests.Response) -> str:
    return response.headers.get("Content-Type", "").split(";")[0].strip()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- the registries --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "sends_subject_header", "referrers_status"),
    [
        ("distribution", False, 404),
        ("olareg", True, 200),
        # olareg v0.2.2 with --api-referrer=false answers 405 UNSUPPORTED (not 404).
        ("olareg-noapi", False, 405),
        ("ggcr-referrers", False, 200),
    ],
)
def test_registry_referrers_behaviour(
    request: pytest.FixtureRequest, kind: str, sends_subject_header: bool, referrers_status: int
) -> None:
    registry: Registry = request.getfixturevalue(FIXTURE_OF_KIND[kind])
    assert registry.kind == kind
    assert registry.url == f"http://{registry.host}"
    name = repo_name()
    pushed = push_image_and_artifact(registry.url, name)

    assert "OCI-Subject" not in pushed.image_response.headers
    if sends_subject_header:
        assert pushed.artifact_response.headers["OCI-Subject"] == pushed.image_digest
    else:
        assert "OCI-Subject" not in pushed.artifact_response.headers

    # Both manifests are stored and served back byte for byte.
    for body in (pushed.image, pushed.artifact):
        got = requests.get(
            f"{registry.url}/v2/{name}/manifests/{sha256(body)}",
            headers={"Accept": ACCEPT_MANIFESTS},
            timeout=TIMEOUT,
        )
        assert got.status_code == 200
        assert got.content == body

    referrers = get_referrers(registry.url, name, pushed.image_digest)
    assert referrers.status_code == referrers_status, referrers.text
    if referrers_status == 200:
        assert media_type(referrers) == OCI_INDEX
        assert listed_digests(referrers) == [pushed.artifact_digest]
        # Unknown subject: an empty index, not an error.
        other = get_referrers(registry.url, name, sha256(b"nothing refers to this"))
        assert other.status_code == 200
        assert listed_digests(other) == []
    if kind == "distribution":
        assert media_type(referrers) == "text/plain"
        assert referrers.text.strip() == "404 page not found"
    if kind == "olareg-noapi":
        assert referrers.json()["errors"][0]["code"] == "UNSUPPORTED"


def test_olareg_referrers_artifact_type(olareg: Registry) -> None:
    pushed = push_image_and_artifact(olareg.url, repo_name())
    referrers = get_referrers(olareg.url, pushed.name, pushed.image_digest)
    [entry] = referrers.json()["manifests"]
    assert entry["artifactType"] == ARTIFACT_TYPE
    assert entry["annotations"] == {"org.example.test": "yes"}
    filtered = requests.get(
        f"{olareg.url}/v2/{pushed.name}/referrers/{pushed.image_digest}",
        params={"artifactType": "application/vnd.other"},
        timeout=TIMEOUT,
    )
    assert listed_digests(filtered) == []


def test_distribution_htpasswd(tmp_path: Path) -> None:
    with start_registry("distribution", tmp_path, htpasswd=(USER, PASSWORD)) as registry:
        anonymous = requests.get(f"{registry.url}/v2/", timeout=TIMEOUT)
        assert anonymous.status_code == 401
        assert anonymous.headers["WWW-Authenticate"] == 'Basic realm="basic-realm"'
        wrong = requests.get(f"{registry.url}/v2/", auth=(USER, "wrong"), timeout=TIMEOUT)
        assert wrong.status_code == 401
        session = requests.Session()
        session.auth = (USER, PASSWORD)
        assert session.get(f"{registry.url}/v2/", timeout=TIMEOUT).status_code == 200
        push_image_and_artifact(registry.url, repo_name(), session)
    assert registry.process.poll() is not None


def test_start_registry_rejects_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown registry kind"), start_registry("nope", tmp_path):
        pass


# -- the quirk proxy -------------------------------------------------------------------------


def test_proxy_forwards_and_rewrites_location(distribution: Registry) -> None:
    with QuirkProxy(distribution.url, Quirks()) as proxy:
        start = requests.post(f"{proxy.url}/v2/{repo_name()}/blobs/uploads/", timeout=TIMEOUT)
        assert start.status_code == 202
        # distribution answers with an absolute Location on itself; the proxy points it back.
        assert start.headers["Location"].startswith(f"{proxy.url}/v2/")
        pushed = push_image_and_artifact(proxy.url, repo_name())
        assert pushed.image_response.headers["Location"].startswith(proxy.url)
        head = requests.head(
            f"{proxy.url}/v2/{pushed.name}/manifests/{pushed.image_digest}",
            headers={"Accept": OCI_MANIFEST},
            timeout=TIMEOUT,
        )
        assert head.status_code == 200
        assert head.headers["Content-Length"] == str(len(pushed.image))
        assert head.headers["Docker-Content-Digest"] == pushed.image_digest
    paths = [entry.path for entry in proxy.log]
    assert f"/v2/{pushed.name}/manifests/{pushed.image_digest}" in paths
    assert all(entry.status < 400 for entry in proxy.log)


def test_quirk_round_trip_delays_every_request(distribution: Registry) -> None:
    with QuirkProxy(distribution.url, Quirks(round_trip=0.2)) as proxy:
        started = time.perf_counter()
        assert requests.get(f"{proxy.url}/v2/", timeout=TIMEOUT).status_code == 200
        assert requests.get(f"{proxy.url}/v2/", timeout=TIMEOUT).status_code == 200
        assert time.perf_counter() - started >= 0.4


def test_quirk_oci_subject_without_api(olareg_noapi: Registry) -> None:
    with QuirkProxy(olareg_noapi.url, Quirks(oci_subject_without_api=True)) as proxy:
        pushed = push_image_and_artifact(proxy.url, repo_name())
        assert "OCI-Subject" not in pushed.image_response.headers
        assert pushed.artifact_response.headers["OCI-Subject"] == pushed.image_digest
        # ...yet there is no referrers API behind it (olareg without it answers 405).
        assert get_referrers(proxy.url, pushed.name, pushed.image_digest).status_code == 405


def test_quirk_referrers_400_unknown_digest(olareg: Registry) -> None:
    pushed = push_image_and_artifact(olareg.url, repo_name())
    with QuirkProxy(olareg.url, Quirks(referrers_400_unknown_digest=True)) as proxy:
        unknown = get_referrers(proxy.url, pushed.name, sha256(b"unknown"))
        assert unknown.status_code == 400
        assert unknown.json()["errors"][0]["code"] == "MANIFEST_INVALID"
        known = get_referrers(proxy.url, pushed.name, pushed.image_digest)
        assert known.status_code == 200
        assert media_type(known) == OCI_INDEX
        assert listed_digests(known) == [pushed.artifact_digest]


def test_quirk_tag_resolves_to_subject(olareg: Registry) -> None:
    pushed = push_image_and_artifact(olareg.url, repo_name())
    schema_tag = pushed.image_digest.replace(":", "-")
    # A referrers-tag-schema index as a client without referrers API support would push it.
    index = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": pushed.artifact_digest,
                    "size": len(pushed.artifact),
                    "artifactType": ARTIFACT_TYPE,
                }
            ],
        }
    )
    put = put_manifest(olareg.url, pushed.name, index, ref=schema_tag, media_type=OCI_INDEX)
    assert put.status_code == 201, put.text
    direct = requests.get(
        f"{olareg.url}/v2/{pushed.name}/manifests/{schema_tag}",
        headers={"Accept": ACCEPT_MANIFESTS},
        timeout=TIMEOUT,
    )
    assert direct.content == index

    with QuirkProxy(olareg.url, Quirks(tag_resolves_to_subject=True)) as proxy:
        url = f"{proxy.url}/v2/{pushed.name}/manifests/{schema_tag}"
        got = requests.get(url, headers={"Accept": ACCEPT_MANIFESTS}, timeout=TIMEOUT)
        assert got.status_code == 200
        assert got.content == pushed.image
        assert got.headers["Docker-Content-Digest"] == pushed.image_digest
        head = requests.head(url, headers={"Accept": ACCEPT_MANIFESTS}, timeout=TIMEOUT)
        assert head.status_code == 200
        assert head.headers["Docker-Content-Digest"] == pushed.image_digest
        # No such subject upstream: pass through (404 here, as no such tag exists either).
        missing = sha256(b"no such manifest").replace(":", "-")
        gone = requests.get(
            f"{proxy.url}/v2/{pushed.name}/manifests/{missing}",
            headers={"Accept": ACCEPT_MANIFESTS},
            timeout=TIMEOUT,
        )
        assert gone.status_code == 404


def test_quirk_referrers_html_404(olareg: Registry) -> None:
    pushed = push_image_and_artifact(olareg.url, repo_name())
    with QuirkProxy(olareg.url, Quirks(referrers_html_404=True)) as proxy:
        got = get_referrers(proxy.url, pushed.name, pushed.image_digest)
        assert got.status_code == 404
        assert media_type(got) == "text/html"
        assert got.text.lstrip().startswith("<!DOCTYPE html>")
        # Everything else still works.
        manifest = requests.get(
            f"{proxy.url}/v2/{pushed.name}/manifests/{pushed.image_digest}",
            headers={"Accept": OCI_MANIFEST},
            timeout=TIMEOUT,
        )
        assert manifest.content == pushed.image


def test_quirk_basic_auth(distribution: Registry) -> None:
    with QuirkProxy(distribution.url, Quirks(basic_auth=(USER, PASSWORD))) as proxy:
        for auth in (None, (USER, "wrong")):
            denied = requests.get(f"{proxy.url}/v2/", auth=auth, timeout=TIMEOUT)
            assert denied.status_code == 401
            assert denied.headers["WWW-Authenticate"] == 'Basic realm="quirk"'
        session = requests.Session()
        session.auth = (USER, PASSWORD)
        assert session.get(f"{proxy.url}/v2/", timeout=TIMEOUT).status_code == 200
        pushed = push_image_and_artifact(proxy.url, repo_name(), session)
        anonymous = requests.get(
            f"{proxy.url}/v2/{pushed.name}/manifests/{pushed.image_digest}", timeout=TIMEOUT
        )
        assert anonymous.status_code == 401
    assert proxy.log[0].headers.get("Authorization") is None
    assert proxy.log[1].headers["Authorization"] == "Basic …"
    assert all(PASSWORD not in str(entry.headers) for entry in proxy.log)


def _challenge(response: requests.Response) -> str:
    assert response.status_code == 401
    return response.headers["WWW-Authenticate"]


def test_quirk_bearer_token_flow(olareg: Registry) -> None:
    identity = "identity-token-for-alice"
    quirks = Quirks(bearer_auth=(USER, PASSWORD), identity_token=identity)
    with QuirkProxy(olareg.url, quirks) as proxy:
        realm = f'Bearer realm="http://{proxy.host}/token",service="quirk"'
        token_url = f"{proxy.url}/token"
        name = repo_name()
        pull, push = f"repository:{name}:pull", f"repository:{name}:pull,push"

        assert _challenge(requests.get(f"{proxy.url}/v2/", timeout=TIMEOUT)) == realm
        manifest_url = f"{proxy.url}/v2/{name}/manifests/latest"
        challenge = _challenge(requests.get(manifest_url, timeout=TIMEOUT))
        assert challenge == f'{realm},scope="{pull}"'
        upload_url = f"{proxy.url}/v2/{name}/blobs/uploads/"
        assert _challenge(requests.post(upload_url, timeout=TIMEOUT)).endswith(f'scope="{push}"')

        params = {"service": "quirk", "scope": push}
        assert requests.get(token_url, params=params, timeout=TIMEOUT).status_code == 401
        wrong = requests.get(token_url, params=params, auth=(USER, "x"), timeout=TIMEOUT)
        assert wrong.status_code == 401

        # A pull-only token can read but not push.
        pull_token = requests.get(
            token_url,
            params={"service": "quirk", "scope": pull},
            auth=(USER, PASSWORD),
            timeout=TIMEOUT,
        ).json()
        assert pull_token["token"] == pull_token["access_token"]
        assert pull_token["expires_in"] == 300
        headers = bearer(pull_token["token"])
        assert requests.get(f"{proxy.url}/v2/", headers=headers, timeout=TIMEOUT).status_code == 200
        assert requests.get(manifest_url, headers=headers, timeout=TIMEOUT).status_code == 404
        insufficient = _challenge(requests.post(upload_url, headers=headers, timeout=TIMEOUT))
        assert insufficient == f'{realm},scope="{push}",error="insufficient_scope"'
        other_repo = f"{proxy.url}/v2/{repo_name()}/manifests/latest"
        assert requests.get(other_repo, headers=headers, timeout=TIMEOUT).status_code == 401
        invalid = requests.get(manifest_url, headers=bearer("forged"), timeout=TIMEOUT)
        assert 'error="invalid_token"' in _challenge(invalid)

        # Scope may repeat; a pull,push token pushes.
        push_token = requests.get(
            token_url,
            params=[("service", "quirk"), ("scope", push), ("scope", "repository:other:pull")],
            auth=(USER, PASSWORD),
            timeout=TIMEOUT,
        ).json()["token"]
        session = requests.Session()
        session.headers.update(bearer(push_token))
        pushed = push_image_and_artifact(proxy.url, name, session)
        got = requests.get(
            f"{proxy.url}/v2/{name}/manifests/{pushed.image_digest}",
            headers={**bearer(push_token), "Accept": OCI_MANIFEST},
            timeout=TIMEOUT,
        )
        assert got.content == pushed.image

        # OAuth2 POST: password grant (with an offline refresh token), then refresh grant.
        form = {"grant_type": "password", "service": "quirk", "client_id": "attest"}
        posted = requests.post(
            token_url,
            data={**form, "username": USER, "password": PASSWORD, "scope": pull},
            timeout=TIMEOUT,
        )
        assert posted.status_code == 200
        assert "refresh_token" not in posted.json()
        offline = requests.post(
            token_url,
            data={**form, "username": USER, "password": PASSWORD, "access_type": "offline"},
            timeout=TIMEOUT,
        ).json()
        assert offline["refresh_token"] == identity
        bad = requests.post(
            token_url, data={**form, "username": USER, "password": "x"}, timeout=TIMEOUT
        )
        assert bad.status_code == 401
        refreshed = requests.post(
            token_url,
            data={"grant_type": "refresh_token", "refresh_token": identity, "scope": push},
            timeout=TIMEOUT,
        )
        assert refreshed.status_code == 200
        ok = requests.get(
            manifest_url, headers=bearer(refreshed.json()["access_token"]), timeout=TIMEOUT
        )
        assert ok.status_code == 404  # authorized; the tag just does not exist
        stale = requests.post(
            token_url,
            data={"grant_type": "refresh_token", "refresh_token": "stale", "scope": push},
            timeout=TIMEOUT,
        )
        assert stale.status_code == 401

    outcomes = [(t["method"], t["outcome"]) for t in proxy.token_requests]
    assert outcomes == [
        ("GET", "denied"),
        ("GET", "denied"),
        ("GET", "granted"),
        ("GET", "granted"),
        ("POST", "granted"),
        ("POST", "granted"),
        ("POST", "denied"),
        ("POST", "granted"),
        ("POST", "denied"),
    ]
    assert proxy.token_requests[3]["params"]["scope"] == [push, "repository:other:pull"]
    assert proxy.token_requests[3]["granted"] == sorted([push, "repository:other:pull"])
    assert PASSWORD not in repr(proxy.token_requests)
    assert identity not in repr(proxy.token_requests)
    assert all(
        entry.headers.get("Authorization") in (None, "Bearer …", "Basic …") for entry in proxy.log
    )


def test_quirk_bearer_anonymous_pull_and_expiry(olareg: Registry) -> None:
    pushed = push_image_and_artifact(olareg.url, repo_name())
    quirks = Quirks(bearer_auth=(USER, PASSWORD), anonymous_pull=True, token_expires_after=2)
    with QuirkProxy(olareg.url, quirks) as proxy:
        response = requests.get(
            f"{proxy.url}/token",
            params={"service": "quirk", "scope": f"repository:{pushed.name}:pull,push"},
            timeout=TIMEOUT,
        )
        assert response.status_code == 200
        assert proxy.token_requests[-1]["outcome"] == "anonymous"
        assert proxy.token_requests[-1]["granted"] == [f"repository:{pushed.name}:pull"]
        headers = {**bearer(response.json()["token"]), "Accept": OCI_MANIFEST}
        url = f"{proxy.url}/v2/{pushed.name}/manifests/{pushed.image_digest}"
        upload = f"{proxy.url}/v2/{pushed.name}/blobs/uploads/"
        assert requests.post(upload, headers=headers, timeout=TIMEOUT).status_code == 401  # use 1
        assert requests.get(url, headers=headers, timeout=TIMEOUT).status_code == 200  # use 2
        expired = requests.get(url, headers=headers, timeout=TIMEOUT)  # use 3
        assert 'error="invalid_token"' in _challenge(expired)


def test_quirk_redirect_blob_gets(olareg: Registry) -> None:
    pushed = push_image_and_artifact(olareg.url, repo_name())
    layer = json.loads(pushed.image)["layers"][0]
    quirks = Quirks(basic_auth=(USER, PASSWORD), redirect_blob_gets=True)
    with QuirkProxy(olareg.url, quirks) as proxy:
        blob_url = f"{proxy.url}/v2/{pushed.name}/blobs/{layer['digest']}"
        raw = requests.get(blob_url, auth=(USER, PASSWORD), allow_redirects=False, timeout=TIMEOUT)
        assert raw.status_code == 307
        location = raw.headers["Location"]
        assert urlsplit(location).netloc == proxy.redirect_host
        assert urlsplit(location).hostname == "localhost"
        head = requests.head(blob_url, auth=(USER, PASSWORD), timeout=TIMEOUT)
        assert head.status_code == 307

        # requests drops Authorization when a redirect changes the host name.
        followed = requests.get(blob_url, auth=(USER, PASSWORD), timeout=TIMEOUT)
        assert followed.status_code == 200
        assert hashlib.sha256(followed.content).hexdigest() == layer["digest"].split(":")[1]
        assert [e.had_authorization for e in proxy.blob_redirect_log] == [False]
        # A client that keeps sending it is recorded.
        leaked = requests.get(location, auth=(USER, PASSWORD), timeout=TIMEOUT)
        assert leaked.status_code == 200
        assert [e.had_authorization for e in proxy.blob_redirect_log] == [False, True]
        assert proxy.blob_redirect_log[-1].headers["Authorization"] == "Basic …"

        # Missing blobs are not redirected; uploads still go to the registry.
        missing = f"{proxy.url}/v2/{pushed.name}/blobs/{sha256(b'missing')}"
        assert requests.get(missing, auth=(USER, PASSWORD), timeout=TIMEOUT).status_code == 404
        session = requests.Session()
        session.auth = (USER, PASSWORD)
        push_blob(session, proxy.url, pushed.name, b"uploaded through the proxy")
    assert [e.method for e in proxy.blob_redirect_log] == ["GET", "GET"]


def test_quirk_fault_hook(olareg: Registry) -> None:
    calls: list[tuple[str, str]] = []

    def faults(method: str, path: str) -> tuple[int, dict[str, str], bytes] | None:
        calls.append((method, path))
        if method == "PUT" and "/manifests/" in path and len(calls) < 10:
            return 503, {"Retry-After": "0", "Content-Type": "text/plain"}, b"try later"
        return None

    name = repo_name()
    with QuirkProxy(olareg.url, Quirks(faults=faults)) as proxy:
        blob = push_blob(requests.Session(), proxy.url, name, b"{}")
        manifest = canonical(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, **blob},
                "layers": [],
            }
        )
        failed = put_manifest(proxy.url, name, manifest)
        assert failed.status_code == 503
        assert failed.headers["Retry-After"] == "0"
        assert failed.text == "try later"
    assert ("PUT", f"/v2/{name}/manifests/{sha256(manifest)}") in calls
    assert proxy.log[-1].status == 503
