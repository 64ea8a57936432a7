"""Image references: ``registry/repository[:tag][@digest]``, normalised like the docker CLI.

Grammar: distribution/reference (``reference.go``) and the distribution-spec's
``<name>`` and ``<reference>`` rules.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from attest.errors import UsageError

DOCKER_HUB = "docker.io"
#: Where Docker Hub's registry API actually lives.
DOCKER_HUB_API = "registry-1.docker.io"
_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[A-Za-z0-9=_-]+")
_HOST = re.compile(
    r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)(?::[0-9]+)?"
)
#: Lengths of the encoded part for the algorithms the image-spec registers (descriptor.md).
_DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


def validate_digest(digest: str, *, what: str = "digest") -> str:
    """Return ``digest`` if it is a well-formed ``algorithm:encoded`` digest; else a UsageError."""
    if not _DIGEST.fullmatch(digest):
        raise UsageError(f"{what} {digest!r} is not of the form algorithm:hex")
    algorithm, encoded = digest.split(":", 1)
    length = _DIGEST_HEX_LENGTHS.get(algorithm)
    if length is not None and not re.fullmatch(rf"[a-f0-9]{{{length}}}", encoded):
        raise UsageError(f"{what} {digest!r}: {algorithm} needs {length} lower-case hex digits")
    return digest


@dataclass(frozen=True)
class Reference:
    """A parsed image reference; ``registry`` is the canonical name (``docker.io`` for Hub)."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        original = text
        text = text.strip()
        if not text or any(c.isspace() for c in text):
            raise UsageError(f"image reference {original!r} is empty or contains spaces")
        digest = None
        if "@" in text:
            text, digest = text.rsplit("@", 1)
            validate_digest(digest, what=f"image reference {original!r}: digest")
        tag = None
        slash = text.rfind("/")
        colon = text.rfind(":")
        if colon > slash:
            text, tag = text[:colon], text[colon + 1 :]
            if not _TAG.fullmatch(tag):
                raise UsageError(f"image reference {original!r}: invalid tag {tag!r}")
        first, _, rest = text.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
            registry, repository = first.lower(), rest
            if not _HOST.fullmatch(registry):
                raise UsageError(f"image reference {original!r}: invalid registry {first!r}")
        else:
            registry, repository = DOCKER_HUB, text
        if registry in _DOCKER_HUB_ALIASES:
            registry = DOCKER_HUB
            if "/" not in repository:
                repository = f"library/{repository}"
        # Repository names are lower-case in the distribution-spec; users often type otherwise.
        repository = repository.lower()
        if not all(_COMPONENT.fullmatch(part) for part in repository.split("/")):
            raise UsageError(f"image reference {original!r}: invalid repository {repository!r}")
        if len(registry) + 1 + len(repository) > 255:
            raise UsageError(f"image reference {original!r}: name longer than 255 characters")
        return cls(registry, repository, tag, digest)

    @property
    def api_host(self) -> str:
        """The host that serves the registry API for this reference."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.registry, self.repository, None, digest)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses, with or without a port."""
    hostname = split_host(host)[0]
    if hostname == "localhost" or hostname.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def split_host(host: str) -> tuple[str, int | None]:
    """``host[:port]`` (IPv6 in brackets) into the bare hostname and the port."""
    if host.startswith("["):
        end = host.find("]")
        name, rest = host[1:end], host[end + 1 :]
        return name.lower(), int(rest[1:]) if rest.startswith(":") else None
    name, _, port = host.partition(":")
    return name.lower(), int(port) if port.isdigit() else None


def uses_plain_http(host: str, plain_http_hosts: frozenset[str]) -> bool:
    """HTTPS unless the host is loopback or the user listed it (with or without its port)."""
    return (
        is_loopback(host)
        or host.lower() in plain_http_hosts
        or split_host(host)[0] in plain_http_hosts
    )
