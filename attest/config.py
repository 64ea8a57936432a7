"""Configuration: one frozen :class:`Config`, built once from the action's inputs or the CLI.

The runner gives a container action its inputs as ``INPUT_<NAME>``: upper-cased, spaces
turned to ``_``, hyphens kept (``INPUT_SUBJECT-PATH``); it fills in the defaults of
``action.yml`` and does not enforce ``required``. Everything is validated here, once, and
every error names the input.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from attest.errors import UsageError
from attest.oci.client import Registries
from attest.oci.credentials import ANY_REGISTRY, Credential, CredentialSources, CredentialStore
from attest.oci.reference import split_host
from attest.oci.referrers import ReferrersMode

#: Every input of action.yml with its default, in action.yml's order.
INPUT_DEFAULTS: dict[str, str] = {
    "subject-path": "",
    "subject-digest": "",
    "subject-name": "",
    "subject-checksums": "",
    "subject-version": "",
    "sbom-path": "",
    "predicate-type": "",
    "predicate": "",
    "predicate-path": "",
    "push-to-registry": "false",
    "create-storage-record": "true",
    "show-summary": "true",
    "github-token": "",
    "private-signing": "false",
    "sigstore-trust-config": "",
    "referrers-mode": "auto",
    "registry-username": "",
    "registry-password": "",
    "plain-http-registries": "",
    "cleanup": "",
    "cleanup-apply": "false",
}

_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})
GITHUB_DOT_COM = "https://github.com"


class Mode(enum.Enum):
    """What is attested (actions/attest ``detect.ts``)."""

    PROVENANCE = "provenance"
    SBOM = "sbom"
    CUSTOM = "custom"


@dataclass(frozen=True)
class RegistryConfig:
    """How we reach registries and store referrers in them."""

    credential_sources: CredentialSources
    referrers_mode: ReferrersMode = ReferrersMode.AUTO
    #: Hosts (``name`` or ``name:port``) reached over plain HTTP besides loopback ones.
    plain_http_hosts: frozenset[str] = frozenset()
    #: Credentials given explicitly, per registry host (or for every host under "*").
    explicit_credentials: dict[str, Credential] = field(default_factory=dict, hash=False)

    def credential_store(self) -> CredentialStore:
        return CredentialStore(self.credential_sources, explicit=self.explicit_credentials)

    def registries(self) -> Registries:
        """One client per registry host for a run (use it as a context manager)."""
        return Registries(
            plain_http_hosts=self.plain_http_hosts, credentials=self.credential_store()
        )


def read_input(path: Path, name: str) -> bytes:
    """The bytes of a file an input or flag names; one that cannot be read is that input's
    error."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{name} {path}: {exc.strerror or exc}") from exc


@dataclass(frozen=True)
class Inputs:
    """The action's inputs, parsed and checked against each other."""

    subject_path: str = ""
    subject_digest: str = ""
    subject_name: str = ""
    subject_checksums: str = ""
    subject_version: str = ""
    sbom_path: str = ""
    predicate_type: str = ""
    predicate: str = field(default="", repr=False)
    predicate_path: str = ""
    push_to_registry: bool = False
    create_storage_record: bool = True
    show_summary: bool = True
    github_token: str = field(default="", repr=False)
    private_signing: bool = False
    sigstore_trust_config: str = ""
    referrers_mode: ReferrersMode = ReferrersMode.AUTO
    registry_username: str = ""
    registry_password: str = field(default="", repr=False)
    plain_http_registries: frozenset[str] = frozenset()
    #: Repositories (REGISTRY/REPOSITORY) to clean up instead of attesting.
    cleanup: tuple[str, ...] = ()
    cleanup_apply: bool = False

    @property
    def mode(self) -> Mode:
        if self.sbom_path:
            return Mode.SBOM
        if self.predicate_type or self.predicate or self.predicate_path:
            return Mode.CUSTOM
        return Mode.PROVENANCE

    @classmethod
    def parse(cls, raw: Mapping[str, str]) -> Inputs:
        """Inputs from raw values by input name; missing names take action.yml's defaults."""
        unknown = sorted(set(raw) - set(INPUT_DEFAULTS))
        if unknown:
            raise UsageError(f"unknown input {unknown[0]!r}")
        values = {name: raw.get(name, default) for name, default in INPUT_DEFAULTS.items()}
        text = {name: value.strip() for name, value in values.items()}
        inputs = cls(
            subject_path=text["subject-path"],
            subject_digest=text["subject-digest"],
            subject_name=text["subject-name"],
            subject_checksums=values["subject-checksums"].strip("\r\n")
            if "\n" in values["subject-checksums"]
            else text["subject-checksums"],
            subject_version=text["subject-version"],
            sbom_path=text["sbom-path"],
            predicate_type=text["predicate-type"],
            predicate=text["predicate"],
            predicate_path=text["predicate-path"],
            push_to_registry=parse_bool("push-to-registry", text["push-to-registry"], False),
            create_storage_record=parse_bool(
                "create-storage-record", text["create-storage-record"], True
            ),
            show_summary=parse_bool("show-summary", text["show-summary"], True),
            github_token=text["github-token"],
            # actions/attest also takes "1" here.
            private_signing=text["private-signing"] == "1"
            or parse_bool("private-signing", text["private-signing"], False),
            sigstore_trust_config=text["sigstore-trust-config"],
            referrers_mode=parse_referrers_mode(text["referrers-mode"], name="referrers-mode"),
            registry_username=text["registry-username"],
            registry_password=text["registry-password"],
            plain_http_registries=parse_plain_http_hosts(
                [values["plain-http-registries"]], name="plain-http-registries"
            ),
            cleanup=tuple(values["cleanup"].replace(",", "\n").split()),
            cleanup_apply=parse_bool("cleanup-apply", text["cleanup-apply"], False),
        )
        inputs._check()
        return inputs

    def _check(self) -> None:
        # Wording of actions/attest v4.2.2 (src/index.ts, predicate.ts).
        if self.sbom_path and (self.predicate_type or self.predicate or self.predicate_path):
            raise UsageError(
                "Cannot specify sbom-path together with predicate-type, predicate, or "
                "predicate-path"
            )
        if (self.predicate or self.predicate_path) and not self.predicate_type:
            raise UsageError("predicate-type is required when using predicate or predicate-path")
        if self.predicate and self.predicate_path:
            raise UsageError("Only one of predicate-path or predicate may be provided")
        if self.predicate_type and not (self.predicate or self.predicate_path):
            raise UsageError("One of predicate-path or predicate must be provided")
        if self.cleanup and (
            self.subject_path
            or self.subject_digest
            or self.subject_checksums
            or self.sbom_path
            or self.predicate_type
            or self.push_to_registry
        ):
            raise UsageError(
                "cleanup runs on its own: leave out the subject, predicate and push inputs"
            )
        if self.cleanup_apply and not self.cleanup:
            raise UsageError("cleanup-apply needs cleanup (the repositories to clean up)")
        if bool(self.registry_username) != bool(self.registry_password):
            raise UsageError("registry-username and registry-password must be given together")


@dataclass(frozen=True)
class Runtime:
    """What the runner (or the local shell) provides besides the inputs."""

    workspace: Path
    home: Path
    server_url: str = GITHUB_DOT_COM
    #: Empty unless GITHUB_API_URL is set: the API root is then derived from the server
    #: (github_api.api_base), so a GHE.com tenant never gets api.github.com.
    api_url: str = ""
    repository: str = ""
    event_path: Path | None = None
    runner_temp: Path | None = None
    runner_workspace: str = ""
    output_file: Path | None = None
    summary_file: Path | None = None
    artifacts_list: Path | None = None
    id_token_request_url: str | None = None
    id_token_request_token: str | None = field(default=None, repr=False)
    oidc_issuer: str | None = None
    #: Client trust configs replacing public good's and GitHub's endpoints (tests, mirrors).
    public_good_trust_config: Path | None = None
    github_trust_config: Path | None = None
    in_actions: bool = False
    credential_sources: CredentialSources = field(
        default_factory=lambda: CredentialSources(docker_config=None)
    )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], *, cwd: Path) -> Runtime:
        def path(name: str) -> Path | None:
            value = environ.get(name, "")
            return Path(value) if value else None

        home = Path(environ.get("HOME") or Path.home())
        return cls(
            workspace=path("GITHUB_WORKSPACE") or cwd,
            home=home,
            server_url=(environ.get("GITHUB_SERVER_URL") or GITHUB_DOT_COM).rstrip("/"),
            api_url=environ.get("GITHUB_API_URL", "").rstrip("/"),
            repository=environ.get("GITHUB_REPOSITORY", ""),
            event_path=path("GITHUB_EVENT_PATH"),
            runner_temp=path("RUNNER_TEMP"),
            runner_workspace=environ.get("RUNNER_WORKSPACE", ""),
            output_file=path("GITHUB_OUTPUT"),
            summary_file=path("GITHUB_STEP_SUMMARY"),
            artifacts_list=path("GITHUB_ARTIFACTS_LIST"),
            id_token_request_url=environ.get("ACTIONS_ID_TOKEN_REQUEST_URL") or None,
            id_token_request_token=environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN") or None,
            oidc_issuer=environ.get("ATTEST_OIDC_ISSUER") or None,
            public_good_trust_config=path("ATTEST_PUBLIC_GOOD_TRUST_CONFIG"),
            github_trust_config=path("ATTEST_GITHUB_TRUST_CONFIG"),
            in_actions=environ.get("GITHUB_ACTIONS") == "true",
            credential_sources=CredentialSources.from_environ(environ, home),
        )


@dataclass(frozen=True)
class Config:
    inputs: Inputs
    runtime: Runtime

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], *, cwd: Path) -> Config:
        """The configuration exactly as a container action receives it."""
        return cls(Inputs.parse(action_inputs(environ)), Runtime.from_environ(environ, cwd=cwd))

    @property
    def registry(self) -> RegistryConfig:
        explicit = {}
        if self.inputs.registry_username:
            # The inputs name no host: they serve every registry the run pushes to.
            explicit[ANY_REGISTRY] = Credential(
                self.inputs.registry_username, self.inputs.registry_password
            )
        return RegistryConfig(
            credential_sources=self.runtime.credential_sources,
            referrers_mode=self.inputs.referrers_mode,
            plain_http_hosts=self.inputs.plain_http_registries,
            explicit_credentials=explicit,
        )


def action_inputs(environ: Mapping[str, str]) -> dict[str, str]:
    """The raw inputs in a container action's environment, by input name."""
    raw = {}
    for name in INPUT_DEFAULTS:
        key = "INPUT_" + name.replace(" ", "_").upper()
        # Some launchers turn hyphens into underscores (pypa/gh-action-pypi-publish reads both).
        value = environ.get(key, environ.get(key.replace("-", "_")))
        if value is not None:
            raw[name] = value
    return raw


def parse_bool(name: str, value: str, default: bool) -> bool:
    """A boolean input as @actions/core getBooleanInput reads it (YAML 1.2 core schema)."""
    if value == "":
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise UsageError(f"{name}: {value!r} is not a boolean (use true or false)")


def parse_referrers_mode(value: str, *, name: str = "--referrers-mode") -> ReferrersMode:
    try:
        return ReferrersMode(value.strip().lower() or "auto")
    except ValueError:
        choices = ", ".join(m.value for m in ReferrersMode)
        raise UsageError(f"{name}: {value!r} is not one of {choices}") from None


def parse_plain_http_hosts(values: list[str], *, name: str = "--plain-http") -> frozenset[str]:
    hosts = set()
    for value in values:
        for host in value.replace(",", "\n").split():
            host = host.strip().lower()
            if "://" in host or "/" in host:
                raise UsageError(f"{name}: {host!r} must be a host name, optionally with :port")
            try:
                split_host(host)
            except ValueError:
                raise UsageError(f"{name}: {host!r} has an invalid port") from None
            hosts.add(host)
    return frozenset(hosts)
