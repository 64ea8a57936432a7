"""HTTP plumbing shared by every remote we talk to: sessions, timeouts and the one retry policy.

Each remote (a registry host, GitHub's API, each Sigstore service) owns one
``requests.Session`` made by :func:`new_session`, and every request goes through
:func:`send` (or :func:`send_wire`, its lean form for registry traffic), which always sets
a timeout and applies :class:`RetryPolicy`.
"""

from __future__ import annotations

import email.utils
import functools
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import tenacity

from attest import __version__
from attest.errors import one_line

_logger = logging.getLogger(__name__)

USER_AGENT = f"attest/{__version__} (python-requests/{requests.__version__})"

#: Seconds to wait for a connection and then for each read; no request is ever sent without it.
DEFAULT_TIMEOUT = (5.0, 30.0)


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to retry: transient failures only, bounded, with jittered backoff.

    Retried: connection errors, timeouts, 408, 429 and 5xx, and a 403 that is a rate limit
    (see :func:`is_rate_limited`: GitHub answers its rate limits with 403 or 429). Never
    retried: other 4xx, which a second identical request cannot fix. ``Retry-After`` is
    honoured up to ``max_retry_after`` seconds; so is, on a 403 or 429 without it, the
    ``x-ratelimit-reset`` of an exhausted ``x-ratelimit-remaining: 0``. A longer demand ends
    the retries.
    """

    # 8 attempts: at a 15 % rate of hard failures (5xx, 429, resets) a request still fails
    # only with probability 0.15**8 = 2.6e-7; the waits add up to about 12 s at most.
    attempts: int = 8
    initial_wait: float = 0.2
    max_wait: float = 3.0
    max_retry_after: float = 30.0

    def is_retryable(self, response: requests.Response) -> bool:
        status = response.status_code
        return status in (408, 429) or 500 <= status <= 599 or is_rate_limited(response)

    def wait_seconds(self, attempt: int, response: requests.Response | None) -> float | None:
        """Seconds to wait after ``attempt`` (1-based); None when the server asks for too long."""
        if response is not None:
            after = retry_after_seconds(response)
            if after is None and response.status_code in _RATE_LIMIT_STATUSES:
                after = rate_limit_reset_seconds(response)
            if after is not None:
                return after if after <= self.max_retry_after else None
        # Exponential backoff with jitter, capped (oras-go: 200 ms to 3 s).
        backoff = self.initial_wait * 2 ** (attempt - 1)
        return float(min(self.max_wait, backoff + random.uniform(0, self.initial_wait)))


def retry_after_seconds(response: requests.Response) -> float | None:
    """The ``Retry-After`` header as seconds (RFC 9110 §10.2.3: delay-seconds or an HTTP-date)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


#: The statuses GitHub answers an exceeded rate limit with (primary and secondary alike).
_RATE_LIMIT_STATUSES = (403, 429)


def rate_limit_reset_seconds(response: requests.Response) -> float | None:
    """Seconds until ``x-ratelimit-reset`` when ``x-ratelimit-remaining`` is 0, else None.

    GitHub's REST API sends both on every response; the reset is in epoch seconds. A reset
    already past means no wait (0).
    """
    remaining = response.headers.get("x-ratelimit-remaining", "").strip()
    reset = response.headers.get("x-ratelimit-reset", "").strip()
    if remaining != "0" or not reset.isdigit():
        return None
    return max(0.0, float(reset) - time.time())


def is_rate_limited(response: requests.Response) -> bool:
    """Whether a 403 or 429 is a rate limit that says when to come back.

    That is: a ``Retry-After`` (GitHub's secondary limits), or ``x-ratelimit-remaining: 0``
    with an ``x-ratelimit-reset`` (its primary limits). A 403 without either is a refusal
    (a missing permission, say), which no retry fixes.
    """
    if response.status_code not in _RATE_LIMIT_STATUSES:
        return False
    return (
        retry_after_seconds(response) is not None or rate_limit_reset_seconds(response) is not None
    )


DEFAULT_RETRY = RetryPolicy()


def new_session() -> requests.Session:
    """A session for one remote, identifying us; redirects are left to the caller.

    The environment's proxies and CA bundle (HTTPS_PROXY, REQUESTS_CA_BUNDLE) apply, as
    self-hosted runners need them; ``~/.netrc`` does not: credentials come from our own
    stores only.
    """
    session = _Session()
    session.headers["User-Agent"] = USER_AGENT
    session.auth = _no_netrc
    return session


class _Session(requests.Session):
    """Reads the environment's proxy and CA settings once per origin, not once per request.

    requests walks the whole environment for every request (proxies, NO_PROXY, CA bundle),
    a fifth of the client's time per request on a fast registry; the environment does not
    change while we run.
    """

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[str, str], Any] = {}
        self._environment_lock = threading.Lock()

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        if proxies or verify is not None or cert is not None:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url)
        origin = (parts.scheme, parts.netloc)
        with self._environment_lock:
            settings = self._environment.get(origin)
            if settings is None:
                settings = super().merge_environment_settings(url, {}, None, None, None)
                self._environment[origin] = settings
        stream = self.stream if stream is None else stream
        return {**settings, "proxies": dict(settings["proxies"]), "stream": stream}


def _no_netrc(request: requests.PreparedRequest) -> requests.PreparedRequest:
    # A session-level auth, even one that adds nothing, stops requests reading ~/.netrc.
    return request


class _Wait(tenacity.wait.wait_base):
    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        response = _response_of(retry_state)
        seconds = self._policy.wait_seconds(retry_state.attempt_number, response)
        return 0.0 if seconds is None else seconds


def _response_of(retry_state: tenacity.RetryCallState) -> requests.Response | None:
    outcome = retry_state.outcome
    if outcome is None or outcome.failed:
        return None
    result = outcome.result()
    return result if isinstance(result, requests.Response) else None


def _stop(policy: RetryPolicy) -> tenacity.stop.stop_base:
    def too_long(retry_state: tenacity.RetryCallState) -> bool:
        response = _response_of(retry_state)
        return response is not None and policy.wait_seconds(1, response) is None

    return tenacity.stop_after_attempt(policy.attempts) | _StopWhen(too_long)


class _StopWhen(tenacity.stop.stop_base):
    def __init__(self, predicate: Callable[[tenacity.RetryCallState], bool]) -> None:
        self._predicate = predicate

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return bool(self._predicate(retry_state))


def _log_retry(retry_state: tenacity.RetryCallState) -> None:
    response = _response_of(retry_state)
    if response is not None:
        reason = f"{response.status_code}"
    elif retry_state.outcome is not None:
        reason = repr(retry_state.outcome.exception())
    else:
        reason = "unknown"
    method, url = retry_state.args[0], retry_state.args[1]
    sleep = retry_state.next_action.sleep if retry_state.next_action is not None else 0.0
    _logger.debug(
        "retrying %s %s after %s in %.1f s (attempt %d)",
        method,
        url,
        reason,
        sleep,
        retry_state.attempt_number,
    )


#: Failures on the way that a second attempt may not meet.
_TRANSIENT_ERRORS = (requests.ConnectionError, requests.Timeout)


def untrusted_certificate(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind a failed request, if that is what it was.

    requests wraps it twice (``SSLError(MaxRetryError(reason=SSLError(...)))``); no retry
    can change it.
    """
    pending, seen = [exc], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        linked = [*current.args, getattr(current, "reason", None), current.__context__]
        pending.extend(e for e in linked if isinstance(e, BaseException))
    return None


def describe_failure(exc: BaseException) -> str:
    """One line for a request that got no answer; a certificate that does not verify says so
    (the usual cause behind a TLS-intercepting proxy or a self-hosted service's own CA)."""
    untrusted = untrusted_certificate(exc)
    if untrusted is not None:
        # verify_message is set by the ssl module when a handshake fails, not on every instance.
        reason = getattr(untrusted, "verify_message", None) or str(untrusted)
        return f"the TLS certificate does not verify: {reason}"
    return one_line(f"{type(exc).__name__}: {exc}")


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, _TRANSIENT_ERRORS) and untrusted_certificate(exc) is None


def _with_retries(
    policy: RetryPolicy, attempt: Callable[..., requests.Response], *args: Any, **kwargs: Any
) -> requests.Response:
    """``attempt(*args, **kwargs)`` under ``policy``.

    Nearly every request succeeds at once, and tenacity's bookkeeping costs a twentieth of
    a fast registry request's CPU: it starts with the first retryable outcome, which it
    then takes as its own first attempt (so the waits, limits and logs are all its own).
    """
    first: requests.Response | Exception
    try:
        response = attempt(*args, **kwargs)
    except _TRANSIENT_ERRORS as exc:
        if not _is_transient(exc):
            raise
        first = exc
    else:
        if not policy.is_retryable(response):
            return response
        first = response
    pending = [first]

    def first_then_again(*args: Any, **kwargs: Any) -> requests.Response:
        if not pending:
            return attempt(*args, **kwargs)
        outcome = pending.pop()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    last: requests.Response = _retrying(policy)(first_then_again, *args, **kwargs)
    return last


@functools.cache
def _retrying(policy: RetryPolicy) -> tenacity.Retrying:
    """The retry loop of ``policy``; the retried call takes (method, url, ...).

    Built once per policy: tenacity keeps each call's state per thread, and a request never
    sends another from inside its own attempt.
    """
    return tenacity.Retrying(
        stop=_stop(policy),
        wait=_Wait(policy),
        retry=(
            tenacity.retry_if_exception(_is_transient)
            | tenacity.retry_if_result(
                lambda r: isinstance(r, requests.Response) and policy.is_retryable(r)
            )
        ),
        before_sleep=_log_retry,
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        reraise=True,
    )


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    policy: RetryPolicy = DEFAULT_RETRY,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    **kwargs: Any,
) -> requests.Response:
    """Send one request with retries; the last response (or exception) is the caller's to judge.

    Request bodies must be bytes (replayable); streamed bodies cannot be retried.
    """
    return _with_retries(
        policy, session.request, method, url, timeout=timeout, allow_redirects=False, **kwargs
    )


def send_wire(
    session: requests.Session,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    data: bytes | None = None,
    policy: RetryPolicy = DEFAULT_RETRY,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    stream: bool = False,
) -> requests.Response:
    """:func:`send` for a URL already in wire form (built from a parsed reference, or a
    ``Location`` a server gave us) and a bytes body: the registry's many small requests.

    What :meth:`requests.Session.request` would add is skipped: URL normalisation (IDNA
    hosts, query parameters), merging per-request settings with the session's (there are
    none) and ~/.netrc (off anyway). That is a quarter of its CPU per request, which is what
    bounds a batch of attaches on a fast registry. Headers are still checked, and the
    session's cookies and environment settings apply as they would.
    """
    return _with_retries(
        policy, _send_prepared, method, url, session, headers, data, timeout, stream
    )


def _send_prepared(
    method: str,
    url: str,
    session: requests.Session,
    headers: Mapping[str, str],
    data: bytes | None,
    timeout: tuple[float, float],
    stream: bool,
) -> requests.Response:
    prepared = requests.PreparedRequest()
    prepared.prepare_method(method)
    # As given: urllib3 percent-encodes what must be, as it does for requests' own URLs.
    prepared.url = url
    # Later keys win case-insensitively: the caller's headers override the session's.
    prepared.prepare_headers({**session.headers, **headers})
    prepared.prepare_body(data, None)
    prepared.prepare_cookies(session.cookies)
    settings = session.merge_environment_settings(url, {}, stream, None, None)
    return session.send(prepared, timeout=timeout, allow_redirects=False, **settings)
