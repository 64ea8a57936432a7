"""GitHub Actions OIDC: request ID tokens, and verify them against the issuer's published keys.

Two tokens are used per run, as in ``@actions/attest``: one with audience ``sigstore`` that
Fulcio exchanges for a signing certificate, and one with audience ``nobody`` whose *verified*
claims are the only source of the provenance predicate (:func:`provenance_claims`).

Verification is done here with ``cryptography`` alone: OpenID discovery
(``<issuer>/.well-known/openid-configuration`` -> ``jwks_uri``), the JWKS, the JWS signature
(RS256, PS256, ES256) and the registered claims (``aud``, ``exp``, ``nbf``, ``iat``, ``iss``).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from attest import _http
from attest.errors import AttestError, one_line
from attest.identity import GHE_TENANT_HOST, GITHUB_ISSUER, tenant_issuer
from attest.oci.reference import is_loopback

__all__ = [
    "MISSING_PERMISSION",
    "REQUIRED_CLAIMS",
    "OidcError",
    "TokenSource",
    "issuer_for",
    "provenance_claims",
    "verify_token",
]

_logger = logging.getLogger(__name__)


class OidcError(AttestError):
    """An ID token could not be obtained or did not verify."""


MISSING_PERMISSION: Final = (
    'missing "id-token" permission. Please add "permissions: id-token: write" to your workflow.'
)

#: The claims ``@actions/attest`` requires before it builds a provenance predicate.
REQUIRED_CLAIMS: Final = (
    "iss",
    "ref",
    "sha",
    "repository",
    "event_name",
    "job_workflow_ref",
    "workflow_ref",
    "repository_id",
    "repository_owner_id",
    "runner_environment",
    "run_id",
    "run_attempt",
)

#: The audience of the token whose claims feed the provenance predicate.
_PROVENANCE_AUDIENCE: Final = "nobody"
#: Clock skew tolerated on ``exp``, ``nbf`` and ``iat``, in seconds.
_LEEWAY: Final = 60.0
_MIN_RSA_BITS: Final = 2048
_EXCERPT: Final = 300
_FAILED: Final = "Failed to get ID token: "
_B64URL: Final = re.compile(r"^[A-Za-z0-9_-]*$")
#: The retry policy of every OIDC request (the project's one policy; tests shorten it).
_RETRY = _http.DEFAULT_RETRY


def _failure(detail: str, *, hint: str | None = None) -> OidcError:
    """An error worded like ``@actions/attest``: ``Failed to get ID token: <detail>``."""
    return OidcError(_FAILED + detail, hint=hint)


# --- issuer -------------------------------------------------------------------------------------


def issuer_for(server_url: str, *, override: str | None = None) -> str:
    """The OIDC issuer of the GitHub instance at ``server_url`` (``GITHUB_SERVER_URL``).

    ``override`` (``ATTEST_OIDC_ISSUER``) wins. github.com, or an empty server URL, maps to
    ``https://token.actions.githubusercontent.com``; ``https://<tenant>.ghe.com`` to
    ``https://token.actions.<tenant>.ghe.com``. Anything else is GitHub Enterprise Server,
    where artifact attestations do not exist.
    """
    if override:
        return override.rstrip("/")
    if not server_url.strip():
        return GITHUB_ISSUER
    parts = urllib.parse.urlsplit(server_url.strip())
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and host == "github.com":
        return GITHUB_ISSUER
    match = GHE_TENANT_HOST.match(host)
    if parts.scheme == "https" and match:
        return tenant_issuer(match["tenant"])
    raise OidcError(
        f"Invalid server URL: {server_url}: artifact attestations are not available on "
        "GitHub Enterprise Server",
        hint="attestations can be made on github.com and on GHE.com (https://<tenant>.ghe.com)",
    )


# --- requesting tokens --------------------------------------------------------------------------


class TokenSource:
    """Requests GitHub Actions OIDC tokens.

    GET ``ACTIONS_ID_TOKEN_REQUEST_URL`` (plus ``audience``) with the bearer
    ``ACTIONS_ID_TOKEN_REQUEST_TOKEN``; the caller passes both values in.
    """

    def __init__(
        self,
        *,
        request_url: str | None,
        request_token: str | None,
        on_token: Callable[[str], None] | None = None,
    ) -> None:
        self._request_url = request_url or None
        self._request_token = request_token or None
        self._on_token = on_token
        self._session: requests.Session | None = None

    def token(self, audience: str) -> str:
        """A fresh ID token for ``audience``; ``on_token`` sees it before anything else does."""
        if self._request_url is None or self._request_token is None:
            raise OidcError(MISSING_PERMISSION)
        url = self._request_url
        if audience:
            url = _with_query_param(url, "audience", audience)
        if self._session is None:
            self._session = _http.new_session()
        _logger.debug("requesting an OIDC token for audience %r from %s", audience, url)
        try:
            response = _http.send(
                self._session,
                "GET",
                url,
                policy=_RETRY,
                headers={
                    "Authorization": f"bearer {self._request_token}",
                    "Accept": "application/json",
                },
            )
        except requests.RequestException as exc:
            raise _failure(
                f"could not reach the OIDC token endpoint: {_http.describe_failure(exc)}"
            ) from None
        if response.status_code != 200:
            excerpt = _excerpt(response, secret=self._request_token)
            refused = response.status_code in (401, 403)
            raise _failure(
                f"the OIDC token endpoint answered HTTP {response.status_code}: {excerpt}",
                hint='the job needs "permissions: id-token: write"; '
                "pull requests from forks get no ID token"
                if refused
                else None,
            )
        value = _json_object(response, "the OIDC token endpoint").get("value")
        if not isinstance(value, str) or not value:
            raise _failure('the OIDC token endpoint\'s response has no ID token (no "value")')
        if self._on_token is not None:
            self._on_token(value)
        return value


def _with_query_param(url: str, name: str, value: str) -> str:
    """``url`` with ``name=value`` merged into its query string (replacing any earlier value)."""
    parts = urllib.parse.urlsplit(url)
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = [(k, v) for k, v in pairs if k != name]
    query.append((name, value))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _excerpt(response: requests.Response, *, secret: str | None = None) -> str:
    """The start of an error response's body, on one line, with ``secret`` blotted out."""
    text = response.text.replace(secret, "***") if secret else response.text
    return one_line(text, _EXCERPT) or "(empty body)"


def _json_object(response: requests.Response, what: str) -> dict[str, Any]:
    try:
        document = response.json()
    except ValueError:
        # No excerpt: a 200 body may hold a token nobody has masked yet.
        kind = response.headers.get("Content-Type", "no content type")
        raise _failure(f"{what} did not answer with JSON ({kind})") from None
    if not isinstance(document, dict):
        raise _failure(f"{what} did not answer with a JSON object")
    return document


# --- issuer keys (discovery + JWKS), cached per issuer ------------------------------------------


@dataclass
class _IssuerKeys:
    """Discovery and JWKS of one issuer, fetched on first use, over one session."""

    issuer: str
    session: requests.Session = field(default_factory=_http.new_session)
    lock: threading.Lock = field(default_factory=threading.Lock)
    jwks_uri: str | None = None
    keys: list[dict[str, Any]] | None = None

    def current(self) -> tuple[list[dict[str, Any]], bool]:
        """The JWKS keys, and whether they were fetched just now."""
        with self.lock:
            if self.keys is not None:
                return self.keys, False
            self.keys = self._fetch_keys()
            return self.keys, True

    def refetch(self) -> list[dict[str, Any]]:
        with self.lock:
            _logger.debug("refetching the JWKS of %s (unknown key id)", self.issuer)
            self.keys = self._fetch_keys()
            return self.keys

    def _fetch_keys(self) -> list[dict[str, Any]]:
        if self.jwks_uri is None:
            self.jwks_uri = self._discover()
        document = self._get_json(self.jwks_uri, f"No JWKS found for issuer {self.issuer}")
        keys = document.get("keys")
        if not isinstance(keys, list):
            raise _failure(f'No JWKS found for issuer {self.issuer}: no "keys" at {self.jwks_uri}')
        return [key for key in keys if isinstance(key, dict)]

    def _discover(self) -> str:
        url = f"{self.issuer}/.well-known/openid-configuration"
        document = self._get_json(url, "No OpenID configuration found")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri:
            raise _failure(f'No OpenID configuration found: no "jwks_uri" at {url}')
        _check_transport(jwks_uri, "JWKS URL")
        return jwks_uri

    def _get_json(self, url: str, failure: str) -> dict[str, Any]:
        _logger.debug("GET %s", url)
        try:
            response = _http.send(
                self.session, "GET", url, policy=_RETRY, headers={"Accept": "application/json"}
            )
        except requests.RequestException as exc:
            raise _failure(f"{failure}: {url}: {_http.describe_failure(exc)}") from None
        if response.status_code != 200:
            raise _failure(f"{failure}: {url} answered HTTP {response.status_code}")
        return _json_object(response, url)


_CACHE: dict[str, _IssuerKeys] = {}
_CACHE_LOCK = threading.Lock()


def _issuer_keys(issuer: str) -> _IssuerKeys:
    with _CACHE_LOCK:
        entry = _CACHE.get(issuer)
        if entry is None:
            entry = _CACHE[issuer] = _IssuerKeys(issuer)
        return entry


def _reset_cache() -> None:
    """Forget every issuer's discovery and keys (for tests)."""
    with _CACHE_LOCK:
        for entry in _CACHE.values():
            entry.session.close()
        _CACHE.clear()


def _check_transport(url: str, what: str) -> None:
    """HTTPS, or plain HTTP to a loopback host (a local test issuer); nothing else."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and is_loopback(parts.netloc):
        return
    raise _failure(
        f"the OIDC {what} {url} is not an https:// URL "
        "(plain http is allowed for loopback hosts only)"
    )


# --- JWS ---------------------------------------------------------------------------------------

_PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

#: The algorithms we verify, with the JWK key type each needs.
_ALG_KTY: Final = {"RS256": "RSA", "PS256": "RSA", "ES256": "EC"}


def _b64decode(segment: str, what: str) -> bytes:
    if not _B64URL.match(segment):
        raise _failure(f"malformed token: the {what} is not base64url")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise _failure(f"malformed token: the {what} is not base64url") from None


def _b64int(jwk: dict[str, Any], name: str) -> int:
    value = jwk.get(name)
    if not isinstance(value, str) or not value:
        raise _failure(f"JWK {jwk.get('kid')!r} has no {name!r}")
    return int.from_bytes(_b64decode(value, f"JWK member {name!r}"), "big")


def _json_segment(segment: str, what: str) -> dict[str, Any]:
    raw = _b64decode(segment, what)
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _failure(f"malformed token: the {what} is not JSON") from None
    if not isinstance(value, dict):
        raise _failure(f"malformed token: the {what} is not a JSON object")
    return value


def _public_key(jwk: dict[str, Any], alg: str) -> _PublicKey:
    """The public key of ``jwk``, if it may verify ``alg`` signatures."""
    kid = jwk.get("kid")
    kty = jwk.get("kty")
    if kty != _ALG_KTY[alg]:
        raise _failure(f"token algorithm {alg} does not match key {kid!r} of type {kty!r}")
    if "alg" in jwk and jwk["alg"] != alg:
        raise _failure(f"token algorithm {alg} does not match key {kid!r} for {jwk['alg']!r}")
    if kty == "RSA":
        try:
            rsa_key = rsa.RSAPublicNumbers(_b64int(jwk, "e"), _b64int(jwk, "n")).public_key()
        except ValueError as exc:
            raise _failure(f"JWK {kid!r} is not a valid RSA key: {exc}") from None
        if rsa_key.key_size < _MIN_RSA_BITS:
            raise _failure(f"JWK {kid!r} is a {rsa_key.key_size}-bit RSA key (too small)")
        return rsa_key
    if jwk.get("crv") != "P-256":
        raise _failure(f"JWK {kid!r} is not a P-256 key (crv {jwk.get('crv')!r})")
    try:
        return ec.EllipticCurvePublicNumbers(
            _b64int(jwk, "x"), _b64int(jwk, "y"), ec.SECP256R1()
        ).public_key()
    except ValueError as exc:
        raise _failure(f"JWK {kid!r} is not a valid P-256 key: {exc}") from None


def _verify_signature(key: _PublicKey, alg: str, signing_input: bytes, signature: bytes) -> bool:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            if len(signature) != 64:  # ES256: r || s, 32 bytes each
                return False
            r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(hashes.SHA256()))
        elif alg == "PS256":
            pss = padding.PSS(
                mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH
            )
            key.verify(signature, signing_input, pss, hashes.SHA256())
        else:
            key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def _select(keys: list[dict[str, Any]], kid: str | None) -> dict[str, Any] | None:
    usable = [key for key in keys if key.get("use", "sig") == "sig"]
    if kid is None:
        return usable[0] if len(usable) == 1 else None
    return next((key for key in usable if key.get("kid") == kid), None)


def _key_for(issuer: str, kid: str | None) -> dict[str, Any]:
    entry = _issuer_keys(issuer)
    keys, fresh = entry.current()
    jwk = _select(keys, kid)
    if jwk is None and not fresh:
        jwk = _select(entry.refetch(), kid)  # the issuer may have rotated its keys
    if jwk is None and kid is None:
        raise _failure(f"the token has no kid and the JWKS of issuer {issuer} has several keys")
    if jwk is None:
        raise _failure(f"the JWKS of issuer {issuer} has no key id {kid!r}")
    return jwk


# --- claims ------------------------------------------------------------------------------------


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _failure(f'the "{name}" claim is not a number')
    return float(value)


def _check_claims(claims: dict[str, Any], *, issuer: str, audience: str, now: float) -> None:
    iss = claims.get("iss")
    if not isinstance(iss, str) or not (iss == issuer or iss.startswith(issuer + "/")):
        raise _failure(f'Unexpected "iss" claim: {iss}', hint=f"expected the issuer {issuer}")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if audience not in audiences:
        raise _failure(f'unexpected "aud" claim value: {aud!r} (expected {audience!r})')
    exp = _number(claims, "exp")
    if exp is None:
        raise _failure('missing required "exp" claim')
    if exp <= now - _LEEWAY:
        raise _failure(f"the token expired {int(now - exp)} s ago")
    nbf = _number(claims, "nbf")
    if nbf is not None and nbf > now + _LEEWAY:
        raise _failure(f"the token is not valid for another {int(nbf - now)} s (nbf)")
    iat = _number(claims, "iat")
    if iat is not None and iat > now + _LEEWAY:
        raise _failure(f"the token was issued {int(iat - now)} s in the future (iat)")
    missing = [name for name in REQUIRED_CLAIMS if claims.get(name) in (None, "")]
    if missing:
        raise _failure(f"Missing claims: {', '.join(missing)}")
    wrong = [name for name in REQUIRED_CLAIMS if not isinstance(claims[name], str)]
    if wrong:
        raise _failure(f"Claims are not strings: {', '.join(wrong)}")


def verify_token(
    token: str, *, issuer: str, audience: str, now: float | None = None
) -> dict[str, Any]:
    """The claims of ``token`` once its signature and registered claims are verified.

    The signing key comes from ``issuer``'s JWKS (found by OpenID discovery, cached per
    process, refetched once for an unknown key id). ``iss`` must be ``issuer`` or below it
    (``issuer/<enterprise>``), ``aud`` must include ``audience``, ``exp``/``nbf``/``iat`` hold
    within 60 s of ``now``, and every one of :data:`REQUIRED_CLAIMS` must be present.
    """
    issuer = issuer.rstrip("/")
    _check_transport(issuer, "issuer")
    now = time.time() if now is None else now
    segments = token.strip().split(".")
    if len(segments) != 3:  # header.payload.signature
        raise _failure("malformed token: not a signed JWT (header.payload.signature)")
    header = _json_segment(segments[0], "header")
    alg = header.get("alg")
    if not isinstance(alg, str):
        raise _failure("malformed token: the header has no alg")
    if alg.lower() == "none":
        raise _failure("the token is not signed (alg none)")
    if alg not in _ALG_KTY:
        raise _failure(f"unsupported token algorithm {alg!r} (expected one of RS256, PS256, ES256)")
    if "crit" in header:
        raise _failure("the token header has critical extensions (crit), which we do not support")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise _failure("malformed token: the kid header is not a string")
    claims = _json_segment(segments[1], "payload")
    signature = _b64decode(segments[2], "signature")

    jwk = _key_for(issuer, kid)
    key = _public_key(jwk, alg)
    signing_input = f"{segments[0]}.{segments[1]}".encode("ascii")
    if not _verify_signature(key, alg, signing_input, signature):
        raise _failure(f"the token signature does not verify with key {jwk.get('kid')!r}")
    _check_claims(claims, issuer=issuer, audience=audience, now=now)
    _logger.debug("verified an OIDC token (kid %r, alg %s) for audience %r", kid, alg, audience)
    return claims


def provenance_claims(token_source: TokenSource, *, issuer: str) -> dict[str, Any]:
    """The verified claims of a fresh ``nobody``-audience token, for the provenance predicate."""
    token = token_source.token(_PROVENANCE_AUDIENCE)
    return verify_token(token, issuer=issuer, audience=_PROVENANCE_AUDIENCE)
