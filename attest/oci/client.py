"""A registry API client: one per registry host, one requests session, auth and redirects.

Endpoints follow the distribution-spec (v1.1): blobs ``/v2/<name>/blobs/…``,
manifests ``/v2/<name>/manifests/<reference>``, referrers
``/v2/<name>/referrers/<digest>``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests

from attest import _http
from attest.oci.auth import Authenticator
from attest.oci.credentials import CredentialStore
from attest.oci.descriptor import (
    MANIFEST_MEDIA_TYPES,
    OCI_INDEX,
    Descriptor,
    digest_of,
    media_type_of,
)
from attest.oci.errors import RegistryError
from attest.oci.reference import uses_plain_http

_logger = logging.getLogger(__name__)

#: Manifests and indexes larger than this are refused (oras-go's MaxMetadataBytes).
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
_MAX_REDIRECTS = 10
_MAX_REFERRER_PAGES = 100
_MAX_TAG_PAGES = 1000
_CA_HINT = (
    "point REQUESTS_CA_BUNDLE at the CA bundle that issued the registry's certificate (a "
    "self-hosted registry's own CA, say); attest never turns verification off"
)


@dataclass(frozen=True)
class Manifest:
    """A manifest as the registry served it: the exact bytes, their type, digest and ETag."""

    data: bytes
    media_type: str
    digest: str
    etag: str | None

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.data))


@dataclass(frozen=True)
class PushedManifest:
    digest: str
    #: The OCI-Subject response header: a hint that the registry indexes referrers, never proof.
    oci_subject: str | None


@dataclass(frozen=True)
class ReferrersPage:
    manifests: list[Any]
    #: True when the registry applied the artifactType filter (``OCI-Filters-Applied``).
    filtered: bool


class RegistryClient:
    """Everything we do against one registry host."""

    def __init__(
        self,
        host: str,
        *,
        plain_http_hosts: frozenset[str] = frozenset(),
        credentials: CredentialStore | None = None,
        policy: _http.RetryPolicy = _http.DEFAULT_RETRY,
        timeout: tuple[float, float] = _http.DEFAULT_TIMEOUT,
    ) -> None:
        self.host = host
        scheme = "http" if uses_plain_http(host, plain_http_hosts) else "https"
        self.base_url = f"{scheme}://{host}"
        self._session = _http.new_session()
        self._policy = policy
        self._timeout = timeout
        self._auth = Authenticator(
            host,
            credentials=credentials,
            session=self._session,
            plain_http_hosts=plain_http_hosts,
            policy=policy,
        )
        self._lock = threading.Lock()
        # None until the registry shows whether it completes a blob upload in one POST.
        self._monolithic_post: bool | None = None
        self._known_blobs: set[tuple[str, str]] = set()
        self.request_count = 0

    def close(self) -> None:
        self._session.close()

    # -- transport -------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        repository: str,
        push: bool = False,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        params: Mapping[str, str] | None = None,
        max_bytes: int = MAX_MANIFEST_BYTES,
    ) -> requests.Response:
        """Send one request with auth (answering one 401) and registry-safe redirects.

        The body is read up to ``max_bytes``: a hostile or broken registry cannot make us
        hold more than that in memory.
        """
        url = path_or_url if "://" in path_or_url else self.base_url + path_or_url
        if params:
            url = _add_query(url, params)
        authorization = self._auth.cached(repository, push=push)
        response = self._send(method, url, headers, data, authorization, max_bytes)
        if response.status_code == 401:
            if authorization is not None:
                self._auth.forget(repository, push=push)
            authorization = self._auth.answer(response, repository, push=push)
            response = self._send(method, url, headers, data, authorization, max_bytes)
            if response.status_code == 401:
                # Answered once already: more of the same will not help.
                found = self._auth.has_credential(repository)
                raise RegistryError.from_response(
                    response,
                    detail=f"the registry refused the credentials for {self.host}"
                    if found
                    else f"no credentials were found for {self.host}",
                )
        return response

    def _send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        data: bytes | None,
        authorization: str | None,
        max_bytes: int,
    ) -> requests.Response:
        origin = _origin(self.base_url)
        for _ in range(_MAX_REDIRECTS + 1):
            sent = dict(headers or {})
            # Credentials go to the registry's own origin only, never to a redirect target
            # such as blob storage.
            if authorization is not None and _origin(url) == origin:
                sent["Authorization"] = authorization
            try:
                response = _http.send_wire(
                    self._session,
                    method,
                    url,
                    headers=sent,
                    data=data,
                    policy=self._policy,
                    timeout=self._timeout,
                    stream=True,
                )
                location = response.headers.get("Location")
                if response.status_code not in (301, 302, 303, 307, 308) or not location:
                    _read_capped(response, max_bytes)
                    with self._lock:
                        self.request_count += 1
                    return response
                response.close()
            except requests.RequestException as exc:
                untrusted = _http.untrusted_certificate(exc) is not None
                raise RegistryError(
                    method,
                    url,
                    None,
                    detail=f"cannot reach the registry: {_http.describe_failure(exc)}",
                    hint=_CA_HINT if untrusted else None,
                ) from exc
            with self._lock:
                self.request_count += 1
            url = urljoin(url, location)
            if response.status_code == 303 or (
                response.status_code in (301, 302) and method not in ("GET", "HEAD")
            ):
                method, data = "GET", None
            _logger.debug("following redirect to %s", _origin(url))
        raise RegistryError(method, url, None, detail="too many redirects")

    def _check(
        self, response: requests.Response, expected: tuple[int, ...], *, hint: str | None = None
    ) -> requests.Response:
        if response.status_code not in expected:
            raise RegistryError.from_response(response, hint=hint)
        return response

    # -- blobs -----------------------------------------------------------------------------

    def blob_exists(self, repository: str, digest: str) -> bool:
        if (repository, digest) in self._known_blobs:
            return True
        response = self.request("HEAD", f"/v2/{repository}/blobs/{digest}", repository=repository)
        if response.status_code == 404:
            return False
        self._check(response, (200,))
        self._known_blobs.add((repository, digest))
        return True

    def push_blob(self, repository: str, data: bytes, *, force: bool = False) -> str:
        """Upload a blob unless the registry has it; returns its digest.

        distribution-spec "Pushing a blob monolithically": a single POST with
        ``?digest=`` completes the upload (201) where supported; otherwise (202) it opens
        a session that we finish with a PUT to its Location. ``force`` uploads even when
        the registry says it has the blob.
        """
        digest = digest_of(data)
        if force:
            self._known_blobs.discard((repository, digest))
        elif self.blob_exists(repository, digest):
            return digest
        uploads = f"/v2/{repository}/blobs/uploads/"
        octet = {"Content-Type": "application/octet-stream"}
        if self._monolithic_post is not False:
            response = self.request(
                "POST",
                uploads,
                repository=repository,
                push=True,
                headers=octet,
                data=data,
                params={"digest": digest},
            )
        else:
            response = self.request("POST", uploads, repository=repository, push=True)
        self._check(response, (201, 202))
        if response.status_code == 201:
            self._monolithic_post = True
        else:
            self._monolithic_post = False
            location = response.headers.get("Location")
            if not location:
                raise RegistryError.from_response(response, detail="upload has no Location")
            put = self.request(
                "PUT",
                urljoin(response.url, location),
                repository=repository,
                push=True,
                headers=octet,
                data=data,
                params={"digest": digest},
            )
            self._check(put, (201,))
        self._known_blobs.add((repository, digest))
        return digest

    # -- manifests -------------------------------------------------------------------------

    def resolve(self, repository: str, reference: str) -> Descriptor:
        """The descriptor of a manifest (tag or digest) as the registry reports it.

        The subject of a referrer must be the image's real descriptor: its media type
        and size come from the registry, not from the user's input.
        """
        descriptor = self.describe(repository, reference)
        if descriptor is None:
            raise RegistryError(
                "HEAD",
                f"{self.base_url}/v2/{repository}/manifests/{reference}",
                404,
                detail=f"{reference} not found in {self.host}/{repository}",
                hint="push the image before attesting it, and check the name and digest",
            )
        return descriptor

    def describe(self, repository: str, reference: str) -> Descriptor | None:
        """A manifest's descriptor from a HEAD (a GET where HEAD leaves headers out), or None
        when the registry has no manifest by that reference."""
        path = f"/v2/{repository}/manifests/{reference}"
        accept = {"Accept": ", ".join(MANIFEST_MEDIA_TYPES)}
        response = self.request("HEAD", path, repository=repository, headers=accept)
        if response.status_code == 404:
            return None
        self._check(response, (200,))
        media_type = media_type_of(response.headers.get("Content-Type"))
        digest = response.headers.get("Docker-Content-Digest")
        size = response.headers.get("Content-Length")
        if media_type in MANIFEST_MEDIA_TYPES and digest and size and size.isdigit():
            if reference.startswith(digest.split(":", 1)[0] + ":") and digest != reference:
                raise RegistryError.from_response(
                    response, detail=f"registry answered for {digest}, not {reference}"
                )
            return Descriptor(media_type, digest, int(size))
        manifest = self.get_manifest(repository, reference)
        return None if manifest is None else manifest.descriptor

    def get_manifest(
        self,
        repository: str,
        reference: str,
        *,
        accept: tuple[str, ...] = MANIFEST_MEDIA_TYPES,
    ) -> Manifest | None:
        """A manifest's exact bytes, or None when the registry has none by that reference."""
        response = self.request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            repository=repository,
            headers={"Accept": ", ".join(accept)},
        )
        if response.status_code == 404:
            return None
        self._check(response, (200,))
        data = response.content
        if len(data) > MAX_MANIFEST_BYTES:
            raise RegistryError.from_response(
                response, detail=f"manifest larger than {MAX_MANIFEST_BYTES} bytes"
            )
        header_digest = response.headers.get("Docker-Content-Digest")
        algorithm = reference.split(":", 1)[0] if ":" in reference else "sha256"
        digest = digest_of(
            data, algorithm if algorithm in ("sha256", "sha384", "sha512") else "sha256"
        )
        if ":" in reference and digest != reference:
            raise RegistryError.from_response(
                response, detail=f"content digest {digest} does not match {reference}"
            )
        return Manifest(
            data=data,
            media_type=media_type_of(response.headers.get("Content-Type")),
            digest=header_digest if header_digest and ":" not in reference else digest,
            etag=response.headers.get("ETag"),
        )

    def put_manifest(
        self,
        repository: str,
        reference: str,
        data: bytes,
        media_type: str,
        *,
        if_match: str | None = None,
    ) -> PushedManifest:
        """PUT exactly ``data``; the digest is of those bytes and must match the registry's."""
        digest = digest_of(data)
        headers = {"Content-Type": media_type}
        if if_match is not None:
            headers["If-Match"] = if_match
        response = self.request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            repository=repository,
            push=True,
            headers=headers,
            data=data,
        )
        self._check(response, (201, 200, 202))
        reported = response.headers.get("Docker-Content-Digest")
        if reported and reported.startswith("sha256:") and reported != digest:
            raise RegistryError.from_response(
                response, detail=f"registry stored {reported}, we sent {digest}"
            )
        return PushedManifest(digest, response.headers.get("OCI-Subject"))

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest a tag or digest resolves to, or None when there is no such manifest."""
        descriptor = self.describe(repository, reference)
        return None if descriptor is None else descriptor.digest

    def delete_manifest(self, repository: str, reference: str) -> str:
        """DELETE a manifest by tag or digest: "deleted", "absent", or "unsupported".

        distribution-spec "Deleting tags": 202 on success, 400 or 405 when tag deletion is
        disabled (distribution 2.8 answers 400 DIGEST_INVALID for a tag).
        """
        response = self.request(
            "DELETE", f"/v2/{repository}/manifests/{reference}", repository=repository, push=True
        )
        if response.status_code in (400, 405):
            return "unsupported"
        if response.status_code == 404:
            return "absent"
        self._check(response, (202, 200, 204))
        return "deleted"

    def tags(self, repository: str) -> list[str]:
        """Every tag of the repository, following ``Link`` pagination."""
        first = self.request("GET", f"/v2/{repository}/tags/list", repository=repository)
        if first.status_code == 404:
            return []
        found: list[str] = []
        for response in self._pages(repository, first, limit=_MAX_TAG_PAGES, what="tags"):
            try:
                body = response.json()
            except ValueError as exc:
                raise RegistryError.from_response(response, detail="tag list is not JSON") from exc
            tags = body.get("tags") if isinstance(body, dict) else None
            found += [t for t in tags or [] if isinstance(t, str)]
        return found

    # -- referrers -------------------------------------------------------------------------

    def referrers_response(
        self, repository: str, digest: str, *, artifact_type: str | None = None
    ) -> requests.Response:
        """The raw first response of the referrers API; the caller classifies it."""
        params = {"artifactType": artifact_type} if artifact_type else None
        return self.request(
            "GET",
            f"/v2/{repository}/referrers/{digest}",
            repository=repository,
            headers={"Accept": OCI_INDEX},
            params=params,
        )

    def referrers_pages(self, repository: str, first: requests.Response) -> Iterator[ReferrersPage]:
        """Every page of a referrers listing, following ``Link: <…>; rel="next"``.

        distribution-spec "Listing Referrers": a Link header (RFC 5988) is included when
        the list does not fit one response.
        """
        pages = self._pages(
            repository,
            first,
            limit=_MAX_REFERRER_PAGES,
            what="referrers",
            headers={"Accept": OCI_INDEX},
        )
        for response in pages:
            yield _referrers_page(response)

    def _pages(
        self,
        repository: str,
        first: requests.Response,
        *,
        limit: int,
        what: str,
        headers: Mapping[str, str] | None = None,
    ) -> Iterator[requests.Response]:
        """The responses of a listing, following ``Link: <…>; rel="next"`` (RFC 5988) for at
        most ``limit`` pages: a registry that links on forever is refused."""
        response = first
        for _ in range(limit):
            self._check(response, (200,))
            yield response
            next_link = response.links.get("next", {}).get("url")
            if not next_link:
                return
            response = self.request(
                "GET", urljoin(response.url, next_link), repository=repository, headers=headers
            )
        raise RegistryError.from_response(response, detail=f"more than {limit} pages of {what}")


def _read_capped(response: requests.Response, limit: int) -> None:
    """Read the body, refusing more than ``limit`` bytes (oras-go's MaxMetadataBytes)."""
    if response.request.method == "HEAD":
        return  # Content-Length describes the entity, and there is no body
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        response.close()
        raise RegistryError.from_response(
            response, detail=f"the response is {declared} bytes, more than {limit} allowed"
        )
    chunks, total = [], 0
    for chunk in response.iter_content(64 * 1024):
        total += len(chunk)
        if total > limit:
            response.close()
            raise RegistryError(
                response.request.method or "?",
                response.url,
                response.status_code,
                detail=f"the response is larger than the {limit} bytes allowed",
            )
        chunks.append(chunk)
    # The body is held from here on, as if requests had read it itself.
    response._content = b"".join(chunks)


def _referrers_page(response: requests.Response) -> ReferrersPage:
    try:
        body = response.json()
    except ValueError as exc:
        raise RegistryError.from_response(response, detail="referrers body is not JSON") from exc
    manifests = body.get("manifests") if isinstance(body, dict) else None
    if not isinstance(manifests, list):
        raise RegistryError.from_response(response, detail="referrers body is not an image index")
    applied = response.headers.get("OCI-Filters-Applied", "")
    filtered = "artifacttype" in {f.strip().lower() for f in applied.split(",")}
    return ReferrersPage(manifests, filtered)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def _add_query(url: str, params: Mapping[str, str]) -> str:
    if "?" not in url and "#" not in url:
        return f"{url}?{urlencode(params)}"
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


class Registries:
    """One :class:`RegistryClient` per host for a whole run, sharing credentials."""

    def __init__(
        self,
        *,
        plain_http_hosts: frozenset[str] = frozenset(),
        credentials: CredentialStore | None = None,
        policy: _http.RetryPolicy = _http.DEFAULT_RETRY,
    ) -> None:
        self._plain_http_hosts = plain_http_hosts
        self._credentials = credentials
        self._policy = policy
        self._clients: dict[str, RegistryClient] = {}
        self._lock = threading.Lock()

    def client(self, host: str) -> RegistryClient:
        with self._lock:
            if host not in self._clients:
                self._clients[host] = RegistryClient(
                    host,
                    plain_http_hosts=self._plain_http_hosts,
                    credentials=self._credentials,
                    policy=self._policy,
                )
            return self._clients[host]

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
