"""Signing and verifying Sigstore bundles: the only module that imports ``sigstore``.

Three kinds of instance, as GitHub's toolkit chooses them (``endpoints.ts``):

- public good (public repositories): Fulcio + Rekor, through sigstore-python;
- GitHub's own instance (private and internal repositories, or ``private-signing``):
  Fulcio + an RFC 3161 timestamp authority and no transparency log, a shape
  sigstore-python 4.5 can neither sign nor verify, so it is built here on
  ``cryptography`` and ``rfc3161-client``;
- a custom instance from a client trust config: through sigstore-python when it lists a
  transparency log, else like GitHub's.

Every bundle is verified before anything is uploaded or pushed.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import functools
import importlib.resources
import json
import logging
import struct
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
import tenacity
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
)
from cryptography.x509.verification import VerificationError as X509VerificationError
from rfc3161_client import (
    HashAlgorithm,
    TimestampRequestBuilder,
    TimeStampResponse,
    VerifierBuilder,
    decode_timestamp_response,
)
from rfc3161_client import VerificationError as TimestampVerificationError

from attest import _http
from attest.errors import AttestError, one_line
from attest.oci.artifact import BUNDLE_V03, IN_TOTO_PAYLOAD_TYPE

_logger = logging.getLogger(__name__)

__all__ = [
    "BUNDLE_V03",
    "IN_TOTO_PAYLOAD_TYPE",
    "Instance",
    "InstanceKind",
    "SignedBundle",
    "SigningError",
    "VerificationError",
    "VerifiedBundle",
    "default_trusted_roots",
    "github_instance",
    "instance_from_trust_config",
    "public_good_instance",
    "sign",
    "verify_bundle",
]

GITHUB_ORGANIZATION = "GitHub, Inc."
#: Seconds one signing attempt may take before it is abandoned and retried.
_SIGN_DEADLINE = 60.0
_SIGN_ATTEMPTS = 3


class SigningError(AttestError):
    """Signing failed (Fulcio, the timestamp authority or Rekor)."""


class VerificationError(AttestError):
    """A bundle does not verify."""


class InstanceKind(enum.Enum):
    PUBLIC_GOOD = "public-good"
    GITHUB = "github"
    CUSTOM = "custom"


@dataclass(frozen=True)
class Instance:
    """Where to sign, and what verifies the result."""

    kind: InstanceKind
    fulcio_url: str
    tsa_urls: tuple[str, ...] = ()
    #: The client trust config for sigstore-python, when the instance has a transparency log.
    trust_config: bytes | None = field(default=None, repr=False)
    #: Trusted roots (JSON) our own bundles must verify against; empty for public good,
    #: whose root comes from Sigstore's TUF repository.
    trusted_roots: tuple[bytes, ...] = field(default=(), repr=False)

    @property
    def has_transparency_log(self) -> bool:
        return self.trust_config is not None or self.kind is InstanceKind.PUBLIC_GOOD

    @property
    def display_name(self) -> str:
        return {
            InstanceKind.PUBLIC_GOOD: "Public Good",
            InstanceKind.GITHUB: "GitHub",
            InstanceKind.CUSTOM: "custom",
        }[self.kind] + " Sigstore instance"


@dataclass(frozen=True)
class SignedBundle:
    bundle: bytes
    certificate: x509.Certificate
    tlog_index: int | None
    instance: Instance


@dataclass(frozen=True)
class VerifiedBundle:
    payload_type: str
    payload: bytes
    certificate: x509.Certificate
    #: The earliest verified time (Rekor integrated time or RFC 3161 genTime).
    signed_at: dt.datetime
    instance: str
    tlog_index: int | None


# -- choosing the instance -------------------------------------------------------------------


def public_good_instance(*, trust_config: bytes | None = None) -> Instance:
    """Public good; ``trust_config`` replaces its endpoints (tests, mirrors)."""
    if trust_config is not None:
        return instance_from_trust_config(
            trust_config, source="public good trust config", kind=InstanceKind.PUBLIC_GOOD
        )
    return Instance(InstanceKind.PUBLIC_GOOD, "https://fulcio.sigstore.dev")


def github_instance(server_url: str, *, trust_config: bytes | None = None) -> Instance:
    """GitHub's instance for github.com or a ``*.ghe.com`` tenant (toolkit ``endpoints.ts``);
    ``trust_config`` replaces its endpoints (tests, GitHub-compatible private setups)."""
    if trust_config is not None:
        return instance_from_trust_config(
            trust_config, source="GitHub trust config", kind=InstanceKind.GITHUB
        )
    host = urlsplit(server_url).hostname or "github.com"
    base = "githubapp.com" if host == "github.com" else host
    roots: tuple[bytes, ...] = ()
    if base == "githubapp.com":
        roots = (_data("github-trusted-root.json"),)
    return Instance(
        InstanceKind.GITHUB,
        f"https://fulcio.{base}",
        (f"https://timestamp.{base}/api/v1/timestamp",),
        trusted_roots=roots,
    )


def instance_from_trust_config(
    document: bytes, *, source: str, kind: InstanceKind = InstanceKind.CUSTOM
) -> Instance:
    """An instance from a client trust config (``clienttrustconfig.v0.1``)."""
    try:
        config = json.loads(document)
        root = config["trustedRoot"]
        signing = config["signingConfig"]
        ca_urls = [entry["url"] for entry in signing.get("caUrls", [])]
        tsa_urls = tuple(entry["url"] for entry in signing.get("tsaUrls", []))
        has_log = bool(signing.get("rekorTlogUrls"))
    except (ValueError, KeyError, TypeError) as exc:
        raise AttestError(
            f"{source}: not a Sigstore client trust config ({exc})",
            hint="expected {trustedRoot, signingConfig} as sigstore-python's --trust-config",
        ) from exc
    if not ca_urls:
        raise AttestError(f"{source}: the signing config lists no certificate authority")
    if not has_log and not tsa_urls:
        raise AttestError(
            f"{source}: the signing config has neither a transparency log nor a timestamp "
            "authority, so no signature time could be verified"
        )
    if has_log:
        _load_client_trust_config(document, source)  # fail now, not mid-run
    return Instance(
        kind,
        ca_urls[0],
        tsa_urls,
        trust_config=document if has_log else None,
        trusted_roots=(json.dumps(root).encode(),),
    )


def _data(name: str) -> bytes:
    return importlib.resources.files("attest").joinpath("_data", name).read_bytes()


def default_trusted_roots() -> list[bytes]:
    """Public good's root as embedded in sigstore-python, and GitHub's (both offline copies)."""
    store = importlib.resources.files("sigstore").joinpath(
        "_store", "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev", "trusted_root.json"
    )
    return [store.read_bytes(), _data("github-trusted-root.json")]


# -- signing ---------------------------------------------------------------------------------


def sign(statement: bytes, *, instance: Instance, identity_token: str) -> SignedBundle:
    """Sign the statement's exact bytes as DSSE, then verify the bundle before returning it."""
    signer = _sign_with_log if instance.has_transparency_log else _sign_with_timestamp
    bundle = _retrying(lambda: signer(statement, instance, identity_token), instance)
    verified = _verify(bundle, _roots_for(instance))
    if verified.payload != statement or verified.payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise SigningError("the signed bundle does not carry the statement we signed")
    return SignedBundle(bundle, verified.certificate, verified.tlog_index, instance)


_T = TypeVar("_T")


def _retrying(attempt: Callable[[], _T], instance: Instance) -> _T:
    """Bounded attempts, each under a deadline: sigstore-python sets no timeout on
    Fulcio and Rekor. A fresh key and certificate are made for every attempt."""

    def bounded() -> _T:
        return _with_deadline(attempt, _SIGN_DEADLINE)

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(_SIGN_ATTEMPTS),
        wait=tenacity.wait_exponential(multiplier=0.5, max=4),
        retry=tenacity.retry_if_exception(_transient),
        before_sleep=lambda state: _logger.warning(
            "signing on the %s failed (%s); retrying",
            instance.display_name,
            state.outcome.exception() if state.outcome else "?",
        ),
        reraise=True,
    )
    try:
        return retrying(bounded)
    except AttestError:
        raise
    except Exception as exc:
        raise SigningError(
            f"signing on the {instance.display_name} failed: {_describe(exc)}"
        ) from exc


def _transient(exc: BaseException) -> bool:
    if _http.untrusted_certificate(exc) is not None:
        return False
    if isinstance(exc, _TransientError | TimeoutError | requests.ConnectionError):
        return True
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return exc.response.status_code >= 500 or exc.response.status_code in (408, 429)
    # sigstore-python's own client errors carry no type we may import; their text does.
    text = str(exc)
    return any(word in text for word in ("timed out", "Connection", " 50", " 429"))


class _TransientError(SigningError):
    """A failure worth another attempt (a 5xx, a timeout)."""


def _describe(exc: BaseException) -> str:
    if _http.untrusted_certificate(exc) is not None:
        return _http.describe_failure(exc)
    return one_line(str(exc) or type(exc).__name__)


def _with_deadline(function: Callable[[], _T], seconds: float) -> _T:
    result: list[_T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            result.append(function())
        except BaseException as exc:  # handed over to the caller's thread
            failure.append(exc)

    # A daemon thread: an abandoned attempt must not keep the process alive.
    thread = threading.Thread(target=target, name="attest-sign", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {seconds:.0f} s")
    if failure:
        raise failure[0]
    return result[0]


def _sign_with_log(statement: bytes, instance: Instance, identity_token: str) -> bytes:
    from sigstore.dsse import Statement
    from sigstore.errors import Error as SigstoreError
    from sigstore.oidc import IdentityError, IdentityToken
    from sigstore.sign import SigningContext

    try:
        if instance.trust_config is not None:
            config = _load_client_trust_config(instance.trust_config, "trust config")
        else:
            config = _production_trust_config()
        context = SigningContext.from_trust_config(config)
        token = IdentityToken(identity_token)
    except IdentityError as exc:
        raise SigningError(f"the identity token is not usable: {exc}") from exc
    except SigstoreError as exc:
        raise SigningError(f"cannot use the {instance.display_name}: {exc}") from exc
    with context.signer(token, cache=True) as signer:
        bundle = signer.sign_dsse(Statement(statement))
    return bundle.to_json().encode()


@functools.cache
def _production_trust_config() -> Any:
    """Public good's client trust config, refreshed from its TUF repository once a run."""
    from sigstore.models import ClientTrustConfig

    return ClientTrustConfig.production()


def _load_client_trust_config(document: bytes, source: str) -> Any:
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import ClientTrustConfig

    try:
        return ClientTrustConfig.from_json(document.decode())
    except (SigstoreError, ValueError) as exc:
        raise AttestError(f"{source}: not a usable Sigstore client trust config: {exc}") from exc


def _sign_with_timestamp(statement: bytes, instance: Instance, identity_token: str) -> bytes:
    """Fulcio certificate, DSSE signature, RFC 3161 timestamp; no transparency log.

    The bundle has the shape of GitHub's own: v0.3, one certificate, no tlogEntries.
    """
    session = _http.new_session()
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _fulcio_certificate(session, instance.fulcio_url, key, identity_token)
    signature = key.sign(_pae(IN_TOTO_PAYLOAD_TYPE, statement), ec.ECDSA(hashes.SHA256()))
    timestamps = [_timestamp(session, url, signature) for url in instance.tsa_urls]
    bundle = {
        "mediaType": BUNDLE_V03,
        "verificationMaterial": {
            "timestampVerificationData": {
                "rfc3161Timestamps": [
                    {"signedTimestamp": base64.b64encode(t).decode()} for t in timestamps
                ]
            },
            "certificate": {
                "rawBytes": base64.b64encode(
                    certificate.public_bytes(serialization.Encoding.DER)
                ).decode()
            },
        },
        "dsseEnvelope": {
            "payload": base64.b64encode(statement).decode(),
            "payloadType": IN_TOTO_PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(signature).decode()}],
        },
    }
    return json.dumps(bundle, separators=(",", ":")).encode()


def _fulcio_certificate(
    session: requests.Session, fulcio_url: str, key: ec.EllipticCurvePrivateKey, token: str
) -> x509.Certificate:
    """Fulcio v2 ``signingCert`` with a CSR; embedded and detached SCT replies both accepted."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    body = {
        "certificateSigningRequest": base64.b64encode(
            csr.public_bytes(serialization.Encoding.PEM)
        ).decode()
    }
    url = fulcio_url.rstrip("/") + "/api/v2/signingCert"
    response = _http.send(
        session,
        "POST",
        url,
        json=body,
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    if response.status_code >= 500:
        raise _TransientError(f"Fulcio answered {response.status_code}")
    if response.status_code not in (200, 201):
        raise SigningError(
            f"Fulcio refused the certificate request: {response.status_code} {_excerpt(response)}",
            hint="check that the workflow has `permissions: id-token: write`",
        )
    try:
        reply = response.json()
        signed = reply.get("signedCertificateEmbeddedSct") or reply["signedCertificateDetachedSct"]
        chain = signed["chain"]["certificates"]
        leaf = x509.load_pem_x509_certificate(chain[0].encode())
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise SigningError(
            f"Fulcio's reply holds no certificate chain: {_excerpt(response)}"
        ) from exc
    if leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise SigningError("Fulcio issued a certificate for another key")
    return leaf


def _timestamp(session: requests.Session, url: str, signature: bytes) -> bytes:
    """An RFC 3161 timestamp over the signature, with a nonce we check."""
    request = (
        TimestampRequestBuilder()
        .hash_algorithm(HashAlgorithm.SHA256)
        .data(signature)
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
    )
    response = _http.send(
        session,
        "POST",
        url,
        data=request.as_bytes(),
        headers={"Content-Type": "application/timestamp-query"},
    )
    if response.status_code >= 500:
        raise _TransientError(f"the timestamp authority answered {response.status_code}")
    if response.status_code != 200:
        raise SigningError(
            f"the timestamp authority {url} refused: {response.status_code} {_excerpt(response)}"
        )
    try:
        decoded = decode_timestamp_response(response.content)
    except ValueError as exc:
        raise SigningError(f"the timestamp authority {url} sent no timestamp: {exc}") from exc
    if decoded.status != 0:
        raise SigningError(f"the timestamp authority {url} did not grant a timestamp")
    if decoded.tst_info.nonce != request.nonce:
        raise SigningError(f"the timestamp from {url} answers another request (nonce mismatch)")
    return response.content


def _excerpt(response: requests.Response) -> str:
    return " ".join(response.content[:300].decode("utf-8", "replace").split())


def _pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


# -- verifying -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Root:
    """One trusted root: its JSON (for what sigstore-python does not expose) and its object."""

    document: dict[str, Any] | None
    sigstore: Any


def _roots_for(instance: Instance) -> list[_Root]:
    if instance.trusted_roots:
        return [_parse_root(d) for d in instance.trusted_roots]
    if instance.kind is InstanceKind.GITHUB:
        # A GHE.com tenant's instance: the trust material its services publish.
        return [_parse_root(_published_root(instance))]
    # Public good: the root Sigstore's TUF repository serves now.
    return [_Root(None, _production_trust_config().trusted_root)]


def _published_root(instance: Instance) -> bytes:
    """A trusted root from Fulcio's ``/api/v2/trustBundle`` and each TSA's ``/certchain``
    (what ``sigstore trust-instance`` records for an instance without a TUF repository)."""
    session = _http.new_session()

    def chain(url: str, pems: list[str]) -> dict[str, Any]:
        certificates = [x509.load_pem_x509_certificate(p.encode()) for p in pems]
        return {
            "subject": {"organization": GITHUB_ORGANIZATION, "commonName": urlsplit(url).netloc},
            "uri": url,
            "certChain": {
                "certificates": [
                    {
                        "rawBytes": base64.b64encode(
                            c.public_bytes(serialization.Encoding.DER)
                        ).decode()
                    }
                    for c in certificates
                ]
            },
            "validFor": {"start": "1970-01-01T00:00:00Z"},
        }

    def get(url: str) -> requests.Response:
        response = _http.send(session, "GET", url)
        if response.status_code != 200:
            raise SigningError(f"cannot read the trust material at {url}: {response.status_code}")
        return response

    try:
        bundle = get(instance.fulcio_url.rstrip("/") + "/api/v2/trustBundle").json()
        authorities = [chain(instance.fulcio_url, c["certificates"]) for c in bundle["chains"]]
        timestamp_authorities = []
        for url in instance.tsa_urls:
            text = get(url.rstrip("/") + "/certchain").text
            pems = [
                "-----BEGIN CERTIFICATE-----" + part
                for part in text.split("-----BEGIN CERTIFICATE-----")[1:]
            ]
            timestamp_authorities.append(chain(url, pems))
    except (ValueError, KeyError, TypeError) as exc:
        raise SigningError(
            f"the {instance.display_name} publishes no usable trust material"
        ) from exc
    root = {
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [],
        "ctlogs": [],
        "certificateAuthorities": authorities,
        "timestampAuthorities": timestamp_authorities,
    }
    return json.dumps(root).encode()


# Kept by content: verifying several bundles (an image's referrers) parses each root once.
@functools.lru_cache(maxsize=16)
def _parse_root(document: bytes) -> _Root:
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import TrustedRoot

    try:
        parsed = json.loads(document)
    except ValueError as exc:
        raise AttestError(f"a trusted root is not JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise AttestError("a trusted root is not a JSON object")
    # Protobuf JSON leaves empty lists out (GitHub's root has no tlogs); the model needs them.
    complete = {"tlogs": [], "ctlogs": [], "timestampAuthorities": [], **parsed}
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "trusted_root.json"
        path.write_text(json.dumps(complete))
        try:
            root = TrustedRoot.from_file(str(path))
        except (SigstoreError, ValueError) as exc:
            raise AttestError(f"a trusted root cannot be used: {exc}") from exc
    return _Root(parsed, root)


def verify_bundle(bundle: bytes, *, trusted_roots: Sequence[bytes]) -> VerifiedBundle:
    """Cryptographic verification of a bundle against any of the trusted roots.

    Signature, certificate chain at the verified signing time, SCT where the root has CT
    logs, transparency log proof where present, and every RFC 3161 timestamp. Identity
    is the caller's to check on the returned certificate.
    """
    return _verify(bundle, [_parse_root(r) for r in trusted_roots])


def _verify(bundle: bytes, roots: Sequence[_Root]) -> VerifiedBundle:
    try:
        parsed = json.loads(bundle)
        material = parsed["verificationMaterial"]
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationError(f"not a Sigstore bundle: {exc}") from exc
    with_log = bool(material.get("tlogEntries"))
    reasons = []
    for root in roots:
        try:
            if with_log:
                return _verify_with_log(bundle, parsed, root)
            return _verify_with_timestamps(parsed, root)
        except VerificationError as exc:
            reasons.append(exc.message)
    if not reasons:
        raise VerificationError("no trusted root to verify against")
    unique = list(dict.fromkeys(reasons))
    raise VerificationError("bundle does not verify: " + "; ".join(unique))


def _verify_with_log(bundle: bytes, parsed: dict[str, Any], root: _Root) -> VerifiedBundle:
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import Bundle
    from sigstore.verify import Verifier

    try:
        loaded = Bundle.from_json(bundle)
        payload_type, payload = Verifier(trusted_root=root.sigstore).verify_dsse(
            loaded, _IdentityCheckedByCaller()
        )
    except (SigstoreError, ValueError) as exc:
        raise VerificationError(_describe(exc)) from exc
    certificate = loaded.signing_certificate
    entry = parsed["verificationMaterial"]["tlogEntries"][0]
    times = []
    if entry.get("integratedTime") and entry.get("inclusionPromise"):
        times.append(dt.datetime.fromtimestamp(int(entry["integratedTime"]), dt.UTC))
    # sigstore-python drops a timestamp it cannot verify when Rekor's time exists:
    # a timestamp in our bundles must verify, whatever else does.
    signature = base64.b64decode(parsed["dsseEnvelope"]["signatures"][0]["sig"])
    times += _verified_timestamps(parsed, signature, root, required=False)
    return VerifiedBundle(
        payload_type=payload_type,
        payload=payload,
        certificate=certificate,
        signed_at=min(times) if times else dt.datetime.now(dt.UTC),
        instance=_instance_name(certificate),
        tlog_index=int(entry.get("logIndex", 0)),
    )


class _IdentityCheckedByCaller:
    """A sigstore verification policy that defers identity to attest.identity."""

    def verify(self, cert: x509.Certificate) -> None:
        return None


def _verify_with_timestamps(parsed: dict[str, Any], root: _Root) -> VerifiedBundle:
    """What sigstore-python would check, for the no-log shape it refuses."""
    material = parsed["verificationMaterial"]
    try:
        if "certificate" in material:
            raw = material["certificate"]["rawBytes"]
        else:
            raw = material["x509CertificateChain"]["certificates"][0]["rawBytes"]
        certificate = x509.load_der_x509_certificate(base64.b64decode(raw))
        envelope = parsed["dsseEnvelope"]
        payload = base64.b64decode(envelope["payload"])
        payload_type = envelope["payloadType"]
        signatures = envelope["signatures"]
        if len(signatures) != 1:
            raise VerificationError(f"expected one DSSE signature, found {len(signatures)}")
        signature = base64.b64decode(signatures[0]["sig"])
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise VerificationError(f"malformed bundle: {exc}") from exc
    times = _verified_timestamps(parsed, signature, root, required=True)
    for when in times:
        _verify_chain(certificate, root, when)
    _verify_sct(certificate, root)
    _check_usage(certificate)
    public_key = certificate.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise VerificationError("the certificate's key is not an ECDSA key")
    try:
        public_key.verify(signature, _pae(payload_type, payload), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise VerificationError("DSSE: invalid signature") from exc
    return VerifiedBundle(
        payload_type=payload_type,
        payload=payload,
        certificate=certificate,
        signed_at=min(times),
        instance=_instance_name(certificate),
        tlog_index=None,
    )


def _verified_timestamps(
    parsed: dict[str, Any], signature: bytes, root: _Root, *, required: bool
) -> list[dt.datetime]:
    """Every RFC 3161 timestamp must verify against one of the root's authorities."""
    data = parsed["verificationMaterial"].get("timestampVerificationData") or {}
    encoded = [t["signedTimestamp"] for t in data.get("rfc3161Timestamps", [])]
    if not encoded:
        if required:
            raise VerificationError("no RFC 3161 timestamp to establish the signing time")
        return []
    authorities = root.sigstore.get_timestamp_authorities()
    if not authorities:
        raise VerificationError("the bundle has a timestamp but the trusted root lists no TSA")
    if len(set(encoded)) != len(encoded) or len(encoded) > 32:
        raise VerificationError("duplicate or too many timestamps")
    times = []
    for value in encoded:
        try:
            response = decode_timestamp_response(base64.b64decode(value))
        except ValueError as exc:
            raise VerificationError(f"malformed RFC 3161 timestamp: {exc}") from exc
        when = _verify_timestamp(response, signature, authorities)
        if when is None:
            raise VerificationError("an RFC 3161 timestamp is not from a trusted authority")
        times.append(when)
    return times


def _verify_timestamp(
    response: TimeStampResponse, signature: bytes, authorities: Sequence[Any]
) -> dt.datetime | None:
    gen_time: dt.datetime = response.tst_info.gen_time
    if gen_time.tzinfo is None:
        gen_time = gen_time.replace(tzinfo=dt.UTC)
    for authority in authorities:
        chain = authority.certificates(allow_expired=True)
        if len(chain) < 2:
            continue
        builder = VerifierBuilder().tsa_certificate(chain[0]).add_root_certificate(chain[-1])
        for intermediate in chain[1:-1]:
            builder = builder.add_intermediate_certificate(intermediate)
        try:
            builder.build().verify_message(response, signature)
        except TimestampVerificationError:
            continue
        start, end = authority.validity_period_start, authority.validity_period_end
        if (start is None or _utc(start) <= gen_time) and (end is None or gen_time < _utc(end)):
            return gen_time
    return None


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _verify_chain(certificate: x509.Certificate, root: _Root, when: dt.datetime) -> None:
    # As sigstore-python: every CA certificate of the root is an anchor; Fulcio leaves carry
    # the code-signing EKU, which webpki's client policy would refuse.
    anchors = root.sigstore.get_fulcio_certs()
    ca_policy = ExtensionPolicy.webpki_defaults_ca().may_be_present(
        x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None
    )
    ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None
    )
    verifier = (
        PolicyBuilder()
        .store(Store(anchors))
        .time(when)
        .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
        .build_client_verifier()
    )
    try:
        verifier.verify(certificate, [])
    except (X509VerificationError, ValueError) as exc:
        raise VerificationError(f"certificate chain at {when.isoformat()}: {exc}") from exc


def _check_usage(certificate: x509.Certificate) -> None:
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        extended = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise VerificationError(f"the certificate lacks {exc.oid.dotted_string}") from exc
    if not usage.digital_signature or ExtendedKeyUsageOID.CODE_SIGNING not in extended:
        raise VerificationError("the certificate is not for code signing")


def _verify_sct(certificate: x509.Certificate, root: _Root) -> None:
    """RFC 6962 §3.2: an embedded SCT signed by a CT log of the root, where it has any."""
    ctlogs = (root.document or {}).get("ctlogs") or []
    if not ctlogs:
        return
    try:
        scts = certificate.extensions.get_extension_for_class(
            x509.PrecertificateSignedCertificateTimestamps
        ).value
    except x509.ExtensionNotFound as exc:
        raise VerificationError("the certificate has no signed certificate timestamp") from exc
    keys = {}
    for log in ctlogs:
        raw = base64.b64decode(log["publicKey"]["rawBytes"])
        keys[base64.b64decode(log["logId"]["keyId"])] = serialization.load_der_public_key(raw)
    issuer_key_hash = _issuer_key_hash(certificate, root)
    tbs = certificate.tbs_precertificate_bytes
    for sct in scts:
        key = keys.get(sct.log_id)
        if key is None or not isinstance(key, ec.EllipticCurvePublicKey):
            continue
        timestamp_ms = int(sct.timestamp.replace(tzinfo=dt.UTC).timestamp() * 1000)
        signed = (
            b"\x00\x00"
            + struct.pack(">Q", timestamp_ms)
            + b"\x00\x01"
            + issuer_key_hash
            + len(tbs).to_bytes(3, "big")
            + tbs
            + len(sct.extension_bytes).to_bytes(2, "big")
            + sct.extension_bytes
        )
        try:
            key.verify(sct.signature, signed, ec.ECDSA(hashes.SHA256()))
            return
        except InvalidSignature:
            continue
    raise VerificationError("no signed certificate timestamp from a trusted CT log")


def _issuer_key_hash(certificate: x509.Certificate, root: _Root) -> bytes:
    for candidate in root.sigstore.get_fulcio_certs():
        if candidate.subject == certificate.issuer:
            spki = candidate.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            digest = hashes.Hash(hashes.SHA256())
            digest.update(spki)
            return digest.finalize()
    raise VerificationError("the certificate's issuer is not in the trusted root")


def _instance_name(certificate: x509.Certificate) -> str:
    organizations = certificate.issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    organization = organizations[0].value if organizations else ""
    if organization == "sigstore.dev":
        return InstanceKind.PUBLIC_GOOD.value
    if organization == GITHUB_ORGANIZATION:
        return InstanceKind.GITHUB.value
    return InstanceKind.CUSTOM.value
