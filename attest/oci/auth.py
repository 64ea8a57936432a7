"""Registry authentication: the ``WWW-Authenticate`` challenge, Basic, and Bearer tokens.

Flow (distribution "Token Authentication Specification", RFC 9110 §11): a request
gets 401 with a challenge; for Basic we send the user's credentials, for Bearer we
ask the challenge's ``realm`` for a token covering the request's scope, cache it per
scope and resend once. Registries that never challenge are used anonymously.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from attest import _http
from attest.oci.credentials import Credential, CredentialStore
from attest.oci.errors import RegistryAuthError, RegistryError
from attest.oci.reference import uses_plain_http

_logger = logging.getLogger(__name__)

_CHALLENGE_PART = re.compile(
    r"""\s*(?P<token>[!#$%&'*+.^_`|~0-9A-Za-z-]+)"""
    r"""(?:\s*=\s*(?P<value>"(?:[^"\\]|\\.)*"|[^,\s]*))?\s*,?"""
)
_CREDENTIAL_HINT = (
    "log in to the registry (docker login / podman login) or pass --username with --password-stdin"
)


@dataclass(frozen=True)
class Challenge:
    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def parse_challenges(header: str) -> list[Challenge]:
    """All challenges of a ``WWW-Authenticate`` value (several may share one header)."""
    challenges: list[Challenge] = []
    position = 0
    while position < len(header):
        match = _CHALLENGE_PART.match(header, position)
        if not match or match.end() == position:
            break
        position = match.end()
        token, value = match.group("token"), match.group("value")
        if value is None:
            challenges.append(Challenge(token.lower()))
        elif challenges:
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            challenges[-1].params[token.lower()] = value
    return challenges


def repository_scope(repository: str, *, push: bool) -> str:
    return f"repository:{repository}:{'pull,push' if push else 'pull'}"


def basic_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


class Authenticator:
    """Authorization for one registry host, shared by every thread working on it."""

    def __init__(
        self,
        host: str,
        *,
        credentials: CredentialStore | None,
        session: requests.Session,
        plain_http_hosts: frozenset[str],
        policy: _http.RetryPolicy = _http.DEFAULT_RETRY,
    ) -> None:
        self._host = host
        self._credentials = credentials
        self._session = session
        self._plain_http_hosts = plain_http_hosts
        self._policy = policy
        self._lock = threading.Lock()
        self._basic: str | None = None
        self._tokens: dict[str, str] = {}

    def cached(self, repository: str, *, push: bool) -> str | None:
        """The Authorization value to send before any challenge, if we already know one."""
        with self._lock:
            if self._basic is not None:
                return self._basic
            # A pull,push token also covers pulls.
            for scope in (
                repository_scope(repository, push=push),
                repository_scope(repository, push=True),
            ):
                if scope in self._tokens:
                    return self._tokens[scope]
            return None

    def answer(self, response: requests.Response, repository: str, *, push: bool) -> str:
        """The Authorization value that answers a 401; raises when we cannot answer it."""
        challenges = parse_challenges(response.headers.get("WWW-Authenticate", ""))
        by_scheme = {c.scheme: c for c in challenges}
        scope = repository_scope(repository, push=push)
        if "bearer" in by_scheme:
            header = self._bearer(by_scheme["bearer"], scope, repository, response)
            with self._lock:
                self._tokens[scope] = header
            return header
        if "basic" in by_scheme:
            credential = self._credential(repository)
            if credential is None:
                raise RegistryError.from_response(
                    response,
                    detail=f"{self._host} requires credentials and none were found",
                    hint=_CREDENTIAL_HINT,
                )
            header = basic_header(credential.username, credential.password)
            with self._lock:
                self._basic = header
            return header
        raise RegistryError.from_response(
            response,
            detail="unsupported authentication challenge "
            f"{response.headers.get('WWW-Authenticate')!r}",
        )

    def forget(self, repository: str, *, push: bool) -> None:
        """Drop a cached token the registry no longer accepts (expired or revoked)."""
        with self._lock:
            self._tokens.pop(repository_scope(repository, push=push), None)
            self._tokens.pop(repository_scope(repository, push=True), None)

    def has_credential(self, repository: str) -> bool:
        return self._credential(repository) is not None

    def _credential(self, repository: str) -> Credential | None:
        if self._credentials is None:
            return None
        return self._credentials.get(self._host, repository)

    def _bearer(
        self, challenge: Challenge, scope: str, repository: str, response: requests.Response
    ) -> str:
        realm = challenge.params.get("realm", "")
        parts = urlsplit(realm)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise RegistryError.from_response(
                response, detail=f"the Bearer challenge has no usable realm ({realm!r})"
            )
        credential = self._credential(repository)
        if parts.scheme == "http" and not uses_plain_http(parts.netloc, self._plain_http_hosts):
            raise RegistryAuthError(
                "GET",
                realm,
                None,
                detail="refusing to request a registry token over plain HTTP",
                hint=f"list {parts.netloc} as a plain-HTTP host if that is really intended",
            )
        scopes = [scope]
        requested = challenge.params.get("scope", "")
        scopes += [s for s in requested.split(" ") if s and s not in scopes]
        service = challenge.params.get("service")
        if credential is not None and credential.identity_token:
            # OAuth2 refresh-token grant ("Token Authentication Implementation: OAuth2").
            form = {
                "grant_type": "refresh_token",
                "refresh_token": credential.password,
                "client_id": "attest",
                "scope": " ".join(scopes),
            }
            if service:
                form["service"] = service
            token_response = _http.send(
                self._session, "POST", realm, data=form, policy=self._policy
            )
        else:
            params: list[tuple[str, str]] = [("scope", s) for s in scopes]
            if service:
                params.insert(0, ("service", service))
            auth = (credential.username, credential.password) if credential else None
            token_response = _http.send(
                self._session, "GET", realm, params=params, auth=auth, policy=self._policy
            )
        if token_response.status_code != 200:
            detail = "token request refused"
            if credential is None:
                detail += f"; no credentials were found for {self._host}"
            raise RegistryError.from_response(token_response, detail=detail, hint=_CREDENTIAL_HINT)
        try:
            body = token_response.json()
        except ValueError:
            body = None
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryError.from_response(
                token_response, detail="the token response has no token"
            )
        _logger.debug("got a registry token for %s scope %s", self._host, " ".join(scopes))
        return f"Bearer {token}"
