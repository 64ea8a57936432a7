from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography import x509

import attest.verify
from attest.errors import AttestError, UsageError
from attest.identity import IdentityPolicy
from attest.oci.artifact import BUNDLE_V03
from attest.oci.client import Manifest
from attest.oci.descriptor import OCI_MANIFEST, Descriptor, digest_of
from attest.signing import VerificationError, VerifiedBundle
from attest.verify import IN_TOTO_PAYLOAD_TYPE, run_verify
from tests.shared_data import github_bundles

BUNDLES = github_bundles()
SLSA = "https://slsa.dev/provenance/v1"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
PROBER_SAN = (
    "https://github.com/actions/attest-build-provenance/.github/workflows/prober.yml"
    "@refs/heads/main"
)
PROBER_SHA = "ba965ac88abfc6fa49344893ed19e5bf479a07d6"
POLICY = IdentityPolicy(repository="actions/attest-build-provenance")
DIGEST = "sha256:" + "ab" * 32
SIGNED_AT = datetime(2025, 11, 18, 8, 31, 39, tzinfo=UTC)


def _data(name: str) -> Path:
    path = BUNDLES / name
    assert path.is_file(), f"test data missing: {path}"
    return path


def _cert(name: str) -> x509.Certificate:
    bundle = json.loads(_data(name).read_text())
    raw = bundle["verificationMaterial"]["certificate"]["rawBytes"]
    return x509.load_der_x509_certificate(base64.b64decode(raw))


PROBER_CERT = _cert("attest-build-provenance-13532655.sigstore.json")
CUSTOM_ISSUER_CERT = _cert("custom-issuer.sigstore.json")


def _statement(
    digests: list[dict[str, str]] | None = None,
    *,
    predicate_type: str = SLSA,
    statement_type: str = STATEMENT_V1,
) -> bytes:
    if digests is None:
        digests = [{"sha256": DIGEST.split(":", 1)[1]}]
    return json.dumps(
        {
            "_type": statement_type,
            "subject": [{"name": f"a{i}", "digest": d} for i, d in enumerate(digests)],
            "predicateType": predicate_type,
            "predicate": {},
        }
    ).encode()


def _verified(
    payload: bytes | None = None,
    *,
    cert: x509.Certificate = PROBER_CERT,
    payload_type: str = IN_TOTO_PAYLOAD_TYPE,
    signed_at: datetime = SIGNED_AT,
    instance: str = "public-good",
    tlog_index: int | None = 707288064,
) -> VerifiedBundle:
    return VerifiedBundle(
        payload_type=payload_type,
        payload=_statement() if payload is None else payload,
        certificate=cert,
        signed_at=signed_at,
        instance=instance,
        tlog_index=tlog_index,
    )


class FakeVerifier:
    """Stands in for attest.signing.verify_bundle: stub bundles name their outcome."""

    def __init__(self) -> None:
        self.outcomes: dict[str, VerifiedBundle | Exception] = {}
        self.calls: list[tuple[bytes, list[bytes]]] = []

    def __call__(self, bundle: bytes, *, trusted_roots: Any) -> VerifiedBundle:
        self.calls.append((bundle, list(trusted_roots)))
        outcome = self.outcomes[json.loads(bundle)["stub"]]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


DEFAULT_ROOTS = [b'{"default": "root"}']


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeVerifier:
    verifier = FakeVerifier()
    monkeypatch.setattr(attest.verify, "verify_bundle", verifier)
    monkeypatch.setattr(attest.verify, "default_trusted_roots", lambda: list(DEFAULT_ROOTS))
    return verifier


def _stub(name: str) -> bytes:
    return json.dumps({"stub": name}).encode()


def _bundle_file(tmp_path: Path, *names: str) -> Path:
    if len(names) == 1:
        path = tmp_path / "bundle.json"
        path.write_bytes(_stub(names[0]))
    else:
        path = tmp_path / "bundles.jsonl"
        path.write_bytes(b"".join(_stub(n) + b"\n" for n in names))
    return path


def _run(**kwargs: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "bundle_path": None,
        "image": None,
        "artifact": None,
        "digest": None,
        "policy": POLICY,
        "predicate_type": None,
        "trusted_root_path": None,
        "registries": None,
    }
    arguments.update(kwargs)
    return run_verify(**arguments)


# -- arguments ------------------------------------------------------------------------------


def test_needs_exactly_one_of_bundle_and_image(fake, tmp_path):
    with pytest.raises(UsageError, match="exactly one of --bundle or --image"):
        _run(digest=DIGEST)
    with pytest.raises(UsageError, match="exactly one of --bundle or --image"):
        _run(bundle_path=_bundle_file(tmp_path, "a"), image="ghcr.io/o/r", digest=DIGEST)
    assert fake.calls == []


def test_bundle_needs_exactly_one_of_artifact_and_digest(fake, tmp_path):
    bundle = _bundle_file(tmp_path, "a")
    artifact = tmp_path / "artifact"
    artifact.write_bytes(b"x")
    with pytest.raises(UsageError, match="exactly one of --artifact or --digest"):
        _run(bundle_path=bundle)
    with pytest.raises(UsageError, match="exactly one of --artifact or --digest"):
        _run(bundle_path=bundle, artifact=artifact, digest=DIGEST)
    assert fake.calls == []


@pytest.mark.parametrize(
    ("digest", "message"),
    [
        ("ab" * 32, "not of the form"),
        ("md5:" + "a" * 32, "must be one of sha256, sha384, sha512"),
        ("sha1:" + "a" * 40, "must be one of"),
        ("sha256:" + "A" * 64, "lower-case hex"),
        ("sha256:abc", "64"),
        ("sha512:" + "a" * 64, "128"),
    ],
)
def test_digest_must_be_a_supported_digest(fake, tmp_path, digest, message):
    with pytest.raises(UsageError, match="--digest") as caught:
        _run(bundle_path=_bundle_file(tmp_path, "a"), digest=digest)
    assert message in caught.value.message
    assert fake.calls == []


def test_missing_files_name_their_flag(fake, tmp_path):
    with pytest.raises(UsageError, match="--bundle"):
        _run(bundle_path=tmp_path / "nope.json", digest=DIGEST)
    with pytest.raises(UsageError, match="--artifact"):
        _run(bundle_path=_bundle_file(tmp_path, "a"), artifact=tmp_path / "nope")
    with pytest.raises(UsageError, match="--trusted-root"):
        _run(
            bundle_path=_bundle_file(tmp_path, "a"),
            digest=DIGEST,
            trusted_root_path=tmp_path / "nope.jsonl",
        )
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"\n\n")
    with pytest.raises(UsageError, match="no bundle"):
        _run(bundle_path=empty, digest=DIGEST)
    assert fake.calls == []


def test_image_with_artifact_or_a_different_digest_is_refused(fake, tmp_path):
    artifact = tmp_path / "artifact"
    artifact.write_bytes(b"x")
    with pytest.raises(UsageError, match="--artifact cannot be used with --image"):
        _run(image=f"ghcr.io/o/r@{DIGEST}", artifact=artifact)
    with pytest.raises(UsageError, match=r"--digest .* differs"):
        _run(image=f"ghcr.io/o/r@{DIGEST}", digest="sha256:" + "cd" * 32)
    with pytest.raises(UsageError, match="--digest"):
        _run(image="ghcr.io/o/r", digest="md5:" + "a" * 32)


# -- trusted roots --------------------------------------------------------------------------


def test_default_trusted_roots(fake, tmp_path):
    fake.outcomes["a"] = _verified()
    _run(bundle_path=_bundle_file(tmp_path, "a"), digest=DIGEST)
    assert fake.calls == [(_stub("a"), DEFAULT_ROOTS)]


def test_trusted_roots_as_json_lines_from_gh(fake, tmp_path):
    fake.outcomes["a"] = _verified()
    path = _data("trusted_root-2025-11.jsonl")
    _run(bundle_path=_bundle_file(tmp_path, "a"), digest=DIGEST, trusted_root_path=path)
    roots = fake.calls[0][1]
    assert len(roots) == 2
    assert [json.loads(r)["mediaType"] for r in roots] == [
        "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
    ] * 2
    assert roots == [line.strip() for line in path.read_bytes().splitlines() if line.strip()]


def test_trusted_root_as_one_json_document(fake, tmp_path):
    fake.outcomes["a"] = _verified()
    path = _data("trusted_root.json")
    _run(bundle_path=_bundle_file(tmp_path, "a"), digest=DIGEST, trusted_root_path=path)
    assert fake.calls[0][1] == [path.read_bytes()]


@pytest.mark.parametrize("content", [b"", b"[1, 2]", b'{"a": 1}\nnot json\n', b'{"a": 1}\n[]\n'])
def test_malformed_trusted_roots(fake, tmp_path, content):
    path = tmp_path / "roots.jsonl"
    path.write_bytes(content)
    with pytest.raises(UsageError, match="--trusted-root"):
        _run(bundle_path=_bundle_file(tmp_path, "a"), digest=DIGEST, trusted_root_path=path)
    assert fake.calls == []


# -- the statement --------------------------------------------------------------------------


def test_result_of_one_verified_bundle(fake, tmp_path):
    fake.outcomes["a"] = _verified()
    bundle = _bundle_file(tmp_path, "a")
    result = _run(bundle_path=bundle, digest=DIGEST, predicate_type=SLSA)
    assert result == {
        "verified": True,
        "bundle": str(bundle),
        "predicateType": SLSA,
        "subject": [{"name": "a0", "digest": {"sha256": "ab" * 32}}],
        "signer": {
            "san": PROBER_SAN,
            "issuer": "https://token.actions.githubusercontent.com",
            "build_signer_uri": PROBER_SAN,
            "source_repository_uri": "https://github.com/actions/attest-build-provenance",
            "source_repository_ref": "refs/heads/main",
            "source_repository_digest": PROBER_SHA,
            "runner_environment": "github-hosted",
        },
        "signedAt": "2025-11-18T08:31:39Z",
        "instance": "public-good",
        "tlogIndex": 707288064,
    }
    json.dumps(result)  # the CLI prints it


def test_signed_at_is_reported_in_utc(fake, tmp_path):
    plus_two = timezone(timedelta(hours=2))
    fake.outcomes["a"] = _verified(
        signed_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=plus_two), instance="github", tlog_index=None
    )
    result = _run(bundle_path=_bundle_file(tmp_path, "a"), digest=DIGEST)
    assert result["signedAt"] == "2025-01-02T01:04:05Z"
    assert result["instance"] == "github"
    assert result["tlogIndex"] is None


def test_payload_type_must_be_in_toto(fake, tmp_path):
    fake.outcomes["a"] = _verified(payload_type="application/vnd.example+json")
    with pytest.raises(VerificationError, match=r"payload type is 'application/vnd\.example"):
        _run(bundle_path=_bundle_file(tmp_path, "a"), digest=DIGEST)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"not json", "not JSON"),
        (b"[]", "not an in-toto statement"),
        (_statement(statement_type="https://example.com/Statement"), "not an in-toto statement"),
        (json.dumps({"_type": STATEMENT_V1, "predicateType": SLSA}).encode(), "no valid subject"),
        (
            json.dumps({"_type": STATEMENT_V1, "subject": [], "predicateType": SLSA}).encode(),
            "no valid subject",
        ),
        (
            json.dumps(
                {"_type": STATEMENT_V1, "subject": [{"name": "x"}], "predicateType": SLSA}
            ).encode(),
            "no valid subject",
        ),
        (
            json.dumps(
                {"_type": STATEMENT_V1, "subject": [{"digest": {"sha256": "ab" * 32}}]}
            ).encode(),
            "no predicateType",
        ),
    ],
)
def test_malformed_statements(fake, tmp_path, payload, message):
    fake.outcomes["a"] = _verified(payload)
    with pytest.raises(VerificationError, match=message):
        _run(bundle_path=_bundle_file(tmp_path, "a"), digest=DIGEST)


def test_statement_v01_is_accepted(fake, tmp_path):
    fake.outcomes["a"] = _verified(_statement(statement_type="https://in-toto.io/Statement/v0.1"))
    assert _run(bundle_path=_bundle_file(tmp_path, "a"), digest=DIGEST)["verified"] is True


def test_subject_must_match_the_digest(fake, tmp_path):
    fake.outcomes["a"] = _verified(_statement([{"sha256": "cd" * 32}]))
    with pytest.raises(VerificationError, match=f"not about {DIGEST}"):
        _run(bundle_path=_bundle_file(tmp_path, "a"), digest=DIGEST)


def test_any_subject_may_match_and_case_of_the_hex_does_not_matter(fake, tmp_path):
    fake.outcomes["a"] = _verified(_statement([{"sha256": "cd" * 32}, {"sha256": "AB" * 32}]))
    result = _run(bundle_path=_bundle_file(tmp_path, "a"), digest=DIGEST)
    assert len(result["subject"]) == 2


def test_subject_digest_algorithm_must_match(fake, tmp_path):
    sha512 = "sha512:" + "ab" * 64
    fake.outcomes["a"] = _verified(_statement([{"sha512": "ab" * 64}]))
    _run(bundle_path=_bundle_file(tmp_path, "a"), digest=sha512)
    with pytest.raises(VerificationError, match="not about"):
        _run(bundle_path=_bundle_file(tmp_path, "a"), digest="sha256:" + "ab" * 32)


def test_artifact_is_hashed(fake, tmp_path):
    artifact = tmp_path / "artifact.bin"
    artifact.write_bytes(b"hello world\n" * 100_000)
    sha256 = hashlib.sha256(artifact.read_bytes()).hexdigest()
    fake.outcomes["a"] = _verified(_statement([{"sha256": sha256}]))
    fake.outcomes["b"] = _verified(_statement([{"sha256": "0" * 64}]))
    _run(bundle_path=_bundle_file(tmp_path, "a"), artifact=artifact)
    with pytest.raises(VerificationError, match=f"not about sha256:{sha256}"):
        _run(bundle_path=_bundle_file(tmp_path, "b"), artifact=artifact)


def test_artifact_is_hashed_with_the_subjects_algorithm(fake, tmp_path):
    artifact = tmp_path / "artifact.bin"
    artifact.write_bytes(b"data")
    sha512 = hashlib.sha512(b"data").hexdigest()
    sha384 = hashlib.sha384(b"data").hexdigest()
    fake.outcomes["a"] = _verified(_statement([{"sha512": sha512}]))
    fake.outcomes["b"] = _verified(_statement([{"sha384": sha384, "md5": "x"}]))
    fake.outcomes["c"] = _verified(_statement([{"sha512": sha384}]))
    _run(bundle_path=_bundle_file(tmp_path, "a"), artifact=artifact)
    _run(bundle_path=_bundle_file(tmp_path, "b"), artifact=artifact)
    with pytest.raises(VerificationError, match="not about"):
        _run(bundle_path=_bundle_file(tmp_path, "c"), artifact=artifact)


def test_predicate_type_when_given(fake, tmp_path):
    fake.outcomes["a"] = _verified(_statement(predicate_type="https://spdx.dev/Document/v2.3"))
    bundle = _bundle_file(tmp_path, "a")
    assert _run(bundle_path=bundle, digest=DIGEST)["predicateType"] == (
        "https://spdx.dev/Document/v2.3"
    )
    with pytest.raises(VerificationError, match=r"predicate type is 'https://spdx\.dev"):
        _run(bundle_path=bundle, digest=DIGEST, predicate_type=SLSA)


def test_identity_policy_is_applied(fake, tmp_path):
    fake.outcomes["a"] = _verified(cert=CUSTOM_ISSUER_CERT)
    bundle = _bundle_file(tmp_path, "a")
    with pytest.raises(VerificationError) as caught:
        _run(bundle_path=bundle, digest=DIGEST, policy=IdentityPolicy(owner="too-legit"))
    assert "certificate issuer" in caught.value.message
    assert caught.value.hint is not None
    assert "--cert-oidc-issuer" in caught.value.hint
    result = _run(
        bundle_path=bundle,
        digest=DIGEST,
        policy=IdentityPolicy(
            owner="too-legit", issuer="https://token.actions.githubusercontent.com/hammer-time"
        ),
    )
    assert result["signer"]["issuer"] == "https://token.actions.githubusercontent.com/hammer-time"
    with pytest.raises(VerificationError, match="SAN"):
        _run(bundle_path=bundle, digest=DIGEST)  # POLICY is actions/attest-build-provenance


def test_cryptographic_failure_is_reported(fake, tmp_path):
    fake.outcomes["a"] = VerificationError("bundle does not verify: bad signature")
    with pytest.raises(VerificationError, match="bad signature"):
        _run(bundle_path=_bundle_file(tmp_path, "a"), digest=DIGEST)


# -- several bundles ------------------------------------------------------------------------


def test_json_lines_accept_any_line_that_verifies(fake, tmp_path):
    fake.outcomes["bad"] = VerificationError("bundle does not verify: bad signature")
    fake.outcomes["good"] = _verified()
    path = _bundle_file(tmp_path, "bad", "good")
    result = _run(bundle_path=path, digest=DIGEST)
    assert result["bundle"] == f"{path}:2"
    assert "attestations" not in result
    assert len(fake.calls) == 2


def test_several_verified_bundles_are_listed(fake, tmp_path):
    fake.outcomes["one"] = _verified()
    fake.outcomes["two"] = _verified(instance="github", tlog_index=None)
    fake.outcomes["bad"] = _verified(_statement([{"sha256": "0" * 64}]))
    path = _bundle_file(tmp_path, "one", "bad", "two")
    result = _run(bundle_path=path, digest=DIGEST)
    assert result["verified"] is True
    assert [a["bundle"] for a in result["attestations"]] == [f"{path}:1", f"{path}:3"]
    assert [a["instance"] for a in result["attestations"]] == ["public-good", "github"]


def test_none_verifying_gives_every_reason(fake, tmp_path):
    fake.outcomes["crypto"] = VerificationError("bundle does not verify: bad signature")
    fake.outcomes["subject"] = _verified(_statement([{"sha256": "0" * 64}]))
    fake.outcomes["identity"] = _verified(cert=CUSTOM_ISSUER_CERT)
    path = _bundle_file(tmp_path, "crypto", "subject", "identity")
    with pytest.raises(VerificationError) as caught:
        _run(bundle_path=path, digest=DIGEST)
    message = caught.value.message
    assert message.startswith(f"no attestation for {DIGEST} verified (3 bundles from {path}): ")
    assert "line 1: bundle does not verify: bad signature" in message
    assert f"line 2: the statement is not about {DIGEST}" in message
    assert "line 3: certificate SAN" in message
    assert caught.value.hint is not None
    assert "--signer-repo" in caught.value.hint


def test_many_failures_are_summarised(fake, tmp_path):
    names = [f"n{i}" for i in range(12)]
    for name in names:
        fake.outcomes[name] = VerificationError("x" * 1000)
    with pytest.raises(VerificationError) as caught:
        _run(bundle_path=_bundle_file(tmp_path, *names), digest=DIGEST)
    message = caught.value.message
    assert "line 8:" in message
    assert "line 9:" not in message
    assert message.endswith("and 4 more")
    assert len(message) < 8 * 320 + 300


def test_non_attest_errors_are_not_swallowed(fake, tmp_path):
    fake.outcomes["a"] = RuntimeError("a bug")
    with pytest.raises(RuntimeError, match="a bug"):
        _run(bundle_path=_bundle_file(tmp_path, "a"), digest=DIGEST)


# -- bundles from an image's referrers ------------------------------------------------------


class FakeClient:
    def __init__(self) -> None:
        #: None: listed as a referrer, but the registry no longer has it.
        self.manifests: dict[str, bytes | None] = {}
        self.blobs: dict[str, tuple[int, bytes]] = {}
        self.requests: list[tuple[str, str, str]] = []
        self.resolved: list[tuple[str, str]] = []
        self.tags: dict[str, str] = {}

    def add_referrer(self, bundle: bytes, *, blob: bytes | None = None, status: int = 200) -> str:
        layer = {"mediaType": BUNDLE_V03, "digest": digest_of(bundle), "size": len(bundle)}
        manifest = json.dumps({"mediaType": OCI_MANIFEST, "layers": [layer]}).encode()
        self.manifests[digest_of(manifest)] = manifest
        self.blobs[digest_of(bundle)] = (status, bundle if blob is None else blob)
        return digest_of(manifest)

    def resolve(self, repository: str, reference: str) -> Descriptor:
        self.resolved.append((repository, reference))
        return Descriptor(OCI_MANIFEST, self.tags[reference], 100)

    def get_manifest(self, repository: str, reference: str) -> Manifest | None:
        data = self.manifests.get(reference)
        return None if data is None else Manifest(data, OCI_MANIFEST, reference, None)

    def request(self, method: str, path: str, *, repository: str, max_bytes: int = 0) -> Any:
        self.requests.append((method, path, repository))
        digest = path.rsplit("/", 1)[1]
        status, content = self.blobs.get(digest, (404, b""))
        return SimpleNamespace(status_code=status, content=content)


class FakeRegistries:
    def __init__(self, client: FakeClient) -> None:
        self._client = client
        self.hosts: list[str] = []

    def client(self, host: str) -> FakeClient:
        self.hosts.append(host)
        return self._client


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    client = FakeClient()
    state = SimpleNamespace(client=client, registries=FakeRegistries(client), listed=[])

    class FakeReferrers:
        def list(self, client: Any, image: Any, *, artifact_type: str | None = None) -> Any:
            state.listed.append((image, artifact_type))
            return [
                {"mediaType": OCI_MANIFEST, "digest": d, "artifactType": BUNDLE_V03}
                for d in client.manifests
            ]

    monkeypatch.setattr(attest.verify, "Referrers", FakeReferrers)
    return state


def test_image_bundles_from_referrers(fake, registry):
    fake.outcomes["a"] = _verified()
    manifest = registry.client.add_referrer(_stub("a"))
    result = _run(image=f"ghcr.io/o/r@{DIGEST}", registries=registry.registries)
    assert result["bundle"] == f"ghcr.io/o/r@{manifest}"
    assert registry.registries.hosts == ["ghcr.io"]
    ((image, artifact_type),) = registry.listed
    assert str(image) == f"ghcr.io/o/r@{DIGEST}"
    assert artifact_type == BUNDLE_V03
    assert registry.client.requests == [("GET", f"/v2/o/r/blobs/{digest_of(_stub('a'))}", "o/r")]
    assert fake.calls[0][0] == _stub("a")


def test_image_subject_is_the_image_digest(fake, registry):
    fake.outcomes["a"] = _verified(_statement([{"sha256": "cd" * 32}]))
    registry.client.add_referrer(_stub("a"))
    with pytest.raises(VerificationError, match=f"not about {DIGEST}"):
        _run(image=f"ghcr.io/o/r@{DIGEST}", registries=registry.registries)


def test_image_by_tag_or_with_digest_flag(fake, registry):
    fake.outcomes["a"] = _verified()
    registry.client.add_referrer(_stub("a"))
    registry.client.tags["v1"] = DIGEST
    _run(image="ghcr.io/o/r:v1", registries=registry.registries)
    assert registry.client.resolved == [("o/r", "v1")]
    assert str(registry.listed[-1][0]) == f"ghcr.io/o/r@{DIGEST}"
    _run(image="ghcr.io/o/r", digest=DIGEST, registries=registry.registries)
    assert registry.client.resolved == [("o/r", "v1")]  # no second resolve
    assert str(registry.listed[-1][0]) == f"ghcr.io/o/r@{DIGEST}"


def test_image_without_bundles(fake, registry):
    with pytest.raises(VerificationError, match="no Sigstore bundles") as caught:
        _run(image=f"ghcr.io/o/r@{DIGEST}", registries=registry.registries)
    assert caught.value.hint is not None
    assert fake.calls == []


def test_image_blob_must_match_its_digest(fake, registry):
    fake.outcomes["good"] = _verified()
    fake.outcomes["evil"] = _verified()
    tampered = registry.client.add_referrer(_stub("good"), blob=_stub("evil"))
    with pytest.raises(VerificationError) as caught:
        _run(image=f"ghcr.io/o/r@{DIGEST}", registries=registry.registries)
    assert f"referrer {tampered}: blob sha256:" in caught.value.message
    assert "does not match its digest" in caught.value.message
    assert fake.calls == []


def test_image_referrer_failures_do_not_hide_a_good_one(fake, registry):
    fake.outcomes["good"] = _verified()
    registry.client.add_referrer(_stub("missing"), status=404)
    registry.client.add_referrer(_stub("bad"), blob=b"{}")
    gone = registry.client.add_referrer(_stub("gone"))
    registry.client.manifests[gone] = None
    good = registry.client.add_referrer(_stub("good"))
    result = _run(image=f"ghcr.io/o/r@{DIGEST}", registries=registry.registries)
    assert result["bundle"] == f"ghcr.io/o/r@{good}"
    del registry.client.manifests[good]
    with pytest.raises(VerificationError) as caught:
        _run(image=f"ghcr.io/o/r@{DIGEST}", registries=registry.registries)
    message = caught.value.message
    assert "HTTP 404" in message
    assert "does not match its digest" in message
    assert "the referrer manifest is gone" in message


def test_image_manifest_without_layers(fake, registry):
    manifest = json.dumps({"mediaType": OCI_MANIFEST, "layers": []}).encode()
    registry.client.manifests[digest_of(manifest)] = manifest
    with pytest.raises(VerificationError, match="no bundle layer"):
        _run(image=f"ghcr.io/o/r@{DIGEST}", registries=registry.registries)


# -- the real thing: GitHub's bundles through attest.signing ---------------------------------


def test_real_reusable_workflow_bundle():
    artifact = _data("reusable-workflow-artifact")
    bundle = _data("reusable-workflow-attestation.sigstore.json")
    result = _run(
        bundle_path=bundle,
        artifact=artifact,
        policy=IdentityPolicy(
            repository="malancas/attest-demo",
            signer_repository="github/artifact-attestations-workflows",
        ),
        predicate_type=SLSA,
    )
    assert result["instance"] == "public-good"
    assert result["tlogIndex"] == 96764485
    assert result["signedAt"] == "2024-05-24T19:14:24Z"
    assert result["signer"]["source_repository_uri"] == "https://github.com/malancas/attest-demo"
    with pytest.raises(VerificationError, match="SAN") as caught:
        _run(
            bundle_path=bundle,
            artifact=artifact,
            policy=IdentityPolicy(repository="malancas/attest-demo"),
        )
    assert caught.value.hint is not None
    assert "--signer-repo" in caught.value.hint


def test_real_github_instance_bundle_with_ghs_trusted_roots():
    result = _run(
        bundle_path=_data("github_provenance_demo-0.0.12-py3-none-any-bundle.jsonl"),
        artifact=_data("github_provenance_demo-0.0.12-py3-none-any.whl"),
        policy=IdentityPolicy(repository="actions/attest-demo"),
        trusted_root_path=_data("trusted_root-2025-11.jsonl"),
    )
    assert result["instance"] == "github"
    assert result["tlogIndex"] is None
    # One line is one JSON document: named by the file alone.
    assert result["bundle"] == str(_data("github_provenance_demo-0.0.12-py3-none-any-bundle.jsonl"))
    # Public good's root alone does not verify GitHub's instance.
    with pytest.raises(VerificationError):
        _run(
            bundle_path=_data("attest-build-provenance-13531551.sigstore.json"),
            digest="sha256:b03d18ed0a16864ef2d2e559c660159a2170b9d086a1f42f570b1679326b90e6",
            policy=POLICY,
            trusted_root_path=_data("trusted_root.json"),
        )


def test_real_bundle_for_another_artifact_or_tampered_fails(tmp_path):
    with pytest.raises(VerificationError, match="not about"):
        _run(
            bundle_path=_data("custom-issuer.sigstore.json"),
            artifact=_data("reusable-workflow-artifact"),
            policy=IdentityPolicy(
                owner="too-legit", issuer="https://token.actions.githubusercontent.com/hammer-time"
            ),
        )
    with pytest.raises(VerificationError, match="does not verify"):
        _run(
            bundle_path=_data("sigstoreBundle-invalid-signature.json"),
            digest=DIGEST,
            policy=IdentityPolicy(owner="o", san_regex=".*"),
        )
    bundle = json.loads(_data("custom-issuer.sigstore.json").read_text())
    signature = bytearray(base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"]))
    signature[-1] ^= 1
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(signature).decode()
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(bundle))
    with pytest.raises(AttestError):
        _run(
            bundle_path=tampered,
            artifact=_data("custom-issuer-artifact"),
            policy=IdentityPolicy(
                owner="too-legit", issuer="https://token.actions.githubusercontent.com/hammer-time"
            ),
        )
