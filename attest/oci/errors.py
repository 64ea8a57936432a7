"""Registry errors, modelled on the distribution-spec's error responses.

distribution-spec "Error Codes": a failed request answers
``{"errors": [{"code": "...", "message": "...", "detail": ...}]}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import requests

from attest.errors import AttestError

_AUTH_HINT = (
    "log in to the registry (docker login / podman login), pass --username with "
    "--password-stdin, or check that the credentials may push to this repository"
)


@dataclass(frozen=True)
class ErrorEntry:
    code: str
    message: str


class RegistryError(AttestError):
    """A registry answered a request with an error, or could not be reached."""

    def __init__(
        self,
        method: str,
        url: str,
        status: int | None,
        errors: tuple[ErrorEntry, ...] = (),
        *,
        detail: str = "",
        hint: str | None = None,
    ) -> None:
        self.method = method
        self.url = _without_query(url)
        self.status = status
        self.errors = errors
        parts = [f"{method} {self.url}:"]
        if status is not None:
            parts.append(str(status))
        parts.extend(f"{e.code}: {e.message}" if e.message else e.code for e in errors)
        if detail:
            parts.append(detail)
        super().__init__(" ".join(parts), hint=hint)

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(e.code for e in self.errors)

    @classmethod
    def from_response(
        cls, response: requests.Response, *, detail: str = "", hint: str | None = None
    ) -> RegistryError:
        request = response.request
        errors = parse_errors(response)
        if not errors and not detail:
            detail = _body_excerpt(response)
        if hint is None and response.status_code in (401, 403):
            hint = _AUTH_HINT
        error_type = RegistryAuthError if response.status_code in (401, 403) else cls
        return error_type(
            request.method or "?",
            request.url or response.url,
            response.status_code,
            errors,
            detail=detail,
            hint=hint,
        )


class RegistryAuthError(RegistryError):
    """The registry refused our credentials (or we had none)."""


class ReferrersUnsupportedError(AttestError):
    """referrers-mode api was asked for, but the registry does not serve the referrers API."""


class FallbackTagError(AttestError):
    """The referrers fallback tag holds something we must not overwrite."""


def parse_errors(response: requests.Response) -> tuple[ErrorEntry, ...]:
    """The spec error codes in a response body; empty when the body is not an OCI error."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return ()
    if not isinstance(body, dict) or not isinstance(body.get("errors"), list):
        return ()
    entries = []
    for item in body["errors"]:
        if isinstance(item, dict) and isinstance(item.get("code"), str):
            message = item.get("message")
            entries.append(ErrorEntry(item["code"], message if isinstance(message, str) else ""))
    return tuple(entries)


def _body_excerpt(response: requests.Response) -> str:
    text = response.content[:200].decode("utf-8", "replace").strip()
    text = " ".join(text.split())
    return text or (response.reason or "")


def _without_query(url: str) -> str:
    # Upload locations carry session state in the query string: keep it out of messages.
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
