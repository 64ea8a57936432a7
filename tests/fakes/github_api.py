"""A local GitHub REST API: attestations, repositories and artifact storage records.

It speaks GitHub's wire protocol over plain HTTP on 127.0.0.1::

    with FakeGitHubAPI() as github:
        api = GitHubAPI(github.url, github.token)
        api.create_attestation("octo-org/octo-repo", make_bundle([("app", DIGEST)]))

What GitHub does, it does: JSON error bodies ``{"message", "documentation_url", "status"}``,
``x-ratelimit-*`` headers on every answer (and a 403 with ``x-ratelimit-remaining: 0`` once
``rate_limit`` requests were made before ``rate_limit_reset``), 401 ``Requires
authentication`` / ``Bad credentials``, 404 ``Not Found`` for what the token cannot see, 403
``Resource not accessible by integration`` with ``x-accepted-github-permissions`` when
``permissions`` lacks one, 400 ``Problems parsing JSON``, 422 ``Invalid request.`` from schema
validation, and 422 ``Invalid Argument - duplicate subject in statement``.

Storage records follow GitHub's rules: one per repository of the organization that holds a
build-provenance attestation of the digest (404 ``no artifacts found`` when none does, unless
the body names a ``github_repository``); a second request for the same digest and repository
updates the record; without ``artifact-metadata`` (or ``contents``) write, 404 ``Not Found``.

Tests steer it through ``repositories``, ``permissions``, ``rate_limit_used`` /
``rate_limit_reset``, and scripted faults (:meth:`fail_next`, :meth:`secondary_rate_limit_next`).
Every request is logged in ``requests`` without the token's value.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import string
import threading
import time
import urllib.parse
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.loopback import LoopbackServer

__all__ = [
    "SLSA_PROVENANCE_V1",
    "FakeGitHubAPI",
    "Seen",
    "make_bundle",
]

SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"

DOCS = "https://docs.github.com/rest"
DOC_GET_REPOSITORY = "https://docs.github.com/rest/repos/repos#get-a-repository"
DOC_CREATE_ATTESTATION = "https://docs.github.com/rest/repos/repos#create-an-attestation"
DOC_STORAGE_RECORD = (
    "https://docs.github.com/rest/orgs/artifact-metadata#create-artifact-metadata-storage-record"
)
DOC_PRIMARY_RATE_LIMIT = (
    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-rate-limits"
)
DOC_SECONDARY_RATE_LIMIT = (
    "https://docs.github.com/free-pro-team@latest/rest/overview/"
    "rate-limits-for-the-rest-api#about-secondary-rate-limits"
)

SUPPORTED_API_VERSIONS = ("2022-11-28", "2026-03-10")

DEFAULT_REPOSITORIES: dict[str, dict[str, Any]] = {
    "octo-org/octo-repo": {"owner_type": "Organization", "visibility": "private"},
    "octocat/hello-world": {"owner_type": "User", "visibility": "public"},
}

#: What a job's GITHUB_TOKEN may do, as ``permissions:`` in a workflow names it.
DEFAULT_PERMISSIONS: dict[str, str] = {
    "actions": "read",
    "attestations": "write",
    "artifact-metadata": "write",
    "contents": "read",
    "id-token": "write",
    "metadata": "read",
}

_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_RECORD_STATUSES = ("active", "eol", "deleted")


@dataclass(frozen=True)
class Seen:
    """One request the fake received."""

    method: str
    path: str  # with the query string
    headers: dict[str, str]  # lower-case names; the credential of Authorization is "***"
    json: Any  # the parsed body, or None (no body, or not JSON)
    authorized: bool  # whether it carried the valid token

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class _Fault:
    path_prefix: str
    status: int
    headers: dict[str, str]
    body: Any
    times: int
    method: str | None


@dataclass
class _Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def _error_document(status: int, message: str, documentation_url: str = DOCS) -> dict[str, Any]:
    return {"message": message, "documentation_url": documentation_url, "status": str(status)}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_bundle(
    subjects: Iterable[tuple[str, str]],
    predicate_type: str = SLSA_PROVENANCE_V1,
    *,
    predicate: dict[str, Any] | None = None,
) -> bytes:
    """A Sigstore bundle (v0.3, DSSE) of an in-toto statement about ``subjects``.

    ``subjects`` are ``(name, "sha256:<hex>")`` pairs. The shape is a real bundle's; the
    certificate and signature are placeholders (the API does not verify them here).
    """
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [
            {"name": name, "digest": dict([digest.split(":", 1)])} for name, digest in subjects
        ],
        "predicateType": predicate_type,
        "predicate": predicate if predicate is not None else {"buildDefinition": {}},
    }
    payload = json.dumps(statement, separators=(",", ":")).encode()
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {
            "certificate": {"rawBytes": base64.b64encode(b"placeholder certificate").decode()},
            "tlogEntries": [],
            "timestampVerificationData": {"rfc3161Timestamps": []},
        },
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": "application/vnd.in-toto+json",
            "signatures": [{"sig": base64.b64encode(b"placeholder signature").decode()}],
        },
    }
    return json.dumps(bundle).encode()


def _statement_of(bundle: dict[str, Any]) -> dict[str, Any] | None:
    envelope = bundle.get("dsseEnvelope")
    if not isinstance(envelope, dict) or not isinstance(envelope.get("payload"), str):
        return None
    try:
        statement = json.loads(base64.b64decode(envelope["payload"], validate=True))
    except ValueError:
        return None
    return statement if isinstance(statement, dict) else None


def _subjects_of(statement: dict[str, Any] | None) -> list[tuple[str, str]]:
    """``(name, "alg:hex")`` for every digest of every subject."""
    pairs: list[tuple[str, str]] = []
    subjects = statement.get("subject") if statement else None
    for subject in subjects if isinstance(subjects, list) else []:
        if not isinstance(subject, dict) or not isinstance(subject.get("digest"), dict):
            continue
        name = subject.get("name")
        for alg, value in sorted(subject["digest"].items()):
            pairs.append((name if isinstance(name, str) else "", f"{alg}:{value}"))
    return pairs


def _schema_error(detail: str) -> _Answer:
    """GitHub's answer when a body fails the endpoint's JSON schema."""
    return _json_answer(422, _error_document(422, f"Invalid request.\n\n{detail}"))


def _json_answer(status: int, document: Any, headers: dict[str, str] | None = None) -> _Answer:
    return _Answer(status, json.dumps(document).encode(), dict(headers or {}))


class FakeGitHubAPI(LoopbackServer):
    """GitHub's REST API on ``http://127.0.0.1:<free port>``, for one test."""

    service_name = "fake-github-api"

    def __init__(self, repositories: dict[str, dict[str, Any]] | None = None) -> None:
        alphabet = string.ascii_letters + string.digits
        #: The valid token (a GITHUB_TOKEN is ``ghs_`` and 36 alphanumerics).
        self.token = "ghs_" + "".join(secrets.choice(alphabet) for _ in range(36))
        #: ``"owner/repo"`` -> ``{"owner_type": "Organization"|"User", "visibility": ...}``.
        self.repositories: dict[str, dict[str, Any]] = {
            name: dict(info) for name, info in (repositories or DEFAULT_REPOSITORIES).items()
        }
        #: The token's permissions; delete one or set it to "read" or "none" to refuse it.
        self.permissions: dict[str, str] = dict(DEFAULT_PERMISSIONS)
        #: Stored attestations: ``id``, ``repository``, ``bundle`` (the object), plus
        #: ``predicate_type`` and ``subjects`` (``[(name, "alg:hex")]``) from its statement.
        self.attestations: list[dict[str, Any]] = []
        #: Storage records: ``id``, ``organization``, ``github_repository``, the body's fields,
        #: ``created_at`` and ``updated_at``.
        self.storage_records: list[dict[str, Any]] = []
        self.requests: list[Seen] = []
        self.rate_limit = 1000
        self.rate_limit_used = 0
        self.rate_limit_reset = int(time.time()) + 3600
        self._faults: list[_Fault] = []
        self._next_attestation_id = 1_000_001
        self._next_record_id = 501
        self._lock = threading.Lock()

    # --- lifecycle ---

    # --- scripting ---

    def fail_next(
        self,
        path_prefix: str,
        status: int,
        *,
        headers: dict[str, str] | None = None,
        body: Any = None,
        times: int = 1,
        method: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests whose path starts with ``path_prefix`` so.

        ``body`` is a JSON document, or bytes/str sent as they are; by default GitHub's error
        document for ``status``. ``headers`` override the usual ones (rate-limit headers too).
        """
        with self._lock:
            self._faults.append(
                _Fault(path_prefix, status, dict(headers or {}), body, times, method)
            )

    def secondary_rate_limit_next(
        self, path_prefix: str, *, retry_after: int = 60, times: int = 1, status: int = 403
    ) -> None:
        """GitHub's secondary rate limit: a 403 with ``retry-after`` and its message."""
        message = (
            "You have exceeded a secondary rate limit. Please wait a few minutes before you "
            "try again. If you reach out to GitHub Support for help, please include the "
            "request ID 0000:1111:2222222:3333333:44444444."
        )
        self.fail_next(
            path_prefix,
            status,
            headers={"retry-after": str(retry_after)},
            body=_error_document(status, message, DOC_SECONDARY_RATE_LIMIT),
            times=times,
        )

    def exhaust_rate_limit(self, reset_in: float) -> None:
        """Use up the primary rate limit; it resets ``reset_in`` seconds from now."""
        with self._lock:
            self.rate_limit_used = self.rate_limit
            self.rate_limit_reset = int(time.time() + reset_in)

    def requests_to(self, path: str, method: str | None = None) -> list[Seen]:
        return [
            seen
            for seen in self.requests
            if seen.path.split("?")[0] == path and (method is None or seen.method == method)
        ]

    # --- the API ---

    def _answer(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> _Answer:
        fault = self._take_fault(method, path)
        if fault is not None:
            return self._fault_answer(fault)
        version = headers.get("x-github-api-version")
        if version is not None and version not in SUPPORTED_API_VERSIONS:
            return _json_answer(
                400, _error_document(400, f"API version '{version}' is not supported.")
            )
        credential = _credential(headers.get("authorization", ""))
        if credential is None:
            return _json_answer(401, _error_document(401, "Requires authentication"))
        if credential != self.token:
            return _json_answer(401, _error_document(401, "Bad credentials"))
        if self.rate_limit_used >= self.rate_limit:
            return _json_answer(
                403,
                _error_document(
                    403, "API rate limit exceeded for installation ID 1.", DOC_PRIMARY_RATE_LIMIT
                ),
            )
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        match method, parts:
            case "GET", ["repos", owner, repo]:
                return self._get_repository(f"{owner}/{repo}")
            case "POST", ["repos", owner, repo, "attestations"]:
                return self._create_attestation(f"{owner}/{repo}", raw)
            case "POST", ["orgs", org, "artifacts", "metadata", "storage-record"]:
                return self._create_storage_record(org, raw)
        return _json_answer(404, _error_document(404, "Not Found"))

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if path.startswith(fault.path_prefix) and fault.method in (None, method):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _fault_answer(self, fault: _Fault) -> _Answer:
        if fault.body is None:
            try:
                reason = HTTPStatus(fault.status).phrase
            except ValueError:
                reason = "Error"
            body = json.dumps(_error_document(fault.status, reason)).encode()
        elif isinstance(fault.body, bytes):
            body = fault.body
        elif isinstance(fault.body, str):
            body = fault.body.encode()
        else:
            body = json.dumps(fault.body).encode()
        return _Answer(fault.status, body, dict(fault.headers))

    def _repository(self, full_name: str) -> tuple[str, dict[str, Any]] | None:
        for name, info in self.repositories.items():
            if name.lower() == full_name.lower():
                return name, info
        return None

    def _allowed(self, permission: str, level: str) -> bool:
        granted = self.permissions.get(permission, "none")
        return granted == "write" or (level == "read" and granted == "read")

    def _get_repository(self, full_name: str) -> _Answer:
        found = self._repository(full_name)
        if found is None:
            return _json_answer(404, _error_document(404, "Not Found", DOC_GET_REPOSITORY))
        name, info = found
        owner, repo = name.split("/")
        owner_id = info.get("owner_id", zlib.crc32(owner.encode()) % 10**8)
        repo_id = info.get("id", zlib.crc32(name.encode()) % 10**9)
        visibility = info.get("visibility", "private")
        web = "https://github.com"
        return _json_answer(
            200,
            {
                "id": repo_id,
                "node_id": "R_kgDO" + base64.b64encode(str(repo_id).encode()).decode()[:8],
                "name": repo,
                "full_name": name,
                "private": visibility != "public",
                "owner": {
                    "login": owner,
                    "id": owner_id,
                    "node_id": ("O_kgDO" if info["owner_type"] == "Organization" else "U_kgDO")
                    + base64.b64encode(str(owner_id).encode()).decode()[:8],
                    "avatar_url": f"https://avatars.githubusercontent.com/u/{owner_id}?v=4",
                    "url": f"{self.url}/users/{owner}",
                    "html_url": f"{web}/{owner}",
                    "type": info["owner_type"],
                    "user_view_type": "public",
                    "site_admin": False,
                },
                "html_url": f"{web}/{name}",
                "description": None,
                "fork": False,
                "url": f"{self.url}/repos/{name}",
                "created_at": "2024-01-02T03:04:05Z",
                "updated_at": _now(),
                "pushed_at": _now(),
                "visibility": visibility,
                "default_branch": info.get("default_branch", "main"),
                "archived": False,
                "disabled": False,
            },
        )

    def _create_attestation(self, full_name: str, raw: bytes) -> _Answer:
        found = self._repository(full_name)
        if found is None:
            return _json_answer(404, _error_document(404, "Not Found", DOC_CREATE_ATTESTATION))
        if not self._allowed("attestations", "write"):
            return _json_answer(
                403,
                _error_document(
                    403, "Resource not accessible by integration", DOC_CREATE_ATTESTATION
                ),
                {"x-accepted-github-permissions": "attestations=write"},
            )
        body = _parse_json(raw)
        if body is None:
            return _json_answer(400, _error_document(400, "Problems parsing JSON"))
        if not isinstance(body, dict) or "bundle" not in body:
            return _schema_error('"bundle" wasn\'t supplied.')
        bundle = body["bundle"]
        if not isinstance(bundle, dict):
            return _schema_error(f"For 'properties/bundle', {json.dumps(bundle)} is not an object.")
        if not isinstance(bundle.get("mediaType"), str):
            return _schema_error('"mediaType" wasn\'t supplied.')
        content = [
            k for k in ("dsseEnvelope", "messageSignature") if isinstance(bundle.get(k), dict)
        ]
        if len(content) != 1:
            return _schema_error('No subschema in "oneOf" matched.')
        statement = _statement_of(bundle)
        subjects = _subjects_of(statement)
        if len(set(subjects)) != len(subjects):
            return _json_answer(
                422,
                _error_document(
                    422, "Invalid Argument - duplicate subject in statement", DOC_CREATE_ATTESTATION
                ),
            )
        predicate_type = statement.get("predicateType") if statement else None
        with self._lock:
            identifier = self._next_attestation_id
            self._next_attestation_id += 1
            self.attestations.append(
                {
                    "id": identifier,
                    "repository": found[0],
                    "bundle": bundle,
                    "predicate_type": predicate_type if isinstance(predicate_type, str) else None,
                    "subjects": subjects,
                }
            )
        return _json_answer(201, {"id": identifier})

    def _create_storage_record(self, organization: str, raw: bytes) -> _Answer:
        org_repos = [
            name
            for name, info in self.repositories.items()
            if info.get("owner_type") == "Organization"
            and name.split("/")[0].lower() == organization.lower()
        ]
        if not org_repos:
            return _json_answer(404, _error_document(404, "Not Found", DOC_STORAGE_RECORD))
        body = _parse_json(raw)
        if body is None:
            return _json_answer(400, _error_document(400, "Problems parsing JSON"))
        problem = _storage_record_problem(body)
        if problem:
            return _schema_error(problem)
        digest = body["digest"]
        holders = sorted(
            {
                a["repository"]
                for a in self.attestations
                if a["repository"] in org_repos
                and str(a["predicate_type"] or "").startswith("https://slsa.dev/provenance/")
                and any(d == digest for _, d in a["subjects"])
            }
        )
        named = body.get("github_repository")
        if not holders and isinstance(named, str):
            holders = [
                r
                for r in org_repos
                if r.lower() in (named.lower(), f"{organization}/{named}".lower())
            ]
        if not holders:
            return _json_answer(404, _error_document(404, "no artifacts found", DOC_STORAGE_RECORD))
        if not (self._allowed("artifact-metadata", "write") or self._allowed("contents", "write")):
            return _json_answer(404, _error_document(404, "Not Found", DOC_STORAGE_RECORD))
        fields = {
            key: body.get(key)
            for key in (
                "name",
                "digest",
                "version",
                "registry_url",
                "artifact_url",
                "path",
                "repository",
            )
        }
        fields["status"] = body.get("status", "active")
        records = []
        with self._lock:
            for holder in holders:
                record = next(
                    (
                        r
                        for r in self.storage_records
                        if r["digest"] == digest and r["github_repository"] == holder
                    ),
                    None,
                )
                if record is None:
                    record = {
                        "id": self._next_record_id,
                        "organization": organization,
                        "github_repository": holder,
                        "created_at": _now(),
                    }
                    self._next_record_id += 1
                    self.storage_records.append(record)
                record.update(fields)
                record["updated_at"] = _now()
                records.append(record)
        views = [
            {
                key: record.get(key)
                for key in (
                    "id",
                    "name",
                    "digest",
                    "artifact_url",
                    "registry_url",
                    "repository",
                    "status",
                    "created_at",
                    "updated_at",
                )
            }
            for record in records
        ]
        return _json_answer(200, {"total_count": len(views), "storage_records": views})

    # --- HTTP ---

    def _rate_limit_headers(self, counted: bool) -> dict[str, str]:
        with self._lock:
            now = time.time()
            if now >= self.rate_limit_reset:
                self.rate_limit_used = 0
                self.rate_limit_reset = int(now) + 3600
            if counted and self.rate_limit_used < self.rate_limit:
                self.rate_limit_used += 1
            return {
                "x-ratelimit-limit": str(self.rate_limit),
                "x-ratelimit-remaining": str(max(0, self.rate_limit - self.rate_limit_used)),
                "x-ratelimit-reset": str(self.rate_limit_reset),
                "x-ratelimit-used": str(self.rate_limit_used),
                "x-ratelimit-resource": "core",
            }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                headers = {name.lower(): value for name, value in self.headers.items()}
                credential = _credential(headers.get("authorization", ""))
                logged = dict(headers)
                if "authorization" in logged:
                    scheme = logged["authorization"].split(" ", 1)[0]
                    logged["authorization"] = f"{scheme} ***"
                path = self.path.split("?", 1)[0]
                fake.requests.append(
                    Seen(
                        self.command,
                        self.path,
                        logged,
                        _parse_json(raw) if raw else None,
                        credential == fake.token,
                    )
                )
                # GitHub's clock decides the rate limit before anything else is looked at.
                fake._rate_limit_headers(counted=False)
                answer = fake._answer(self.command, path, headers, raw)
                sent = fake._rate_limit_headers(counted=credential == fake.token)
                sent.update(
                    {
                        "content-type": "application/json; charset=utf-8",
                        "x-github-api-version-selected": headers.get(
                            "x-github-api-version", SUPPORTED_API_VERSIONS[0]
                        ),
                        "x-github-media-type": "github.v3; format=json",
                        "x-github-request-id": "{:04X}:{:04X}:{:06X}:{:06X}:{:08X}".format(
                            *(secrets.randbits(bits) for bits in (16, 16, 24, 24, 32))
                        ),
                    }
                )
                sent.update({name.lower(): value for name, value in answer.headers.items()})
                self.send_response(answer.status)
                for name, value in sent.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _credential(authorization: str) -> str | None:
    """The token of ``Authorization: Bearer <t>`` or ``token <t>`` (GitHub takes both)."""
    scheme, _, credential = authorization.strip().partition(" ")
    if scheme.lower() not in ("bearer", "token") or not credential.strip():
        return None
    return credential.strip()


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _storage_record_problem(body: Any) -> str:
    """What the storage-record schema rejects in ``body``, in GitHub's words ("" when valid)."""
    if not isinstance(body, dict):
        return f"{json.dumps(body)} is not an object."
    for required in ("name", "digest", "registry_url"):
        if required not in body:
            return f'"{required}" wasn\'t supplied.'
    for key in (
        "name",
        "digest",
        "registry_url",
        "version",
        "artifact_url",
        "path",
        "repository",
        "status",
        "github_repository",
    ):
        if key in body and not isinstance(body[key], str):
            return f"For 'properties/{key}', {json.dumps(body[key])} is not a string."
    if not 1 <= len(body["name"]) <= 256:
        return f"For 'properties/name', {json.dumps(body['name'])} is not 1 to 256 characters."
    if not _DIGEST.match(body["digest"]):
        return (
            f"For 'properties/digest', {json.dumps(body['digest'])} does not match "
            f'"{_DIGEST.pattern}".'
        )
    if not body["registry_url"]:
        return "For 'properties/registry_url', \"\" is too short."
    if "status" in body and body["status"] not in _RECORD_STATUSES:
        status = json.dumps(body["status"])
        return f"For 'properties/status', {status} is not a member of {list(_RECORD_STATUSES)}."
    return ""
