"""The registry artifact carrying a Sigstore bundle, shaped exactly as GitHub's toolchain pushes it.

cosign ``specs/BUNDLE_SPEC.md`` and @sigstore/oci ``image.ts``: an OCI image manifest
with ``artifactType`` = the bundle media type, the empty config, one layer holding
the bundle JSON, ``subject`` = the image, and three annotations.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from attest.errors import UsageError
from attest.oci.descriptor import (
    EMPTY_BLOB,
    EMPTY_MEDIA_TYPE,
    OCI_MANIFEST,
    Descriptor,
    canonical_json,
    digest_of,
)

BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
CREATED = "org.opencontainers.image.created"
CONTENT = "dev.sigstore.bundle.content"
PREDICATE_TYPE = "dev.sigstore.bundle.predicateType"

_LEGACY_BUNDLE = re.compile(r"application/vnd\.dev\.sigstore\.bundle\+json;\s*version=(0\.[12])")
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


@dataclass(frozen=True)
class BundleArtifact:
    """A manifest ready to push: its exact bytes, and the blobs it references."""

    manifest: bytes
    descriptor: Descriptor
    blobs: tuple[bytes, ...]


def bundle_artifact(
    bundle: bytes, subject: Descriptor, *, source: str = "bundle"
) -> BundleArtifact:
    """Build the referrer manifest for ``bundle`` (exact file bytes) attached to ``subject``.

    ``org.opencontainers.image.created`` is the bundle's signing time, not the clock,
    so the same bundle always gives the same manifest digest and attaching it twice
    adds no second referrer.
    """
    parsed = _parse_bundle(bundle, source)
    media_type = _bundle_media_type(parsed, source)
    content: dict[str, str] = {}
    if isinstance(parsed.get("dsseEnvelope"), dict):
        content[CONTENT] = "dsse-envelope"
        predicate_type = _predicate_type(parsed["dsseEnvelope"], source)
        if predicate_type is not None:
            content[PREDICATE_TYPE] = predicate_type
    elif isinstance(parsed.get("messageSignature"), dict):
        content[CONTENT] = "message-signature"
    else:
        raise UsageError(f"{source}: the bundle has neither dsseEnvelope nor messageSignature")
    # The order of GitHub's toolchain: created, content, predicateType.
    annotations = {CREATED: _signing_time(parsed, source), **content}
    config = Descriptor(EMPTY_MEDIA_TYPE, digest_of(EMPTY_BLOB), len(EMPTY_BLOB))
    layer = Descriptor(media_type, digest_of(bundle), len(bundle))
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": media_type,
            "config": config.to_json(),
            "layers": [layer.to_json()],
            "subject": subject.to_json(),
            "annotations": annotations,
        }
    )
    descriptor = Descriptor(
        OCI_MANIFEST, digest_of(manifest), len(manifest), media_type, annotations
    )
    return BundleArtifact(manifest, descriptor, (bundle, EMPTY_BLOB))


def _parse_bundle(bundle: bytes, source: str) -> dict[str, Any]:
    try:
        parsed = json.loads(bundle)
    except ValueError as exc:
        raise UsageError(f"{source}: not a Sigstore bundle (invalid JSON: {exc})") from exc
    if not isinstance(parsed, dict) or not isinstance(parsed.get("mediaType"), str):
        raise UsageError(f"{source}: not a Sigstore bundle (no mediaType)")
    return parsed


def _bundle_media_type(bundle: dict[str, Any], source: str) -> str:
    media_type: str = bundle["mediaType"]
    legacy = _LEGACY_BUNDLE.fullmatch(media_type)
    if legacy:
        # Registries have rejected media types with parameters (ECR, sigstore-js b16d990).
        return f"application/vnd.dev.sigstore.bundle.v{legacy.group(1)}+json"
    if not re.fullmatch(r"application/vnd\.dev\.sigstore\.bundle\.v0\.\d+\+json", media_type):
        raise UsageError(f"{source}: not a Sigstore bundle (mediaType {media_type!r})")
    return media_type


def _predicate_type(envelope: dict[str, Any], source: str) -> str | None:
    if envelope.get("payloadType") != IN_TOTO_PAYLOAD_TYPE:
        return None
    try:
        statement = json.loads(base64.b64decode(envelope.get("payload", ""), validate=True))
    except (ValueError, binascii.Error) as exc:
        raise UsageError(f"{source}: the DSSE payload is not base64 JSON") from exc
    predicate_type = statement.get("predicateType") if isinstance(statement, dict) else None
    return predicate_type if isinstance(predicate_type, str) else None


def _signing_time(bundle: dict[str, Any], source: str) -> str:
    """When the bundle was signed: the certificate's notBefore, else the log's integrated time."""
    material = bundle.get("verificationMaterial")
    material = material if isinstance(material, dict) else {}
    raw = _leaf_certificate(material)
    when: datetime | None = None
    if raw is not None:
        try:
            certificate = x509.load_der_x509_certificate(base64.b64decode(raw))
        except (ValueError, binascii.Error) as exc:
            raise UsageError(f"{source}: the bundle's certificate cannot be read") from exc
        when = certificate.not_valid_before_utc
    else:
        entries = material.get("tlogEntries")
        if isinstance(entries, list) and entries and isinstance(entries[0], dict):
            integrated = entries[0].get("integratedTime")
            if isinstance(integrated, str | int) and str(integrated).isdigit():
                when = datetime.fromtimestamp(int(integrated), UTC)
    if when is None:
        raise UsageError(
            f"{source}: the bundle has no certificate and no transparency log entry "
            "to date the attestation"
        )
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _leaf_certificate(material: dict[str, Any]) -> str | None:
    certificate = material.get("certificate")
    if isinstance(certificate, dict) and isinstance(certificate.get("rawBytes"), str):
        return str(certificate["rawBytes"])
    chain = material.get("x509CertificateChain")
    if isinstance(chain, dict):
        certificates = chain.get("certificates")
        if isinstance(certificates, list) and certificates and isinstance(certificates[0], dict):
            raw = certificates[0].get("rawBytes")
            return raw if isinstance(raw, str) else None
    return None
