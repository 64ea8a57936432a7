"""Referrer housekeeping: orphaned fallback tags, dangling entries, migration to the API.

Nothing is deleted that cannot be proven garbage:

- a fallback tag is orphaned when its subject digest no longer resolves in the repository;
- an index entry dangles when the referrer manifest it names no longer resolves;
- a fallback tag is migrated when the registry serves the referrers API and lists every
  referrer of the tag (re-pushing a referrer the API does not list makes the registry index
  its ``subject``; distribution-spec "Enabling the Referrers API" puts this on registries,
  and few do it).

The plan is computed first (a dry run stops there); applying it re-checks nothing it did not
plan, so run it while no attach is writing to the repository (a concurrent attach re-merges
entries it saw, and could restore one being removed).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from attest.oci.client import RegistryClient
from attest.oci.descriptor import OCI_INDEX, Descriptor, canonical_json
from attest.oci.errors import FallbackTagError, RegistryError
from attest.oci.referrers import Capability, Referrers, _FallbackIndex, classify_referrers_response

_logger = logging.getLogger(__name__)

# Only sha256 tags can be mapped back to their subject: truncated longer digests cannot.
_FALLBACK_TAG = re.compile(r"sha256-([0-9a-f]{64})")


@dataclass
class Action:
    """One planned change, with the evidence for it."""

    kind: str  # "delete-orphaned-tag" | "remove-dangling-entries" | "migrate-to-api"
    tag: str
    subject: str
    reason: str
    entries: list[str] = field(default_factory=list)
    repush: list[str] = field(default_factory=list)
    done: bool = False
    outcome: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.kind,
            "tag": self.tag,
            "subject": self.subject,
            "reason": self.reason,
            "entries": self.entries,
            "repush": self.repush,
            "done": self.done,
            "outcome": self.outcome,
        }


@dataclass
class Plan:
    repository: str
    actions: list[Action] = field(default_factory=list)
    #: Tags looked at and left alone, with why.
    kept: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "actions": [a.to_json() for a in self.actions],
            "kept": self.kept,
        }


def plan(client: RegistryClient, repository: str, referrers: Referrers) -> Plan:
    """What cleanup would do; reads only."""
    result = Plan(f"{client.host}/{repository}")
    for tag in client.tags(repository):
        match = _FALLBACK_TAG.fullmatch(tag)
        if not match:
            continue
        subject_digest = "sha256:" + match.group(1)
        manifest = client.get_manifest(repository, tag)
        subject_exists = client.manifest_digest(repository, subject_digest) is not None
        try:
            subject = Descriptor(OCI_INDEX, subject_digest, 0)
            index = _FallbackIndex.parse(manifest, tag, subject, result.repository)
        except FallbackTagError as exc:
            result.kept[tag] = exc.message
            continue
        digests = [e["digest"] for e in index.manifests if isinstance(e, dict) and "digest" in e]
        if not subject_exists:
            result.actions.append(
                Action(
                    "delete-orphaned-tag",
                    tag,
                    subject_digest,
                    f"{subject_digest} no longer exists in the repository",
                    digests,
                )
            )
            continue
        present = [d for d in digests if client.manifest_digest(repository, d) is not None]
        dangling = [d for d in digests if d not in present]
        listed = _listed_by_api(client, repository, subject_digest)
        if listed is not None:
            result.actions.append(
                Action(
                    "migrate-to-api",
                    tag,
                    subject_digest,
                    "the registry serves the referrers API",
                    present,
                    repush=[d for d in present if d not in listed],
                )
            )
        elif dangling:
            result.actions.append(
                Action(
                    "remove-dangling-entries",
                    tag,
                    subject_digest,
                    "entries name referrer manifests that no longer exist",
                    dangling,
                )
            )
        else:
            result.kept[tag] = "every entry resolves; the registry has no referrers API"
    return result


def apply(client: RegistryClient, repository: str, cleanup: Plan) -> Plan:
    """Carry out a plan; each action records whether it was done and how."""
    tag_digests: dict[str, str | None] | None = None
    for action in cleanup.actions:
        try:
            if action.kind == "delete-orphaned-tag":
                if tag_digests is None:
                    tag_digests = {
                        t: client.manifest_digest(repository, t) for t in client.tags(repository)
                    }
                action.outcome = _delete_tag(client, repository, action.tag, tag_digests)
            elif action.kind == "remove-dangling-entries":
                action.outcome = _rewrite_without(client, repository, action)
            else:
                action.outcome = _migrate(client, repository, action)
            action.done = not action.outcome.startswith("left")
        except RegistryError as exc:
            action.outcome = f"failed: {exc.report()}"
        _logger.info("%s %s: %s", action.kind, action.tag, action.outcome)
    return cleanup


def _listed_by_api(client: RegistryClient, repository: str, subject: str) -> set[str] | None:
    """Digests the referrers API lists for the subject; None when there is no API."""
    response = client.referrers_response(repository, subject)
    verdict = classify_referrers_response(response)
    if verdict is not Capability.SUPPORTED:
        if verdict is None:
            raise RegistryError.from_response(response, detail="cannot list referrers")
        return None
    listed: set[str] = set()
    for page in client.referrers_pages(repository, response):
        listed |= {m["digest"] for m in page.manifests if isinstance(m, dict) and "digest" in m}
    return listed


def _delete_tag(
    client: RegistryClient, repository: str, tag: str, tag_digests: dict[str, str | None]
) -> str:
    deleted = client.delete_manifest(repository, tag)
    if deleted == "deleted":
        return "tag deleted"
    if deleted == "absent":
        # olareg, for one, drops a fallback tag itself once it indexes the referrers.
        return "the tag is already gone"
    # distribution 2.8 cannot delete a tag: delete the index by digest, which removes every
    # tag pointing at it, so only when no other tag does (an empty index has one digest for
    # every subject).
    digest = tag_digests.get(tag)
    others = [t for t, d in tag_digests.items() if d == digest and t != tag]
    if digest is None:
        return "left: the tag no longer resolves"
    if others:
        return f"left: {', '.join(sorted(others))} point at the same index"
    client.delete_manifest(repository, digest)
    return f"index {digest} deleted (the registry cannot delete tags)"


def _rewrite_without(client: RegistryClient, repository: str, action: Action) -> str:
    manifest = client.get_manifest(repository, action.tag)
    subject = Descriptor(OCI_INDEX, action.subject, 0)
    index = _FallbackIndex.parse(manifest, action.tag, subject, repository)
    kept = [
        e
        for e in index.manifests
        if not (isinstance(e, dict) and e.get("digest") in action.entries)
    ]
    body = dict(index.body, manifests=kept)
    client.put_manifest(
        repository, action.tag, canonical_json(body), OCI_INDEX, if_match=index.etag
    )
    return f"{len(index.manifests) - len(kept)} dangling entries removed"


def _migrate(client: RegistryClient, repository: str, action: Action) -> str:
    for digest in action.repush:
        manifest = client.get_manifest(repository, digest)
        if manifest is not None:
            # The same bytes again: the registry indexes the manifest's subject this time.
            client.put_manifest(repository, digest, manifest.data, manifest.media_type)
    listed = _listed_by_api(client, repository, action.subject) or set()
    missing = [d for d in action.entries if d not in listed]
    if missing:
        return f"left: the API still does not list {', '.join(missing)}"
    return "every referrer is listed by the API; " + _delete_tag(
        client,
        repository,
        action.tag,
        {t: client.manifest_digest(repository, t) for t in client.tags(repository)},
    )
