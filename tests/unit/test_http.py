from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import urllib3

from attest import _http

FAST = _http.RetryPolicy(attempts=4, initial_wait=0.001, max_wait=0.01, max_retry_after=5)


class _Script:
    """Answers requests with a scripted list of statuses, then 200."""

    def __init__(self, statuses: list[int], headers: dict[str, str] | None = None) -> None:
        self.statuses = statuses
        self.headers = headers or {}
        self.seen: list[str] = []
        self.targets: list[str] = []
        self.received: list[tuple[list[tuple[str, str]], bytes]] = []


@pytest.fixture
def server() -> Iterator[tuple[str, _Script]]:
    script = _Script([])

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            script.seen.append(self.command)
            script.targets.append(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            script.received.append((list(self.headers.items()), body))
            status = script.statuses.pop(0) if script.statuses else 200
            self.send_response(status)
            for name, value in script.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_PUT = do_POST = _answer  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", script
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(server, status):
    url, script = server
    script.statuses = [status, status]
    response = _http.send(_http.new_session(), "PUT", url, data=b"x", policy=FAST)
    assert response.status_code == 200
    assert script.seen == ["PUT"] * 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 412])
def test_other_client_errors_are_not_retried(server, status):
    url, script = server
    script.statuses = [status]
    assert _http.send(_http.new_session(), "GET", url, policy=FAST).status_code == status
    assert script.seen == ["GET"]


def test_retries_are_bounded_and_return_the_last_response(server):
    url, script = server
    script.statuses = [503] * 10
    assert _http.send(_http.new_session(), "GET", url, policy=FAST).status_code == 503
    assert len(script.seen) == FAST.attempts


def test_a_retry_after_beyond_the_cap_ends_retries(server):
    url, script = server
    script.statuses = [429, 429]
    script.headers = {"Retry-After": "3600"}
    assert _http.send(_http.new_session(), "GET", url, policy=FAST).status_code == 429
    assert script.seen == ["GET"]


def test_connection_errors_are_retried_then_raised():
    policy = _http.RetryPolicy(attempts=2, initial_wait=0.001, max_wait=0.001)
    with pytest.raises(requests.ConnectionError):
        # Port 9 on loopback: nothing listens there.
        _http.send(_http.new_session(), "GET", "http://127.0.0.1:9/", policy=policy)


def test_a_first_attempt_that_fails_on_the_way_is_retried_like_any_other():
    outcomes: list[requests.Response | Exception] = [
        requests.ConnectionError("reset"),
        _response(503, {}),
        _response(200, {}),
    ]
    calls: list[tuple[str, str]] = []

    def attempt(method: str, url: str) -> requests.Response:
        calls.append((method, url))
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert _http._with_retries(FAST, attempt, "GET", "http://r/").status_code == 200
    assert calls == [("GET", "http://r/")] * 3


def test_other_failures_are_not_retried():
    calls = []

    def attempt(method: str, url: str) -> requests.Response:
        calls.append(method)
        raise requests.exceptions.InvalidHeader("bad header")

    with pytest.raises(requests.exceptions.InvalidHeader):
        _http._with_retries(FAST, attempt, "GET", "http://r/")
    assert calls == ["GET"]


def _wrapped_as_requests_does(error: Exception) -> requests.exceptions.SSLError:
    reason = urllib3.exceptions.SSLError(error)
    return requests.exceptions.SSLError(urllib3.exceptions.MaxRetryError(None, "/v2/", reason))


def test_a_certificate_that_does_not_verify_is_not_retried():
    untrusted = ssl.SSLCertVerificationError(1, "certificate verify failed")
    calls = []

    def attempt(method: str, url: str) -> requests.Response:
        calls.append(method)
        raise _wrapped_as_requests_does(untrusted)

    with pytest.raises(requests.exceptions.SSLError) as raised:
        _http._with_retries(FAST, attempt, "GET", "https://r/")
    assert calls == ["GET"]
    assert _http.untrusted_certificate(raised.value) is untrusted


def test_failures_are_described_in_one_line_and_certificates_by_their_reason():
    untrusted = ssl.SSLCertVerificationError(1, "certificate verify failed")
    untrusted.verify_message = "self-signed certificate in certificate chain"
    assert _http.describe_failure(_wrapped_as_requests_does(untrusted)) == (
        "the TLS certificate does not verify: self-signed certificate in certificate chain"
    )
    assert _http.describe_failure(requests.ConnectionError("refused\nby peer")) == (
        "ConnectionError: refused by peer"
    )


def test_other_tls_failures_are_retried_like_any_connection_failure():
    # A handshake cut short (a reset, a proxy) may well succeed the next time.
    cut_short = ssl.SSLEOFError(8, "EOF occurred in violation of protocol")
    outcomes: list[requests.Response | Exception] = [
        _wrapped_as_requests_does(cut_short),
        _response(200, {}),
    ]
    assert _http.untrusted_certificate(outcomes[0]) is None

    def attempt(method: str, url: str) -> requests.Response:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert _http._with_retries(FAST, attempt, "GET", "https://r/").status_code == 200


def _with_retry_after(value: str) -> requests.Response:
    response = requests.Response()
    response.status_code = 429
    response.headers["Retry-After"] = value
    return response


def test_wait_honours_retry_after_seconds_and_dates():
    assert FAST.wait_seconds(1, _with_retry_after("2")) == 2.0
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=3), usegmt=True)
    assert 1.0 < (FAST.wait_seconds(1, _with_retry_after(soon)) or 0) <= 3.0
    assert FAST.wait_seconds(1, _with_retry_after("99")) is None


def test_backoff_grows_and_is_capped():
    policy = _http.RetryPolicy(initial_wait=0.2, max_wait=3.0)
    first = policy.wait_seconds(1, None) or 0
    assert 0.2 <= first <= 0.4
    assert all((policy.wait_seconds(n, None) or 0) <= 3.0 for n in range(1, 20))


def test_session_identifies_us_and_ignores_netrc(server, tmp_path, monkeypatch):
    url, _ = server
    host = url.split("//")[1].split(":")[0]
    (tmp_path / ".netrc").write_text(f"machine {host} login leaked password secret\n")
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    session = _http.new_session()
    response = _http.send(session, "GET", url, policy=FAST)
    assert session.headers["User-Agent"].startswith("attest/")
    assert "Authorization" not in response.request.headers


def test_the_environments_proxy_applies_and_is_read_once_per_origin(server, monkeypatch):
    proxy, script = server
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    session = _http.new_session()
    assert _http.send(session, "GET", "http://registry.invalid/v2/", policy=FAST).ok
    # The environment does not change during a run: what it said is kept for the origin.
    monkeypatch.delenv("HTTP_PROXY")
    assert _http.send(session, "PUT", "http://registry.invalid/v2/x", policy=FAST).ok
    assert script.targets == ["http://registry.invalid/v2/", "http://registry.invalid/v2/x"]


def test_no_proxy_and_the_ca_bundle_of_the_environment_apply(server, tmp_path, monkeypatch):
    url, script = server
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "ca.pem"))
    session = _http.new_session()
    assert _http.send(session, "GET", url, policy=FAST).ok
    assert script.targets == ["/"]
    settings = session.merge_environment_settings("https://ghcr.io/v2/", {}, None, None, None)
    assert settings["verify"] == str(tmp_path / "ca.pem")
    assert settings["proxies"]["http"] == "http://127.0.0.1:9"
    # Per-request settings still win over the environment's.
    assert session.merge_environment_settings(url, {}, True, False, None)["verify"] is False


# --- send_wire: the registry's requests, prepared without Session.request -------------------


def test_wire_requests_are_retried_and_carry_exactly_the_body(server):
    url, script = server
    script.statuses = [503, 429]
    response = _http.send_wire(
        _http.new_session(),
        "POST",
        url + "v2/x/blobs/uploads/?digest=sha256:ab",
        headers={},
        data=b"blob",
        policy=FAST,
    )
    assert response.status_code == 200
    assert script.seen == ["POST"] * 3
    assert [body for _, body in script.received] == [b"blob"] * 3
    assert script.targets[-1] == "/v2/x/blobs/uploads/?digest=sha256:ab"


def test_wire_headers_override_the_sessions_whatever_their_case(server):
    url, script = server
    _http.send_wire(_http.new_session(), "GET", url, headers={"accept": "application/x"})
    sent = script.received[0][0]
    assert [value for name, value in sent if name.lower() == "accept"] == ["application/x"]
    assert dict(sent)["User-Agent"].startswith("attest/")


def test_wire_urls_are_percent_encoded_only_where_needed(server):
    url, script = server
    _http.send_wire(_http.new_session(), "GET", url + "v2/a b/%2Fc?q=1", headers={})
    assert script.targets == ["/v2/a%20b/%2Fc?q=1"]


def test_a_header_that_would_split_the_request_is_refused_before_sending(server):
    url, script = server
    with pytest.raises(requests.exceptions.InvalidHeader):
        _http.send_wire(
            _http.new_session(), "GET", url, headers={"Authorization": "Bearer x\r\nX-Evil: 1"}
        )
    assert script.seen == []


def test_wire_redirects_are_returned_not_followed(server):
    url, script = server
    script.statuses = [307]
    script.headers = {"Location": url + "elsewhere"}
    response = _http.send_wire(_http.new_session(), "GET", url + "v2/", headers={})
    assert response.status_code == 307
    assert script.targets == ["/v2/"]


def test_wire_requests_use_the_environments_proxy(server, monkeypatch):
    proxy, script = server
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    _http.send_wire(_http.new_session(), "GET", "http://registry.invalid/v2/", headers={})
    assert script.targets == ["http://registry.invalid/v2/"]


# --- GitHub's rate limits: a 403 or 429 that says when to come back ---------------------------


def _response(status: int, headers: dict[str, str]) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers)
    return response


def _exhausted(reset_in: float) -> dict[str, str]:
    return {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time() + reset_in))}


def test_a_403_with_retry_after_is_a_rate_limit_and_retried(server):
    url, script = server
    script.statuses = [403, 403]
    script.headers = {"Retry-After": "0"}
    assert _http.send(_http.new_session(), "PUT", url, data=b"x", policy=FAST).status_code == 200
    assert script.seen == ["PUT"] * 3


@pytest.mark.parametrize("status", [403, 429])
def test_an_exhausted_rate_limit_whose_reset_passed_is_retried(server, status):
    url, script = server
    script.statuses = [status]
    script.headers = _exhausted(-10)
    assert _http.send(_http.new_session(), "GET", url, policy=FAST).status_code == 200
    assert script.seen == ["GET"] * 2


@pytest.mark.parametrize("status", [403, 429])
def test_an_exhausted_rate_limit_resetting_beyond_the_cap_ends_retries(server, status):
    url, script = server
    script.statuses = [status, status]
    script.headers = _exhausted(3600)
    assert _http.send(_http.new_session(), "GET", url, policy=FAST).status_code == status
    assert script.seen == ["GET"]


@pytest.mark.parametrize(
    "headers",
    [
        {"x-ratelimit-remaining": "4999", "x-ratelimit-reset": str(int(time.time()))},
        {"x-ratelimit-remaining": "0"},
        {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "soon"},
        {"Retry-After": "whenever"},
    ],
)
def test_a_403_that_is_no_rate_limit_is_not_retried(server, headers):
    url, script = server
    script.statuses = [403]
    script.headers = headers
    assert _http.send(_http.new_session(), "GET", url, policy=FAST).status_code == 403
    assert script.seen == ["GET"]


def test_is_rate_limited():
    assert _http.is_rate_limited(_response(403, {"Retry-After": "60"}))
    assert _http.is_rate_limited(_response(429, {"retry-after": "1"}))
    assert _http.is_rate_limited(_response(403, _exhausted(30)))
    assert not _http.is_rate_limited(_response(403, {}))
    assert not _http.is_rate_limited(_response(404, {"Retry-After": "1"}))
    # A 503 with Retry-After is retried anyway, but it is not a rate limit.
    assert not _http.is_rate_limited(_response(503, _exhausted(30)))


def test_wait_honours_the_rate_limit_reset_only_on_403_and_429():
    near = FAST.wait_seconds(1, _response(403, _exhausted(3))) or 0
    assert 1.0 < near <= 3.0
    assert FAST.wait_seconds(1, _response(429, _exhausted(-5))) == 0.0
    assert FAST.wait_seconds(1, _response(403, _exhausted(60))) is None
    # Retry-After wins over the reset.
    assert FAST.wait_seconds(1, _response(403, {"Retry-After": "2", **_exhausted(60)})) == 2.0
    # Other statuses back off as before, whatever the rate-limit headers say.
    backoff = FAST.wait_seconds(1, _response(503, _exhausted(60)))
    assert backoff is not None and backoff <= FAST.max_wait


def test_rate_limit_reset_seconds():
    assert _http.rate_limit_reset_seconds(_response(200, {"x-ratelimit-remaining": "3"})) is None
    assert _http.rate_limit_reset_seconds(_response(403, {})) is None
    seconds = _http.rate_limit_reset_seconds(_response(403, _exhausted(20)))
    assert seconds is not None and 18.0 < seconds <= 20.0
