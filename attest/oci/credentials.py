"""Registry credentials, resolved the way the docker CLI and podman do it.

Sources, first hit wins: credentials given explicitly (command line), the file
named by ``$REGISTRY_AUTH_FILE``, the docker ``config.json``, then the other
containers ``auth.json`` files. Docker-format files may delegate to credential
helpers (``docker-credential-<name>`` programs). Nothing here touches the
network, and nothing reads ``os.environ``: the caller builds
:class:`CredentialSources` from the environment it wants honoured.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import shutil
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

from attest.errors import CredentialsError

__all__ = ["ANY_REGISTRY", "Credential", "CredentialSources", "CredentialStore", "HelperRunner"]

_log = logging.getLogger(__name__)

#: ``(helper_name, server_url) -> stdout`` of ``docker-credential-<name> get``,
#: or ``None`` when the helper is absent or has no credentials for the server.
HelperRunner: TypeAlias = Callable[[str, str], str | None]

#: An explicit credential under this key serves every registry.
ANY_REGISTRY = "*"

# The username docker stores alongside an identity (refresh) token.
_TOKEN_USERNAME = "<token>"
# All spellings of Docker Hub; docker keeps its credentials under the v1 index URL.
_DOCKER_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_DOCKER_HUB = "docker.io"
_DOCKER_HUB_SERVER_URL = "https://index.docker.io/v1/"
_HELPER_PREFIX = "docker-credential-"
_HELPER_TIMEOUT_S = 30.0
_NOT_FOUND = "credentials not found"


@dataclass(frozen=True)
class Credential:
    """A username and password, or an identity token (``identity_token=True``).

    For an identity token ``password`` holds the token and the caller should
    use it as an OAuth2 refresh token. ``repr`` never shows the secret.
    """

    username: str
    password: str = field(repr=False)
    identity_token: bool = False


@dataclass(frozen=True)
class CredentialSources:
    """The files credentials are read from; none of them has to exist."""

    docker_config: Path | None
    auth_files: tuple[Path, ...] = ()
    registry_auth_file: Path | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], home: Path) -> CredentialSources:
        """The files docker and podman would read given ``environ`` and ``home``.

        Empty variables count as unset, as they do for docker and podman.
        """
        docker_dir = environ.get("DOCKER_CONFIG")
        docker_config = (
            Path(docker_dir) / "config.json" if docker_dir else home / ".docker" / "config.json"
        )
        auth_files: list[Path] = []
        runtime_dir = environ.get("XDG_RUNTIME_DIR")
        if runtime_dir:
            auth_files.append(Path(runtime_dir) / "containers" / "auth.json")
        auth_files.append(home / ".config" / "containers" / "auth.json")
        registry_auth_file = environ.get("REGISTRY_AUTH_FILE")
        return cls(
            docker_config=docker_config,
            auth_files=tuple(auth_files),
            registry_auth_file=Path(registry_auth_file) if registry_auth_file else None,
        )


class CredentialStore:
    """Looks up the credential for a registry (and repository), caching answers.

    Safe to share between threads; lookups are serialised so a slow helper
    runs once per registry rather than once per thread.
    """

    def __init__(
        self,
        sources: CredentialSources,
        *,
        explicit: Mapping[str, Credential] | None = None,
        helper_runner: HelperRunner | None = None,
    ) -> None:
        self._sources = sources
        # Keys normalised like file keys, so "docker.io" given explicitly serves Docker Hub.
        self._explicit = {
            k if k == ANY_REGISTRY else _canonical_host(_strip_key(k)): c
            for k, c in (explicit or {}).items()
        }
        self._run_helper: HelperRunner = helper_runner or _run_helper
        self._cache: dict[tuple[str, str], Credential | None] = {}
        self._lock = threading.Lock()

    def get(self, registry: str, repository: str = "") -> Credential | None:
        """The credential for ``registry`` (a wire host such as ``ghcr.io`` or
        ``[::1]:5000``), or ``None`` to go anonymous.

        ``repository`` (``org/app``) selects podman per-namespace entries.
        Raises :class:`CredentialsError` for a broken file or helper.
        """
        host = _canonical_host(registry)
        repository = repository.strip("/")
        key = (host, repository)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
            credential = self._resolve(host, repository)
            self._cache[key] = credential
            return credential

    def _resolve(self, host: str, repository: str) -> Credential | None:
        # "*": given for every registry of the run (the action's registry-username input).
        explicit = self._explicit.get(host) or self._explicit.get(ANY_REGISTRY)
        if explicit is not None:
            _log.debug("credential for %s: given explicitly", host)
            return explicit
        sources = self._sources
        if sources.registry_auth_file is not None:
            found = self._from_file(sources.registry_auth_file, host, repository, podman=True)
            if found is not None:
                return found
        if sources.docker_config is not None:
            found = self._from_file(sources.docker_config, host, repository, podman=False)
            if found is not None:
                return found
        for path in sources.auth_files:
            found = self._from_file(path, host, repository, podman=True)
            if found is not None:
                return found
        _log.debug("credential for %s: none found, going anonymous", host)
        return None

    def _from_file(
        self, path: Path, host: str, repository: str, *, podman: bool
    ) -> Credential | None:
        config = _load_config(path)
        if config is None:
            return None
        helper = _helper_for(config, path, host)
        if helper is None and not podman:
            # containers-auth.json has no credsStore; docker's applies to every host.
            helper = _string_field(config, "credsStore", path)
        if helper:
            found = self._from_helper(helper, host, path, podman=podman)
            if found is not None:
                return found
        auths = _object_field(config, "auths", path)
        for key, entry in _matching_entries(auths, host, repository, namespaces=podman):
            credential = _parse_entry(entry, path, key)
            if credential is not None:
                _log.debug("credential for %s: %s, auths[%r]", host, path, key)
                return credential
        return None

    def _from_helper(
        self, helper: str, host: str, path: Path, *, podman: bool
    ) -> Credential | None:
        if not helper or "/" in helper or "\\" in helper:
            raise CredentialsError(
                f"{path}: credential helper name {helper!r} is not a plain program name",
                hint=f"set it to the part after {_HELPER_PREFIX!r}, e.g. 'pass' or 'ecr-login'",
            )
        # Docker keeps Docker Hub under its v1 index URL; podman under "docker.io".
        if host == _DOCKER_HUB:
            server_url = _DOCKER_HUB if podman else _DOCKER_HUB_SERVER_URL
        else:
            server_url = host
        output = self._run_helper(helper, server_url)
        if output is None:
            return None
        credential = _parse_helper_output(output, helper)
        if credential is not None:
            _log.debug(
                "credential for %s: helper %s%s (from %s)", host, _HELPER_PREFIX, helper, path
            )
        return credential


def _run_helper(name: str, server_url: str) -> str | None:
    """Run ``docker-credential-<name> get`` as docker does; ``None`` if absent or not found."""
    program_name = _HELPER_PREFIX + name
    program = shutil.which(program_name)
    if program is None:
        _log.debug("credential helper %s is not installed; skipping it", program_name)
        return None
    try:
        result = subprocess.run(
            [program, "get"],
            input=server_url,
            capture_output=True,
            text=True,
            timeout=_HELPER_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CredentialsError(
            f"credential helper {program_name} did not answer within {_HELPER_TIMEOUT_S:g} s",
            hint="it may be waiting for a password prompt or a locked keyring; unlock it or "
            "remove it from the docker config",
        ) from exc
    except OSError as exc:
        raise CredentialsError(
            f"credential helper {program_name} ({program}) could not be run: {exc}",
            hint="check that the program is executable",
        ) from exc
    if result.returncode != 0:
        # Helpers report "not found" on stdout (docker-credential-helpers) or stderr.
        if _NOT_FOUND in result.stdout.lower() or _NOT_FOUND in result.stderr.lower():
            return None
        detail = _first_line(result.stderr) or _first_line(result.stdout) or "no output"
        raise CredentialsError(
            f"credential helper {program_name} failed for {server_url} "
            f"(exit {result.returncode}): {detail}",
            hint=f"run `echo {server_url} | {program_name} get` to investigate, "
            "or log in to the registry again",
        )
    return result.stdout


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:300]
    return ""


def _parse_helper_output(output: str, helper: str) -> Credential | None:
    program_name = _HELPER_PREFIX + helper
    try:
        data = json.loads(output)
    except json.JSONDecodeError as exc:
        raise CredentialsError(
            f"credential helper {program_name} printed invalid JSON ({exc.msg})",
            hint="check the helper works: run it with `get` and the registry on stdin",
        ) from exc
    if not isinstance(data, dict):
        raise CredentialsError(
            f"credential helper {program_name} printed JSON that is not an object",
            hint="check the helper works: run it with `get` and the registry on stdin",
        )
    username = data.get("Username")
    secret = data.get("Secret")
    if not isinstance(username, str) or not isinstance(secret, str):
        raise CredentialsError(
            f"credential helper {program_name} printed no string Username/Secret",
            hint="check the helper works: run it with `get` and the registry on stdin",
        )
    if not secret:
        # Some helpers answer "found" with an empty secret instead of failing.
        return None
    if username == _TOKEN_USERNAME:
        return Credential(username=username, password=secret, identity_token=True)
    return Credential(username=username, password=secret)


def _load_config(path: Path) -> dict[str, Any] | None:
    """The file's JSON object, or ``None`` if there is no such file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(
            f"cannot read registry credentials file {path}: {exc}",
            hint="make it readable by this user, or point DOCKER_CONFIG/REGISTRY_AUTH_FILE "
            "elsewhere",
        ) from exc
    if not text.strip():
        # docker and podman both treat an empty file as an empty config.
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CredentialsError(
            f"registry credentials file {path} is not valid JSON: "
            f"{exc.msg} at line {exc.lineno} column {exc.colno}",
            hint="fix or delete the file, then log in to the registry again",
        ) from exc
    if not isinstance(data, dict):
        raise CredentialsError(
            f"registry credentials file {path} does not hold a JSON object",
            hint="fix or delete the file, then log in to the registry again",
        )
    return data


def _object_field(config: Mapping[str, Any], name: str, path: Path) -> dict[str, Any]:
    value = config.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CredentialsError(
            f"registry credentials file {path}: {name!r} is not a JSON object",
            hint="fix or delete the file, then log in to the registry again",
        )
    return value


def _string_field(config: Mapping[str, Any], name: str, path: Path) -> str | None:
    value = config.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise CredentialsError(
            f"registry credentials file {path}: {name!r} is not a string",
            hint=f"set {name!r} to a helper name such as 'desktop', or remove it",
        )
    return value


def _helper_for(config: Mapping[str, Any], path: Path, host: str) -> str | None:
    helpers = _object_field(config, "credHelpers", path)
    for key, name in helpers.items():
        if _canonical_host(_strip_key(key)) != host:
            continue
        if not isinstance(name, str):
            raise CredentialsError(
                f"registry credentials file {path}: credHelpers[{key!r}] is not a string",
                hint="set it to a helper name such as 'ecr-login', or remove it",
            )
        if name:
            return name
    return None


def _strip_key(key: str) -> str:
    """``https://host:port/v2/`` -> ``host:port``: what docker compares."""
    _, sep, rest = key.partition("://")
    host = rest if sep else key
    return host.split("/", 1)[0]


def _canonical_host(host: str) -> str:
    host = host.strip().lower()
    return _DOCKER_HUB if host in _DOCKER_HUB_HOSTS else host


def _matching_entries(
    auths: Mapping[str, Any], host: str, repository: str, *, namespaces: bool
) -> list[tuple[str, Any]]:
    """Entries of ``auths`` that apply, best first.

    Podman keys may name a namespace (``quay.io/org``); the longest one that
    prefixes the repository wins. Keys with a scheme are legacy docker-style
    keys whose path is not a namespace. Ties keep file order.
    """
    repo_parts = repository.split("/") if repository else []
    ranked: list[tuple[int, int, str, Any]] = []
    for index, (key, entry) in enumerate(auths.items()):
        if "://" in key or not namespaces:
            key_host, parts = _strip_key(key), []
        else:
            key_host, _, namespace = key.partition("/")
            parts = [p for p in namespace.split("/") if p]
        if _canonical_host(key_host) != host:
            continue
        if parts and repo_parts[: len(parts)] != parts:
            continue
        ranked.append((-len(parts), index, key, entry))
    ranked.sort(key=lambda item: (item[0], item[1]))
    return [(key, entry) for _, _, key, entry in ranked]


def _parse_entry(entry: Any, path: Path, key: str) -> Credential | None:
    """One ``auths`` entry as a credential; ``None`` for an empty entry."""
    where = f"registry credentials file {path}, auths[{key!r}]"
    hint = f"log in to {_strip_key(key)} again, or remove the entry from the file"
    if not isinstance(entry, dict):
        raise CredentialsError(f"{where} is not a JSON object", hint=hint)
    username, password = "", ""
    auth = entry.get("auth")
    if auth:
        if not isinstance(auth, str):
            raise CredentialsError(f"{where}: 'auth' is not a string", hint=hint)
        try:
            decoded = base64.b64decode(auth.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError) as exc:
            raise CredentialsError(f"{where}: 'auth' is not valid base64", hint=hint) from exc
        username, sep, password = decoded.partition(":")
        if not sep:
            raise CredentialsError(
                f"{where}: 'auth' does not decode to 'username:password'", hint=hint
            )
    else:
        user_field, password_field = entry.get("username"), entry.get("password")
        if isinstance(user_field, str) and isinstance(password_field, str):
            username, password = user_field, password_field
    token = entry.get("identitytoken")
    if token:
        if not isinstance(token, str):
            raise CredentialsError(f"{where}: 'identitytoken' is not a string", hint=hint)
        return Credential(username=username or _TOKEN_USERNAME, password=token, identity_token=True)
    if not username and not password:
        return None
    return Credential(username=username, password=password)
