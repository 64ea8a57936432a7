"""A wire-accurate local Sigstore instance: Fulcio v2, a CT log (embedded SCTs) and Rekor v1.

One ``ThreadingHTTPServer`` on ``http://127.0.0.1:<free port>`` answers all of them::

    with FakeIssuer() as issuer, SigstoreInstance(issuer) as instance:
        cfg = ClientTrustConfig.from_json(json.dumps(instance.client_trust_config()))
        token = IdentityToken(issuer.mint("sigstore"))
        bundle = SigningContext.from_trust_config(cfg).signer(token).sign_dsse(statement)

Routes:

* ``POST /api/v2/signingCert`` (Fulcio): the bearer JWT (or sigstore-js's
  ``credentials.oidcIdentityToken``) is verified like Fulcio does: discovery document and JWKS
  fetched over HTTP from the :class:`FakeIssuer`, RS256/ES256, ``iss`` = the issuer's URL, audience
  ``sigstore``, not expired. Both request forms are accepted: ``certificateSigningRequest``
  (base64 PEM CSR, its signature is the proof of possession) and sigstore-js's ``publicKeyRequest``
  (PEM public key + ``proofOfPossession``, a signature over the token's ``sub``). The leaf has the
  GitHub workflow identity of the token (SAN, extensions ``1.3.6.1.4.1.57264.1.1``-``.6`` raw and
  ``.8``-``.22`` DER UTF8String, ``.23`` when the token has an ``environment``), is valid for
  ``fulcio_validity`` seconds and, with ``ct_log``, carries an RFC 6962 SCT over the
  precertificate signed by the local CT key. Answers ``signedCertificateEmbeddedSct``, or like
  upstream Fulcio ``signedCertificateDetachedSct`` when ``detached_sct`` or there is no CT log.
* ``GET /api/v2/trustBundle``.
* ``POST /api/v1/log/entries`` (Rekor v1, ``dsse`` and ``hashedrekord`` 0.0.1): verifies the
  signature, stores the RFC 8785 canonical body in an RFC 6962 Merkle tree pre-filled with a few
  leaves, answers 201 with the v1 entry map (inclusion proof, signed checkpoint note, SET);
  a duplicate answers 409 with ``Location``. ``GET /api/v1/log/entries/<uuid>``,
  ``GET /api/v1/log/entries?logIndex=N``, ``GET /api/v1/log`` and ``GET /api/v1/log/publicKey``.

:meth:`SigstoreInstance.trusted_root` and :meth:`SigstoreInstance.client_trust_config` give the
documents clients load (``trustedroot+json;version=0.1``, ``clienttrustconfig.v0.1`` with a
``signingconfig.v0.2``). ``requests`` logs ``(method, path, status)`` of every request.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import struct
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler
from typing import Any, NamedTuple, Self

import requests
import rfc8785
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .loopback import LoopbackServer
from .oidc_issuer import FakeIssuer

#: Fulcio's OID arc for the GitHub workflow identity.
FULCIO_OID = "1.3.6.1.4.1.57264.1"
SCT_LIST_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
GITHUB_SERVER = "https://github.com"
AUDIENCE = "sigstore"
#: The Trillian tree id of the fake Rekor shard (the first 16 hex digits of every UUID).
REKOR_TREE_ID = 1193050959916656506
REKOR_NAME = "rekor.local"
#: Leaves put in the log before any client's, so that inclusion proofs are not trivial.
PREFILLED_LEAVES = 5

TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
SIGNING_CONFIG_MEDIA_TYPE = "application/vnd.dev.sigstore.signingconfig.v0.2+json"
CLIENT_TRUST_CONFIG_MEDIA_TYPE = "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


class Seen(NamedTuple):
    """One request the instance answered."""

    method: str
    path: str
    status: int


class HTTPError(Exception):
    """Ends a request with ``status`` and the JSON ``body``."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(body.get("message", ""))
        self.status = status
        self.body = body
        self.headers = headers or {}


def fulcio_error(status: int, message: str) -> HTTPError:
    """An error as Fulcio's grpc-gateway writes it: gRPC code, message and details."""
    grpc_code = {400: 3, 401: 16, 403: 7, 500: 13}.get(status, 2)
    return HTTPError(status, {"code": grpc_code, "message": message, "details": []})


def rekor_error(status: int, message: str, headers: dict[str, str] | None = None) -> HTTPError:
    return HTTPError(status, {"code": status, "message": message}, headers)


# --- encodings ---


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def der_utf8string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return b"\x0c" + der_length(len(raw)) + raw


def der_octet_string(data: bytes) -> bytes:
    return b"\x04" + der_length(len(data)) + data


def spki_der(key: PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_id(key: PublicKey) -> bytes:
    """RFC 6962 log id: SHA-256 of the DER SubjectPublicKeyInfo."""
    return hashlib.sha256(spki_der(key)).digest()


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def verify_signature(
    key: PublicKey, signature: bytes, data: bytes, *, prehashed: bool = False
) -> None:
    """Verify ``signature`` (ECDSA/RSA over SHA-256, or Ed25519); InvalidSignature on failure."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        algorithm: Any = Prehashed(hashes.SHA256()) if prehashed else hashes.SHA256()
        key.verify(signature, data, ec.ECDSA(algorithm))
    elif isinstance(key, rsa.RSAPublicKey):
        algorithm = Prehashed(hashes.SHA256()) if prehashed else hashes.SHA256()
        key.verify(signature, data, padding.PKCS1v15(), algorithm)
    elif not prehashed:
        key.verify(signature, data)
    else:
        raise InvalidSignature(f"unsupported key type {type(key).__name__}")


# --- RFC 6962 Merkle tree ---


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n`` > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def merkle_root(leaves: list[bytes]) -> bytes:
    """MTH over leaf *hashes*."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node_hash(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


def inclusion_proof(index: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(index, leaves), leaf-to-root order, over leaf hashes."""
    if len(leaves) <= 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*inclusion_proof(index, leaves[:k]), merkle_root(leaves[k:])]
    return [*inclusion_proof(index - k, leaves[k:]), merkle_root(leaves[:k])]


# --- JWT verification against the issuer's JWKS, as Fulcio does ---


def _int_from_b64url(text: str) -> int:
    return int.from_bytes(_b64url_decode(text), "big")


def _jwk_public_key(jwk: dict[str, Any]) -> PublicKey:
    if jwk.get("kty") == "RSA":
        return rsa.RSAPublicNumbers(
            _int_from_b64url(jwk["e"]), _int_from_b64url(jwk["n"])
        ).public_key()
    if jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
        numbers = ec.EllipticCurvePublicNumbers(
            _int_from_b64url(jwk["x"]), _int_from_b64url(jwk["y"]), ec.SECP256R1()
        )
        return numbers.public_key()
    raise ValueError(f"unsupported JWK kty={jwk.get('kty')!r}")


def verify_jwt(
    token: str, issuer_url: str, audience: str, session: requests.Session
) -> dict[str, Any]:
    """Claims of ``token`` once its signature, issuer, audience and lifetime check out.

    Raises ``ValueError`` with the reason otherwise. The JWKS is fetched from the issuer's
    discovery document on every call (the fake issuer may rotate keys between tokens).
    """
    try:
        header_b64, claims_b64, signature_b64 = token.split(".")
        header = json.loads(_b64url_decode(header_b64))
        claims = json.loads(_b64url_decode(claims_b64))
        signature = _b64url_decode(signature_b64)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"malformed JWT: {exc}") from exc
    if not isinstance(claims, dict) or not isinstance(header, dict):
        raise ValueError("malformed JWT: header or claims are not objects")
    if claims.get("iss") != issuer_url:
        raise ValueError(f"unknown issuer {claims.get('iss')!r}")
    alg = header.get("alg")
    if alg not in ("RS256", "ES256"):
        raise ValueError(f"unsupported signing algorithm {alg!r}")
    discovery = session.get(f"{issuer_url}/.well-known/openid-configuration", timeout=10)
    discovery.raise_for_status()
    jwks = session.get(discovery.json()["jwks_uri"], timeout=10)
    jwks.raise_for_status()
    candidates = [
        jwk
        for jwk in jwks.json().get("keys", [])
        if (header.get("kid") is None or jwk.get("kid") == header.get("kid"))
        and jwk.get("kty") == ("RSA" if alg == "RS256" else "EC")
    ]
    signing_input = f"{header_b64}.{claims_b64}".encode("ascii")
    for jwk in candidates:
        try:
            key = _jwk_public_key(jwk)
            if isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
            elif isinstance(key, ec.EllipticCurvePublicKey) and len(signature) == 64:
                der = encode_dss_signature(
                    int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
                )
                key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
            else:
                continue
            break
        except (InvalidSignature, ValueError, KeyError):
            continue
    else:
        raise ValueError("failed to verify signature")
    audiences = claims.get("aud")
    if isinstance(audiences, str):
        audiences = [audiences]
    if not isinstance(audiences, list) or audience not in audiences:
        raise ValueError(f"expected audience {audience!r} got {claims.get('aud')!r}")
    now = time.time()
    if not isinstance(claims.get("exp"), int | float) or now > claims["exp"]:
        raise ValueError("token is expired")
    if isinstance(claims.get("nbf"), int | float) and now + 300 < claims["nbf"]:
        raise ValueError("token is not valid yet")
    if not claims.get("sub"):
        raise ValueError("token has no subject")
    return claims


# --- the GitHub workflow identity of a token (Fulcio's ci-provider github-workflow) ---


def github_identity(claims: dict[str, Any]) -> tuple[str, list[x509.UnrecognizedExtension]]:
    """The SAN URI and the ``1.3.6.1.4.1.57264.1.*`` extensions Fulcio derives from ``claims``."""

    def claim(name: str) -> str:
        value = claims.get(name)
        return "" if value is None else str(value)

    server = GITHUB_SERVER
    repository = claim("repository")
    raw = {  # deprecated extensions: the raw value, no ASN.1
        1: claim("iss"),
        2: claim("event_name"),
        3: claim("sha"),
        4: claim("workflow"),
        5: repository,
        6: claim("ref"),
    }
    der = {
        8: claim("iss"),
        9: f"{server}/{claim('job_workflow_ref')}",
        10: claim("job_workflow_sha"),
        11: claim("runner_environment"),
        12: f"{server}/{repository}",
        13: claim("sha"),
        14: claim("ref"),
        15: claim("repository_id"),
        16: f"{server}/{claim('repository_owner')}",
        17: claim("repository_owner_id"),
        18: f"{server}/{claim('workflow_ref')}",
        19: claim("workflow_sha"),
        20: claim("event_name"),
        21: f"{server}/{repository}/actions/runs/{claim('run_id')}/attempts/{claim('run_attempt')}",
        22: claim("repository_visibility"),
        23: claim("environment"),
    }
    extensions = [
        x509.UnrecognizedExtension(x509.ObjectIdentifier(f"{FULCIO_OID}.{n}"), value.encode())
        for n, value in raw.items()
        if value
    ]
    extensions += [
        x509.UnrecognizedExtension(
            x509.ObjectIdentifier(f"{FULCIO_OID}.{n}"), der_utf8string(value)
        )
        for n, value in der.items()
        if value and not value.endswith("/")
    ]
    return f"{server}/{claim('job_workflow_ref')}", extensions


# --- the instance ---


class _Entry(NamedTuple):
    uuid: str
    log_index: int
    body: bytes
    integrated_time: int


class SigstoreInstance(LoopbackServer):
    """Fulcio + CT log + Rekor v1 on ``http://127.0.0.1:<free port>``, trusting ``issuer``."""

    service_name = "fake-sigstore"

    def __init__(
        self,
        issuer: FakeIssuer,
        *,
        ct_log: bool = True,
        rekor: bool = True,
        detached_sct: bool = False,
        ca_org: str = "sigstore.dev",
        fulcio_validity: int = 600,
    ) -> None:
        self.issuer = issuer
        self.ct_log = ct_log
        self.rekor = rekor
        self.detached_sct = detached_sct
        self.ca_org = ca_org
        self.fulcio_validity = fulcio_validity
        self.requests: list[Seen] = []
        #: Every leaf certificate Fulcio issued, in order.
        self.issued: list[x509.Certificate] = []
        self.started = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=1)

        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ct_key = ec.generate_private_key(ec.SECP256R1())
        self.rekor_key = ec.generate_private_key(ec.SECP256R1())
        self.ca_cert = self._make_root()
        self.ct_log_id = key_id(self.ct_key.public_key())
        self.rekor_log_id = key_id(self.rekor_key.public_key())

        self._lock = threading.Lock()
        self._leaves: list[bytes] = [
            leaf_hash(b"prefilled leaf %d" % i) for i in range(PREFILLED_LEAVES)
        ]
        self._entries: dict[str, _Entry] = {}
        self._by_index: dict[int, str] = {}
        self._session: requests.Session | None = None

    # --- lifecycle ---

    def start(self) -> Self:
        self._session = requests.Session()
        self._session.trust_env = False  # loopback only: never through a proxy
        return super().start()

    def stop(self) -> None:
        super().stop()
        if self._session is not None:
            self._session.close()
            self._session = None

    # --- CA ---

    def _make_root(self) -> x509.Certificate:
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.ca_org),
                x509.NameAttribute(NameOID.COMMON_NAME, "sigstore"),
            ]
        )
        public = self.ca_key.public_key()
        return (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.started)
            .not_valid_after(self.started + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )

    @property
    def ca_pem(self) -> bytes:
        return self.ca_cert.public_bytes(serialization.Encoding.PEM)

    @property
    def ca_der(self) -> bytes:
        return self.ca_cert.public_bytes(serialization.Encoding.DER)

    def issue(
        self, public_key: PublicKey, claims: dict[str, Any]
    ) -> tuple[x509.Certificate, bytes]:
        """A leaf for ``public_key`` with the identity of ``claims``, and the detached SCT.

        The SCT (base64 of the CT log's ``add-chain`` JSON) is only returned for a detached
        SCT with a CT log; otherwise it is embedded (CT log) or absent (no CT log) and
        ``b""`` is returned.
        """
        san, identity_extensions = github_identity(claims)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.ca_cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(seconds=self.fulcio_validity))
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                critical=False,
            )
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(san)]), critical=True
            )
        )
        for extension in identity_extensions:
            builder = builder.add_extension(extension, critical=False)
        if not self.ct_log:
            return builder.sign(self.ca_key, hashes.SHA256()), b""
        if self.detached_sct:
            leaf = builder.sign(self.ca_key, hashes.SHA256())
            return leaf, self._detached_sct(leaf)
        precert = builder.sign(self.ca_key, hashes.SHA256())
        sct = self._embedded_sct(precert.tbs_certificate_bytes)
        sct_list = struct.pack("!H", len(sct) + 2) + struct.pack("!H", len(sct)) + sct
        leaf = builder.add_extension(
            x509.UnrecognizedExtension(SCT_LIST_OID, der_octet_string(sct_list)), critical=False
        ).sign(self.ca_key, hashes.SHA256())
        assert leaf.tbs_precertificate_bytes == precert.tbs_certificate_bytes
        return leaf, b""

    # --- CT log ---

    @staticmethod
    def _sct_timestamp() -> int:
        """Now in ms, nudged so that ``int(datetime.timestamp() * 1000)`` round-trips.

        Clients (sigstore-python) rebuild the signed data from cryptography's datetime of the
        SCT; a millisecond value that float arithmetic turns into ``...999`` would fail there.
        """
        ms = int(time.time() * 1000)
        while True:
            moment = dt.datetime.fromtimestamp(ms // 1000, dt.UTC) + dt.timedelta(
                milliseconds=ms % 1000
            )
            if int(moment.timestamp() * 1000) == ms:
                return ms
            ms -= 1

    def _ct_sign(self, timestamp: int, entry_type: int, signed_entry: bytes) -> bytes:
        """The ``digitally-signed`` struct of an SCT: hash sha256, ECDSA, length, signature."""
        data = (
            struct.pack("!BBQH", 0, 0, timestamp, entry_type) + signed_entry + struct.pack("!H", 0)
        )
        signature = self.ct_key.sign(data, ec.ECDSA(hashes.SHA256()))
        return struct.pack("!BBH", 4, 3, len(signature)) + signature

    def _embedded_sct(self, precert_tbs: bytes) -> bytes:
        timestamp = self._sct_timestamp()
        issuer_key_hash = key_id(self.ca_key.public_key())
        signed_entry = issuer_key_hash + len(precert_tbs).to_bytes(3, "big") + precert_tbs
        return (
            struct.pack("!B", 0)
            + self.ct_log_id
            + struct.pack("!QH", timestamp, 0)
            + self._ct_sign(timestamp, 1, signed_entry)
        )

    def _detached_sct(self, leaf: x509.Certificate) -> bytes:
        timestamp = self._sct_timestamp()
        der = leaf.public_bytes(serialization.Encoding.DER)
        digitally_signed = self._ct_sign(timestamp, 0, len(der).to_bytes(3, "big") + der)
        add_chain = {
            "sct_version": 0,
            "id": b64(self.ct_log_id),
            "timestamp": timestamp,
            "extensions": "",
            "signature": b64(digitally_signed),
        }
        return json.dumps(add_chain, separators=(",", ":")).encode()

    # --- Fulcio ---

    def _signing_cert(
        self, headers: Any, body: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        try:
            request = json.loads(body)
        except ValueError as exc:
            raise fulcio_error(400, f"error parsing request body: {exc}") from exc
        if not isinstance(request, dict):
            raise fulcio_error(400, "error parsing request body")
        credentials = request.get("credentials") or {}
        token = credentials.get("oidcIdentityToken") if isinstance(credentials, dict) else None
        if not token:
            scheme, _, token = headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise fulcio_error(401, "There was an error processing the identity token")
        assert self._session is not None
        try:
            claims = verify_jwt(token, self.issuer.url, AUDIENCE, self._session)
        except (ValueError, requests.RequestException) as exc:
            raise fulcio_error(
                401, f"There was an error processing the identity token: {exc}"
            ) from exc

        if "certificateSigningRequest" in request:
            try:
                csr = x509.load_pem_x509_csr(base64.b64decode(request["certificateSigningRequest"]))
            except ValueError as exc:
                raise fulcio_error(
                    400, "The certificate signing request could not be parsed"
                ) from exc
            if not csr.is_signature_valid:
                raise fulcio_error(
                    400, "The signature supplied in the request could not be verified"
                )
            public_key: Any = csr.public_key()
        elif isinstance(request.get("publicKeyRequest"), dict):
            key_request = request["publicKeyRequest"]
            try:
                content = key_request["publicKey"]["content"]
                public_key = serialization.load_pem_public_key(content.encode())
                proof = base64.b64decode(key_request["proofOfPossession"])
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise fulcio_error(
                    400, "The public key supplied in the request could not be parsed"
                ) from exc
            if not isinstance(
                public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
            ):
                raise fulcio_error(
                    400, "The public key supplied in the request could not be parsed"
                )
            try:
                verify_signature(public_key, proof, str(claims["sub"]).encode())
            except InvalidSignature as exc:
                raise fulcio_error(
                    400, "The signature supplied in the request could not be verified"
                ) from exc
        else:
            raise fulcio_error(400, "The certificate signing request could not be parsed")

        leaf, detached = self.issue(public_key, claims)
        with self._lock:
            self.issued.append(leaf)
        chain = {
            "certificates": [
                leaf.public_bytes(serialization.Encoding.PEM).decode(),
                self.ca_pem.decode(),
            ]
        }
        if self.ct_log and not self.detached_sct:
            answer: dict[str, Any] = {"signedCertificateEmbeddedSct": {"chain": chain}}
        else:
            detached_answer: dict[str, Any] = {"chain": chain}
            if detached:
                detached_answer["signedCertificateTimestamp"] = b64(detached)
            answer = {"signedCertificateDetachedSct": detached_answer}
        return 201, answer, {}

    def _trust_bundle(self) -> dict[str, Any]:
        return {"chains": [{"certificates": [self.ca_pem.decode()]}]}

    # --- Rekor v1 ---

    def _canonical_body(self, proposed: dict[str, Any]) -> bytes:
        """Verify a proposed entry and return its canonical (RFC 8785) body."""
        kind, version = proposed.get("kind"), proposed.get("apiVersion")
        spec = proposed.get("spec")
        if not isinstance(spec, dict):
            raise rekor_error(400, "spec is required")
        try:
            if (kind, version) == ("dsse", "0.0.1"):
                return self._dsse_body(spec)
            if (kind, version) == ("hashedrekord", "0.0.1"):
                return self._hashedrekord_body(spec)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise rekor_error(400, f"error processing entry: {exc!r}") from exc
        raise rekor_error(400, f"unsupported entry kind {kind!r} version {version!r}")

    @staticmethod
    def _verifier_key(b64_pem: str) -> PublicKey:
        pem = base64.b64decode(b64_pem)
        if b"CERTIFICATE" in pem:
            key: Any = x509.load_pem_x509_certificate(pem).public_key()
        else:
            key = serialization.load_pem_public_key(pem)
        if not isinstance(
            key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
        ):
            raise ValueError("unsupported verifier key")
        return key

    def _dsse_body(self, spec: dict[str, Any]) -> bytes:
        proposed = spec["proposedContent"]
        envelope_text: str = proposed["envelope"]
        envelope = json.loads(envelope_text)
        payload = base64.b64decode(envelope["payload"])
        message = pae(envelope["payloadType"], payload)
        by_signature: dict[str, str] = {}
        for signature in envelope["signatures"]:
            for verifier in proposed["verifiers"]:
                try:
                    verify_signature(
                        self._verifier_key(verifier), base64.b64decode(signature["sig"]), message
                    )
                except InvalidSignature:
                    continue
                by_signature[signature["sig"]] = verifier
                break
            else:
                raise rekor_error(
                    400,
                    "could not verify envelope: all signatures must have a key that verifies it",
                )
        body: dict[str, Any] = {
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "envelopeHash": {
                    "algorithm": "sha256",
                    "value": hashlib.sha256(envelope_text.encode()).hexdigest(),
                },
                "payloadHash": {
                    "algorithm": "sha256",
                    "value": hashlib.sha256(payload).hexdigest(),
                },
                "signatures": [
                    {"signature": sig, "verifier": by_signature[sig]}
                    for sig in sorted(by_signature)
                ],
            },
        }
        return rfc8785.dumps(body)

    def _hashedrekord_body(self, spec: dict[str, Any]) -> bytes:
        digest_algorithm = spec["data"]["hash"]["algorithm"]
        digest_hex = spec["data"]["hash"]["value"]
        if digest_algorithm != "sha256" or len(bytes.fromhex(digest_hex)) != 32:
            raise rekor_error(400, f"unsupported hash {digest_algorithm!r}")
        signature = spec["signature"]["content"]
        verifier = spec["signature"]["publicKey"]["content"]
        try:
            verify_signature(
                self._verifier_key(verifier),
                base64.b64decode(signature),
                bytes.fromhex(digest_hex),
                prehashed=True,
            )
        except InvalidSignature as exc:
            raise rekor_error(
                400,
                "verifying signature: invalid signature when validating ASN.1 encoded signature",
            ) from exc
        body: dict[str, Any] = {
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": digest_hex.lower()}},
                "signature": {"content": signature, "publicKey": {"content": verifier}},
            },
        }
        return rfc8785.dumps(body)

    def checkpoint(self, size: int, root: bytes) -> str:
        """A signed checkpoint note for the tree of ``size`` leaves with ``root``."""
        note = f"{REKOR_NAME} - {REKOR_TREE_ID}\n{size}\n{b64(root)}\n"
        signature = self.rekor_key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
        return f"{note}\n\u2014 {REKOR_NAME} {b64(self.rekor_log_id[:4] + signature)}\n"

    def _entry_json(self, entry: _Entry) -> dict[str, Any]:
        with self._lock:
            leaves = list(self._leaves)
        root = merkle_root(leaves)
        payload: dict[str, Any] = {
            "body": b64(entry.body),
            "integratedTime": entry.integrated_time,
            "logID": self.rekor_log_id.hex(),
            "logIndex": entry.log_index,
        }
        signed_entry_timestamp = self.rekor_key.sign(
            rfc8785.dumps(payload), ec.ECDSA(hashes.SHA256())
        )
        return {
            entry.uuid: payload
            | {
                "verification": {
                    "inclusionProof": {
                        "checkpoint": self.checkpoint(len(leaves), root),
                        "hashes": [h.hex() for h in inclusion_proof(entry.log_index, leaves)],
                        "logIndex": entry.log_index,
                        "rootHash": root.hex(),
                        "treeSize": len(leaves),
                    },
                    "signedEntryTimestamp": b64(signed_entry_timestamp),
                }
            }
        }

    def _create_entry(self, body: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
        try:
            proposed = json.loads(body)
        except ValueError as exc:
            raise rekor_error(400, f"parsing request body: {exc}") from exc
        if not isinstance(proposed, dict):
            raise rekor_error(400, "the request body must be a proposed entry")
        canonical = self._canonical_body(proposed)
        hashed = leaf_hash(canonical)
        uuid = f"{REKOR_TREE_ID:016x}{hashed.hex()}"
        location = f"/api/v1/log/entries/{uuid}"
        with self._lock:
            if uuid in self._entries:
                raise rekor_error(
                    409,
                    f"an equivalent entry already exists in the transparency log with UUID {uuid}",
                    {"Location": location, "ETag": uuid},
                )
            entry = _Entry(uuid, len(self._leaves), canonical, int(time.time()))
            self._leaves.append(hashed)
            self._entries[uuid] = entry
            self._by_index[entry.log_index] = uuid
        return 201, self._entry_json(entry), {"Location": location, "ETag": uuid}

    def _get_entry(self, uuid: str | None) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            entry = self._entries.get(uuid or "")
        if entry is None:
            raise rekor_error(404, "entry not found")
        return 200, self._entry_json(entry), {}

    def _log_info(self) -> dict[str, Any]:
        with self._lock:
            leaves = list(self._leaves)
        root = merkle_root(leaves)
        return {
            "rootHash": root.hex(),
            "treeSize": len(leaves),
            "signedTreeHead": self.checkpoint(len(leaves), root),
            "treeID": str(REKOR_TREE_ID),
            "inactiveShards": [],
        }

    # --- trust documents ---

    def _log_instance(self, key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
        public = key.public_key()
        return {
            "baseUrl": self.url,
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": b64(spki_der(public)),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": {"start": iso(self.started)},
            },
            "logId": {"keyId": b64(key_id(public))},
        }

    def trusted_root(self, *, tsa_chains: list[list[bytes]] = []) -> dict[str, Any]:  # noqa: B006
        """The ``trustedroot+json;version=0.1`` of this instance.

        ``tsa_chains`` are timestamp authorities' certificate chains, DER, leaf first.
        """
        timestamp_authorities = []
        for chain in tsa_chains:
            certificates = [x509.load_der_x509_certificate(der) for der in chain]
            root = certificates[-1]
            organization = root.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
            common_name = root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            timestamp_authorities.append(
                {
                    "subject": {
                        "organization": str(organization[0].value) if organization else "",
                        "commonName": str(common_name[0].value) if common_name else "",
                    },
                    "certChain": {"certificates": [{"rawBytes": b64(der)} for der in chain]},
                    "validFor": {
                        "start": iso(min(cert.not_valid_before_utc for cert in certificates))
                    },
                }
            )
        return {
            "mediaType": TRUSTED_ROOT_MEDIA_TYPE,
            "tlogs": [self._log_instance(self.rekor_key)] if self.rekor else [],
            "certificateAuthorities": [
                {
                    "subject": {"organization": self.ca_org, "commonName": "sigstore"},
                    "uri": self.url,
                    "certChain": {"certificates": [{"rawBytes": b64(self.ca_der)}]},
                    "validFor": {"start": iso(self.started)},
                }
            ],
            "ctlogs": [self._log_instance(self.ct_key)] if self.ct_log else [],
            "timestampAuthorities": timestamp_authorities,
        }

    def client_trust_config(
        self,
        *,
        tsa_url: str | None = None,
        tsa_chains: list[list[bytes]] = [],  # noqa: B006
    ) -> dict[str, Any]:
        """A ``clienttrustconfig.v0.1`` for this instance (and a TSA, when given)."""

        def service(url: str) -> dict[str, Any]:
            return {
                "url": url,
                "majorApiVersion": 1,
                "validFor": {"start": iso(self.started)},
                "operator": "local",
            }

        return {
            "mediaType": CLIENT_TRUST_CONFIG_MEDIA_TYPE,
            "trustedRoot": self.trusted_root(tsa_chains=tsa_chains),
            "signingConfig": {
                "mediaType": SIGNING_CONFIG_MEDIA_TYPE,
                "caUrls": [service(self.url)],
                "oidcUrls": [],
                "rekorTlogUrls": [service(self.url)] if self.rekor else [],
                "tsaUrls": [service(tsa_url)] if tsa_url else [],
                "rekorTlogConfig": {"selector": "ANY"},
                "tsaConfig": {"selector": "ANY"},
            },
        }

    # --- HTTP ---

    def _route(
        self, method: str, path: str, headers: Any, body: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        route, _, query = path.partition("?")
        if method == "POST" and route == "/api/v2/signingCert":
            return self._signing_cert(headers, body)
        if method == "GET" and route == "/api/v2/trustBundle":
            return 200, self._trust_bundle(), {}
        if self.rekor and route.startswith("/api/v1/log"):
            if method == "POST" and route == "/api/v1/log/entries":
                return self._create_entry(body)
            if method == "GET" and route == "/api/v1/log":
                return 200, self._log_info(), {}
            if method == "GET" and route.startswith("/api/v1/log/entries/"):
                return self._get_entry(route.rsplit("/", 1)[1])
            if method == "GET" and route == "/api/v1/log/entries":
                values = urllib.parse.parse_qs(query).get("logIndex", [""])
                if not values[-1].isdigit():
                    raise rekor_error(400, "logIndex must be a non-negative integer")
                with self._lock:
                    uuid = self._by_index.get(int(values[-1]))
                return self._get_entry(uuid)
        raise HTTPError(404, {"code": 404, "message": "Not Found"})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        instance = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                route = self.path.split("?")[0]
                if method == "GET" and instance.rekor and route == "/api/v1/log/publicKey":
                    pem = instance.rekor_key.public_key().public_bytes(
                        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                    )
                    self._send(200, pem, "application/x-pem-file", {})
                    return
                try:
                    status, document, headers = instance._route(
                        method, self.path, self.headers, body
                    )
                except HTTPError as exc:
                    status, document, headers = exc.status, exc.body, exc.headers
                except Exception as exc:  # a bug in the fake: answer like a server would
                    status, document, headers = 500, {"code": 13, "message": repr(exc)}, {}
                self._send(status, json.dumps(document).encode(), "application/json", headers)

            def _send(
                self, status: int, body: bytes, content_type: str, headers: dict[str, str]
            ) -> None:
                instance.requests.append(Seen(self.command, self.path, status))
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
