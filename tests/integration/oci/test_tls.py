"""Registries over HTTPS (olareg serving TLS): verification is always on, the environment's
CA bundle applies, and a certificate that does not verify is one clear error at once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..helpers import PROVENANCE, push_image, run_attest, unique_repository
from ..servers import Registry, start_registry, write_tls_files

_HANDSHAKE_FAILED = "TLS handshake error"


@pytest.fixture
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    directory = tmp_path_factory.mktemp("tls")
    files = write_tls_files(directory / "pki", ("0.0.0.0", "127.0.0.1"))
    with start_registry("olareg", directory / "olareg", tls=files) as registry:
        yield registry


def _https_image(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> str:
    """An image pushed over HTTPS. 0.0.0.0 is not loopback, so attest uses HTTPS for it as
    for any registry; Linux connects it to this host."""
    assert registry.tls is not None
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(registry.tls.ca))
    return push_image(registry.host.replace("127.0.0.1", "0.0.0.0"), unique_repository("tls"))


def test_a_registry_whose_ca_the_environment_trusts_gets_the_attestation(tls_registry, monkeypatch):
    image = _https_image(tls_registry, monkeypatch)
    attached = run_attest("attach", image, "--bundle", PROVENANCE).json()
    assert attached["mode"] == "api"
    listed = run_attest("referrers", image).json()
    assert [d["digest"] for d in listed] == [attached["manifest_digest"]]


def test_a_certificate_that_does_not_verify_is_one_error_at_once(tls_registry, monkeypatch):
    image = _https_image(tls_registry, monkeypatch)
    failed_before = tls_registry.stderr().count(_HANDSHAKE_FAILED)
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(variable, raising=False)
    result = run_attest("attach", image, "--bundle", PROVENANCE)
    assert (result.code, result.stdout) == (1, "")
    assert result.stderr.count("\n") == 1
    assert (
        "cannot reach the registry: the TLS certificate does not verify: "
        "unable to get local issuer certificate (hint: point REQUESTS_CA_BUNDLE at the CA bundle"
        in result.stderr
    )
    # Not retried: no second attempt can make the certificate verify.
    assert tls_registry.stderr().count(_HANDSHAKE_FAILED) == failed_before + 1
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_registry.tls.ca))
    assert run_attest("referrers", image).json() == []
