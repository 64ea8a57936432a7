"""Registry authentication end to end: anonymous, Basic, Bearer tokens, credential sources."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from ..helpers import PROVENANCE, push_image, run_attest, through, unique_repository
from ..quirk_proxy import QuirkProxy, Quirks

USER, PASSWORD = "ci-user", "s3cret-pass"


def _docker_config(directory: Path, host: str, entry: dict[str, str]) -> dict[str, str]:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps({"auths": {host: entry}}))
    return {"DOCKER_CONFIG": str(directory)}


def _auth(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_anonymous_registry_works_even_with_credentials_configured(registry_of, tmp_path):
    # The JS action fails here with "Invalid challenge:".
    registry = registry_of("distribution")
    image = push_image(registry.host, unique_repository("anon"))
    environ = _docker_config(tmp_path, registry.host, _auth(USER, PASSWORD))
    with QuirkProxy(registry.url, Quirks()) as proxy:
        result = run_attest(
            "attach", through(proxy, image), "--bundle", PROVENANCE, environ=environ
        ).json()
        sent = {r.headers.get("Authorization") for r in proxy.log}
    assert result["mode"] == "tag"
    assert sent == {None}, "no credentials are sent to a registry that never asks"


def test_basic_auth_from_the_command_line(registry_of):
    registry = registry_of("olareg")
    image = push_image(registry.host, unique_repository("basic"))
    with QuirkProxy(registry.url, Quirks(basic_auth=(USER, PASSWORD))) as proxy:
        target = through(proxy, image)
        missing = run_attest("attach", target, "--bundle", PROVENANCE)
        wrong = run_attest(
            "attach",
            target,
            "--bundle",
            PROVENANCE,
            "--username",
            USER,
            "--password-stdin",
            stdin="nope\n",
        )
        right = run_attest(
            "attach",
            target,
            "--bundle",
            PROVENANCE,
            "--username",
            USER,
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )
        challenged = [r for r in proxy.log if r.status == 401]
    assert missing.code == 1
    assert "requires credentials and none were found" in missing.stderr
    assert missing.stderr.count("\n") == 1
    assert wrong.code == 1
    assert "401" in wrong.stderr and "hint:" in wrong.stderr
    assert right.json()["mode"] == "api"
    # One 401 per run (two when the password is wrong): after the challenge, Basic is sent
    # up front.
    assert len(challenged) == 4
    assert "refused the credentials" in wrong.stderr


def test_bearer_tokens_from_docker_config_are_cached_per_scope(registry_of, tmp_path):
    registry = registry_of("distribution")
    image = push_image(registry.host, unique_repository("bearer"))
    with QuirkProxy(registry.url, Quirks(bearer_auth=(USER, PASSWORD))) as proxy:
        environ = _docker_config(tmp_path, f"http://{proxy.host}/v2/", _auth(USER, PASSWORD))
        result = run_attest(
            "attach", through(proxy, image), "--bundle", PROVENANCE, environ=environ
        ).json()
        token_requests = list(proxy.token_requests)
        unauthorized = [r for r in proxy.log if r.status == 401]
    assert result["mode"] == "tag"
    # One pull token for the reads, one pull,push token for the writes; nothing more.
    assert len(token_requests) == 2, token_requests
    assert len(unauthorized) == 2


def test_anonymous_pull_tokens_list_but_cannot_push(registry_of):
    registry = registry_of("olareg")
    image = push_image(registry.host, unique_repository("anonpull"))
    quirks = Quirks(bearer_auth=(USER, PASSWORD), anonymous_pull=True)
    with QuirkProxy(registry.url, quirks) as proxy:
        listed = run_attest("referrers", through(proxy, image))
        pushed = run_attest("attach", through(proxy, image), "--bundle", PROVENANCE)
    assert listed.json() == []
    assert pushed.code == 1
    assert "no credentials were found" in pushed.stderr


def test_identity_tokens_use_the_oauth2_refresh_grant(registry_of, tmp_path):
    registry = registry_of("olareg")
    image = push_image(registry.host, unique_repository("identity"))
    quirks = Quirks(bearer_auth=(USER, PASSWORD), identity_token="refresh-me")
    with QuirkProxy(registry.url, quirks) as proxy:
        environ = _docker_config(
            tmp_path,
            proxy.host,
            {"auth": base64.b64encode(b"<token>:").decode(), "identitytoken": "refresh-me"},
        )
        result = run_attest(
            "attach", through(proxy, image), "--bundle", PROVENANCE, environ=environ
        ).json()
        grants = [r.get("form", {}).get("grant_type") for r in proxy.token_requests]
    assert result["mode"] == "api"
    assert grants and set(grants) == {"refresh_token"}


def test_an_expired_token_is_renewed_once(registry_of, tmp_path):
    registry = registry_of("olareg")
    image = push_image(registry.host, unique_repository("expiry"))
    quirks = Quirks(bearer_auth=(USER, PASSWORD), token_expires_after=2)
    with QuirkProxy(registry.url, quirks) as proxy:
        environ = _docker_config(tmp_path, proxy.host, _auth(USER, PASSWORD))
        result = run_attest(
            "attach", through(proxy, image), "--bundle", PROVENANCE, environ=environ
        ).json()
        token_requests = len(proxy.token_requests)
    assert result["mode"] == "api"
    assert token_requests > 2


def test_redirected_blob_requests_carry_no_credentials(registry_of, tmp_path):
    registry = registry_of("distribution")
    image = push_image(registry.host, unique_repository("redirect"))
    quirks = Quirks(basic_auth=(USER, PASSWORD), redirect_blob_gets=True)
    with QuirkProxy(registry.url, quirks) as proxy:
        environ = _docker_config(tmp_path, proxy.host, _auth(USER, PASSWORD))
        for _ in range(2):
            run_attest(
                "attach", through(proxy, image), "--bundle", PROVENANCE, environ=environ
            ).json()
        redirected = list(proxy.blob_redirect_log)
        direct = [r for r in proxy.log if r.status != 401]
    assert redirected, "blob requests were redirected to the other host"
    assert not any(r.had_authorization for r in redirected)
    assert all(r.headers.get("Authorization", "").startswith("Basic") for r in direct)
