"""GitHub's REST API: store attestations, read a repository's owner, create storage records.

One :class:`GitHubAPI` holds one session to ``GITHUB_API_URL``; every request goes through
:func:`attest._http.send`, so 5xx answers and GitHub's rate limits (a 403 or 429 with
``retry-after``, or with ``x-ratelimit-remaining: 0`` and ``x-ratelimit-reset``) are retried
with the one policy, while a 403 that refuses a permission is not.

Errors say what went wrong as GitHub put it, and the hint says what to do about it, by the
real cause: a storage record that fails because GitHub knows no provenance attestation of the
digest says so, rather than blaming a permission as ``actions/attest`` does
(actions/attest-build-provenance#781). The token never appears in a message or a log record.
"""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.parse
from typing import Any, Final, Self

import requests

from attest import _http
from attest.errors import AttestError, UsageError, one_line
from attest.identity import GHE_TENANT_HOST
from attest.oci.reference import is_loopback

__all__ = ["API_VERSION", "GitHubAPI", "GitHubAPIError", "api_base"]

_logger = logging.getLogger(__name__)

#: The REST API version we speak (``X-GitHub-Api-Version``).
API_VERSION: Final = "2022-11-28"

_GITHUB_API: Final = "https://api.github.com"
_REPOSITORY: Final = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")

_ATTESTATIONS_YAML: Final = "permissions: {id-token: write, attestations: write, contents: read}"
_METADATA_YAML: Final = (
    "permissions: {id-token: write, attestations: write, contents: read, artifact-metadata: write}"
)
_PRIVATE_PLAN_NOTE: Final = (
    "attestations for private and internal repositories also need GitHub Enterprise Cloud"
)
_NO_ARTIFACTS: Final = "no artifacts found"


class GitHubAPIError(AttestError):
    """GitHub's API refused a request, failed, or could not be reached.

    ``status`` is the HTTP status (None when no answer came), ``api_message`` the ``message``
    of GitHub's error body (with any validation details), ``request_id`` GitHub's
    ``x-github-request-id`` (for GitHub Support).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        api_message: str = "",
        request_id: str = "",
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.api_message = api_message
        self.request_id = request_id


def api_base(api_url: str, server_url: str) -> str:
    """The REST API root to use, from ``GITHUB_API_URL`` and ``GITHUB_SERVER_URL``.

    github.com uses ``https://api.github.com`` and ``https://<tenant>.ghe.com`` uses
    ``https://api.<tenant>.ghe.com``; a given ``api_url`` wins over the derived one. A plain
    HTTP or loopback ``api_url`` is accepted only on loopback (local test servers). Any other
    server is GitHub Enterprise Server, which has no artifact attestations.
    """
    api = api_url.strip().rstrip("/")
    server = server_url.strip().rstrip("/")
    if api:
        parts = urllib.parse.urlsplit(api)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AttestError(
                f"Invalid GitHub API URL: {api_url}",
                hint="GITHUB_API_URL must be an absolute URL such as https://api.github.com",
            )
        if is_loopback(parts.netloc):
            return api
        if parts.scheme != "https":
            raise AttestError(
                f"Invalid GitHub API URL: {api_url}: the token would travel unencrypted",
                hint="use https (plain http is accepted on loopback only)",
            )
    if server:
        parts = urllib.parse.urlsplit(server)
        host = (parts.hostname or "").lower()
        if host == "github.com":
            return api or _GITHUB_API
        match = GHE_TENANT_HOST.match(host)
        if match:
            return api or f"https://api.{match['tenant']}.ghe.com"
        if not (host and is_loopback(parts.netloc) and api):
            raise _ghes_error(server)
        return api
    if not api:
        return _GITHUB_API
    host = (urllib.parse.urlsplit(api).hostname or "").lower()
    if host == "api.github.com" or (
        host.startswith("api.") and GHE_TENANT_HOST.match(host.removeprefix("api."))
    ):
        return api
    raise _ghes_error(api)


def _ghes_error(url: str) -> AttestError:
    return AttestError(
        f"artifact attestations are not available on GitHub Enterprise Server ({url})",
        hint="attestations can be made on github.com and on GHE.com (https://<tenant>.ghe.com)",
    )


class GitHubAPI:
    """A client of GitHub's REST API at ``api_url`` (see :func:`api_base`) with ``token``."""

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        policy: _http.RetryPolicy = _http.DEFAULT_RETRY,
        user_agent_suffix: str = "",
    ) -> None:
        if not token.strip():
            raise UsageError(
                "github-token is empty",
                hint="leave the github-token input at its default, ${{ github.token }}, "
                "or pass a token that may write attestations",
            )
        self.api_url = api_url.rstrip("/")
        self._policy = policy
        self._token = token.strip()
        self._session = _http.new_session()
        user_agent = _http.USER_AGENT
        if user_agent_suffix.strip():
            user_agent = f"{user_agent} {user_agent_suffix.strip()}"
        self._session.headers.update(
            {
                "User-Agent": user_agent,
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "Authorization": f"Bearer {self._token}",
            }
        )

    def __repr__(self) -> str:
        return f"GitHubAPI({self.api_url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    # --- attestations ---

    def create_attestation(self, repository: str, bundle: bytes) -> int:
        """Store a Sigstore bundle (its JSON bytes) with ``repository``; return its id.

        ``POST /repos/{owner}/{repo}/attestations`` with ``{"bundle": <the bundle object>}``:
        the bundle's own bytes are embedded, not re-serialized, and never as a string.
        """
        owner, repo = _split_repository(repository)
        try:
            text = bundle.decode("utf-8").removeprefix("\ufeff").strip()
            parsed = json.loads(text)
        except ValueError as exc:
            raise AttestError(f"the attestation bundle is not UTF-8 JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise AttestError("the attestation bundle is not a JSON object")
        body = b'{"bundle":' + text.encode("utf-8") + b"}"
        what = "Failed to persist attestation"
        response = self._request(
            what,
            "POST",
            f"/repos/{_quote(owner)}/{_quote(repo)}/attestations",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        if not 200 <= response.status_code < 300:
            raise self._error(what, response, _attestation_hint(response, repository))
        document = _json_object(response)
        identifier = document.get("id") if document is not None else None
        if not isinstance(identifier, int) or isinstance(identifier, bool):
            raise self._unexpected(what, response, 'no integer "id"')
        return identifier

    # --- repositories ---

    def repository_owner_type(self, repository: str) -> str:
        """``owner.type`` of ``repository`` (``GET /repos/{owner}/{repo}``): Organization, User."""
        owner, repo = _split_repository(repository)
        what = f"Failed to read repository {repository}"
        response = self._request(what, "GET", f"/repos/{_quote(owner)}/{_quote(repo)}")
        if not 200 <= response.status_code < 300:
            raise self._error(what, response, _repository_hint(response, repository))
        document = _json_object(response)
        owner_info = document.get("owner") if document is not None else None
        owner_type = owner_info.get("type") if isinstance(owner_info, dict) else None
        if not isinstance(owner_type, str):
            raise self._unexpected(what, response, 'no "owner.type"')
        return owner_type

    # --- artifact metadata ---

    def create_storage_record(
        self,
        organization: str,
        *,
        name: str,
        digest: str,
        version: str | None,
        registry_url: str,
        artifact_url: str | None = None,
    ) -> list[int]:
        """Record where ``name@digest`` is stored; return the ids of the storage records.

        ``POST /orgs/{org}/artifacts/metadata/storage-record`` with the fields
        ``actions/attest`` sends (those that are None are left out). GitHub attaches one record
        to each provenance attestation of ``digest`` in the organization's repositories.
        """
        if not organization.strip():
            raise AttestError("Failed to create storage record: no organization given")
        fields: dict[str, str | None] = {
            "name": name,
            "digest": digest,
            "version": version,
            "registry_url": registry_url,
            "artifact_url": artifact_url,
        }
        body = {key: value for key, value in fields.items() if value is not None}
        what = "Failed to create storage record"
        response = self._request(
            what,
            "POST",
            f"/orgs/{_quote(organization)}/artifacts/metadata/storage-record",
            json=body,
        )
        if not 200 <= response.status_code < 300:
            raise self._storage_record_error(what, response, organization, name, digest)
        document = _json_object(response)
        records = document.get("storage_records") if document is not None else None
        if not isinstance(records, list):
            raise self._unexpected(what, response, 'no "storage_records" list')
        ids = [r.get("id") for r in records if isinstance(r, dict)]
        if len(ids) != len(records) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in ids
        ):
            raise self._unexpected(what, response, 'a storage record without an integer "id"')
        return [int(i) for i in ids if isinstance(i, int)]

    # --- plumbing ---

    def _request(self, what: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = self.api_url + path
        try:
            response = _http.send(self._session, method, url, policy=self._policy, **kwargs)
        except requests.RequestException as exc:
            reason = self._scrub(_http.describe_failure(exc))
            raise GitHubAPIError(
                f"{what}: could not reach the GitHub API at {self.api_url} ({reason})",
                hint="check the runner's network and proxy settings, and GITHUB_API_URL",
            ) from None
        _logger.debug("%s %s -> %d", method, url, response.status_code)
        return response

    def _error(
        self,
        what: str,
        response: requests.Response,
        hint: str | None,
        *,
        cause: str = "",
    ) -> GitHubAPIError:
        """The error for a failed answer: ``what: cause (GitHub's message, HTTP status)``.

        Without a ``cause`` GitHub's message stands alone, as ``actions/attest`` words it. A
        rate limit or a server error replaces ``hint``, and ``cause`` when one is given.
        """
        status = response.status_code
        api_message = self._scrub(_api_message(response))
        request_id = response.headers.get("x-github-request-id", "")
        if _is_rate_limit(response):
            if cause:
                cause = "GitHub's API rate limit was exceeded"
            hint = _rate_limit_hint(response, self._policy)
        elif status >= 500:
            if cause:
                cause = "GitHub's API failed"
            hint = (
                f"GitHub's API failed {self._policy.attempts} times; re-run the job later, "
                "and see https://www.githubstatus.com"
            )
        detail = f"HTTP {status}"
        if status >= 500 and request_id:
            detail += f", request ID {request_id}"
        if cause:
            message = f"{what}: {cause} ({api_message}, {detail})"
        else:
            message = f"{what}: {api_message} ({detail})"
        return GitHubAPIError(
            self._scrub(message),
            status=status,
            api_message=api_message,
            request_id=request_id,
            hint=self._scrub(hint) if hint else None,
        )

    def _unexpected(self, what: str, response: requests.Response, problem: str) -> GitHubAPIError:
        return GitHubAPIError(
            f"{what}: unexpected answer from {self.api_url} (HTTP {response.status_code}, "
            f"{problem})",
            status=response.status_code,
            request_id=response.headers.get("x-github-request-id", ""),
            hint="check that GITHUB_API_URL points at GitHub's REST API",
        )

    def _storage_record_error(
        self,
        what: str,
        response: requests.Response,
        organization: str,
        name: str,
        digest: str,
    ) -> GitHubAPIError:
        """The real cause of a failed storage record, not always the permission (#781)."""
        status = response.status_code
        api_message = _api_message(response)
        cause = "GitHub refused the record"
        hint: str | None = None
        if _NO_ARTIFACTS in api_message.lower():
            cause = (
                f"GitHub knows no build-provenance attestation of {digest} in a repository of "
                f"{organization} yet, and storage records attach to one"
            )
            hint = (
                f"attest the provenance of this digest from a repository of {organization} "
                "first (an SBOM or custom attestation alone is not enough); the "
                "artifact-metadata permission is not the cause"
            )
        elif status == 401:
            cause = "GitHub rejected the github-token"
            hint = _BAD_TOKEN_HINT
        elif status == 403 and _is_permission_refusal(response):
            cause = "the token lacks the `artifact-metadata: write` permission"
            hint = f"grant it in the workflow: `{_METADATA_YAML}`" + _accepted_permissions(response)
        elif status == 403:
            hint = (
                "the token may lack the `artifact-metadata: write` permission; grant it in the "
                f"workflow: `{_METADATA_YAML}`"
            )
        elif status == 404:
            cause = (
                f"the organization {organization} was not found, or the token may not write "
                "artifact metadata for the repository that holds the attestation"
            )
            hint = (
                f"grant `artifact-metadata: write` (`{_METADATA_YAML}`); storage records exist "
                "only for organization-owned repositories"
            )
        elif status == 422:
            cause = f"GitHub rejected the record for {name}@{digest} as invalid"
            hint = (
                "the name must be the bare image name, the digest sha256:<64 lowercase hex>, "
                "and the registry URL its origin (https://<host>)"
            )
        return self._error(what, response, hint, cause=cause)

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text


_MOVED_HINT: Final = (
    "GitHub says the repository moved (it was renamed or transferred); use its current owner/name"
)
_BAD_TOKEN_HINT: Final = (
    "GitHub rejected the github-token as invalid or expired; leave the input at its default, "
    "${{ github.token }}, or pass a valid token"
)


def _common_hint(response: requests.Response, repository: str) -> str | None:
    """What a moved repository, a bad token or an unseen repository mean, for any request."""
    status = response.status_code
    if 300 <= status < 400:
        return _MOVED_HINT
    if status == 401:
        return _BAD_TOKEN_HINT
    if status == 404:
        return (
            f"the repository {repository} was not found, or the token cannot see it; check "
            "GITHUB_REPOSITORY and which repositories the github-token may access"
        )
    return None


def _attestation_hint(response: requests.Response, repository: str) -> str | None:
    status = response.status_code
    if status == 403:
        return (
            "the token lacks the `attestations: write` permission; grant it in the workflow: "
            f"`{_ATTESTATIONS_YAML}`" + _accepted_permissions(response) + f"; {_PRIVATE_PLAN_NOTE}"
        )
    if status == 422:
        if "duplicate subject" in _api_message(response).lower():
            return "two subjects have the same name and digest; list each subject once"
        return (
            "GitHub's message says what it rejected in the bundle; it also answers 422 when "
            "too many attestations are created in a short time"
        )
    return _common_hint(response, repository)


def _repository_hint(response: requests.Response, repository: str) -> str | None:
    if response.status_code == 403:
        return (
            "the token may not read the repository; grant `contents: read` in the workflow"
            + _accepted_permissions(response)
        )
    return _common_hint(response, repository)


def _accepted_permissions(response: requests.Response) -> str:
    """GitHub's ``x-accepted-github-permissions`` (e.g. ``attestations=write``), in words."""
    accepted = response.headers.get("x-accepted-github-permissions", "").strip()
    return f" (GitHub accepts: {accepted})" if accepted else ""


def _is_permission_refusal(response: requests.Response) -> bool:
    """A 403 that names a missing permission (GitHub's wording for app and Actions tokens)."""
    if response.headers.get("x-accepted-github-permissions"):
        return True
    return "not accessible by" in _api_message(response).lower()


def _is_rate_limit(response: requests.Response) -> bool:
    if _http.is_rate_limited(response):
        return True
    return response.status_code in (403, 429) and "rate limit" in _api_message(response).lower()


def _rate_limit_hint(response: requests.Response, policy: _http.RetryPolicy) -> str:
    wait = _http.retry_after_seconds(response)
    if wait is None:
        wait = _http.rate_limit_reset_seconds(response)
    if wait is None:
        when = "in a few minutes"
    else:
        at = time.strftime("%H:%M:%S UTC", time.gmtime(time.time() + wait))
        when = f"after {at} (in {wait:.0f} s)"
    return (
        f"GitHub's API rate limit was exceeded; it accepts requests again {when}, longer than "
        f"the {policy.max_retry_after:.0f} s we wait: re-run the job then, and spread out "
        "workflows that create many attestations at once"
    )


def _split_repository(repository: str) -> tuple[str, str]:
    if not _REPOSITORY.match(repository):
        raise AttestError(
            f"Invalid repository: {repository!r}",
            hint='expected "owner/name", as in GITHUB_REPOSITORY',
        )
    owner, _, repo = repository.partition("/")
    return owner, repo


def _quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


def _json_object(response: requests.Response) -> dict[str, Any] | None:
    try:
        document = json.loads(response.content)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _api_message(response: requests.Response) -> str:
    """GitHub's error ``message``, with the details of ``errors`` when it gives any."""
    document = _json_object(response)
    if document is None:
        text = response.content[:200].decode("utf-8", "replace")
        return one_line(text) or response.reason or f"HTTP {response.status_code}"
    message = document.get("message")
    parts = [message if isinstance(message, str) and message.strip() else ""]
    details = document.get("errors")
    if isinstance(details, list):
        for item in details:
            if isinstance(item, str):
                parts.append(item)
            elif isinstance(item, dict):
                detail = item.get("message") or " ".join(
                    str(item[key]) for key in ("resource", "field", "code") if item.get(key)
                )
                if detail:
                    parts.append(str(detail))
    text = one_line(": ".join(part for part in parts if part))
    return text or response.reason or f"HTTP {response.status_code}"
