from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator

import pytest

from attest import _http
from attest.errors import AttestError, UsageError
from attest.github_api import API_VERSION, GitHubAPI, GitHubAPIError, api_base
from tests.fakes.github_api import FakeGitHubAPI, make_bundle
from tests.shared_data import github_bundles

FAST = _http.RetryPolicy(attempts=4, initial_wait=0.001, max_wait=0.01, max_retry_after=5)

REPO = "octo-org/octo-repo"
USER_REPO = "octocat/hello-world"
DIGEST = "sha256:" + "ab" * 32
OTHER_DIGEST = "sha256:" + "cd" * 32
ATTESTATIONS = f"/repos/{REPO}/attestations"
STORAGE_RECORD = "/orgs/octo-org/artifacts/metadata/storage-record"


@pytest.fixture
def github() -> Iterator[FakeGitHubAPI]:
    with FakeGitHubAPI() as fake:
        yield fake


@pytest.fixture
def api(github: FakeGitHubAPI) -> Iterator[GitHubAPI]:
    with GitHubAPI(github.url, github.token, policy=FAST) as client:
        yield client


def _raises(call, *args, **kwargs) -> GitHubAPIError:
    with pytest.raises(GitHubAPIError) as info:
        call(*args, **kwargs)
    return info.value


def _record(api: GitHubAPI, digest: str = DIGEST, **overrides) -> list[int]:
    fields = {
        "name": "ghcr.io/octo-org/app",
        "digest": digest,
        "version": "1.2.3",
        "registry_url": "https://ghcr.io",
    }
    fields.update(overrides)
    return api.create_storage_record("octo-org", **fields)


# --- api_base ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api_url", "server_url", "expected"),
    [
        ("", "https://github.com", "https://api.github.com"),
        ("https://api.github.com/", "https://github.com", "https://api.github.com"),
        ("", "", "https://api.github.com"),
        ("https://api.github.com", "", "https://api.github.com"),
        ("", "https://octo.ghe.com", "https://api.octo.ghe.com"),
        ("https://api.octo.ghe.com", "https://octo.ghe.com/", "https://api.octo.ghe.com"),
        ("https://api.octo.ghe.com", "", "https://api.octo.ghe.com"),
        ("http://127.0.0.1:8080", "https://github.com", "http://127.0.0.1:8080"),
        ("http://localhost:9/api/", "http://127.0.0.1:9", "http://localhost:9/api"),
        ("http://[::1]:9", "https://ghes.example.com", "http://[::1]:9"),
    ],
)
def test_api_base(api_url, server_url, expected):
    assert api_base(api_url, server_url) == expected


@pytest.mark.parametrize(
    ("api_url", "server_url", "named"),
    [
        ("https://ghes.example.com/api/v3", "https://ghes.example.com", "https://ghes.example.com"),
        ("", "https://ghes.example.com", "https://ghes.example.com"),
        ("https://ghes.example.com/api/v3", "", "https://ghes.example.com/api/v3"),
        ("", "http://127.0.0.1:9", "http://127.0.0.1:9"),
    ],
)
def test_api_base_refuses_github_enterprise_server(api_url, server_url, named):
    with pytest.raises(AttestError) as info:
        api_base(api_url, server_url)
    assert "not available on GitHub Enterprise Server" in info.value.message
    assert named in info.value.message


def test_api_base_refuses_plain_http_off_loopback():
    with pytest.raises(AttestError, match="unencrypted"):
        api_base("http://api.github.com", "https://github.com")
    with pytest.raises(AttestError, match="Invalid GitHub API URL"):
        api_base("api.github.com", "https://github.com")


def test_an_empty_token_is_a_usage_error_naming_the_input():
    with pytest.raises(UsageError, match="github-token"):
        GitHubAPI("https://api.github.com", "  ")


# --- create_attestation -----------------------------------------------------------------------


def test_create_attestation_sends_the_bundle_object(github, api):
    path = next(github_bundles().glob("attest-build-provenance-*.sigstore.json"))
    bundle = path.read_bytes()

    identifier = api.create_attestation(REPO, bundle)

    [seen] = github.requests
    assert (seen.method, seen.path) == ("POST", ATTESTATIONS)
    assert seen.json == {"bundle": json.loads(bundle)}
    assert isinstance(seen.json["bundle"], dict)
    assert seen.authorized
    assert seen.header("accept") == "application/vnd.github+json"
    assert seen.header("x-github-api-version") == API_VERSION == "2022-11-28"
    assert seen.header("authorization") == "Bearer ***"
    assert seen.header("content-type") == "application/json"
    assert seen.header("user-agent").startswith("attest/")
    assert identifier == github.attestations[0]["id"]
    assert github.attestations[0]["repository"] == REPO
    assert github.attestations[0]["bundle"] == json.loads(bundle)


def test_a_bundle_with_a_byte_order_mark_is_still_sent_as_an_object(github, api):
    bundle = make_bundle([("app", DIGEST)])
    api.create_attestation(REPO, b"\xef\xbb\xbf" + bundle + b"\n")
    assert github.requests[0].json == {"bundle": json.loads(bundle)}


def test_a_moved_repository(github, api):
    github.fail_next(
        ATTESTATIONS,
        307,
        headers={"location": f"{github.url}/repositories/74/attestations"},
        body={"message": "Temporary Redirect", "url": "x", "documentation_url": "y"},
    )
    error = _raises(api.create_attestation, REPO, make_bundle([("app", DIGEST)]))
    assert error.status == 307
    assert "renamed or transferred" in (error.hint or "")
    assert len(github.requests) == 1


def test_user_agent_suffix(github):
    with GitHubAPI(github.url, github.token, user_agent_suffix="run/42") as client:
        client.create_attestation(REPO, make_bundle([("app", DIGEST)]))
    assert github.requests[0].header("user-agent").endswith(" run/42")


def test_a_wrong_token_is_bad_credentials(github):
    with GitHubAPI(github.url, "ghs_wrong", policy=FAST) as client:
        error = _raises(client.create_attestation, REPO, make_bundle([("app", DIGEST)]))
    assert error.status == 401
    assert error.message == "Failed to persist attestation: Bad credentials (HTTP 401)"
    assert "github-token" in (error.hint or "")
    assert len(github.requests) == 1


def test_a_missing_permission_is_a_403_with_the_yaml_and_is_not_retried(github, api):
    github.permissions["attestations"] = "read"
    error = _raises(api.create_attestation, REPO, make_bundle([("app", DIGEST)]))
    assert error.status == 403
    assert error.message == (
        "Failed to persist attestation: Resource not accessible by integration (HTTP 403)"
    )
    assert "attestations: write" in (error.hint or "")
    assert "permissions: {" in (error.hint or "")
    assert "attestations=write" in (error.hint or "")  # x-accepted-github-permissions
    assert len(github.requests) == 1


def test_an_unknown_repository_is_a_404(github, api):
    error = _raises(api.create_attestation, "octo-org/missing", make_bundle([("app", DIGEST)]))
    assert error.status == 404
    assert error.message == "Failed to persist attestation: Not Found (HTTP 404)"
    assert "octo-org/missing" in (error.hint or "")
    assert len(github.requests) == 1


def test_a_duplicate_subject_is_a_422_with_the_api_message(github, api):
    bundle = make_bundle([("app", DIGEST), ("app", DIGEST)])
    error = _raises(api.create_attestation, REPO, bundle)
    assert error.status == 422
    assert error.message == (
        "Failed to persist attestation: Invalid Argument - duplicate subject in statement "
        "(HTTP 422)"
    )
    assert "same name and digest" in (error.hint or "")
    assert github.attestations == []


def test_an_invalid_bundle_is_a_422_invalid_request(github, api):
    bundle = json.dumps({"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}).encode()
    error = _raises(api.create_attestation, REPO, bundle)
    assert error.status == 422
    assert error.api_message == 'Invalid request. No subschema in "oneOf" matched.'
    assert error.message.startswith("Failed to persist attestation: Invalid request.")


def test_a_bundle_that_is_not_a_json_object_is_refused_before_sending(github, api):
    with pytest.raises(AttestError, match="not UTF-8 JSON"):
        api.create_attestation(REPO, b"{not json")
    with pytest.raises(AttestError, match="not UTF-8 JSON"):
        api.create_attestation(REPO, '{"a": "\u00e9"}'.encode("latin-1"))
    with pytest.raises(AttestError, match="not a JSON object"):
        api.create_attestation(REPO, b'"a string"')
    with pytest.raises(AttestError, match="Invalid repository"):
        api.create_attestation("no-slash", make_bundle([("app", DIGEST)]))
    assert github.requests == []


def test_server_errors_are_retried(github, api):
    github.fail_next(ATTESTATIONS, 500, times=2)
    identifier = api.create_attestation(REPO, make_bundle([("app", DIGEST)]))
    assert identifier == github.attestations[0]["id"]
    assert len(github.requests_to(ATTESTATIONS, "POST")) == 3


def test_server_errors_end_in_an_error_with_the_request_id(github, api):
    github.fail_next(ATTESTATIONS, 502, times=10)
    error = _raises(api.create_attestation, REPO, make_bundle([("app", DIGEST)]))
    assert error.status == 502
    assert error.message.startswith("Failed to persist attestation: Bad Gateway (HTTP 502, ")
    assert error.request_id and error.request_id in error.message
    assert "githubstatus" in (error.hint or "")
    assert len(github.requests) == FAST.attempts


def test_a_secondary_rate_limit_is_waited_out(github, api):
    github.secondary_rate_limit_next(ATTESTATIONS, retry_after=1)
    identifier = api.create_attestation(REPO, make_bundle([("app", DIGEST)]))
    assert identifier == github.attestations[0]["id"]
    assert len(github.requests) == 2


def test_a_secondary_rate_limit_too_long_to_wait_is_reported_as_such(github, api):
    github.secondary_rate_limit_next(ATTESTATIONS, retry_after=3600)
    error = _raises(api.create_attestation, REPO, make_bundle([("app", DIGEST)]))
    assert error.status == 403
    assert "secondary rate limit" in error.message
    assert "rate limit was exceeded" in (error.hint or "")
    assert "in 3600 s" in (error.hint or "")
    assert "attestations: write" not in (error.hint or "")
    assert len(github.requests) == 1


def test_a_429_with_a_retry_after_is_waited_out(github, api):
    github.secondary_rate_limit_next(ATTESTATIONS, retry_after=0, status=429, times=2)
    api.create_attestation(REPO, make_bundle([("app", DIGEST)]))
    assert len(github.requests) == 3


def test_an_exhausted_rate_limit_whose_reset_has_passed_is_retried_at_once(github, api):
    github.fail_next(
        ATTESTATIONS,
        403,
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()) - 5)},
        body={"message": "API rate limit exceeded for installation ID 1.", "status": "403"},
    )
    api.create_attestation(REPO, make_bundle([("app", DIGEST)]))
    assert len(github.requests) == 2


def test_an_exhausted_rate_limit_is_waited_out_until_its_reset(github, api):
    github.exhaust_rate_limit(reset_in=1)
    identifier = api.create_attestation(REPO, make_bundle([("app", DIGEST)]))
    assert identifier == github.attestations[0]["id"]
    assert len(github.requests) == 2


def test_an_exhausted_rate_limit_far_from_its_reset_is_not_retried(github, api):
    github.exhaust_rate_limit(reset_in=3600)
    error = _raises(api.create_attestation, REPO, make_bundle([("app", DIGEST)]))
    assert error.status == 403
    assert "API rate limit exceeded" in error.message
    assert "rate limit was exceeded" in (error.hint or "")
    assert "UTC" in (error.hint or "")
    assert len(github.requests) == 1


def test_connection_failures_are_an_error_without_status(github):
    with FakeGitHubAPI() as gone:
        url = gone.url
    policy = _http.RetryPolicy(attempts=2, initial_wait=0.001, max_wait=0.001)
    with GitHubAPI(url, github.token, policy=policy) as client:
        error = _raises(client.create_attestation, REPO, make_bundle([("app", DIGEST)]))
    assert error.status is None
    assert error.message.startswith("Failed to persist attestation: could not reach")
    assert url in error.message


# --- repository_owner_type --------------------------------------------------------------------


def test_repository_owner_type(github, api):
    assert api.repository_owner_type(REPO) == "Organization"
    assert api.repository_owner_type(USER_REPO) == "User"
    assert [(s.method, s.path) for s in github.requests] == [
        ("GET", f"/repos/{REPO}"),
        ("GET", f"/repos/{USER_REPO}"),
    ]


def test_repository_owner_type_of_an_unknown_repository(github, api):
    error = _raises(api.repository_owner_type, "octo-org/missing")
    assert error.status == 404
    assert error.message == "Failed to read repository octo-org/missing: Not Found (HTTP 404)"
    assert "octo-org/missing" in (error.hint or "")


def test_repository_owner_type_rejects_an_unexpected_answer(github, api):
    github.fail_next(f"/repos/{REPO}", 200, body={"name": "octo-repo"})
    error = _raises(api.repository_owner_type, REPO)
    assert 'no "owner.type"' in error.message


# --- create_storage_record --------------------------------------------------------------------


def test_create_storage_record(github, api):
    api.create_attestation(REPO, make_bundle([("ghcr.io/octo-org/app", DIGEST)]))

    ids = _record(api)

    assert ids == [github.storage_records[0]["id"]]
    seen = github.requests_to(STORAGE_RECORD, "POST")[0]
    assert seen.json == {
        "name": "ghcr.io/octo-org/app",
        "digest": DIGEST,
        "version": "1.2.3",
        "registry_url": "https://ghcr.io",
    }
    assert list(seen.json) == ["name", "digest", "version", "registry_url"]
    assert github.storage_records[0]["github_repository"] == REPO
    # A second record for the same artifact updates the first.
    assert _record(api, version=None, artifact_url="https://ghcr.io/v2/octo-org/app") == ids
    assert github.requests_to(STORAGE_RECORD, "POST")[1].json == {
        "name": "ghcr.io/octo-org/app",
        "digest": DIGEST,
        "registry_url": "https://ghcr.io",
        "artifact_url": "https://ghcr.io/v2/octo-org/app",
    }
    assert len(github.storage_records) == 1


def test_a_storage_record_without_a_provenance_attestation_says_so(github, api):
    sbom = "https://spdx.dev/Document/v2.3"
    api.create_attestation(REPO, make_bundle([("ghcr.io/octo-org/app", DIGEST)], sbom))
    error = _raises(_record, api)
    assert error.status == 404
    assert error.api_message == "no artifacts found"
    assert error.message == (
        f"Failed to create storage record: GitHub knows no build-provenance attestation of "
        f"{DIGEST} in a repository of octo-org yet, and storage records attach to one "
        "(no artifacts found, HTTP 404)"
    )
    assert "permission is not the cause" in (error.hint or "")
    assert "artifact-metadata: write" not in (error.hint or "")


def test_a_storage_record_for_another_digest_finds_no_artifacts(github, api):
    api.create_attestation(REPO, make_bundle([("ghcr.io/octo-org/app", DIGEST)]))
    error = _raises(_record, api, OTHER_DIGEST)
    assert "no artifacts found" in error.message and OTHER_DIGEST in error.message


def test_a_storage_record_403_names_the_permission(github, api):
    github.fail_next(
        STORAGE_RECORD,
        403,
        headers={"x-accepted-github-permissions": "artifact_metadata=write"},
        body={"message": "Resource not accessible by integration", "status": "403"},
    )
    error = _raises(_record, api)
    assert error.message == (
        "Failed to create storage record: the token lacks the `artifact-metadata: write` "
        "permission (Resource not accessible by integration, HTTP 403)"
    )
    assert "artifact-metadata: write}" in (error.hint or "")
    assert len(github.requests) == 1


def test_a_storage_record_without_write_access_is_a_404(github, api):
    api.create_attestation(REPO, make_bundle([("ghcr.io/octo-org/app", DIGEST)]))
    del github.permissions["artifact-metadata"]
    error = _raises(_record, api)
    assert error.status == 404
    assert "the organization octo-org was not found, or the token may not write" in error.message
    assert "(Not Found, HTTP 404)" in error.message
    assert "artifact-metadata: write" in (error.hint or "")


def test_a_storage_record_for_a_user_is_a_404(github, api):
    with pytest.raises(GitHubAPIError) as info:
        api.create_storage_record(
            "octocat", name="x", digest=DIGEST, version=None, registry_url="https://ghcr.io"
        )
    assert info.value.status == 404
    assert "organization octocat was not found" in info.value.message
    assert "organization-owned" in (info.value.hint or "")


def test_an_invalid_storage_record_is_a_422_with_the_api_message(github, api):
    error = _raises(_record, api, "sha256:ABC")
    assert error.status == 422
    assert "GitHub rejected the record for ghcr.io/octo-org/app@sha256:ABC" in error.message
    assert "does not match" in error.api_message
    assert "sha256:<64 lowercase hex>" in (error.hint or "")


def test_a_storage_record_rate_limit_is_not_blamed_on_the_permission(github, api):
    github.secondary_rate_limit_next(STORAGE_RECORD, retry_after=600)
    error = _raises(_record, api)
    assert error.message.startswith(
        "Failed to create storage record: GitHub's API rate limit was exceeded (You have"
    )
    assert "artifact-metadata" not in (error.hint or "")


def test_storage_record_server_errors_are_retried(github, api):
    api.create_attestation(REPO, make_bundle([("ghcr.io/octo-org/app", DIGEST)]))
    github.fail_next(STORAGE_RECORD, 503)
    assert _record(api) == [github.storage_records[0]["id"]]
    assert len(github.requests_to(STORAGE_RECORD)) == 2


def test_a_storage_record_answer_without_records_is_an_error(github, api):
    github.fail_next(STORAGE_RECORD, 200, body={"total_count": 0})
    error = _raises(_record, api)
    assert 'no "storage_records" list' in error.message


# --- the token stays secret -------------------------------------------------------------------


def test_the_token_never_appears_in_errors_or_logs(github, caplog):
    caplog.set_level(logging.DEBUG)
    token = github.token
    errors: list[GitHubAPIError] = []
    # The API echoing the token back must not leak it either.
    github.fail_next(ATTESTATIONS, 422, body={"message": f"bad {token}", "status": "422"})
    github.fail_next(STORAGE_RECORD, 500, times=10, body=f"oops {token}")
    github.permissions["attestations"] = "none"
    with GitHubAPI(github.url, token, policy=FAST) as client:
        assert token not in repr(client)
        for call, args in [
            (client.create_attestation, (REPO, make_bundle([("a", DIGEST)]))),
            (client.create_attestation, (REPO, make_bundle([("a", DIGEST)]))),
            (client.repository_owner_type, ("octo-org/missing",)),
            (_record, (client,)),
        ]:
            errors.append(_raises(call, *args))
    with FakeGitHubAPI() as gone:
        url = gone.url
    with GitHubAPI(url, token, policy=FAST) as client:
        errors.append(_raises(client.create_attestation, REPO, make_bundle([("a", DIGEST)])))

    assert [e.status for e in errors] == [422, 403, 404, 500, None]
    assert "***" in errors[0].message
    for error in errors:
        assert token not in str(error)
        assert token not in error.report()
        assert token not in repr(error)
        assert token not in error.api_message
    assert any("retrying" in r.getMessage() for r in caplog.records)
    assert token not in caplog.text
    assert all(seen.header("authorization") in (None, "Bearer ***") for seen in github.requests)
