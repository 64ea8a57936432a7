"""verify_bundle against the real bundles GitHub produced, with the trusted roots beside them."""

from __future__ import annotations

import base64
import json
import ssl

import pytest
import requests
import urllib3

from attest.signing import (
    VerificationError,
    _describe,
    _transient,
    default_trusted_roots,
    verify_bundle,
)
from tests.shared_data import github_bundles

BUNDLES = github_bundles()
ROOTS = [
    line.encode()
    for line in (BUNDLES / "trusted_root-2025-11.jsonl").read_text().split("\n")
    if line.strip()
]
PUBLIC_GOOD, GITHUB = ROOTS

CASES = [
    ("attest-build-provenance-13532655.sigstore.json", "public-good", True),
    ("attest-build-provenance-13531551.sigstore.json", "github", False),
    ("attest-build-provenance-13581567.sigstore.json", "github", False),
    ("attest-build-provenance-13739985.sigstore.json", "github", False),
    ("github_provenance_demo-0.0.12-py3-none-any-bundle.jsonl", "github", False),
    ("reusable-workflow-attestation.sigstore.json", "public-good", True),
    ("custom-issuer.sigstore.json", "public-good", True),
]


def _bundle(name: str) -> bytes:
    data = (BUNDLES / name).read_bytes()
    return data.split(b"\n")[0] if name.endswith(".jsonl") else data


@pytest.mark.parametrize(("name", "instance", "has_log"), CASES)
def test_every_real_bundle_verifies(name, instance, has_log):
    verified = verify_bundle(_bundle(name), trusted_roots=ROOTS)
    assert verified.instance == instance
    assert (verified.tlog_index is not None) is has_log
    assert verified.payload_type == "application/vnd.in-toto+json"
    assert json.loads(verified.payload)["_type"] == "https://in-toto.io/Statement/v1"
    # The certificate is short-lived: it was valid at the verified signing time.
    certificate = verified.certificate
    assert certificate.not_valid_before_utc <= verified.signed_at <= certificate.not_valid_after_utc


@pytest.mark.parametrize(("name", "instance", "has_log"), CASES)
def test_embedded_roots_verify_them_too(name, instance, has_log):
    assert verify_bundle(_bundle(name), trusted_roots=default_trusted_roots()).instance == instance


def test_the_invalid_bundle_is_rejected():
    with pytest.raises(VerificationError):
        verify_bundle(_bundle("sigstoreBundle-invalid-signature.json"), trusted_roots=ROOTS)


def test_github_bundles_need_githubs_root():
    with pytest.raises(VerificationError, match="timestamp"):
        verify_bundle(_bundle(CASES[1][0]), trusted_roots=[PUBLIC_GOOD])


def test_public_good_bundles_need_public_goods_root():
    with pytest.raises(VerificationError):
        verify_bundle(_bundle(CASES[0][0]), trusted_roots=[GITHUB])


@pytest.mark.parametrize("name", [CASES[0][0], CASES[1][0]])
def test_a_tampered_payload_is_rejected(name):
    bundle = json.loads(_bundle(name))
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    with pytest.raises(VerificationError, match="signature"):
        verify_bundle(json.dumps(bundle).encode(), trusted_roots=ROOTS)


def test_a_timestamp_from_another_authority_is_rejected():
    # GitHub's root without its timestamp authorities but with public good's.
    root = json.loads(GITHUB)
    root["timestampAuthorities"] = json.loads(PUBLIC_GOOD)["timestampAuthorities"]
    with pytest.raises(VerificationError, match="not from a trusted authority"):
        verify_bundle(_bundle(CASES[1][0]), trusted_roots=[json.dumps(root).encode()])


def test_a_foreign_ca_is_rejected():
    root = json.loads(GITHUB)
    root["certificateAuthorities"] = json.loads(PUBLIC_GOOD)["certificateAuthorities"]
    with pytest.raises(VerificationError, match="certificate chain"):
        verify_bundle(_bundle(CASES[1][0]), trusted_roots=[json.dumps(root).encode()])


def test_a_signature_of_another_payload_is_rejected():
    one = json.loads(_bundle(CASES[1][0]))
    other = json.loads(_bundle(CASES[2][0]))
    one["dsseEnvelope"]["signatures"] = other["dsseEnvelope"]["signatures"]
    with pytest.raises(VerificationError):
        verify_bundle(json.dumps(one).encode(), trusted_roots=ROOTS)


def test_a_certificate_that_does_not_verify_is_not_worth_another_signing_attempt():
    untrusted = ssl.SSLCertVerificationError(1, "certificate verify failed")
    reason = urllib3.exceptions.SSLError(untrusted)
    error = requests.exceptions.SSLError(urllib3.exceptions.MaxRetryError(None, "/", reason))
    assert not _transient(error)
    assert _describe(error).startswith("the TLS certificate does not verify")
    assert _transient(requests.ConnectionError("connection reset"))
