from __future__ import annotations

import pytest

from attest.errors import UsageError
from attest.oci.reference import Reference, is_loopback, uses_plain_http, validate_digest

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest", "api_host"),
    [
        ("alpine", "docker.io", "library/alpine", None, None, "registry-1.docker.io"),
        ("alpine:3.20", "docker.io", "library/alpine", "3.20", None, "registry-1.docker.io"),
        ("docker.io/alpine", "docker.io", "library/alpine", None, None, "registry-1.docker.io"),
        ("index.docker.io/org/app", "docker.io", "org/app", None, None, "registry-1.docker.io"),
        ("registry-1.docker.io/x", "docker.io", "library/x", None, None, "registry-1.docker.io"),
        ("org/app", "docker.io", "org/app", None, None, "registry-1.docker.io"),
        ("ghcr.io/Owner/App:v1", "ghcr.io", "owner/app", "v1", None, "ghcr.io"),
        (f"ghcr.io/o/a@{DIGEST}", "ghcr.io", "o/a", None, DIGEST, "ghcr.io"),
        (f"ghcr.io/o/a:v1@{DIGEST}", "ghcr.io", "o/a", "v1", DIGEST, "ghcr.io"),
        ("localhost/app", "localhost", "app", None, None, "localhost"),
        ("127.0.0.1:5000/a/b/c:t", "127.0.0.1:5000", "a/b/c", "t", None, "127.0.0.1:5000"),
        ("[::1]:5000/app", "[::1]:5000", "app", None, None, "[::1]:5000"),
        ("REG.example.COM/app", "reg.example.com", "app", None, None, "reg.example.com"),
    ],
)
def test_parse(text, registry, repository, tag, digest, api_host):
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        registry,
        repository,
        tag,
        digest,
    )
    assert ref.api_host == api_host


def test_str_round_trips_and_with_digest_drops_the_tag():
    ref = Reference.parse(f"ghcr.io/o/a:v1@{DIGEST}")
    assert str(ref) == f"ghcr.io/o/a:v1@{DIGEST}"
    assert str(ref.with_digest(DIGEST)) == f"ghcr.io/o/a@{DIGEST}"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ghcr.io/o/a b",
        "ghcr.io/o/a@sha256:1234",
        "ghcr.io/o/a@sha256:" + "AB" * 32,
        "ghcr.io/o/a@md5",
        "ghcr.io/o//a",
        "ghcr.io/o/a:-bad",
        "ghcr.io/o/-a",
    ],
)
def test_invalid_references_name_the_input(text):
    with pytest.raises(UsageError) as info:
        Reference.parse(text)
    assert repr(text) in info.value.message


def test_digest_lengths_per_algorithm():
    assert validate_digest("sha512:" + "0" * 128)
    with pytest.raises(UsageError, match="128"):
        validate_digest("sha512:" + "0" * 64)
    # Unregistered algorithms are allowed by the grammar.
    assert validate_digest("blake3:abc")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("localhost:5000", True),
        ("127.0.0.1:5000", True),
        ("127.8.9.1", True),
        ("[::1]:5000", True),
        ("registry.local", False),
        ("10.0.0.1:5000", False),
        ("ghcr.io", False),
    ],
)
def test_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_plain_http_only_for_loopback_or_listed_hosts():
    listed = frozenset({"registry.lan", "other.lan:8080"})
    assert uses_plain_http("127.0.0.1:5000", frozenset())
    assert uses_plain_http("registry.lan:5000", listed)
    assert uses_plain_http("other.lan:8080", listed)
    assert not uses_plain_http("other.lan:9090", listed)
    assert not uses_plain_http("ghcr.io", listed)
