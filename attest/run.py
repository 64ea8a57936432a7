"""The action's flow: inputs -> subjects -> statement -> (sign -> upload -> push) -> outputs."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from attest.config import Config, Mode
from attest.errors import AttestError, UsageError
from attest.github import Workflow
from attest.oci.reference import Reference
from attest.oidc import TokenSource, issuer_for, provenance_claims
from attest.provenance import SLSA_PROVENANCE_V1, provenance_predicate
from attest.statement import Statement, build_statement, custom_predicate, sbom_predicate
from attest.subjects import Subject, resolve_subjects

_logger = logging.getLogger(__name__)


def token_source(config: Config, workflow: Workflow) -> TokenSource:
    """OIDC tokens from the Actions token endpoint, each masked the moment it exists."""
    return TokenSource(
        request_url=config.runtime.id_token_request_url,
        request_token=config.runtime.id_token_request_token,
        on_token=workflow.mask,
    )


def subjects_for(config: Config, workflow: Workflow) -> list[Subject]:
    inputs, runtime = config.inputs, config.runtime
    return resolve_subjects(
        subject_path=inputs.subject_path,
        subject_digest=inputs.subject_digest,
        subject_name=inputs.subject_name,
        subject_checksums=inputs.subject_checksums,
        artifacts_list=runtime.artifacts_list,
        push_to_registry=inputs.push_to_registry,
        workspace=runtime.workspace,
        home=runtime.home,
        progress=workflow.info,
    )


def predicate_for(config: Config, tokens: TokenSource) -> tuple[str, Any]:
    """(predicate type, predicate) for the inputs' mode."""
    inputs, runtime = config.inputs, config.runtime
    mode = inputs.mode
    if mode is Mode.SBOM:
        return sbom_predicate(inputs.sbom_path, workspace=runtime.workspace)
    if mode is Mode.CUSTOM:
        return custom_predicate(
            inputs.predicate_type,
            predicate=inputs.predicate,
            predicate_path=inputs.predicate_path,
            workspace=runtime.workspace,
        )
    issuer = issuer_for(runtime.server_url, override=runtime.oidc_issuer)
    claims = provenance_claims(tokens, issuer=issuer)
    return SLSA_PROVENANCE_V1, provenance_predicate(claims, server_url=runtime.server_url)


def statement_for(config: Config, *, workflow: Workflow, tokens: TokenSource) -> Statement:
    """The in-toto statement ``attest run`` signs, from the same inputs."""
    subjects = subjects_for(config, workflow)
    _logger.debug("%s attestation for %d subject(s)", config.inputs.mode.value, len(subjects))
    return build_statement(subjects, *predicate_for(config, tokens))


def registry_images(config: Config, subjects: Sequence[Subject]) -> list[Reference]:
    """The images to store the attestation next to, checked before anything is signed."""
    if not config.inputs.push_to_registry:
        return []
    images = []
    for subject in subjects:
        if subject.kind != "oci":
            continue
        try:
            reference = Reference.parse(subject.name)
        except UsageError as exc:
            raise UsageError(
                f"subject-name {subject.name!r} is not an image reference: {exc.message}"
            ) from exc
        if "sha256" not in subject.digest:
            algorithms = ", ".join(subject.digest)
            raise UsageError(
                "push-to-registry requires a subject with a SHA-256 digest but the subject "
                f"has: {algorithms}"
            )
        # A tag in the name is not part of the subject: the digest is (actions/attest#464).
        images.append(reference.with_digest("sha256:" + subject.digest["sha256"]))
    if not images:
        raise UsageError(
            "push-to-registry needs image subjects: subject-digest with subject-name, or OCI "
            "entries in the runner's artifacts list"
        )
    return images


def run(config: Config, workflow: Workflow) -> None:
    """The whole action."""
    subjects = subjects_for(config, workflow)
    images = registry_images(config, subjects)
    tokens = token_source(config, workflow)
    statement = build_statement(subjects, *predicate_for(config, tokens))
    _logger.debug("images to push to: %s", ", ".join(map(str, images)) or "none")
    _logger.debug("statement: %d bytes, %d subjects", len(statement.data), len(statement.subjects))
    raise AttestError(
        "signing is not available in this build yet",
        hint="use `attest statement` to inspect what would be signed",
    )
