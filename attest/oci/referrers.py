"""Attaching referrers and listing them: the referrers API where the registry serves it,
the referrers tag schema ("tag fallback") where it does not.

Support is decided once per registry and repository from what the registry does, not
from what it says: the ``OCI-Subject`` header is only a hint, since registries have
sent it without serving the API (ECR, Docker Hub in 2024) and served the API without
sending it (Quay, Harbor 2.8).
"""

from __future__ import annotations

import enum
import json
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests

from attest.oci.artifact import BundleArtifact
from attest.oci.client import Manifest, PushedManifest, RegistryClient
from attest.oci.descriptor import (
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    canonical_json,
    media_type_of,
    referrers_tag,
)
from attest.oci.errors import (
    FallbackTagError,
    ReferrersUnsupportedError,
    RegistryError,
    parse_errors,
)
from attest.oci.reference import Reference

_logger = logging.getLogger(__name__)


class ReferrersMode(enum.Enum):
    """How to store referrers: decided by detection, or forced by the user."""

    AUTO = "auto"
    API = "api"
    TAG = "tag"


class Capability(enum.Enum):
    UNKNOWN = "unknown"
    SUPPORTED = "supported"
    UNSUPPORTED = "unsupported"


#: Confirmation reads of a fresh referrer, for registries that index asynchronously.
_CONFIRM_DELAYS = (0.0, 0.1, 0.3, 0.6)
#: Rounds (a read, maybe a write) before giving up on a fallback index that will not settle.
_FALLBACK_ATTEMPTS = 24
#: Consecutive reads holding every entry we saw, before the index counts as settled: alone,
#: and when other writers showed up (then the pauses double: about 1.5 s of watching).
_SETTLE_READS = 2
_SETTLE_READS_CONTENDED = 5
#: Seconds between those reads: long enough for a concurrent read-modify-write to land.
_SETTLE_PAUSE = (0.05, 0.15)
_BACKOFF_CAP = 1.0
#: Uploads of an artifact's blobs when the registry has not finished storing them yet.
_BLOB_RACE_ATTEMPTS = 3
#: Artifacts of one batch whose blobs are uploaded at once.
_PUSH_WORKERS = 8
#: Checks that a batch's referrers are all listed, each re-pushing the missing ones.
_CONFIRM_ROUNDS = 3


class CapabilityCache:
    """Referrers support per (registry, repository): unknown until settled, then set once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, str], Capability] = {}

    def get(self, host: str, repository: str) -> Capability:
        with self._lock:
            return self._values.get((host, repository), Capability.UNKNOWN)

    def settle(self, host: str, repository: str, value: Capability) -> Capability:
        """Record ``value`` unless already settled; returns the value that holds."""
        with self._lock:
            return self._values.setdefault((host, repository), value)


@dataclass(frozen=True)
class AttachResult:
    subject: Reference
    manifest_digest: str
    mode: str
    fallback_tag: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": str(self.subject),
            "manifest_digest": self.manifest_digest,
            "mode": self.mode,
            "fallback_tag": self.fallback_tag,
        }


def classify_referrers_response(response: requests.Response) -> Capability | None:
    """What a ``GET /v2/<name>/referrers/<digest>`` answer says about API support.

    None means the answer proves nothing (auth failure, server error): the caller
    reports it rather than silently falling back.
    """
    status = response.status_code
    content_type = media_type_of(response.headers.get("Content-Type"))
    if status == 200:
        # distribution-spec "Listing Referrers": the response is an image index with
        # Content-Type application/vnd.oci.image.index.v1+json.
        return Capability.SUPPORTED if content_type == OCI_INDEX else Capability.UNSUPPORTED
    if status == 404:
        # "If the registry supports the referrers API, the registry MUST NOT return a
        # 404"; but NAME_UNKNOWN is a missing repository, which says nothing.
        codes = {e.code for e in parse_errors(response)}
        return None if "NAME_UNKNOWN" in codes else Capability.UNSUPPORTED
    if status in (400, 405, 406):
        # Routers without the endpoint answer these (go-containerregistry treats them
        # as "no API" too).
        return Capability.UNSUPPORTED
    return None


class Referrers:
    """Attach and list referrers across a run, sharing what each registry supports."""

    def __init__(
        self,
        *,
        capabilities: CapabilityCache | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.capabilities = capabilities or CapabilityCache()
        self._sleep = sleep
        self._subject_locks: dict[tuple[str, str, str], threading.Lock] = {}
        self._locks_lock = threading.Lock()

    # -- detection -------------------------------------------------------------------------

    def _probe(self, client: RegistryClient, repository: str, digest: str) -> Capability:
        """Ask the referrers API about the real subject (Quay answers 400 for unknown digests)."""
        response = client.referrers_response(repository, digest)
        verdict = classify_referrers_response(response)
        if verdict is None:
            raise RegistryError.from_response(
                response, detail="cannot tell whether the registry serves the referrers API"
            )
        _logger.debug(
            "%s/%s referrers probe: %s (%d)",
            client.host,
            repository,
            verdict.value,
            response.status_code,
        )
        return verdict

    def _listed(self, client: RegistryClient, repository: str, subject: str, digest: str) -> bool:
        """Whether the API lists ``digest`` among the subject's referrers (read-your-write)."""
        for delay in _CONFIRM_DELAYS:
            self._sleep(delay)
            response = client.referrers_response(repository, subject)
            if classify_referrers_response(response) is not Capability.SUPPORTED:
                return False
            if digest in _listed_digests(client, repository, response):
                return True
        return False

    # -- attach ----------------------------------------------------------------------------

    def attach(
        self,
        client: RegistryClient,
        image: Reference,
        build: Callable[[Descriptor], BundleArtifact],
        *,
        mode: ReferrersMode = ReferrersMode.AUTO,
    ) -> AttachResult:
        """Push the artifact ``build`` makes for the image's real descriptor, as a referrer."""
        return self.attach_all(client, image, [build], mode=mode)[0]

    def attach_all(
        self,
        client: RegistryClient,
        image: Reference,
        builds: Sequence[Callable[[Descriptor], BundleArtifact]],
        *,
        mode: ReferrersMode = ReferrersMode.AUTO,
    ) -> list[AttachResult]:
        """Push several artifacts for one image; on a fallback registry, one index update.

        Checks that can refuse the write (no API in api mode, a fallback tag we must not
        overwrite) run before anything is written.
        """
        repository = image.repository
        subject = client.resolve(repository, image.digest or image.tag or "latest")
        artifacts = [build(subject) for build in builds]
        known = self.capabilities.get(client.host, repository)
        if mode is ReferrersMode.TAG:
            use_api = False
        elif known is Capability.UNKNOWN:
            use_api = self._probe(client, repository, subject.digest) is Capability.SUPPORTED
            if not use_api:
                known = self.capabilities.settle(client.host, repository, Capability.UNSUPPORTED)
        else:
            use_api = known is Capability.SUPPORTED
        if mode is ReferrersMode.API and not use_api:
            raise ReferrersUnsupportedError(
                f"{client.host}/{repository} does not serve the OCI referrers API "
                "(referrers-mode api)",
                hint="use referrers-mode auto or tag to store the attestation in the fallback tag",
            )
        with self._subject_lock(client.host, repository, subject.digest):
            current = None if use_api else self._read_fallback(client, repository, subject)
            # Without the API the registry indexes nothing as a manifest arrives: nothing to
            # race, so the manifests need not wait for each other.
            indexed = known is not Capability.UNSUPPORTED
            pushed = self._push_artifacts(client, repository, artifacts, in_order=indexed)
            for manifest in pushed:
                if manifest.oci_subject is not None:
                    _logger.debug("OCI-Subject %s (a hint only)", manifest.oci_subject)
            if use_api and known is Capability.UNKNOWN:
                use_api = self._confirm(client, repository, subject, artifacts[0], mode)
            if use_api and len(artifacts) > 1:
                self._ensure_listed(client, repository, subject, artifacts)
            fallback = None
            if not use_api:
                fallback = self._update_fallback(
                    client, repository, subject, [a.descriptor for a in artifacts], current
                )
        return [
            AttachResult(
                image.with_digest(subject.digest),
                artifact.descriptor.digest,
                "api" if use_api else "tag",
                fallback,
            )
            for artifact in artifacts
        ]

    def _push_artifacts(
        self,
        client: RegistryClient,
        repository: str,
        artifacts: Sequence[BundleArtifact],
        *,
        in_order: bool,
    ) -> list[PushedManifest]:
        """Blobs a few at a time (independent; the round trips add up), each manifest as soon
        as its blobs are in; ``in_order``, one manifest after the other: registries with the
        referrers API index a manifest's subject as they store it, and olareg loses referrers
        of one subject pushed at once.

        In order, blob uploads run at most ``_PUSH_WORKERS`` manifests ahead. The manifests
        are the critical path; uploads queued further ahead would only compete with them for
        the interpreter (on a registry answering in a millisecond, a tenth of the batch's
        time) and be lost work if a manifest fails.
        """
        if len(artifacts) == 1:
            return [self._push_artifact(client, repository, artifacts[0])]
        # The empty config every attestation shares: stored once, before the uploads fan out
        # and each ask for it at the same moment (and all upload it).
        for blob in artifacts[0].blobs[1:]:
            client.push_blob(repository, blob)
        workers = min(_PUSH_WORKERS, len(artifacts))
        if not in_order:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                return list(
                    pool.map(lambda a: self._push_artifact(client, repository, a), artifacts)
                )
        with ThreadPoolExecutor(max_workers=workers) as pool:

            def upload(artifact: BundleArtifact) -> Future[None]:
                return pool.submit(self._upload_blobs, client, repository, artifact, again=False)

            uploads = deque(upload(a) for a in artifacts[:_PUSH_WORKERS])
            pushed = []
            for index, artifact in enumerate(artifacts):
                uploads.popleft().result()
                if index + _PUSH_WORKERS < len(artifacts):
                    uploads.append(upload(artifacts[index + _PUSH_WORKERS]))
                pushed.append(self._push_artifact(client, repository, artifact, uploaded=True))
        return pushed

    def _upload_blobs(
        self, client: RegistryClient, repository: str, artifact: BundleArtifact, *, again: bool
    ) -> None:
        bundle, *shared = artifact.blobs
        # A bundle is new with every signature: asking whether the registry has it first
        # would cost a round trip that almost always answers no. The empty config is shared
        # by every attestation: asking is worth it.
        client.push_blob(repository, bundle, force=True)
        for blob in shared:
            client.push_blob(repository, blob, force=again)

    def _push_artifact(
        self,
        client: RegistryClient,
        repository: str,
        artifact: BundleArtifact,
        *,
        uploaded: bool = False,
    ) -> PushedManifest:
        """Blobs (unless ``uploaded``), then the manifest by digest.

        distribution 2.8 answers a HEAD for a blob another writer is still committing with
        200, then refuses the manifest with MANIFEST_BLOB_UNKNOWN (registries.md, appendix):
        upload the blobs again and retry.
        """
        for attempt in range(_BLOB_RACE_ATTEMPTS):
            if attempt or not uploaded:
                self._upload_blobs(client, repository, artifact, again=attempt > 0)
            try:
                return client.put_manifest(
                    repository, artifact.descriptor.digest, artifact.manifest, OCI_MANIFEST
                )
            except RegistryError as exc:
                if "MANIFEST_BLOB_UNKNOWN" not in exc.codes or attempt + 1 == _BLOB_RACE_ATTEMPTS:
                    raise
                _logger.debug("manifest refused for a blob in flight; uploading again")
                self._sleep(random.uniform(0.05, 0.2))
        raise AssertionError("unreachable")

    def _ensure_listed(
        self,
        client: RegistryClient,
        repository: str,
        subject: Descriptor,
        artifacts: Sequence[BundleArtifact],
    ) -> None:
        """After a batch on an API registry: every referrer listed, or pushed again.

        Registries index a manifest's subject as they store it; olareg loses some when
        several manifests of one subject arrive at once.
        """
        for _ in range(_CONFIRM_ROUNDS):
            response = client.referrers_response(repository, subject.digest)
            listed = _listed_digests(client, repository, response)
            missing = [a for a in artifacts if a.descriptor.digest not in listed]
            if not missing:
                return
            for artifact in missing:
                client.put_manifest(
                    repository, artifact.descriptor.digest, artifact.manifest, OCI_MANIFEST
                )
        raise RegistryError(
            "GET",
            f"{client.base_url}/v2/{repository}/referrers/{subject.digest}",
            None,
            detail=f"the referrers API does not list {missing[0].descriptor.digest}",
            hint="use referrers-mode tag, or attach the bundles one at a time",
        )

    def _confirm(
        self,
        client: RegistryClient,
        repository: str,
        subject: Descriptor,
        artifact: BundleArtifact,
        mode: ReferrersMode,
    ) -> bool:
        """Settle support after the first push: the API must list what we pushed."""
        listed = self._listed(client, repository, subject.digest, artifact.descriptor.digest)
        verdict = self.capabilities.settle(
            client.host, repository, Capability.SUPPORTED if listed else Capability.UNSUPPORTED
        )
        if listed:
            return verdict is Capability.SUPPORTED
        if mode is ReferrersMode.API:
            raise ReferrersUnsupportedError(
                f"{client.host}/{repository} answers the referrers API but does not list "
                f"{artifact.descriptor.digest} pushed with subject {subject.digest}",
                hint="use referrers-mode auto or tag to store the attestation in the fallback tag",
            )
        _logger.warning(
            "%s/%s answers the referrers API but did not list our referrer; using the fallback tag",
            client.host,
            repository,
        )
        return False

    def _subject_lock(self, host: str, repository: str, digest: str) -> threading.Lock:
        # Writers in this process take turns per subject; other processes are handled by
        # the read-back loop of the fallback update.
        with self._locks_lock:
            return self._subject_locks.setdefault((host, repository, digest), threading.Lock())

    # -- tag fallback (distribution-spec "Pushing Manifests with Subject", steps 1-6) -------

    def _read_fallback(
        self, client: RegistryClient, repository: str, subject: Descriptor
    ) -> _FallbackIndex:
        tag = referrers_tag(subject.digest)
        manifest = client.get_manifest(repository, tag)
        return _FallbackIndex.parse(manifest, tag, subject, f"{client.host}/{repository}")

    def _update_fallback(
        self,
        client: RegistryClient,
        repository: str,
        subject: Descriptor,
        entries: Sequence[Descriptor],
        current: _FallbackIndex | None,
    ) -> str:
        """Merge our entry into the fallback index and make sure it, and every entry we saw
        there, stays.

        No registry examined enforces ``If-Match`` (registries.md §5.4), so concurrent
        writers overwrite each other. Attaching only ever adds entries: each write puts back
        every entry this writer has seen in any read, and we are done only after two
        consecutive reads, a pause apart, hold all of them.
        """
        tag = referrers_tag(subject.digest)
        if current is not None and all(current.contains(e.digest) for e in entries):
            return tag  # already there: nothing written, nothing to settle
        wanted: dict[str, Any] = {e.digest: e.to_json() for e in entries}
        clean_reads = 0
        contended = False
        for attempt in range(_FALLBACK_ATTEMPTS):
            if current is None:
                current = self._read_fallback(client, repository, subject)
            for seen in current.manifests:
                if isinstance(seen, dict) and isinstance(seen.get("digest"), str):
                    if seen["digest"] not in wanted and attempt > 0:
                        contended = True  # someone else is writing this index right now
                    wanted.setdefault(seen["digest"], seen)
            missing = [digest for digest in wanted if not current.contains(digest)]
            if not missing:
                clean_reads += 1
                # Alone, one more read a moment later suffices; with other writers about,
                # keep watching long enough for a slow read-modify-write to land.
                if clean_reads >= (_SETTLE_READS_CONTENDED if contended else _SETTLE_READS):
                    return tag
                low, high = _SETTLE_PAUSE
                growth = 2 ** (clean_reads - 1) if contended else 1
                self._sleep(random.uniform(low * growth, high * growth))
                current = None
                continue
            if attempt > 0:
                contended = True  # an entry we had seen (ours included) was overwritten
            clean_reads = 0
            try:
                # "The client MAY use conditional HTTP requests to prevent overwriting a
                # referrers list that has changed since it was first pulled."
                client.put_manifest(
                    repository,
                    tag,
                    current.with_entries([wanted[d] for d in missing]),
                    OCI_INDEX,
                    if_match=current.etag,
                )
            except RegistryError as exc:
                if exc.status != 412:
                    raise
                _logger.debug("fallback index changed under us (412); re-reading")
            self._sleep(random.uniform(0.0, min(_BACKOFF_CAP, 0.05 * 2**attempt)))
            current = None
        raise RegistryError(
            "PUT",
            f"{client.base_url}/v2/{repository}/manifests/{tag}",
            None,
            detail=f"the fallback index did not settle with {entries[0].digest} "
            f"after {_FALLBACK_ATTEMPTS} rounds",
            hint="other writers are updating the same tag; retry the step",
        )

    # -- listing ---------------------------------------------------------------------------

    def list(
        self, client: RegistryClient, image: Reference, *, artifact_type: str | None = None
    ) -> list[dict[str, Any]]:
        """Descriptors of the image's referrers, from the API or else the fallback tag."""
        repository = image.repository
        subject = client.resolve(repository, image.digest or image.tag or "latest")
        if self.capabilities.get(client.host, repository) is not Capability.UNSUPPORTED:
            response = client.referrers_response(
                repository, subject.digest, artifact_type=artifact_type
            )
            verdict = classify_referrers_response(response)
            if verdict is None:
                raise RegistryError.from_response(response, detail="cannot list referrers")
            if verdict is Capability.SUPPORTED:
                found: list[dict[str, Any]] = []
                for page in client.referrers_pages(repository, response):
                    found += _filter(page.manifests, None if page.filtered else artifact_type)
                return found
            self.capabilities.settle(client.host, repository, Capability.UNSUPPORTED)
        # "If the referrers API returns a 404, the client MUST fallback to pulling the
        # referrers tag schema"; an unusable tag means no referrers.
        try:
            index = self._read_fallback(client, repository, subject)
        except FallbackTagError as exc:
            _logger.warning("%s; treating it as no referrers", exc.message)
            return []
        return _filter(index.manifests, artifact_type)


def _listed_digests(
    client: RegistryClient, repository: str, response: requests.Response
) -> set[str]:
    """Every digest a referrers listing names, from its first response on."""
    listed: set[str] = set()
    for page in client.referrers_pages(repository, response):
        listed |= {m["digest"] for m in page.manifests if isinstance(m, dict) and "digest" in m}
    return listed


def _filter(manifests: list[Any], artifact_type: str | None) -> list[dict[str, Any]]:
    entries = [m for m in manifests if isinstance(m, dict)]
    if artifact_type is None:
        return entries
    return [m for m in entries if m.get("artifactType") == artifact_type]


@dataclass(frozen=True)
class _FallbackIndex:
    """The index under a referrers tag, kept as raw JSON so nothing we do not model is lost."""

    body: dict[str, Any]
    etag: str | None

    @property
    def manifests(self) -> list[Any]:
        manifests = self.body.get("manifests")
        return manifests if isinstance(manifests, list) else []

    def contains(self, digest: str) -> bool:
        return any(isinstance(m, dict) and m.get("digest") == digest for m in self.manifests)

    def with_entries(self, entries: list[Any]) -> bytes:
        """The index with these entries appended; every existing entry kept as it was.

        Ours come from ``Descriptor.to_json``: "artifactType MUST be set to the artifactType
        value in the pushed manifest" and "All annotations from the pushed manifest MUST be
        copied to this descriptor".
        """
        body = dict(self.body)
        body["manifests"] = [*self.manifests, *entries]
        return canonical_json(body)

    @classmethod
    def parse(
        cls, manifest: Manifest | None, tag: str, subject: Descriptor, where: str
    ) -> _FallbackIndex:
        if manifest is None:
            # "If the referrers list does not exist, the client MUST begin with an empty
            # image index".
            return cls({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}, None)
        if manifest.digest == subject.digest:
            raise FallbackTagError(
                f"{where}:{tag} resolves to the image itself, not to a referrers index "
                "(the registry treats sha256-<hex> tags as digests)",
                hint="this registry cannot hold the tag fallback; nothing was written",
            )
        try:
            body = json.loads(manifest.data)
        except ValueError:
            body = None
        # "If that pull returns a manifest other than the expected image index, the
        # client SHOULD report a failure and skip the remaining steps."
        if (
            not isinstance(body, dict)
            or manifest.media_type != OCI_INDEX
            or body.get("mediaType", OCI_INDEX) != OCI_INDEX
            or not isinstance(body.get("manifests"), list)
        ):
            raise FallbackTagError(
                f"{where}:{tag} holds a {manifest.media_type or 'document'} that is not "
                "an OCI image index; refusing to overwrite it",
                hint="remove or rename that tag, or use referrers-mode api on a registry "
                "with the referrers API",
            )
        return cls(body, manifest.etag)
