"""A reverse proxy in front of a real registry that reproduces hosted registries' quirks.

The proxy listens on ``127.0.0.1:<free port>`` in a daemon thread and forwards every request
to an unauthenticated upstream registry (method, path and query, body, headers without
hop-by-hop headers and ``Authorization``; ``Host`` rewritten). ``Location`` headers that point
at the upstream are rewritten to point at the proxy. :class:`Quirks` switches on behaviours seen
on hosted registries; see its field comments.

Python standard library only, so it can run anywhere the tests run.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import http.client
import json
import re
import secrets
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from tests.fakes.loopback import Service

Fault = Callable[[str, str], tuple[int, dict[str, str], bytes] | None]
#: A fault's status that resets the connection instead of answering.
RESET = 0

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Request headers never forwarded upstream (on top of the hop-by-hop ones).
_DROP_REQUEST = HOP_BY_HOP | {"authorization", "host", "content-length", "expect"}
# Response headers never copied back (the proxy sets Content-Length itself).
_DROP_RESPONSE = HOP_BY_HOP | {"content-length", "date", "server"}

_REPO_PATH = re.compile(
    r"^/v2/(?P<name>.+?)/(?P<kind>manifests|blobs|tags|referrers)/(?P<rest>.*)$"
)
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_TAG_SCHEMA = re.compile(r"^(?P<alg>sha256|sha512)-(?P<hex>[0-9a-f]{64}|[0-9a-f]{128})$")

TOKEN_SERVICE = "quirk"
TOKEN_EXPIRES_IN = 300


@dataclass
class Quirks:
    # ECR / Docker Hub (2024): a manifest PUT whose body has "subject" gets an
    # `OCI-Subject: <subject digest>` response header although the upstream (which must be a
    # registry without a referrers API) has no referrers API.
    oci_subject_without_api: bool = False
    # Quay: GET /v2/<name>/referrers/<digest> answers 400 MANIFEST_INVALID when the digest is
    # not a manifest in the repository (upstream HEAD is not 200); otherwise passes through.
    referrers_400_unknown_digest: bool = False
    # GitLab: GET/HEAD /v2/<name>/manifests/sha256-<hex> (the referrers tag schema) is served as
    # manifests/sha256:<hex> when that manifest exists upstream; otherwise passes through.
    tag_resolves_to_subject: bool = False
    # GitLab dependency proxy: any /v2/<name>/referrers/... answers 404 with an HTML page.
    referrers_html_404: bool = False
    # Every /v2/ request needs `Authorization: Basic` with these credentials, else
    # 401 + `WWW-Authenticate: Basic realm="quirk"`.
    basic_auth: tuple[str, str] | None = None
    # Docker token auth with these credentials: /v2/ requests need `Authorization: Bearer <t>`
    # with scope repository:<name>:pull (GET/HEAD) or pull,push (other methods), else a 401
    # Bearer challenge pointing at the proxy's /token endpoint (GET with Basic credentials, or
    # POST form grant_type=password|refresh_token).
    bearer_auth: tuple[str, str] | None = None
    # With bearer_auth: a token request without credentials gets a pull-only token.
    anonymous_pull: bool = False
    # With bearer_auth: the identity (refresh) token accepted by POST /token
    # grant_type=refresh_token (and returned as refresh_token for grant_type=password with
    # access_type=offline).
    identity_token: str | None = None
    # S3/CDN: GET/HEAD /v2/<name>/blobs/<digest> of an existing blob answers 307 with a Location
    # on a second listener under another host name (localhost:<port2>), which serves the blob
    # without auth and records whether an Authorization header arrived.
    redirect_blob_gets: bool = False
    # With bearer_auth: a token is valid for this many /v2/ requests, then answers 401.
    token_expires_after: int | None = None
    # Fault injection: called with (method, path with query) for every request reaching the
    # main listener, before auth and quirks; a non-None (status, headers, body) is sent instead.
    # Status RESET closes the connection without any answer (a reset mid-request).
    faults: Fault | None = None
    # A hosted registry's distance: every request waits this many seconds before it is
    # forwarded, as a round trip over a wide-area network would.
    round_trip: float = 0.0


@dataclass
class LoggedRequest:
    method: str
    path: str
    headers: dict[str, str]
    status: int
    had_authorization: bool = False


@dataclass
class _Token:
    scopes: dict[str, set[str]]  # repository name -> granted actions
    uses: int = 0


@dataclass
class _Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def _json_error(status: int, code: str, message: str, detail: Any = None) -> _Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if detail is not None:
        error["detail"] = detail
    body = json.dumps({"errors": [error]}).encode()
    return _Response(status, [("Content-Type", "application/json")], body)


def _redact_headers(headers: Message) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in headers.items():
        if key.lower() == "authorization":
            scheme = value.split(" ", 1)[0] if value else ""
            out[key] = f"{scheme} …"
        else:
            out[key] = value
    return out


def _parse_scope(scope: str) -> tuple[str, set[str]] | None:
    """``repository:<name>:<actions>`` -> (name, actions); None for other resource types."""
    parts = scope.split(":")
    if len(parts) < 3 or parts[0] != "repository":
        return None
    name = ":".join(parts[1:-1])
    actions = {a for a in parts[-1].split(",") if a}
    return name, actions


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, proxy: QuirkProxy, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.proxy = proxy

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer (as attest does on an oversized body) is normal.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _BaseHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline()
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, response: _Response) -> None:
        if response.status == RESET:
            # Drop the connection with nothing sent: the client sees a reset.
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(response.status)
        has_length = False
        for key, value in response.headers:
            if key.lower() == "content-length":
                # Only kept for HEAD answers, where it describes the body not sent.
                if self.command != "HEAD":
                    continue
                has_length = True
            self.send_header(key, value)
        if not has_length:
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD" and response.status not in (204, 304):
            self.wfile.write(response.body)

    def _handle(self) -> None:
        raise NotImplementedError

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()


class _ProxyHandler(_BaseHandler):
    def _handle(self) -> None:
        proxy = self.server.proxy
        body = self._read_body()
        try:
            response = proxy._dispatch(self.command, self.path, self.headers, body)
        except Exception as exc:  # keep the connection usable and make failures visible
            response = _Response(
                500, [("Content-Type", "text/plain")], f"quirk proxy error: {exc!r}".encode()
            )
        proxy._record(
            proxy.log,
            LoggedRequest(
                self.command,
                self.path,
                _redact_headers(self.headers),
                response.status,
                had_authorization="Authorization" in self.headers,
            ),
        )
        # Recorded before answering, so a client that got the answer finds it in the log.
        self._send(response)


class _RedirectHandler(_BaseHandler):
    """The second listener ("localhost:<port2>"): serves redirected blobs without auth."""

    def _handle(self) -> None:
        proxy = self.server.proxy
        self._read_body()
        had_auth = "Authorization" in self.headers
        path = urllib.parse.urlsplit(self.path).path
        match = re.fullmatch(r"/blobs/(?P<name>.+)/(?P<digest>[^/]+)", path)
        if self.command not in ("GET", "HEAD") or match is None:
            response = _Response(404, [("Content-Type", "text/plain")], b"not found")
        else:
            upstream = proxy._forward(
                self.command, f"/v2/{match['name']}/blobs/{match['digest']}", {}, b""
            )
            headers = [
                (k, v)
                for k, v in upstream.headers
                if k.lower() in ("content-type", "content-length", "etag")
            ]
            response = _Response(upstream.status, headers, upstream.body)
        proxy._record(
            proxy.blob_redirect_log,
            LoggedRequest(
                self.command,
                self.path,
                _redact_headers(self.headers),
                response.status,
                had_authorization=had_auth,
            ),
        )
        self._send(response)


class QuirkProxy(Service):
    def __init__(self, upstream: str, quirks: Quirks) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        if parsed.scheme != "http" or not parsed.netloc:
            raise ValueError(f"upstream must look like http://host:port, got {upstream!r}")
        self.upstream = f"http://{parsed.netloc}"
        self.upstream_host = parsed.netloc
        self.quirks = quirks
        self.log: list[LoggedRequest] = []
        self.blob_redirect_log: list[LoggedRequest] = []
        self.token_requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._tokens: dict[str, _Token] = {}
        self._server: _Server | None = None
        self._redirect_server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self.host = ""
        self.redirect_host: str | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def start(self) -> Self:
        self._server = _Server(self, _ProxyHandler)
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        servers = [self._server]
        if self.quirks.redirect_blob_gets:
            self._redirect_server = _Server(self, _RedirectHandler)
            self.redirect_host = f"localhost:{self._redirect_server.server_address[1]}"
            servers.append(self._redirect_server)
        for server in servers:
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in (self._server, self._redirect_server):
            if server is not None:
                server.shutdown()
                server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    # -- helpers ---------------------------------------------------------------------------

    def _record(self, target: list[Any], entry: Any) -> None:
        with self._lock:
            target.append(entry)

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> _Response:
        conn = http.client.HTTPConnection(self.upstream_host, timeout=60)
        try:
            send_headers = dict(headers)
            if body or method in ("POST", "PUT", "PATCH"):
                send_headers["Content-Length"] = str(len(body))
            conn.request(method, path, body=body or None, headers=send_headers)
            resp = conn.getresponse()
            data = resp.read()
            out = _Response(resp.status, list(resp.getheaders()), data)
        except OSError as exc:
            return _Response(
                502, [("Content-Type", "text/plain")], f"upstream unreachable: {exc}".encode()
            )
        finally:
            conn.close()
        rewritten = []
        for key, value in out.headers:
            if key.lower() in _DROP_RESPONSE and not (
                key.lower() == "content-length" and method == "HEAD"
            ):
                continue
            if key.lower() == "location" and value.startswith(self.upstream):
                value = f"http://{self.host}{value[len(self.upstream) :]}"
            rewritten.append((key, value))
        out.headers = rewritten
        return out

    # -- request dispatch ------------------------------------------------------------------

    def _dispatch(self, method: str, path: str, headers: Message, body: bytes) -> _Response:
        q = self.quirks
        if q.round_trip:
            time.sleep(q.round_trip)
        if q.faults is not None:
            fault = q.faults(method, path)
            if fault is not None:
                status, fault_headers, fault_body = fault
                return _Response(status, list(fault_headers.items()), fault_body)

        split = urllib.parse.urlsplit(path)
        if q.bearer_auth is not None and split.path == "/token":
            return self._token_endpoint(method, split.query, headers, body)

        forward_headers = {k: v for k, v in headers.items() if k.lower() not in _DROP_REQUEST}
        is_v2 = split.path == "/v2" or split.path.startswith("/v2/")
        match = _REPO_PATH.match(split.path)
        name = match["name"] if match else None

        if is_v2:
            denied = self._check_auth(method, split, name, headers)
            if denied is not None:
                return denied
            if q.bearer_auth is not None:
                path = self._strip_unauthorized_mount(split, headers)

        if match is not None:
            kind, rest = match["kind"], match["rest"]
            if kind == "referrers" and q.referrers_html_404:
                page = (
                    b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>"
                    b"<body><h1>404 Not Found</h1><p>The page you requested does not exist."
                    b"</p></body></html>\n"
                )
                return _Response(404, [("Content-Type", "text/html; charset=utf-8")], page)
            if kind == "referrers" and q.referrers_400_unknown_digest and method == "GET":
                probe = self._forward(
                    "HEAD",
                    f"/v2/{name}/manifests/{rest}",
                    {"Accept": _ALL_MANIFEST_TYPES},
                    b"",
                )
                if probe.status != 200:
                    return _json_error(
                        400, "MANIFEST_INVALID", "manifest invalid", {"digest": rest}
                    )
            if kind == "manifests" and q.tag_resolves_to_subject and method in ("GET", "HEAD"):
                tag = _TAG_SCHEMA.fullmatch(rest)
                if tag is not None:
                    digest_path = f"/v2/{name}/manifests/{tag['alg']}:{tag['hex']}"
                    resolved = self._forward(method, digest_path, forward_headers, b"")
                    if resolved.status == 200:
                        return resolved
            if (
                kind == "blobs"
                and q.redirect_blob_gets
                and method in ("GET", "HEAD")
                and _DIGEST.match(rest)
            ):
                probe = self._forward("HEAD", f"/v2/{name}/blobs/{rest}", {}, b"")
                if probe.status == 200:
                    assert self.redirect_host is not None
                    location = (
                        f"http://{self.redirect_host}/blobs/{name}/{rest}"
                        f"?X-Amz-Signature={secrets.token_hex(8)}"
                    )
                    return _Response(307, [("Location", location)], b"")

        response = self._forward(method, path, forward_headers, body)

        if (
            q.oci_subject_without_api
            and match is not None
            and match["kind"] == "manifests"
            and method == "PUT"
            and 200 <= response.status < 300
        ):
            subject = _subject_digest(body)
            if subject is not None:
                response.headers.append(("OCI-Subject", subject))
        return response

    # -- auth ------------------------------------------------------------------------------

    def _basic_credentials(self, headers: Message) -> tuple[str, str] | None:
        value = headers.get("Authorization") or ""
        scheme, _, param = value.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, sep, password = base64.b64decode(param.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return (user, password) if sep else None

    @staticmethod
    def _same(a: tuple[str, str], b: tuple[str, str]) -> bool:
        return hmac.compare_digest(a[0], b[0]) and hmac.compare_digest(a[1], b[1])

    def _bearer_challenge(self, scope: str | None, error: str | None = None) -> _Response:
        challenge = f'Bearer realm="http://{self.host}/token",service="{TOKEN_SERVICE}"'
        if scope is not None:
            challenge += f',scope="{scope}"'
        if error is not None:
            challenge += f',error="{error}"'
        response = _json_error(401, "UNAUTHORIZED", "authentication required")
        response.headers.append(("WWW-Authenticate", challenge))
        return response

    def _check_auth(
        self,
        method: str,
        split: urllib.parse.SplitResult,
        name: str | None,
        headers: Message,
    ) -> _Response | None:
        q = self.quirks
        if q.basic_auth is not None:
            creds = self._basic_credentials(headers)
            if creds is None or not self._same(creds, q.basic_auth):
                response = _json_error(401, "UNAUTHORIZED", "authentication required")
                response.headers.append(("WWW-Authenticate", 'Basic realm="quirk"'))
                return response
        if q.bearer_auth is None:
            return None

        needed = {"pull"} if method in ("GET", "HEAD") else {"pull", "push"}
        scope = f"repository:{name}:{','.join(sorted(needed))}" if name is not None else None
        if name is None and split.path not in ("/v2", "/v2/"):
            # e.g. /v2/_catalog: registry:catalog:* on real registries; any token here.
            scope = None
        value = headers.get("Authorization") or ""
        scheme, _, token_value = value.partition(" ")
        if scheme.lower() != "bearer":
            return self._bearer_challenge(scope)
        with self._lock:
            token = self._tokens.get(token_value.strip())
            if token is None:
                return self._bearer_challenge(scope, "invalid_token")
            token.uses += 1
            if q.token_expires_after is not None and token.uses > q.token_expires_after:
                return self._bearer_challenge(scope, "invalid_token")
            granted = token.scopes.get(name, set()) if name is not None else None
        if granted is not None and not (needed <= granted or "*" in granted):
            return self._bearer_challenge(scope, "insufficient_scope")
        return None

    def _strip_unauthorized_mount(self, split: urllib.parse.SplitResult, headers: Message) -> str:
        """Like distribution: a cross-repository mount from a repository the token cannot pull
        is silently turned into a plain upload session (202 instead of 201)."""
        params = urllib.parse.parse_qsl(split.query, keep_blank_values=True)
        source = dict(params).get("from")
        if "mount" not in dict(params) or source is None:
            return urllib.parse.urlunsplit(("", "", split.path, split.query, ""))
        token_value = (headers.get("Authorization") or "").partition(" ")[2].strip()
        with self._lock:
            token = self._tokens.get(token_value)
            granted = token.scopes.get(source, set()) if token is not None else set()
        if "pull" in granted or "*" in granted:
            return urllib.parse.urlunsplit(("", "", split.path, split.query, ""))
        kept = [(k, v) for k, v in params if k not in ("mount", "from")]
        return urllib.parse.urlunsplit(("", "", split.path, urllib.parse.urlencode(kept), ""))

    def _issue(self, scopes: list[str], *, anonymous: bool) -> tuple[str, dict[str, set[str]]]:
        granted: dict[str, set[str]] = {}
        for scope in scopes:
            parsed = _parse_scope(scope)
            if parsed is None:
                continue
            name, actions = parsed
            if anonymous:
                actions &= {"pull"}
            granted.setdefault(name, set()).update(actions)
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = _Token(granted)
        return token, granted

    def _token_endpoint(self, method: str, query: str, headers: Message, body: bytes) -> _Response:
        q = self.quirks
        assert q.bearer_auth is not None
        entry: dict[str, Any] = {"method": method}
        refresh_token: str | None = None
        if method == "GET":
            params = urllib.parse.parse_qs(query, keep_blank_values=True)
            scopes = params.get("scope", [])
            entry["params"] = {
                k: v if k == "scope" else v[0]
                for k, v in params.items()
                if k in ("service", "scope", "account", "client_id", "offline_token")
            }
            creds = self._basic_credentials(headers)
            if creds is None:
                anonymous = True
                ok = q.anonymous_pull
            else:
                anonymous = False
                ok = self._same(creds, q.bearer_auth)
        elif method == "POST":
            form = urllib.parse.parse_qs(body.decode(errors="replace"), keep_blank_values=True)
            fields = {k: v[0] for k, v in form.items()}
            scopes = " ".join(form.get("scope", [])).split()
            grant_type = fields.get("grant_type", "")
            entry["form"] = {
                k: v
                for k, v in fields.items()
                if k in ("grant_type", "service", "client_id", "access_type", "username")
            }
            entry["form"]["scope"] = scopes
            anonymous = False
            if grant_type == "password":
                creds = (fields.get("username", ""), fields.get("password", ""))
                ok = self._same(creds, q.bearer_auth)
                if ok and fields.get("access_type") == "offline" and q.identity_token:
                    refresh_token = q.identity_token
            elif grant_type == "refresh_token":
                ok = q.identity_token is not None and hmac.compare_digest(
                    fields.get("refresh_token", ""), q.identity_token
                )
            else:
                ok = False
        else:
            entry["outcome"] = "method_not_allowed"
            self._record(self.token_requests, entry)
            return _Response(405, [("Content-Type", "text/plain")], b"method not allowed")

        if not ok:
            entry["outcome"] = "denied"
            self._record(self.token_requests, entry)
            return _json_error(401, "UNAUTHORIZED", "invalid credentials")

        token, granted = self._issue(scopes, anonymous=anonymous)
        entry["outcome"] = "anonymous" if anonymous else "granted"
        entry["granted"] = sorted(
            f"repository:{n}:{','.join(sorted(a))}" for n, a in granted.items()
        )
        self._record(self.token_requests, entry)
        payload: dict[str, Any] = {
            "token": token,
            "access_token": token,
            "expires_in": TOKEN_EXPIRES_IN,
            "scope": " ".join(entry["granted"]),
        }
        if refresh_token is not None:
            payload["refresh_token"] = refresh_token
        return _Response(200, [("Content-Type", "application/json")], json.dumps(payload).encode())


_ALL_MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


def _subject_digest(body: bytes) -> str | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    subject = doc.get("subject") if isinstance(doc, dict) else None
    if isinstance(subject, dict) and isinstance(subject.get("digest"), str):
        return str(subject["digest"])
    return None
