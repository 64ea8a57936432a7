"""Media types, descriptors and digests (image-spec ``descriptor.md``)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
#: What we accept when reading any manifest; the order is our preference.
MANIFEST_MEDIA_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST)

#: image-spec "Guidance for an Empty Descriptor".
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = b"{}"

_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    """The digest of exactly these bytes with the given algorithm."""
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def canonical_json(value: Any) -> bytes:
    """Serialise once, compactly; these bytes are what we digest and send."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def media_type_of(content_type: str | None) -> str:
    """The media type of a Content-Type header, without parameters."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def referrers_tag(digest: str) -> str:
    """The referrers tag schema name for a subject digest.

    distribution-spec "Referrers Tag Schema" (main, after v1.1.1): the algorithm
    truncated to 32 characters, ``-``, the encoded part truncated to 64, characters
    not allowed in tags replaced by ``-``. sha256 tags are unchanged by truncation.
    """
    algorithm, _, encoded = digest.partition(":")
    return _TAG_UNSAFE.sub("-", f"{algorithm[:32]}-{encoded[:64]}")


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor; ``extra`` keeps fields we do not model (kept on round trips)."""

    media_type: str
    digest: str
    size: int
    artifact_type: str | None = None
    annotations: dict[str, str] | None = field(default=None, hash=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.artifact_type is not None:
            value["artifactType"] = self.artifact_type
        if self.annotations:
            value["annotations"] = dict(self.annotations)
        return value

    @classmethod
    def from_json(cls, value: Any) -> Descriptor | None:
        """A descriptor from JSON, or None when it is malformed (other tools write such)."""
        if not isinstance(value, dict):
            return None
        media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
        if not (isinstance(media_type, str) and isinstance(digest, str)):
            return None
        if not isinstance(size, int) or isinstance(size, bool):
            return None
        artifact_type = value.get("artifactType")
        annotations = value.get("annotations")
        if not (
            isinstance(annotations, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in annotations.items())
        ):
            annotations = None
        return cls(
            media_type,
            digest,
            size,
            artifact_type if isinstance(artifact_type, str) else None,
            annotations,
        )
