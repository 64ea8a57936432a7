"""Who signed a bundle: the Fulcio certificate's identity, and the policy it must meet.

Extensions: sigstore/fulcio ``docs/oid-info.md``. ``1.3.6.1.4.1.57264.1.8`` onwards hold
a DER UTF8String; the deprecated ``.1`` to ``.6`` hold the raw string.

The policy is ``gh attestation verify``'s (cli/cli ``pkg/cmd/attestation/verify/policy.go``
and ``verification/extensions.go``):

* the SAN must match ``--cert-identity`` exactly, or ``--cert-identity-regex``, or else
  ``(?i)^https://<host>/<signer-repo>/``, ``^https://[<host>/]<signer-workflow>``,
  ``(?i)^https://<host>/<repo>/`` or ``(?i)^https://<host>/<owner>/``, the first given;
* the source repository owner URI always equals ``https://<host>/<owner>`` (the owner
  of ``--repo`` when that is given), and the source repository URI equals
  ``https://<host>/<repo>`` with ``--repo``; both ignoring case;
* the issuer equals ``--cert-oidc-issuer`` ignoring case, where the default becomes
  ``https://token.actions.<tenant>.ghe.com`` on a ``<tenant>.ghe.com`` host; an issuer
  that merely starts with the expected one plus ``/`` (an enterprise's custom issuer,
  ``https://token.actions.githubusercontent.com/<slug>``) fails with a hint;
* ``--signer-digest``, ``--source-digest`` and ``--source-ref`` compare ignoring case;
* ``--deny-self-hosted-runners`` requires the runner environment ``github-hosted``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509

from attest.errors import AttestError, UsageError

__all__ = [
    "GHE_TENANT_HOST",
    "GITHUB_HOSTED",
    "GITHUB_ISSUER",
    "IdentityError",
    "IdentityPolicy",
    "fulcio_extensions",
    "san",
    "tenant_issuer",
]

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
#: A GitHub Enterprise Cloud (GHE.com) tenant's host.
GHE_TENANT_HOST = re.compile(r"^(?P<tenant>[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)\.ghe\.com$")
#: The runner environment of GitHub-hosted runners.
GITHUB_HOSTED = "github-hosted"

_FULCIO_ARC = "1.3.6.1.4.1.57264.1."
#: DER UTF8String extensions (fulcio ``docs/oid-info.md``).
_DER_NAMES = {
    8: "issuer",
    9: "build_signer_uri",
    10: "build_signer_digest",
    11: "runner_environment",
    12: "source_repository_uri",
    13: "source_repository_digest",
    14: "source_repository_ref",
    15: "source_repository_identifier",
    16: "source_repository_owner_uri",
    17: "source_repository_owner_identifier",
    18: "build_config_uri",
    19: "build_config_digest",
    20: "build_trigger",
    21: "run_invocation_uri",
    22: "source_repository_visibility_at_signing",
    23: "deployment_environment",
}
#: Deprecated raw-string extensions, by the names sigstore-go gives them.
_RAW_NAMES = {
    1: "github_workflow_issuer",
    2: "github_workflow_trigger",
    3: "github_workflow_sha",
    4: "github_workflow_name",
    5: "github_workflow_repository",
    6: "github_workflow_ref",
}
#: Current names a deprecated extension stands in for when the certificate lacks them.
_FALLBACKS = {
    "issuer": "github_workflow_issuer",
    "build_trigger": "github_workflow_trigger",
    "source_repository_digest": "github_workflow_sha",
    "source_repository_ref": "github_workflow_ref",
}
_UTF8_STRING = 0x0C
#: gh's test for a ``--signer-workflow`` that starts with a host (``verify/policy.go``).
_HOST_PREFIX = re.compile(r"^[a-zA-Z0-9-]+\.[a-zA-Z0-9-]+.*$")


def tenant_issuer(tenant: str) -> str:
    """A GHE.com tenant's OIDC issuer (cli ``verification/extensions.go``)."""
    return f"https://token.actions.{tenant}.ghe.com"


class IdentityError(AttestError):
    """The certificate's identity does not meet the policy; names the field."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        expected: str | None = None,
        found: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.field = field
        self.expected = expected
        self.found = found


def fulcio_extensions(cert: x509.Certificate) -> dict[str, str]:
    """Names to values of the certificate's Fulcio extensions (absent ones left out).

    The deprecated raw extensions appear as ``github_workflow_*``; the issuer, trigger,
    commit and ref fall back to them on certificates issued before the DER ones existed.
    """
    values: dict[str, str] = {}
    for extension in cert.extensions:
        dotted = extension.oid.dotted_string
        if not dotted.startswith(_FULCIO_ARC):
            continue
        arc = dotted[len(_FULCIO_ARC) :]
        if not arc.isdigit() or not isinstance(extension.value, x509.UnrecognizedExtension):
            continue
        number = int(arc)
        raw = extension.value.value
        if number in _DER_NAMES:
            values[_DER_NAMES[number]] = _der_utf8_string(raw, dotted)
        elif number in _RAW_NAMES:
            values[_RAW_NAMES[number]] = _text(raw, dotted)
    for name, deprecated in _FALLBACKS.items():
        if name not in values and deprecated in values:
            values[name] = values[deprecated]
    return values


def _der_utf8_string(data: bytes, oid: str) -> str:
    """The content of one DER UTF8String, definite length in short or long form."""
    if len(data) < 2 or data[0] != _UTF8_STRING:
        raise IdentityError(f"certificate extension {oid} is not a DER UTF8String")
    first = data[1]
    offset = 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        # 0x80 is the indefinite form, which DER forbids; four bytes is 4 GiB.
        if count == 0 or count > 4 or len(data) < offset + count:
            raise IdentityError(f"certificate extension {oid} has a malformed DER length")
        length = int.from_bytes(data[offset : offset + count], "big")
        offset += count
    if len(data) != offset + length:
        raise IdentityError(
            f"certificate extension {oid}: DER length {length} does not match its "
            f"{len(data) - offset} content bytes"
        )
    return _text(data[offset:], oid)


def _text(data: bytes, oid: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IdentityError(f"certificate extension {oid} is not UTF-8") from exc


def san(cert: x509.Certificate) -> str:
    """The certificate's identity: its URI subject alternative name, else its email."""
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound as exc:
        raise IdentityError("the certificate has no subject alternative name") from exc
    for kind in (x509.UniformResourceIdentifier, x509.RFC822Name):
        found = names.get_values_for_type(kind)
        if found:
            return str(found[0])
    raise IdentityError("the certificate has no URI or email subject alternative name")


@dataclass(frozen=True)
class IdentityPolicy:
    """What the signing certificate must say, with ``gh attestation verify``'s semantics.

    ``repository`` and ``signer_repository`` are ``owner/repo``; ``signer_workflow`` is
    ``[host/]owner/repo/path/to/workflow.yml`` (a regular expression, matched from the
    start) or the same as an ``https://`` URL. At most one of ``san``, ``san_regex``,
    ``signer_repository`` and ``signer_workflow``; one of ``owner`` and ``repository``.
    """

    owner: str | None = None
    repository: str | None = None
    signer_workflow: str | None = None
    signer_repository: str | None = None
    signer_digest: str | None = None
    san: str | None = None
    san_regex: str | None = None
    issuer: str = GITHUB_ISSUER
    source_ref: str | None = None
    source_digest: str | None = None
    hostname: str = "github.com"
    deny_self_hosted_runners: bool = False

    def __post_init__(self) -> None:
        if self.owner and self.repository:
            raise UsageError("--owner and --repo cannot be used together")
        if not (self.owner or self.repository):
            raise UsageError("one of --owner or --repo is required")
        if self.owner is not None and not re.fullmatch(r"[^/\s]+", self.owner):
            raise UsageError(f"--owner {self.owner!r} is not an owner name")
        for flag, value in (("--repo", self.repository), ("--signer-repo", self.signer_repository)):
            if value is not None and not re.fullmatch(r"[^/\s]+/[^/\s]+", value):
                raise UsageError(f"{flag} {value!r} is not of the form owner/repo")
        given = [
            flag
            for flag, value in (
                ("--cert-identity", self.san),
                ("--cert-identity-regex", self.san_regex),
                ("--signer-repo", self.signer_repository),
                ("--signer-workflow", self.signer_workflow),
            )
            if value
        ]
        if len(given) > 1:
            raise UsageError(f"{' and '.join(given)} cannot be used together")
        if not self.hostname or not re.fullmatch(r"[A-Za-z0-9.-]+(?::[0-9]+)?", self.hostname):
            raise UsageError(f"--hostname {self.hostname!r} is not a host name")
        if not self.issuer:
            raise UsageError("--cert-oidc-issuer must not be empty")
        for flag, pattern in (
            ("--cert-identity-regex", self.san_regex),
            ("--signer-workflow", self.signer_workflow),
        ):
            if pattern:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise UsageError(
                        f"{flag} {pattern!r} is not a regular expression: {exc}"
                    ) from exc

    @classmethod
    def for_workflow(
        cls, claims: Mapping[str, Any], *, server_url: str, issuer: str
    ) -> IdentityPolicy:
        """The exact identity a bundle signed with these OIDC token claims must carry."""

        def claim(name: str) -> str:
            value = claims.get(name)
            if not isinstance(value, str) or not value:
                raise AttestError(f"the OIDC token has no {name} claim")
            return value

        server = server_url.rstrip("/")
        host = urlsplit(server).netloc
        if not host:
            raise AttestError(f"server URL {server_url!r} has no host")
        signer_digest = claims.get("job_workflow_sha")
        return cls(
            repository=claim("repository"),
            san=f"{server}/{claim('job_workflow_ref')}",
            signer_digest=signer_digest if isinstance(signer_digest, str) else None,
            issuer=issuer,
            source_ref=claim("ref"),
            source_digest=claim("sha"),
            hostname=host,
        )

    # -- what is expected ----------------------------------------------------------------

    @property
    def tenant(self) -> str | None:
        """The GitHub Enterprise Cloud tenant of a ``<tenant>.ghe.com`` host."""
        host = self.hostname.lower()
        return host.removesuffix(".ghe.com") if host.endswith(".ghe.com") else None

    @property
    def expected_owner(self) -> str:
        if self.repository:
            return self.repository.split("/", 1)[0]
        return self.owner or ""

    @property
    def expected_issuer(self) -> str:
        tenant = self.tenant
        if tenant is not None and self.issuer == GITHUB_ISSUER:
            return tenant_issuer(tenant)
        return self.issuer

    @property
    def expected_san_regex(self) -> str | None:
        """The SAN regular expression in force (None when only an exact SAN is)."""
        if self.san or self.san_regex:
            return self.san_regex
        if self.signer_repository:
            return self._url_regex(self.signer_repository)
        if self.signer_workflow:
            return self._signer_workflow_regex(self.signer_workflow)
        if self.repository:
            return self._url_regex(self.repository)
        return self._url_regex(self.expected_owner)

    def _url(self, path: str) -> str:
        return f"https://{self.hostname.lower()}/{path}"

    def _url_regex(self, path: str) -> str:
        # gh interpolates the name unescaped; escaped, it matches the same real names.
        return f"(?i)^{_escape(self._url(path))}/"

    def _signer_workflow_regex(self, workflow: str) -> str:
        workflow = re.sub(r"^https://", "", workflow, flags=re.IGNORECASE)
        if _HOST_PREFIX.match(workflow):
            return f"^https://{workflow}"
        return f"^https://{self.hostname.lower()}/{workflow}"

    # -- the check -----------------------------------------------------------------------

    def check(self, cert: x509.Certificate) -> None:
        """Raise :class:`IdentityError` naming the first field that does not match."""
        found_san = san(cert)
        extensions = fulcio_extensions(cert)
        if self.san and found_san != self.san:
            raise _mismatch("SAN", self.san, found_san)
        regex = self.expected_san_regex
        if regex is not None and not re.search(regex, found_san):
            hint = None
            if not (self.san_regex or self.signer_repository or self.signer_workflow):
                hint = (
                    "an attestation signed by a reusable workflow in another repository "
                    "needs --signer-repo or --signer-workflow"
                )
            raise IdentityError(
                f"certificate SAN {found_san!r} does not match {regex!r}",
                field="SAN",
                expected=regex,
                found=found_san,
                hint=hint,
            )
        if self.deny_self_hosted_runners:
            found = extensions.get("runner_environment", "")
            if found != GITHUB_HOSTED:
                raise _mismatch(
                    "runner_environment",
                    GITHUB_HOSTED,
                    found,
                    hint="signed on a self-hosted runner (--deny-self-hosted-runners)",
                )
        _equal_fold(extensions, "source_repository_owner_uri", self._url(self.expected_owner))
        if self.repository:
            _equal_fold(extensions, "source_repository_uri", self._url(self.repository))
        expected_issuer = self.expected_issuer
        found_issuer = extensions.get("issuer", "")
        if found_issuer.lower() != expected_issuer.lower():
            hint = None
            if found_issuer.startswith(expected_issuer + "/"):
                hint = (
                    "if your enterprise has a custom OIDC issuer policy, "
                    "pass that issuer with --cert-oidc-issuer"
                )
            raise _mismatch("issuer", expected_issuer, found_issuer, hint=hint)
        if self.signer_digest:
            _equal_fold(extensions, "build_signer_digest", self.signer_digest)
        if self.source_digest:
            _equal_fold(extensions, "source_repository_digest", self.source_digest)
        if self.source_ref:
            _equal_fold(extensions, "source_repository_ref", self.source_ref)


def _escape(text: str) -> str:
    """``text`` as a literal in a regular expression, readably (``-`` and ``/`` left alone)."""
    return re.sub(r"([.\\^$*+?{}\[\]|()])", r"\\\1", text)


def _equal_fold(extensions: Mapping[str, str], name: str, expected: str) -> None:
    found = extensions.get(name, "")
    if found.lower() != expected.lower():
        raise _mismatch(name, expected, found)


def _mismatch(field: str, expected: str, found: str, *, hint: str | None = None) -> IdentityError:
    return IdentityError(
        f"certificate {field}: expected {expected!r}, found {found!r}",
        field=field,
        expected=expected,
        found=found,
        hint=hint,
    )
