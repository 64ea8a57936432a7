from __future__ import annotations

import base64
import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from attest.errors import CredentialsError
from attest.oci.credentials import Credential, CredentialSources, CredentialStore


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _write(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


class FakeRunner:
    """Records helper calls; answers from a (helper, server_url) -> stdout table."""

    def __init__(self, answers: dict[tuple[str, str], str | None] | None = None) -> None:
        self.answers = answers or {}
        self.calls: list[tuple[str, str]] = []

    def __call__(self, helper: str, server_url: str) -> str | None:
        self.calls.append((helper, server_url))
        return self.answers.get((helper, server_url))


def _helper_json(username: str, secret: str, server: str = "x") -> str:
    return json.dumps({"ServerURL": server, "Username": username, "Secret": secret})


def _docker_store(tmp_path: Path, config: Any, runner: FakeRunner | None = None) -> CredentialStore:
    path = _write(tmp_path / "docker" / "config.json", config)
    return CredentialStore(
        CredentialSources(docker_config=path, auth_files=()), helper_runner=runner
    )


# --- CredentialSources.from_environ ---------------------------------------------------------


def test_from_environ_defaults_to_home(tmp_path: Path) -> None:
    sources = CredentialSources.from_environ({}, tmp_path)
    assert sources.docker_config == tmp_path / ".docker" / "config.json"
    assert sources.auth_files == (tmp_path / ".config" / "containers" / "auth.json",)
    assert sources.registry_auth_file is None


def test_from_environ_honours_variables(tmp_path: Path) -> None:
    env = {
        "DOCKER_CONFIG": str(tmp_path / "dc"),
        "XDG_RUNTIME_DIR": str(tmp_path / "run"),
        "REGISTRY_AUTH_FILE": str(tmp_path / "auth.json"),
    }
    sources = CredentialSources.from_environ(env, tmp_path / "home")
    assert sources.docker_config == tmp_path / "dc" / "config.json"
    assert sources.auth_files == (
        tmp_path / "run" / "containers" / "auth.json",
        tmp_path / "home" / ".config" / "containers" / "auth.json",
    )
    assert sources.registry_auth_file == tmp_path / "auth.json"


def test_from_environ_empty_variables_count_as_unset(tmp_path: Path) -> None:
    env = {"DOCKER_CONFIG": "", "XDG_RUNTIME_DIR": "", "REGISTRY_AUTH_FILE": ""}
    assert CredentialSources.from_environ(env, tmp_path) == CredentialSources.from_environ(
        {}, tmp_path
    )


def test_docker_config_env_is_the_file_read(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _write(home / ".docker" / "config.json", {"auths": {"ghcr.io": {"auth": _b64("home:pw")}}})
    _write(tmp_path / "dc" / "config.json", {"auths": {"ghcr.io": {"auth": _b64("dc:pw")}}})
    with_env = CredentialStore(
        CredentialSources.from_environ({"DOCKER_CONFIG": str(tmp_path / "dc")}, home)
    )
    without_env = CredentialStore(CredentialSources.from_environ({}, home))
    assert with_env.get("ghcr.io") == Credential("dc", "pw")
    assert without_env.get("ghcr.io") == Credential("home", "pw")


# --- docker config.json auths ----------------------------------------------------------------


def test_auth_field_splits_at_first_colon(tmp_path: Path) -> None:
    store = _docker_store(tmp_path, {"auths": {"ghcr.io": {"auth": _b64("bob:pa:ss")}}})
    cred = store.get("ghcr.io", "org/app")
    assert cred == Credential(username="bob", password="pa:ss", identity_token=False)


def test_username_password_fields(tmp_path: Path) -> None:
    store = _docker_store(
        tmp_path, {"auths": {"registry.example.com": {"username": "u", "password": "p"}}}
    )
    assert store.get("registry.example.com") == Credential("u", "p")


def test_identity_token_without_auth_uses_token_username(tmp_path: Path) -> None:
    store = _docker_store(tmp_path, {"auths": {"myacr.azurecr.io": {"identitytoken": "refresh"}}})
    assert store.get("myacr.azurecr.io") == Credential("<token>", "refresh", identity_token=True)


def test_identity_token_keeps_username_from_auth(tmp_path: Path) -> None:
    entry = {"auth": _b64("00000000-0000:"), "identitytoken": "refresh"}
    store = _docker_store(tmp_path, {"auths": {"myacr.azurecr.io": entry}})
    assert store.get("myacr.azurecr.io") == Credential(
        "00000000-0000", "refresh", identity_token=True
    )


@pytest.mark.parametrize("entry", [{}, {"auth": ""}])
def test_empty_entry_gives_nothing(tmp_path: Path, entry: dict[str, str]) -> None:
    store = _docker_store(tmp_path, {"auths": {"ghcr.io": entry}})
    assert store.get("ghcr.io") is None


@pytest.mark.parametrize(
    "key",
    ["https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io"],
)
def test_docker_hub_key_variants(tmp_path: Path, key: str) -> None:
    store = _docker_store(tmp_path, {"auths": {key: {"auth": _b64("hubuser:hubpw")}}})
    assert store.get("registry-1.docker.io", "library/alpine") == Credential("hubuser", "hubpw")


@pytest.mark.parametrize(
    ("key", "registry"),
    [
        ("https://registry.example.com/", "registry.example.com"),
        ("http://127.0.0.1:5000/v2/", "127.0.0.1:5000"),
        ("127.0.0.1:5000", "127.0.0.1:5000"),
        ("http://[::1]:5000/v2/", "[::1]:5000"),
        ("GHCR.IO", "ghcr.io"),
    ],
)
def test_keys_are_stripped_of_scheme_and_path(tmp_path: Path, key: str, registry: str) -> None:
    store = _docker_store(tmp_path, {"auths": {key: {"auth": _b64("u:p")}}})
    assert store.get(registry) == Credential("u", "p")


def test_port_is_part_of_the_host(tmp_path: Path) -> None:
    store = _docker_store(tmp_path, {"auths": {"127.0.0.1:5000": {"auth": _b64("u:p")}}})
    assert store.get("127.0.0.1:5001") is None
    assert store.get("127.0.0.1") is None


def test_other_registry_gives_nothing(tmp_path: Path) -> None:
    store = _docker_store(tmp_path, {"auths": {"ghcr.io": {"auth": _b64("u:p")}}})
    assert store.get("quay.io") is None


# --- credential helpers (fake runner) ----------------------------------------------------------


def test_cred_helper_takes_precedence_over_auths(tmp_path: Path) -> None:
    runner = FakeRunner(
        {("ecr-login", "123.dkr.ecr.eu-west-1.amazonaws.com"): _helper_json("AWS", "tok")}
    )
    config = {
        "auths": {"123.dkr.ecr.eu-west-1.amazonaws.com": {"auth": _b64("stale:old")}},
        "credHelpers": {"123.dkr.ecr.eu-west-1.amazonaws.com": "ecr-login"},
        "credsStore": "desktop",
    }
    store = _docker_store(tmp_path, config, runner)
    assert store.get("123.dkr.ecr.eu-west-1.amazonaws.com") == Credential("AWS", "tok")
    assert runner.calls == [("ecr-login", "123.dkr.ecr.eu-west-1.amazonaws.com")]


def test_creds_store_falls_back_to_auths_when_not_found(tmp_path: Path) -> None:
    runner = FakeRunner()  # answers None: "credentials not found"
    config = {"auths": {"ghcr.io": {"auth": _b64("file:pw")}}, "credsStore": "desktop"}
    store = _docker_store(tmp_path, config, runner)
    assert store.get("ghcr.io") == Credential("file", "pw")
    assert runner.calls == [("desktop", "ghcr.io")]


def test_creds_store_used_for_docker_hub_with_index_url(tmp_path: Path) -> None:
    runner = FakeRunner({("desktop", "https://index.docker.io/v1/"): _helper_json("hub", "s3")})
    config = {"auths": {"https://index.docker.io/v1/": {}}, "credsStore": "desktop"}
    store = _docker_store(tmp_path, config, runner)
    assert store.get("registry-1.docker.io", "library/alpine") == Credential("hub", "s3")
    assert runner.calls == [("desktop", "https://index.docker.io/v1/")]


def test_helper_token_username_means_identity_token(tmp_path: Path) -> None:
    runner = FakeRunner({("acr", "x.azurecr.io"): _helper_json("<token>", "refresh")})
    store = _docker_store(tmp_path, {"credHelpers": {"x.azurecr.io": "acr"}}, runner)
    assert store.get("x.azurecr.io") == Credential("<token>", "refresh", identity_token=True)


def test_helper_invalid_json_raises(tmp_path: Path) -> None:
    runner = FakeRunner({("bad", "ghcr.io"): "not json"})
    store = _docker_store(tmp_path, {"credHelpers": {"ghcr.io": "bad"}}, runner)
    with pytest.raises(CredentialsError, match="docker-credential-bad"):
        store.get("ghcr.io")


def test_results_are_cached(tmp_path: Path) -> None:
    runner = FakeRunner({("desktop", "ghcr.io"): _helper_json("u", "p")})
    store = _docker_store(tmp_path, {"credsStore": "desktop"}, runner)
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(store.get("ghcr.io"))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [Credential("u", "p")] * 8
    assert runner.calls == [("desktop", "ghcr.io")]


# --- the default helper runner, with real programs ---------------------------------------------


def _install_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, body: str) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    script = bindir / f"docker-credential-{name}"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    return bindir


def test_real_helper_gets_server_url_on_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = tmp_path / "seen"
    _install_helper(
        tmp_path,
        monkeypatch,
        "fake",
        f'[ "$1" = get ] || exit 9\n'
        f'read -r url\nprintf "%s" "$url" > "{seen}"\n'
        'printf \'{"ServerURL":"%s","Username":"helperuser","Secret":"helpersecret"}\' "$url"\n',
    )
    store = _docker_store(tmp_path, {"credHelpers": {"ghcr.io": "fake"}})
    assert store.get("ghcr.io", "org/app") == Credential("helperuser", "helpersecret")
    assert seen.read_text() == "ghcr.io"


def test_real_helper_not_found_falls_back_to_auths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install_helper(
        tmp_path, monkeypatch, "fake", "echo 'credentials not found in native keychain'\nexit 1\n"
    )
    config = {"auths": {"ghcr.io": {"auth": _b64("file:pw")}}, "credsStore": "fake"}
    assert _docker_store(tmp_path, config).get("ghcr.io") == Credential("file", "pw")


def test_helper_not_installed_falls_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    docker = _write(
        tmp_path / "docker" / "config.json",
        {"credHelpers": {"ghcr.io": "nosuchhelper"}, "auths": {"ghcr.io": {}}},
    )
    podman = _write(tmp_path / "auth.json", {"auths": {"ghcr.io": {"auth": _b64("pod:pw")}}})
    store = CredentialStore(CredentialSources(docker_config=docker, auth_files=(podman,)))
    assert store.get("ghcr.io") == Credential("pod", "pw")


def test_real_helper_failure_raises_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install_helper(tmp_path, monkeypatch, "fake", "echo 'keyring is locked' >&2\nexit 3\n")
    store = _docker_store(tmp_path, {"credHelpers": {"ghcr.io": "fake"}})
    with pytest.raises(CredentialsError) as info:
        store.get("ghcr.io")
    assert "docker-credential-fake" in info.value.message
    assert "keyring is locked" in info.value.message
    assert info.value.hint


# --- podman auth.json ------------------------------------------------------------------------


def test_registry_auth_file_beats_docker_config_and_podman_files(tmp_path: Path) -> None:
    docker = _write(tmp_path / "d.json", {"auths": {"quay.io": {"auth": _b64("docker:pw")}}})
    raf = _write(tmp_path / "raf.json", {"auths": {"quay.io": {"auth": _b64("raf:pw")}}})
    podman = _write(tmp_path / "p.json", {"auths": {"quay.io": {"auth": _b64("podman:pw")}}})
    sources = CredentialSources(docker_config=docker, auth_files=(podman,), registry_auth_file=raf)
    assert CredentialStore(sources).get("quay.io") == Credential("raf", "pw")
    without_raf = CredentialSources(docker_config=docker, auth_files=(podman,))
    assert CredentialStore(without_raf).get("quay.io") == Credential("docker", "pw")


def test_podman_files_in_priority_order(tmp_path: Path) -> None:
    runtime = _write(tmp_path / "run.json", {"auths": {"quay.io": {"auth": _b64("run:pw")}}})
    config = _write(tmp_path / "cfg.json", {"auths": {"quay.io": {"auth": _b64("cfg:pw")}}})
    missing = tmp_path / "nope" / "config.json"
    store = CredentialStore(CredentialSources(docker_config=missing, auth_files=(runtime, config)))
    assert store.get("quay.io") == Credential("run", "pw")


def test_podman_most_specific_namespace_wins(tmp_path: Path) -> None:
    auths = {
        "quay.io": {"auth": _b64("host:pw")},
        "quay.io/org": {"auth": _b64("org:pw")},
        "quay.io/org/app": {"auth": _b64("app:pw")},
    }
    raf = _write(tmp_path / "auth.json", {"auths": auths})
    store = CredentialStore(CredentialSources(docker_config=None, registry_auth_file=raf))
    assert store.get("quay.io", "org/app") == Credential("app", "pw")
    assert store.get("quay.io", "org/app/sub") == Credential("app", "pw")
    assert store.get("quay.io", "org/other") == Credential("org", "pw")
    assert store.get("quay.io", "organ/app") == Credential("host", "pw")
    assert store.get("quay.io", "") == Credential("host", "pw")


def test_podman_docker_hub_namespace_key(tmp_path: Path) -> None:
    raf = _write(tmp_path / "auth.json", {"auths": {"docker.io/library": {"auth": _b64("l:pw")}}})
    store = CredentialStore(CredentialSources(docker_config=None, registry_auth_file=raf))
    assert store.get("registry-1.docker.io", "library/alpine") == Credential("l", "pw")
    assert store.get("registry-1.docker.io", "someone/app") is None


def test_docker_config_ignores_namespace_in_keys(tmp_path: Path) -> None:
    # docker strips everything after the host, so a path never restricts an entry.
    store = _docker_store(tmp_path, {"auths": {"quay.io/org": {"auth": _b64("u:p")}}})
    assert store.get("quay.io", "other/app") == Credential("u", "p")


def test_podman_cred_helpers(tmp_path: Path) -> None:
    runner = FakeRunner({("pass", "quay.io"): _helper_json("hu", "hs")})
    raf = _write(
        tmp_path / "auth.json",
        {"credHelpers": {"quay.io": "pass"}, "auths": {"quay.io": {"auth": _b64("file:pw")}}},
    )
    store = CredentialStore(
        CredentialSources(docker_config=None, registry_auth_file=raf), helper_runner=runner
    )
    assert store.get("quay.io", "org/app") == Credential("hu", "hs")
    assert runner.calls == [("pass", "quay.io")]


# --- explicit credentials --------------------------------------------------------------------


def test_explicit_credentials_win(tmp_path: Path) -> None:
    runner = FakeRunner({("desktop", "ghcr.io"): _helper_json("helper", "pw")})
    docker = _write(tmp_path / "config.json", {"credsStore": "desktop"})
    explicit = {"ghcr.io": Credential("cli", "clipw"), "docker.io": Credential("hub", "hubpw")}
    store = CredentialStore(
        CredentialSources(docker_config=docker), explicit=explicit, helper_runner=runner
    )
    assert store.get("ghcr.io") == Credential("cli", "clipw")
    assert store.get("registry-1.docker.io", "library/alpine") == Credential("hub", "hubpw")
    assert runner.calls == []


# --- broken sources --------------------------------------------------------------------------


def test_broken_json_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "config.json", '{"auths": {')
    store = CredentialStore(CredentialSources(docker_config=path))
    with pytest.raises(CredentialsError) as info:
        store.get("ghcr.io")
    assert str(path) in info.value.message
    assert info.value.hint


def test_file_not_an_object(tmp_path: Path) -> None:
    path = _write(tmp_path / "auth.json", "[1, 2]")
    store = CredentialStore(CredentialSources(docker_config=None, registry_auth_file=path))
    with pytest.raises(CredentialsError, match="not hold a JSON object") as info:
        store.get("ghcr.io")
    assert str(path) in info.value.message


@pytest.mark.parametrize(
    ("auth", "problem"),
    [("!!!not-base64!!!", "not valid base64"), (_b64("nocolon"), "username:password")],
)
def test_bad_auth_names_file_and_key(tmp_path: Path, auth: str, problem: str) -> None:
    store = _docker_store(tmp_path, {"auths": {"https://ghcr.io/": {"auth": auth}}})
    with pytest.raises(CredentialsError) as info:
        store.get("ghcr.io")
    message = info.value.message
    assert str(tmp_path / "docker" / "config.json") in message
    assert "https://ghcr.io/" in message
    assert problem in message


def test_missing_and_empty_files_are_skipped(tmp_path: Path) -> None:
    empty = _write(tmp_path / "empty.json", "")
    sources = CredentialSources(
        docker_config=tmp_path / "missing" / "config.json",
        auth_files=(empty, tmp_path / "also-missing.json"),
    )
    assert CredentialStore(sources).get("ghcr.io") is None


def test_unreadable_directory_path_raises(tmp_path: Path) -> None:
    # A directory where the file should be is unreadable as a file, for root too.
    path = tmp_path / "config.json"
    path.mkdir()
    with pytest.raises(CredentialsError, match="cannot read") as info:
        CredentialStore(CredentialSources(docker_config=path)).get("ghcr.io")
    assert str(path) in info.value.message


# --- secrecy ---------------------------------------------------------------------------------


def test_repr_hides_the_secret() -> None:
    cred = Credential("alice", "s3cr3t-value")
    token = Credential("<token>", "refresh-t0ken", identity_token=True)
    assert "s3cr3t-value" not in repr(cred)
    assert "s3cr3t-value" not in str(cred)
    assert "alice" in repr(cred)
    assert "refresh-t0ken" not in repr(token)


def test_a_credential_for_any_registry_serves_every_host_but_a_specific_one_wins(tmp_path):
    anyone = Credential("actor", "token")
    specific = Credential("other", "pw")
    store = CredentialStore(
        CredentialSources(docker_config=tmp_path / "none.json"),
        explicit={"*": anyone, "quay.io": specific},
    )
    assert store.get("ghcr.io") == anyone
    assert store.get("registry-1.docker.io") == anyone
    assert store.get("quay.io") == specific
