"""The local Sigstore instance against real clients: sigstore-python, the real TSA and gh.

Everything the clients get is what they would get from a real deployment: a
``ClientTrustConfig`` / trusted root document, and HTTP answers on loopback. Nothing is
monkeypatched.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from rfc3161_client import (
    HashAlgorithm,
    TimestampRequestBuilder,
    VerifierBuilder,
    decode_timestamp_response,
)
from sigstore._internal.fulcio.client import FulcioClientError
from sigstore.dsse import Statement
from sigstore.errors import Error as SigstoreError
from sigstore.models import Bundle, ClientTrustConfig
from sigstore.oidc import IdentityToken
from sigstore.sign import SigningContext
from sigstore.verify import Verifier
from sigstore.verify.policy import (
    AllOf,
    Identity,
    OIDCBuildConfigURI,
    OIDCBuildSignerURI,
    OIDCRunInvocationURI,
    OIDCSourceRepositoryDigest,
    OIDCSourceRepositoryRef,
    OIDCSourceRepositoryURI,
)

from tests.fakes.oidc_issuer import FakeIssuer
from tests.fakes.sigstore_instance import SigstoreInstance, der_utf8string, pae

from .helpers import gh_binary, gh_environment, write_trusted_root
from .tsa import TimestampServer

ARTIFACT = b"attest test artifact\n"
OID = "1.3.6.1.4.1.57264.1"
GH_OWNER = "octo-org"


def statement_bytes(artifact: bytes = ARTIFACT) -> bytes:
    document = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [
            {"name": "artifact.bin", "digest": {"sha256": hashlib.sha256(artifact).hexdigest()}}
        ],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://actions.github.io/buildtypes/workflow/v1",
                "externalParameters": {},
            },
            "runDetails": {"builder": {"id": "https://github.com/actions/runner"}},
        },
    }
    return json.dumps(document, separators=(",", ":")).encode()


# --- fixtures ---


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    with FakeIssuer() as started:
        yield started


@pytest.fixture
def instance(issuer: FakeIssuer) -> Iterator[SigstoreInstance]:
    with SigstoreInstance(issuer) as started:
        yield started


def san_of(issuer: FakeIssuer) -> str:
    return f"https://github.com/{issuer.claims['job_workflow_ref']}"


def identity(issuer: FakeIssuer) -> Identity:
    return Identity(identity=san_of(issuer), issuer=issuer.url)


def trust_config(document: dict[str, Any]) -> ClientTrustConfig:
    return ClientTrustConfig.from_json(json.dumps(document))


def sign(cfg: ClientTrustConfig, issuer: FakeIssuer, payload: bytes | None = None) -> Bundle:
    token = IdentityToken(issuer.mint("sigstore"))
    with SigningContext.from_trust_config(cfg).signer(token) as signer:
        return signer.sign_dsse(Statement(payload or statement_bytes()))


def verify(root_cfg: ClientTrustConfig, bundle_json: str, issuer: FakeIssuer) -> bytes:
    bundle = Bundle.from_json(bundle_json)
    payload_type, payload = Verifier(trusted_root=root_cfg.trusted_root).verify_dsse(
        bundle, identity(issuer)
    )
    assert payload_type == "application/vnd.in-toto+json"
    return payload


def leaf_of(bundle_json: str) -> x509.Certificate:
    raw = json.loads(bundle_json)["verificationMaterial"]["certificate"]["rawBytes"]
    return x509.load_der_x509_certificate(base64.b64decode(raw))


def foreign_log_key(log: dict[str, Any]) -> None:
    """Give a trusted-root log entry another key (and so another log id)."""
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    log["publicKey"]["rawBytes"] = base64.b64encode(der).decode()
    log["logId"]["keyId"] = base64.b64encode(hashlib.sha256(der).digest()).decode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- sigstore-python signs and verifies ---


def test_sign_and_verify_with_rekor_and_real_tsa(
    issuer: FakeIssuer, instance: SigstoreInstance, tsa: TimestampServer
) -> None:
    cfg = trust_config(instance.client_trust_config(tsa_url=tsa.url, tsa_chains=[tsa.chain_der]))
    bundle_json = sign(cfg, issuer).to_json()

    assert verify(cfg, bundle_json, issuer) == statement_bytes()
    document = json.loads(bundle_json)
    assert document["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    material = document["verificationMaterial"]
    (entry,) = material["tlogEntries"]
    assert entry["kindVersion"] == {"kind": "dsse", "version": "0.0.1"}
    assert int(entry["inclusionProof"]["treeSize"]) == 6  # five prefilled leaves + ours
    assert len(entry["inclusionProof"]["hashes"]) == 2  # leaf 4, then the root of 0..3
    assert entry["inclusionProof"]["checkpoint"]["envelope"].count("\n\u2014 rekor.local ") == 1
    (timestamp,) = material["timestampVerificationData"]["rfc3161Timestamps"]
    assert [(seen.method, seen.path, seen.status) for seen in instance.requests] == [
        ("POST", "/api/v2/signingCert", 201),
        ("POST", "/api/v1/log/entries", 201),
    ]
    # Fulcio checked the token against the issuer's published keys, fetched over HTTP.
    assert "/.well-known/jwks" in [seen.path for seen in issuer.requests]

    # The timestamp is the real TSA's, over the signature, and chains to its root.
    response = decode_timestamp_response(base64.b64decode(timestamp["signedTimestamp"]))
    chain = tsa.chain
    verifier = VerifierBuilder().tsa_certificate(chain[0]).add_root_certificate(chain[-1])
    for intermediate in chain[1:-1]:
        verifier = verifier.add_intermediate_certificate(intermediate)
    signature = base64.b64decode(document["dsseEnvelope"]["signatures"][0]["sig"])
    assert verifier.build().verify_message(response, signature)

    # A root without any TSA refuses a bundle that carries a timestamp ...
    with pytest.raises(SigstoreError, match="no Timestamp Authorities"):
        verify(trust_config(instance.client_trust_config()), bundle_json, issuer)
    # ... while with Rekor v1 a timestamp of an untrusted TSA is dropped silently (the SET is
    # enough), as sigstore.md §3.1 reports: sigstore-python alone does not prove the timestamp.
    other = SigstoreInstance(issuer)  # never started: only its CA certificate is used
    foreign_tsa = [chain[0].public_bytes(serialization.Encoding.DER), other.ca_der]
    root_cfg = trust_config(instance.client_trust_config(tsa_chains=[foreign_tsa]))
    assert verify(root_cfg, bundle_json, issuer) == statement_bytes()


def test_sign_and_verify_with_rekor_only(issuer: FakeIssuer, instance: SigstoreInstance) -> None:
    cfg = trust_config(instance.client_trust_config())
    bundle_json = sign(cfg, issuer).to_json()

    assert verify(cfg, bundle_json, issuer) == statement_bytes()
    material = json.loads(bundle_json)["verificationMaterial"]
    assert len(material["tlogEntries"]) == 1
    assert not material.get("timestampVerificationData", {}).get("rfc3161Timestamps")


def test_leaf_certificate_carries_the_github_identity(
    issuer: FakeIssuer, instance: SigstoreInstance
) -> None:
    cfg = trust_config(instance.client_trust_config())
    bundle_json = sign(cfg, issuer).to_json()
    leaf = leaf_of(bundle_json)
    claims = issuer.claims
    server = "https://github.com"

    def ext(n: int) -> x509.Extension[x509.ExtensionType]:
        return leaf.extensions.get_extension_for_oid(x509.ObjectIdentifier(f"{OID}.{n}"))

    expected_der = {
        8: issuer.url,
        9: f"{server}/{claims['job_workflow_ref']}",
        10: claims["job_workflow_sha"],
        11: "github-hosted",
        12: f"{server}/octo-org/octo-repo",
        13: claims["sha"],
        14: "refs/heads/main",
        15: claims["repository_id"],
        16: f"{server}/octo-org",
        17: claims["repository_owner_id"],
        18: f"{server}/{claims['workflow_ref']}",
        19: claims["workflow_sha"],
        20: "push",
        21: f"{server}/octo-org/octo-repo/actions/runs/9876543210/attempts/2",
        22: "private",
    }
    for n, value in expected_der.items():
        assert ext(n).value.value == der_utf8string(value), n  # type: ignore[attr-defined]
        assert not ext(n).critical
    expected_raw = {
        1: issuer.url,
        2: "push",
        3: claims["sha"],
        4: "Release",
        5: "octo-org/octo-repo",
        6: "refs/heads/main",
    }
    for n, value in expected_raw.items():
        assert ext(n).value.value == value.encode(), n  # type: ignore[attr-defined]

    assert leaf.subject == x509.Name([])
    assert leaf.issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "sigstore.dev"
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [san_of(issuer)]
    key_usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert key_usage.critical and key_usage.value.digital_signature
    assert not key_usage.value.key_cert_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CODE_SIGNING]
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    root_ski = instance.ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert aki.key_identifier == root_ski.value.digest
    leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert lifetime.total_seconds() == 600
    (sct,) = leaf.extensions.get_extension_for_class(
        x509.PrecertificateSignedCertificateTimestamps
    ).value
    assert sct.log_id == instance.ct_log_id

    # sigstore-python's own OIDC policies read the same extensions.
    policy = AllOf(
        [
            identity(issuer),
            OIDCBuildSignerURI(f"{server}/{claims['job_workflow_ref']}"),
            OIDCSourceRepositoryURI(f"{server}/octo-org/octo-repo"),
            OIDCSourceRepositoryDigest(claims["sha"]),
            OIDCSourceRepositoryRef("refs/heads/main"),
            OIDCBuildConfigURI(f"{server}/{claims['workflow_ref']}"),
            OIDCRunInvocationURI(f"{server}/octo-org/octo-repo/actions/runs/9876543210/attempts/2"),
        ]
    )
    Verifier(trusted_root=cfg.trusted_root).verify_dsse(Bundle.from_json(bundle_json), policy)
    with pytest.raises(SigstoreError, match="OIDCSourceRepositoryRef does not match"):
        Verifier(trusted_root=cfg.trusted_root).verify_dsse(
            Bundle.from_json(bundle_json), OIDCSourceRepositoryRef("refs/heads/other")
        )


# --- Fulcio on the wire ---


def csr_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def post_csr(url: str, token: str, key: ec.EllipticCurvePrivateKey) -> requests.Response:
    return requests.post(
        f"{url}/api/v2/signingCert",
        json={"certificateSigningRequest": b64(csr_pem(key))},
        headers={"Authorization": f"Bearer {token}", "Accept": "application/pem-certificate-chain"},
        timeout=10,
    )


def test_fulcio_refuses_bad_tokens_with_401(issuer: FakeIssuer, instance: SigstoreInstance) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    unpublished = ec.generate_private_key(ec.SECP256R1())
    bad_tokens = {
        "wrong audience": issuer.mint("nobody"),
        "expired": issuer.mint("sigstore", exp=1_000_000_000),
        "unpublished key": issuer.mint("sigstore", signing_key=unpublished),
        "other issuer": issuer.mint("sigstore", iss="https://token.actions.githubusercontent.com"),
    }
    for reason, token in bad_tokens.items():
        response = post_csr(instance.url, token, key)
        assert response.status_code == 401, reason
        assert response.json()["code"] == 16
        assert "identity token" in response.json()["message"]
    response = requests.post(
        f"{instance.url}/api/v2/signingCert",
        json={"certificateSigningRequest": b64(csr_pem(key))},
        timeout=10,
    )
    assert response.status_code == 401
    assert post_csr(instance.url, issuer.mint("sigstore"), key).status_code == 201


def test_fulcio_accepts_the_sigstore_js_request_form(
    issuer: FakeIssuer, instance: SigstoreInstance
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = issuer.mint("sigstore")

    def request(proof: bytes) -> requests.Response:
        body = {
            "credentials": {"oidcIdentityToken": token},
            "publicKeyRequest": {
                "publicKey": {"algorithm": "ECDSA", "content": public_pem.decode()},
                "proofOfPossession": b64(proof),
            },
        }
        return requests.post(f"{instance.url}/api/v2/signingCert", json=body, timeout=10)

    good = request(key.sign(issuer.claims["sub"].encode(), ec.ECDSA(hashes.SHA256())))
    assert good.status_code == 201
    leaf_pem, root_pem = good.json()["signedCertificateEmbeddedSct"]["chain"]["certificates"]
    assert x509.load_pem_x509_certificate(leaf_pem.encode()).public_key() == key.public_key()
    assert x509.load_pem_x509_certificate(root_pem.encode()) == instance.ca_cert

    wrong = request(key.sign(b"someone else", ec.ECDSA(hashes.SHA256())))
    assert wrong.status_code == 400
    assert wrong.json()["message"] == "The signature supplied in the request could not be verified"


def test_fulcio_answers_detached_sct_without_embedded_ct(issuer: FakeIssuer) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with SigstoreInstance(issuer, detached_sct=True) as detached:
        answer = post_csr(detached.url, issuer.mint("sigstore"), key).json()
        part = answer["signedCertificateDetachedSct"]
        leaf = x509.load_pem_x509_certificate(part["chain"]["certificates"][0].encode())
        sct = json.loads(base64.b64decode(part["signedCertificateTimestamp"]))
        # RFC 6962 x509_entry over the final certificate, signed by the CT key.
        der = leaf.public_bytes(serialization.Encoding.DER)
        signed = (
            struct.pack("!BBQH", 0, 0, sct["timestamp"], 0)
            + len(der).to_bytes(3, "big")
            + der
            + b"\x00\x00"
        )
        digitally_signed = base64.b64decode(sct["signature"])
        assert digitally_signed[:2] == b"\x04\x03"
        detached.ct_key.public_key().verify(digitally_signed[4:], signed, ec.ECDSA(hashes.SHA256()))
        assert base64.b64decode(sct["id"]) == detached.ct_log_id
        with pytest.raises(x509.ExtensionNotFound):
            leaf.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps)

    with SigstoreInstance(issuer, ct_log=False) as no_ct:
        answer = post_csr(no_ct.url, issuer.mint("sigstore"), key).json()
        assert set(answer["signedCertificateDetachedSct"]) == {"chain"}
        cfg = trust_config(no_ct.client_trust_config())
        assert cfg.trusted_root._inner.ctlogs == []
        # sigstore-python 4.5 only understands embedded SCTs, like against upstream Fulcio.
        with pytest.raises(FulcioClientError, match="missing certificate chain"):
            sign(cfg, issuer)


# --- Rekor v1 on the wire ---


def test_rekor_entries_duplicates_and_log_info(
    issuer: FakeIssuer, instance: SigstoreInstance
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    leaf_pem = post_csr(instance.url, issuer.mint("sigstore"), key).json()[
        "signedCertificateEmbeddedSct"
    ]["chain"]["certificates"][0]
    digest = hashlib.sha256(ARTIFACT).digest()
    signature = key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    proposed: dict[str, Any] = {
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": digest.hex()}},
            "signature": {
                "content": b64(signature),
                "publicKey": {"content": b64(leaf_pem.encode())},
            },
        },
    }
    created = requests.post(f"{instance.url}/api/v1/log/entries", json=proposed, timeout=10)
    assert created.status_code == 201
    ((uuid, entry),) = created.json().items()
    assert created.headers["Location"] == f"/api/v1/log/entries/{uuid}"
    assert entry["logIndex"] == 5
    assert json.loads(base64.b64decode(entry["body"]))["spec"] == proposed["spec"]

    again = requests.post(f"{instance.url}/api/v1/log/entries", json=proposed, timeout=10)
    assert again.status_code == 409
    assert again.headers["Location"] == f"/api/v1/log/entries/{uuid}"

    bad = copy.deepcopy(proposed)
    bad["spec"]["data"]["hash"]["value"] = hashlib.sha256(b"other").hexdigest()
    assert (
        requests.post(f"{instance.url}/api/v1/log/entries", json=bad, timeout=10).status_code == 400
    )

    info = requests.get(f"{instance.url}/api/v1/log", timeout=10).json()
    assert info["treeSize"] == 6
    assert info["rootHash"] == entry["verification"]["inclusionProof"]["rootHash"]
    fetched = requests.get(f"{instance.url}/api/v1/log/entries/{uuid}", timeout=10)
    assert fetched.json()[uuid]["body"] == entry["body"]


# --- negative: real clients notice every broken part ---


def test_foreign_ct_key_fails_signing_and_verification(
    issuer: FakeIssuer, instance: SigstoreInstance
) -> None:
    document = instance.client_trust_config()
    foreign_log_key(document["trustedRoot"]["ctlogs"][0])
    with pytest.raises(SigstoreError, match="SCT"):
        sign(trust_config(document), issuer)

    bundle_json = sign(trust_config(instance.client_trust_config()), issuer).to_json()
    with pytest.raises(SigstoreError, match="SCT"):
        verify(trust_config(document), bundle_json, issuer)


def test_foreign_fulcio_root_fails_verification(
    issuer: FakeIssuer, instance: SigstoreInstance
) -> None:
    bundle_json = sign(trust_config(instance.client_trust_config()), issuer).to_json()
    other = SigstoreInstance(issuer)  # never started: only its CA certificate is used
    document = instance.client_trust_config()
    chain = document["trustedRoot"]["certificateAuthorities"][0]["certChain"]
    chain["certificates"] = [{"rawBytes": b64(other.ca_der)}]
    with pytest.raises(SigstoreError, match="certificate chain"):
        verify(trust_config(document), bundle_json, issuer)


def test_foreign_rekor_key_fails_verification(
    issuer: FakeIssuer, instance: SigstoreInstance
) -> None:
    bundle_json = sign(trust_config(instance.client_trust_config()), issuer).to_json()
    document = instance.client_trust_config()
    foreign_log_key(document["trustedRoot"]["tlogs"][0])
    with pytest.raises(SigstoreError, match="checkpoint"):
        verify(trust_config(document), bundle_json, issuer)


def test_flipped_proof_hash_fails(issuer: FakeIssuer, instance: SigstoreInstance) -> None:
    cfg = trust_config(instance.client_trust_config())
    document = json.loads(sign(cfg, issuer).to_json())
    proof = document["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    first = bytearray(base64.b64decode(proof["hashes"][0]))
    first[0] ^= 0x01
    proof["hashes"][0] = b64(bytes(first))
    with pytest.raises(SigstoreError, match="inclusion proof"):
        verify(cfg, json.dumps(document), issuer)


def test_tampered_payload_fails(issuer: FakeIssuer, instance: SigstoreInstance) -> None:
    cfg = trust_config(instance.client_trust_config())
    document = json.loads(sign(cfg, issuer).to_json())
    document["dsseEnvelope"]["payload"] = b64(statement_bytes() + b" ")
    with pytest.raises(SigstoreError, match="DSSE: invalid signature"):
        verify(cfg, json.dumps(document), issuer)


def test_wrong_identity_fails(issuer: FakeIssuer, instance: SigstoreInstance) -> None:
    cfg = trust_config(instance.client_trust_config())
    bundle = Bundle.from_json(sign(cfg, issuer).to_json())
    policy = Identity(
        identity=san_of(issuer).replace("release.yml", "other.yml"), issuer=issuer.url
    )
    with pytest.raises(SigstoreError, match="SANs do not match"):
        Verifier(trusted_root=cfg.trusted_root).verify_dsse(bundle, policy)


# --- gh attestation verify ---


def gh_verify(
    tmp_path: Path, bundle: str, root: dict[str, Any], issuer: FakeIssuer, *extra: str
) -> subprocess.CompletedProcess[str]:
    artifact = tmp_path / "artifact.bin"
    artifact.write_bytes(ARTIFACT)
    (tmp_path / "b.json").write_text(bundle)
    write_trusted_root(tmp_path / "tr.jsonl", root)
    env = gh_environment(tmp_path / "home")
    command = [
        gh_binary(),
        "attestation",
        "verify",
        str(artifact),
        "--bundle",
        str(tmp_path / "b.json"),
        "--custom-trusted-root",
        str(tmp_path / "tr.jsonl"),
        "--owner",
        GH_OWNER,
        "--cert-oidc-issuer",
        issuer.url,
        "--signer-workflow",
        f"github.com/{issuer.claims['workflow_ref'].split('@')[0]}",
        "--format",
        "json",
        *extra,
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def verified_timestamp_kinds(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    (verified,) = json.loads(result.stdout)
    return sorted(t["type"] for t in verified["verificationResult"]["verifiedTimestamps"])


def test_gh_verifies_a_public_good_shaped_bundle(
    tmp_path: Path, issuer: FakeIssuer, instance: SigstoreInstance, tsa: TimestampServer
) -> None:
    cfg = trust_config(instance.client_trust_config(tsa_url=tsa.url, tsa_chains=[tsa.chain_der]))
    bundle_json = sign(cfg, issuer).to_json()
    root = instance.trusted_root(tsa_chains=[tsa.chain_der])

    result = gh_verify(tmp_path, bundle_json, root, issuer)
    assert verified_timestamp_kinds(result) == ["TimestampAuthority", "Tlog"]

    # gh really checks: another owner, another issuer, or a root without the CT log fail.
    assert gh_verify(tmp_path, bundle_json, root, issuer, "--owner", "other-org").returncode != 0
    wrong_issuer = gh_verify(tmp_path, bundle_json, root, issuer, "--cert-oidc-issuer", "https://x")
    assert wrong_issuer.returncode != 0
    no_ct = copy.deepcopy(root)
    no_ct["ctlogs"] = []
    assert gh_verify(tmp_path, bundle_json, no_ct, issuer).returncode != 0


def github_instance_bundle(
    instance: SigstoreInstance,
    issuer: FakeIssuer,
    tsa: TimestampServer,
    payload: bytes,
    *,
    sign_after: float = 0.0,
) -> str:
    """A bundle as signed for GitHub's instance: Fulcio + TSA, no Rekor (sigstore.md §2.4).

    ``sign_after`` seconds pass between the certificate and the signature (and timestamp).
    """
    key = ec.generate_private_key(ec.SECP256R1())
    answer = post_csr(instance.url, issuer.mint("sigstore"), key)
    assert answer.status_code == 201, answer.text
    leaf_pem = answer.json()["signedCertificateDetachedSct"]["chain"]["certificates"][0]
    leaf = x509.load_pem_x509_certificate(leaf_pem.encode())
    payload_type = "application/vnd.in-toto+json"
    time.sleep(sign_after)
    signature = key.sign(pae(payload_type, payload), ec.ECDSA(hashes.SHA256()))

    request = (
        TimestampRequestBuilder()
        .hash_algorithm(HashAlgorithm.SHA256)
        .data(signature)
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
    )
    reply = requests.post(
        tsa.url,
        data=request.as_bytes(),
        headers={"Content-Type": "application/timestamp-query"},
        timeout=10,
    )
    reply.raise_for_status()
    timestamp = decode_timestamp_response(reply.content)
    assert timestamp.tst_info.nonce == request.nonce
    return json.dumps(
        {
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {
                "certificate": {"rawBytes": b64(leaf.public_bytes(serialization.Encoding.DER))},
                "tlogEntries": [],
                "timestampVerificationData": {
                    "rfc3161Timestamps": [{"signedTimestamp": b64(reply.content)}]
                },
            },
            "dsseEnvelope": {
                "payload": b64(payload),
                "payloadType": payload_type,
                "signatures": [{"sig": b64(signature), "keyid": ""}],
            },
        }
    )


def test_gh_verifies_a_github_instance_shaped_bundle(
    tmp_path: Path, issuer: FakeIssuer, tsa: TimestampServer
) -> None:
    with SigstoreInstance(issuer, ct_log=False, rekor=False, ca_org="GitHub, Inc.") as github:
        bundle_json = github_instance_bundle(github, issuer, tsa, statement_bytes())
        root = github.trusted_root(tsa_chains=[tsa.chain_der])
    assert root["tlogs"] == [] and root["ctlogs"] == []

    result = gh_verify(tmp_path, bundle_json, root, issuer)
    assert verified_timestamp_kinds(result) == ["TimestampAuthority"]

    # Without the TSA in the root there is no verified time; a tampered payload fails too.
    no_tsa = copy.deepcopy(root)
    no_tsa["timestampAuthorities"] = []
    assert gh_verify(tmp_path, bundle_json, no_tsa, issuer).returncode != 0
    tampered = json.loads(bundle_json)
    tampered["dsseEnvelope"]["payload"] = b64(statement_bytes() + b" ")
    assert gh_verify(tmp_path, json.dumps(tampered), root, issuer).returncode != 0


def test_a_certificate_expired_at_the_signed_time_is_rejected(
    tmp_path: Path, issuer: FakeIssuer, tsa: TimestampServer
) -> None:
    from attest.signing import VerificationError, verify_bundle

    with SigstoreInstance(
        issuer, ct_log=False, rekor=False, ca_org="GitHub, Inc.", fulcio_validity=1
    ) as instance:
        root = instance.trusted_root(tsa_chains=[tsa.chain_der])
        late = github_instance_bundle(instance, issuer, tsa, statement_bytes(), sign_after=2.1)
        on_time = github_instance_bundle(instance, issuer, tsa, statement_bytes())
    roots = [json.dumps(root).encode()]
    assert verify_bundle(on_time.encode(), trusted_roots=roots).instance == "github"
    with pytest.raises(VerificationError, match="certificate chain"):
        verify_bundle(late.encode(), trusted_roots=roots)
    # gh agrees.
    result = gh_verify(tmp_path, late, root, issuer)
    assert result.returncode != 0
