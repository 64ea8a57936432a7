"""``attest verify``: check attestations the way ``gh attestation verify`` does.

Bundles come from a file (one JSON bundle, or JSON lines of bundles) or from an image's
referrers. A bundle counts when it verifies cryptographically against one of the trusted
roots, carries an in-toto statement about the artifact, has the wanted predicate type,
and its certificate meets the identity policy; at least one must.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from attest.config import read_input
from attest.errors import AttestError, UsageError, one_line
from attest.identity import IdentityPolicy, fulcio_extensions, san
from attest.oci.artifact import BUNDLE_V03, IN_TOTO_PAYLOAD_TYPE
from attest.oci.client import Registries, RegistryClient
from attest.oci.descriptor import digest_of
from attest.oci.reference import Reference, validate_digest
from attest.oci.referrers import Referrers
from attest.signing import VerificationError, VerifiedBundle, default_trusted_roots, verify_bundle

__all__ = ["IN_TOTO_PAYLOAD_TYPE", "run_verify"]

_STATEMENT_TYPES = frozenset(
    {"https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1"}
)
_ALGORITHMS = ("sha256", "sha384", "sha512")
#: Larger referrer blobs are not fetched: a bundle with a 16 MiB predicate is far below.
_MAX_BUNDLE_BYTES = 64 * 1024 * 1024
#: Failure reasons listed in the error; the rest are counted.
_MAX_REASONS = 8
_MAX_REASON_CHARS = 300
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class _Candidate:
    """A bundle to try: its bytes, or why they could not be had."""

    source: str
    #: How a failure names it, after the file or image named once.
    label: str
    data: bytes | None = None
    error: str | None = None


@dataclass
class _Subject:
    """The artifact the statement must be about: a known digest, or a file to hash."""

    digest: str | None = None
    path: Path | None = None
    _computed: dict[str, str] = field(default_factory=dict)

    @property
    def description(self) -> str:
        return self.digest if self.digest is not None else self.digest_with("sha256")

    def digest_with(self, algorithm: str) -> str:
        """``algorithm:hex`` of the file (hashed once per algorithm)."""
        if self.path is None:
            raise AssertionError("digest_with needs a file")
        if algorithm not in self._computed:
            hasher = hashlib.new(algorithm)
            try:
                with self.path.open("rb") as stream:
                    for chunk in iter(lambda: stream.read(_CHUNK), b""):
                        hasher.update(chunk)
            except OSError as exc:
                raise UsageError(f"--artifact {self.path}: {exc.strerror or exc}") from exc
            self._computed[algorithm] = f"{algorithm}:{hasher.hexdigest()}"
        return self._computed[algorithm]

    def matches(self, digests: dict[str, Any]) -> bool:
        """True when one of a statement subject's digests is this artifact's."""
        for algorithm, value in digests.items():
            if algorithm not in _ALGORITHMS or not isinstance(value, str):
                continue
            if self.digest is not None:
                if self.digest == f"{algorithm}:{value.lower()}":
                    return True
            elif self.digest_with(algorithm) == f"{algorithm}:{value.lower()}":
                return True
        return False


def run_verify(
    *,
    bundle_path: Path | None,
    image: str | None,
    artifact: Path | None,
    digest: str | None,
    policy: IdentityPolicy,
    predicate_type: str | None,
    trusted_root_path: Path | None,
    registries: Registries,
) -> dict[str, Any]:
    """Verify the bundles for an artifact; the verified attestations as JSON.

    One verified attestation is the result itself; several are listed under
    ``attestations``. None verifying raises :class:`VerificationError` with each
    bundle's reason.
    """
    if bundle_path is not None and image is None:
        if (artifact is None) == (digest is None):
            raise UsageError("pass exactly one of --artifact or --digest with --bundle")
        subject = _subject_of(artifact, digest)
        roots = _trusted_roots(trusted_root_path)
        candidates = _bundles_from_file(bundle_path)
        where = str(bundle_path)
    elif image is not None and bundle_path is None:
        if artifact is not None:
            raise UsageError("--artifact cannot be used with --image: the image is the subject")
        reference = _image_reference(image, digest)
        roots = _trusted_roots(trusted_root_path)
        reference = _image_digest(reference, registries)
        subject = _Subject(digest=reference.digest)
        candidates = list(_bundles_from_image(registries.client(reference.api_host), reference))
        where = str(reference)
        if not candidates:
            raise VerificationError(
                f"no Sigstore bundles ({BUNDLE_V03}) are attached to {reference}",
                hint="attach one with `attest attach`, or verify a bundle file with --bundle",
            )
    else:
        raise UsageError("pass exactly one of --bundle or --image")
    verified: list[dict[str, Any]] = []
    failures: list[AttestError] = []
    labels: list[str] = []
    for candidate in candidates:
        try:
            verified.append(_verify_one(candidate, subject, policy, predicate_type, roots))
        except AttestError as exc:
            failures.append(exc)
            labels.append(candidate.label)
    if not verified:
        raise _none_verified(where, subject, labels, failures)
    if len(verified) == 1:
        return verified[0]
    return {"verified": True, "attestations": verified}


# -- arguments -------------------------------------------------------------------------------


def _check_digest(digest: str) -> None:
    validate_digest(digest, what="--digest")
    algorithm = digest.split(":", 1)[0]
    if algorithm not in _ALGORITHMS:
        raise UsageError(
            f"--digest {digest!r}: the algorithm must be one of {', '.join(_ALGORITHMS)}"
        )


def _subject_of(artifact: Path | None, digest: str | None) -> _Subject:
    if digest is not None:
        _check_digest(digest)
    if artifact is None:
        return _Subject(digest=digest)
    if not artifact.is_file():
        raise UsageError(f"--artifact {artifact}: no such file")
    subject = _Subject(path=artifact)
    subject.digest_with("sha256")  # an unreadable file fails now, not per bundle
    return subject


def _image_reference(image: str, digest: str | None) -> Reference:
    reference = Reference.parse(image)
    if digest is None:
        return reference
    _check_digest(digest)
    if reference.digest is not None and reference.digest != digest:
        raise UsageError(f"--digest {digest} differs from the digest in --image {image}")
    return reference.with_digest(digest)


def _image_digest(reference: Reference, registries: Registries) -> Reference:
    """The reference by digest: a tag is resolved once, and the digest verified is reported."""
    if reference.digest is not None:
        return reference
    client = registries.client(reference.api_host)
    resolved = client.resolve(reference.repository, reference.tag or "latest")
    return reference.with_digest(resolved.digest)


def _trusted_roots(path: Path | None) -> list[bytes]:
    """One trusted root (JSON), or several (JSON lines, as ``gh attestation trusted-root``)."""
    if path is None:
        return default_trusted_roots()
    data = read_input(path, "--trusted-root")
    documents = list(_json_documents(data))
    if not documents:
        raise UsageError(f"--trusted-root {path}: no trusted root in the file")
    roots = []
    for number, raw, value in documents:
        if not isinstance(value, dict):
            where = f"line {number}" if number else "the file"
            raise UsageError(f"--trusted-root {path}: {where} is not a JSON trusted root")
        roots.append(raw)
    return roots


def _json_documents(data: bytes) -> Iterator[tuple[int, bytes, Any]]:
    """(line number or 0 for the whole file, bytes, parsed value): one document or JSON lines."""
    try:
        value = json.loads(data)
    except ValueError:
        pass
    else:
        yield 0, data, value
        return
    for number, line in enumerate(data.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            value = json.loads(line)
        except ValueError:
            value = None
        yield number, line, value


# -- where bundles come from -----------------------------------------------------------------


def _bundles_from_file(path: Path) -> list[_Candidate]:
    data = read_input(path, "--bundle")
    candidates = [
        _Candidate(
            f"{path}:{number}" if number else str(path), f"line {number}" if number else "", raw
        )
        for number, raw, _ in _json_documents(data)
    ]
    if not candidates:
        raise UsageError(f"--bundle {path}: no bundle in the file")
    return candidates


def _bundles_from_image(client: RegistryClient, image: Reference) -> Iterator[_Candidate]:
    """Each Sigstore bundle referrer's layer, its digest checked."""
    repository = image.repository
    for descriptor in Referrers().list(client, image, artifact_type=BUNDLE_V03):
        manifest_digest = descriptor.get("digest")
        if not isinstance(manifest_digest, str):
            continue
        source = f"{image.name}@{manifest_digest}"
        label = f"referrer {manifest_digest}"
        try:
            data = _referrer_bundle(client, repository, manifest_digest)
        except AttestError as exc:
            yield _Candidate(source, label, error=exc.message)
        else:
            yield _Candidate(source, label, data)


def _referrer_bundle(client: RegistryClient, repository: str, manifest_digest: str) -> bytes:
    manifest = client.get_manifest(repository, manifest_digest)
    if manifest is None:
        raise AttestError("the referrer manifest is gone")
    try:
        layer = json.loads(manifest.data)["layers"][0]
        layer_digest = layer["digest"]
        size = layer.get("size")
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise AttestError("the referrer manifest has no bundle layer") from exc
    if not isinstance(layer_digest, str) or not re.fullmatch(
        r"(sha256|sha384|sha512):[a-f0-9]+", layer_digest
    ):
        raise AttestError(f"the bundle layer's digest {layer_digest!r} is not supported")
    if isinstance(size, int) and size > _MAX_BUNDLE_BYTES:
        raise AttestError(f"the bundle layer is {size} bytes, more than {_MAX_BUNDLE_BYTES}")
    response = client.request(
        "GET",
        f"/v2/{repository}/blobs/{layer_digest}",
        repository=repository,
        max_bytes=_MAX_BUNDLE_BYTES,
    )
    if response.status_code != 200:
        raise AttestError(f"fetching blob {layer_digest}: HTTP {response.status_code}")
    data = response.content
    if digest_of(data, layer_digest.split(":", 1)[0]) != layer_digest:
        raise AttestError(f"blob {layer_digest}: the content does not match its digest")
    return data


# -- one bundle ------------------------------------------------------------------------------


def _verify_one(
    candidate: _Candidate,
    subject: _Subject,
    policy: IdentityPolicy,
    predicate_type: str | None,
    roots: Sequence[bytes],
) -> dict[str, Any]:
    if candidate.data is None:
        raise AttestError(candidate.error or "no bundle")
    bundle = verify_bundle(candidate.data, trusted_roots=roots)
    if bundle.payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise VerificationError(
            f"the payload type is {bundle.payload_type!r}, not {IN_TOTO_PAYLOAD_TYPE!r}"
        )
    statement = _statement(bundle.payload)
    subjects = statement["subject"]
    if not any(subject.matches(entry["digest"]) for entry in subjects):
        raise VerificationError(f"the statement is not about {subject.description}")
    if predicate_type is not None and statement["predicateType"] != predicate_type:
        raise VerificationError(
            f"the predicate type is {statement['predicateType']!r}, not {predicate_type!r}"
        )
    policy.check(bundle.certificate)
    return _result(candidate.source, statement, bundle)


def _statement(payload: bytes) -> dict[str, Any]:
    """The in-toto statement, its shape checked as far as we rely on it."""
    try:
        statement = json.loads(payload)
    except ValueError as exc:
        raise VerificationError(f"the payload is not JSON: {exc}") from exc
    if not isinstance(statement, dict) or statement.get("_type") not in _STATEMENT_TYPES:
        raise VerificationError("the payload is not an in-toto statement")
    subjects = statement.get("subject")
    if (
        not isinstance(subjects, list)
        or not subjects
        or not all(isinstance(s, dict) and isinstance(s.get("digest"), dict) for s in subjects)
    ):
        raise VerificationError("the statement has no valid subject")
    if not isinstance(statement.get("predicateType"), str):
        raise VerificationError("the statement has no predicateType")
    return statement


def _result(source: str, statement: dict[str, Any], bundle: VerifiedBundle) -> dict[str, Any]:
    extensions = fulcio_extensions(bundle.certificate)
    signed_at = bundle.signed_at
    if signed_at.tzinfo is None:
        signed_at = signed_at.replace(tzinfo=UTC)
    return {
        "verified": True,
        "bundle": source,
        "predicateType": statement["predicateType"],
        "subject": statement["subject"],
        "signer": {
            "san": san(bundle.certificate),
            **{
                name: extensions.get(name)
                for name in (
                    "issuer",
                    "build_signer_uri",
                    "source_repository_uri",
                    "source_repository_ref",
                    "source_repository_digest",
                    "runner_environment",
                )
            },
        },
        "signedAt": signed_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "instance": bundle.instance,
        "tlogIndex": bundle.tlog_index,
    }


def _none_verified(
    where: str, subject: _Subject, labels: Sequence[str], failures: Sequence[AttestError]
) -> VerificationError:
    reasons = [
        ": ".join(filter(None, (label, one_line(failure.message, _MAX_REASON_CHARS))))
        for label, failure in zip(labels[:_MAX_REASONS], failures, strict=False)
    ]
    if len(failures) > _MAX_REASONS:
        reasons.append(f"and {len(failures) - _MAX_REASONS} more")
    hints = list(dict.fromkeys(f.hint for f in failures if f.hint))
    count = len(failures)
    noun = "bundle" if count == 1 else f"{count} bundles"
    return VerificationError(
        f"no attestation for {subject.description} verified ({noun} from {where}): "
        + "; ".join(reasons),
        hint="; ".join(hints) or None,
    )
