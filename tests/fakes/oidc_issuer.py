"""A local GitHub Actions OIDC issuer: discovery, JWKS and the Actions ID-token endpoint.

It speaks the same wire protocol as ``token.actions.githubusercontent.com`` and the runner's
``ACTIONS_ID_TOKEN_REQUEST_URL``, over plain HTTP on 127.0.0.1::

    with FakeIssuer() as issuer:
        source = TokenSource(request_url=issuer.request_url, request_token=issuer.request_token)
        claims = verify_token(source.token("nobody"), issuer=issuer.url, audience="nobody")

Tests steer it through attributes: ``claims`` (the GitHub claims put in every token; set a
value to ``None`` or delete it to leave the claim out), ``expire_in``, ``token_error``
(a ``(status, body)`` the token endpoint answers with instead of a token), ``discovery``
(the OpenID configuration document), ``jwk_overrides``, :meth:`add_key` / :meth:`rotate`, and
:meth:`mint`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any, NamedTuple, Self

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.fakes.loopback import LoopbackServer

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

#: Claims GitHub documents for Actions tokens (``claims_supported`` of the real issuer).
CLAIMS_SUPPORTED = [
    "sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref", "sha", "repository",
    "repository_id", "repository_owner", "repository_owner_id", "enterprise", "enterprise_id",
    "run_id", "run_number", "run_attempt", "actor", "actor_id", "workflow", "workflow_ref",
    "workflow_sha", "head_ref", "base_ref", "event_name", "ref_type", "ref_protected",
    "environment", "environment_node_id", "job_workflow_ref", "job_workflow_sha",
    "repository_visibility", "runner_environment", "issuer_scope",
]  # fmt: skip

#: ``sub``..``runner_environment`` of a push to main of a private repository, in GitHub's order.
DEFAULT_CLAIMS: dict[str, Any] = {
    "sub": "repo:octo-org/octo-repo:ref:refs/heads/main",
    "ref": "refs/heads/main",
    "sha": "c4b0a5e8f1d2a3b4c5d6e7f8091a2b3c4d5e6f70",
    "repository": "octo-org/octo-repo",
    "repository_owner": "octo-org",
    "repository_owner_id": "65",
    "run_id": "9876543210",
    "run_number": "10",
    "run_attempt": "2",
    "repository_visibility": "private",
    "repository_id": "74",
    "actor_id": "12",
    "actor": "octocat",
    "workflow": "Release",
    "head_ref": "",
    "base_ref": "",
    "event_name": "push",
    "ref_protected": "false",
    "ref_type": "branch",
    "workflow_ref": "octo-org/octo-repo/.github/workflows/release.yml@refs/heads/main",
    "workflow_sha": "c4b0a5e8f1d2a3b4c5d6e7f8091a2b3c4d5e6f70",
    "job_workflow_ref": "octo-org/octo-repo/.github/workflows/release.yml@refs/heads/main",
    "job_workflow_sha": "c4b0a5e8f1d2a3b4c5d6e7f8091a2b3c4d5e6f70",
    "runner_environment": "github-hosted",
}

#: The audience GitHub uses when the request names none.
DEFAULT_AUDIENCE = "https://github.com/octo-org"


class Seen(NamedTuple):
    """One request the issuer answered."""

    method: str
    path: str  # with the query string
    bearer: bool  # whether it carried the right ``Authorization: bearer <request token>``


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_bytes(value: int, length: int | None = None) -> bytes:
    return value.to_bytes(length or max(1, (value.bit_length() + 7) // 8), "big")


def public_jwk(key: PrivateKey, kid: str) -> dict[str, Any]:
    """The JWK of ``key``'s public half, as GitHub publishes its keys."""
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": kid,
            "n": b64url(_int_bytes(numbers.n)),
            "e": b64url(_int_bytes(numbers.e)),
        }
    point = key.public_key().public_numbers()
    return {
        "kty": "EC",
        "alg": "ES256",
        "use": "sig",
        "kid": kid,
        "crv": "P-256",
        "x": b64url(_int_bytes(point.x, 32)),
        "y": b64url(_int_bytes(point.y, 32)),
    }


def sign(key: PrivateKey, alg: str, data: bytes) -> bytes:
    """A JWS signature of ``data``: RS256, PS256 or ES256 (raw r || s)."""
    if alg == "none":
        return b""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return _int_bytes(r, 32) + _int_bytes(s, 32)
    if alg == "PS256":
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
        return key.sign(data, pss, hashes.SHA256())
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def _thumbprint(key: PrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return b64url(hashlib.sha1(der).digest())


_RSA_POOL: list[rsa.RSAPrivateKey] = []
_POOL_LOCK = threading.Lock()


def _pooled_rsa_key(index: int) -> rsa.RSAPrivateKey:
    """The ``index``-th RSA-2048 key of this process: generated once, shared by all issuers.

    Keys only need to differ within one issuer (each issuer has its own URL, so verifiers
    never mix them up); sharing them keeps a test run from generating dozens of RSA keys.
    """
    with _POOL_LOCK:
        while len(_RSA_POOL) <= index:
            _RSA_POOL.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        return _RSA_POOL[index]


class FakeIssuer(LoopbackServer):
    """A GitHub Actions OIDC issuer on ``http://127.0.0.1:<free port>``, for one test."""

    service_name = "fake-oidc-issuer"

    def __init__(self) -> None:
        self.request_token = "req-" + secrets.token_urlsafe(24)
        self.claims: dict[str, Any] = dict(DEFAULT_CLAIMS)
        self.expire_in = 300
        self.token_error: tuple[int, str] | None = None
        #: Every published key, by kid, in JWKS order.
        self.keys: dict[str, PrivateKey] = {}
        #: The kid of the key the token endpoint signs with.
        self.active_kid = ""
        #: Members merged into a published JWK, by kid (``None`` removes a member).
        self.jwk_overrides: dict[str, dict[str, Any]] = {}
        self.requests: list[Seen] = []
        self.discovery: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._rsa_keys_used = 0

    # --- lifecycle ---

    def start(self) -> Self:
        self.rotate()
        super().start()
        self.discovery = {
            "issuer": self.url,
            "jwks_uri": f"{self.url}/.well-known/jwks",
            "subject_types_supported": ["public", "pairwise"],
            "response_types_supported": ["id_token"],
            "claims_supported": list(CLAIMS_SUPPORTED),
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid"],
        }
        self.claims["iss"] = self.url
        return self

    @property
    def request_url(self) -> str:
        """What the runner puts in ``ACTIONS_ID_TOKEN_REQUEST_URL``: it already has a query."""
        return f"{self.url}/token?api-version=2.0"

    # --- keys and tokens ---

    def add_key(
        self, key: PrivateKey | None = None, *, kid: str | None = None, activate: bool = False
    ) -> str:
        """Publish ``key`` (a new RSA-2048 key by default) in the JWKS; return its kid."""
        key = key or self.new_rsa_key()
        kid = kid or _thumbprint(key)[:16]
        with self._lock:
            self.keys[kid] = key
            if activate or not self.active_kid:
                self.active_kid = kid
        return kid

    def new_rsa_key(self) -> rsa.RSAPrivateKey:
        """An RSA-2048 key this issuer has not used yet (not published)."""
        with self._lock:
            index = self._rsa_keys_used
            self._rsa_keys_used += 1
        return _pooled_rsa_key(index)

    def rotate(self) -> str:
        """Publish a new RSA key and sign with it from now on (the old key stays published)."""
        return self.add_key(activate=True)

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            keys = []
            for kid, key in self.keys.items():
                jwk = public_jwk(key, kid) | self.jwk_overrides.get(kid, {})
                keys.append({name: value for name, value in jwk.items() if value is not None})
            return {"keys": keys}

    def mint(
        self,
        audience: str,
        /,
        *,
        kid: str | None = None,
        signing_key: PrivateKey | None = None,
        alg: str | None = None,
        header: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> str:
        """A signed token for ``audience``, like the token endpoint's.

        ``overrides`` replace claims (``None`` removes one). ``kid`` picks a published key;
        ``signing_key`` signs with any key (still naming ``kid`` or the active kid); ``alg``
        defaults to the key's (RS256 or ES256); ``header`` entries are merged last (a value of
        ``None`` removes the entry).
        """
        kid = kid or self.active_kid
        key = signing_key or self.keys[kid]
        alg = alg or ("ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS256")
        now = int(time.time())
        claims: dict[str, Any] = {
            "jti": str(uuid.uuid4()),
            "aud": audience,
            "nbf": now - 600,
            "exp": now + self.expire_in,
            "iat": now,
        }
        claims.update(self.claims)
        claims.update(overrides)
        claims = {name: value for name, value in claims.items() if value is not None}
        jose: dict[str, Any] = {"typ": "JWT", "alg": alg, "x5t": _thumbprint(key), "kid": kid}
        jose.update(header or {})
        jose = {name: value for name, value in jose.items() if value is not None}
        signing_input = ".".join(
            b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (jose, claims)
        )
        return f"{signing_input}.{b64url(sign(key, alg, signing_input.encode('ascii')))}"

    # --- HTTP ---

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls per response

            def do_GET(self) -> None:
                auth = self.headers.get("Authorization", "")
                scheme, _, credential = auth.partition(" ")
                bearer = scheme.lower() == "bearer" and credential == issuer.request_token
                issuer.requests.append(Seen("GET", self.path, bearer))
                path, _, query = self.path.partition("?")
                if path == "/.well-known/openid-configuration":
                    self._json(200, issuer.discovery)
                elif path == "/.well-known/jwks":
                    self._json(200, issuer.jwks())
                elif path == "/token":
                    self._token(bearer, urllib.parse.parse_qs(query))
                else:
                    self._json(404, {"message": "Not Found"})

            def _token(self, bearer: bool, query: dict[str, list[str]]) -> None:
                if issuer.token_error is not None:
                    status, body = issuer.token_error
                    self._send(status, body.encode(), "application/json")
                elif not bearer:
                    self._json(401, {"message": "Unauthorized"})
                elif "api-version" not in query:
                    self._json(400, {"message": "api-version is required"})
                else:
                    audience = query.get("audience", [DEFAULT_AUDIENCE])[-1]
                    self._json(200, {"count": 1, "value": issuer.mint(audience)})

            def _json(self, status: int, document: dict[str, Any]) -> None:
                self._send(status, json.dumps(document).encode(), "application/json")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
