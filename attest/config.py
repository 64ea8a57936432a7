"""Configuration, built once from the command line or the action's inputs, then frozen."""

from __future__ import annotations

from dataclasses import dataclass, field

from attest.errors import UsageError
from attest.oci.credentials import Credential, CredentialSources, CredentialStore
from attest.oci.reference import split_host
from attest.oci.referrers import ReferrersMode


@dataclass(frozen=True)
class RegistryConfig:
    """How we reach registries and store referrers in them."""

    credential_sources: CredentialSources
    referrers_mode: ReferrersMode = ReferrersMode.AUTO
    #: Hosts (``name`` or ``name:port``) reached over plain HTTP besides loopback ones.
    plain_http_hosts: frozenset[str] = frozenset()
    #: Credentials given explicitly, per registry host.
    explicit_credentials: dict[str, Credential] = field(default_factory=dict, hash=False)

    def credential_store(self) -> CredentialStore:
        return CredentialStore(self.credential_sources, explicit=self.explicit_credentials)


def parse_referrers_mode(value: str, *, name: str = "--referrers-mode") -> ReferrersMode:
    try:
        return ReferrersMode(value.strip().lower())
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
