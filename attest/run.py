"""The action's flow: inputs -> subjects -> statement -> (sign -> upload -> push) -> outputs."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from attest.config import Config, Mode, RegistryConfig, read_input
from attest.errors import AttestError, UsageError
from attest.github import Workflow, host_path
from attest.github_api import GitHubAPI, api_base
from attest.identity import IdentityPolicy
from attest.oci import cleanup
from attest.oci.artifact import BundleArtifact, bundle_artifact
from attest.oci.descriptor import Descriptor
from attest.oci.reference import Reference
from attest.oci.referrers import AttachResult, Referrers
from attest.oidc import TokenSource, issuer_for, provenance_claims
from attest.provenance import SLSA_PROVENANCE_V1, provenance_predicate
from attest.signing import (
    Instance,
    InstanceKind,
    SignedBundle,
    github_instance,
    instance_from_trust_config,
    public_good_instance,
    sign,
)
from attest.statement import Statement, build_statement, custom_predicate, sbom_predicate
from attest.subjects import Subject, resolve_subjects

_logger = logging.getLogger(__name__)

#: Images attached at once: enough to hide latency, few enough to be kind to registries.
_PUSH_CONCURRENCY = 4


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


def provenance_claims_for(config: Config, tokens: TokenSource) -> Callable[[], dict[str, Any]]:
    """The job's OIDC token claims, fetched and verified on first use, then kept."""
    issuer = issuer_for(config.runtime.server_url, override=config.runtime.oidc_issuer)
    return functools.cache(functools.partial(provenance_claims, tokens, issuer=issuer))


def predicate_for(config: Config, claims: Callable[[], dict[str, Any]]) -> tuple[str, Any]:
    """(predicate type, predicate) for the inputs' mode; only provenance asks for ``claims``."""
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
    return SLSA_PROVENANCE_V1, provenance_predicate(claims(), server_url=runtime.server_url)


def statement_for(config: Config, *, workflow: Workflow, tokens: TokenSource) -> Statement:
    """The in-toto statement ``attest run`` signs, from the same inputs."""
    subjects = subjects_for(config, workflow)
    _logger.debug("%s attestation for %d subject(s)", config.inputs.mode.value, len(subjects))
    return build_statement(subjects, *predicate_for(config, provenance_claims_for(config, tokens)))


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


def signing_instance(config: Config) -> Instance:
    """Public good for public repositories, else GitHub's instance (actions/attest main.ts);
    a client trust config, when given, wins."""
    inputs, runtime = config.inputs, config.runtime
    if inputs.sigstore_trust_config:
        path = Path(inputs.sigstore_trust_config).expanduser()
        document = read_input(runtime.workspace / path, "sigstore-trust-config")
        return instance_from_trust_config(document, source="sigstore-trust-config")
    if repository_visibility(runtime.event_path) == "public" and not inputs.private_signing:
        override = runtime.public_good_trust_config
        return public_good_instance(
            trust_config=read_input(override, "ATTEST_PUBLIC_GOOD_TRUST_CONFIG")
            if override
            else None
        )
    override = runtime.github_trust_config
    return github_instance(
        runtime.server_url,
        trust_config=read_input(override, "ATTEST_GITHUB_TRUST_CONFIG") if override else None,
    )


def repository_visibility(event_path: Path | None) -> str | None:
    """``repository.visibility`` of the workflow's event payload; None when it has none."""
    if event_path is None:
        return None
    try:
        event = json.loads(event_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise AttestError(f"cannot read the event payload {event_path}: {exc}") from exc
    repository = event.get("repository") if isinstance(event, dict) else None
    visibility = repository.get("visibility") if isinstance(repository, dict) else None
    return visibility if isinstance(visibility, str) else None


@dataclass(frozen=True)
class PushResult:
    image: Reference
    manifest_digest: str
    mode: str


def attach_to_images(
    registry: RegistryConfig,
    plan: Sequence[tuple[Reference, Sequence[Callable[[Descriptor], BundleArtifact]]]],
) -> list[list[AttachResult] | AttestError]:
    """Each image's artifacts in one batch (one fallback index update per image), a few
    images at a time, sharing one client per registry (auth tokens, known blobs, referrers
    support). One failing image does not stop the others: its outcome is its error.
    Outcomes are in plan order, whatever order they finished in.
    """
    if not plan:
        return []
    referrers = Referrers()
    with registry.registries() as registries:

        def attach(
            image: Reference, builds: Sequence[Callable[[Descriptor], BundleArtifact]]
        ) -> list[AttachResult]:
            client = registries.client(image.api_host)
            return referrers.attach_all(client, image, builds, mode=registry.referrers_mode)

        with ThreadPoolExecutor(max_workers=min(_PUSH_CONCURRENCY, len(plan))) as pool:
            futures = [pool.submit(attach, image, builds) for image, builds in plan]
            outcomes: list[list[AttachResult] | AttestError] = []
            for future in futures:
                try:
                    outcomes.append(future.result())
                except AttestError as exc:
                    outcomes.append(exc)
    return outcomes


def cleanup_plans(
    registry: RegistryConfig, repositories: Sequence[str], *, apply: bool
) -> list[cleanup.Plan]:
    """Plan (and with ``apply``, act) for each repository; every name is checked first."""
    targets = []
    for text in repositories:
        target = Reference.parse(text)
        if target.tag or target.digest:
            raise UsageError(f"cleanup: {text!r} must name a repository, not an image")
        targets.append(target)
    plans = []
    with registry.registries() as registries:
        for target in targets:
            client = registries.client(target.api_host)
            planned = cleanup.plan(client, target.repository, Referrers())
            if apply:
                planned = cleanup.apply(client, target.repository, planned)
            plans.append(planned)
    return plans


def run_cleanup(config: Config, workflow: Workflow) -> None:
    """The cleanup mode: plan (and with cleanup-apply, act) for each repository."""
    plans = cleanup_plans(config.registry, config.inputs.cleanup, apply=config.inputs.cleanup_apply)
    workflow.set_output("cleanup-plan", json.dumps([p.to_json() for p in plans]))
    verb = "Cleanup applied" if config.inputs.cleanup_apply else "Cleanup plan (dry run)"
    lines = [
        f"### {verb}",
        "",
        "| Repository | Tag | Action | Reason | Outcome |",
        "| --- | --- | --- | --- | --- |",
    ]
    for planned in plans:
        for action in planned.actions:
            lines.append(
                f"| `{planned.repository}` | `{action.tag}` | {action.kind} | "
                f"{_cell(action.reason)} | {_cell(action.outcome or 'planned')} |"
            )
    if config.inputs.show_summary:
        workflow.summary("\n".join(lines) + "\n")
    failed = [a for p in plans for a in p.actions if a.outcome.startswith("failed")]
    if failed:
        raise AttestError(f"{len(failed)} cleanup action(s) failed: {failed[0].outcome}")


def run(config: Config, workflow: Workflow) -> None:
    """The whole action: every check that can refuse the inputs runs before signing."""
    inputs, runtime = config.inputs, config.runtime
    # Secrets are masked the moment they exist (the runner masks only its own secrets).
    workflow.mask(inputs.registry_password)
    if inputs.cleanup:
        run_cleanup(config, workflow)
        return
    subjects = subjects_for(config, workflow)
    images = registry_images(config, subjects)
    instance = signing_instance(config)
    api = _github_api(config, workflow)
    tokens = token_source(config, workflow)
    claims = provenance_claims_for(config, tokens)
    predicate_type, predicate = predicate_for(config, claims)
    # The verified claims give the provenance and the identity our bundle must carry.
    policy = IdentityPolicy.for_workflow(
        claims(),
        server_url=runtime.server_url,
        issuer=issuer_for(runtime.server_url, override=runtime.oidc_issuer),
    )
    statement = build_statement(subjects, predicate_type, predicate)

    signed = sign(statement.data, instance=instance, identity_token=tokens.token("sigstore"))
    policy.check(signed.certificate)
    _report_signing(workflow, signed, len(subjects))
    workflow.set_output("bundle-path", _write_bundle(config, signed.bundle))
    attestation_url = None
    with api or contextlib.nullcontext():
        if api is not None:
            attestation_id = api.create_attestation(runtime.repository, signed.bundle)
            attestation_url = (
                f"{runtime.server_url}/{runtime.repository}/attestations/{attestation_id}"
            )
            workflow.set_output("attestation-id", str(attestation_id))
            workflow.set_output("attestation-url", attestation_url)
            workflow.info("Attestation uploaded to repository")
            workflow.info(attestation_url)
        pushes, failure = _push(config, workflow, images, signed.bundle)
        records = [] if api is None else _storage_records(config, workflow, api, pushes)
    if pushes:
        workflow.set_output(
            "attestation-manifest-digests",
            "\n".join(f"{p.image.name}@{p.manifest_digest}" for p in pushes),
        )
        workflow.set_output("referrers-modes", "\n".join(f"{p.image} {p.mode}" for p in pushes))
    if records:
        workflow.set_output("storage-record-ids", ",".join(map(str, dict.fromkeys(records))))
    if inputs.show_summary:
        workflow.summary(_summary(statement, signed, attestation_url, pushes, images, failure))
    if failure is not None:
        raise failure


def _github_api(config: Config, workflow: Workflow) -> GitHubAPI | None:
    """The attestations API client; outside Actions, no token means no upload."""
    runtime, token = config.runtime, config.inputs.github_token
    if not token and not runtime.in_actions:
        _logger.warning("no GitHub token: the attestation is not recorded with GitHub")
        return None
    if not runtime.repository:
        raise UsageError("GITHUB_REPOSITORY is not set: which repository records the attestation?")
    workflow.mask(token)
    return GitHubAPI(api_base(runtime.api_url, runtime.server_url), token)


def _storage_records(
    config: Config, workflow: Workflow, api: GitHubAPI, pushes: Sequence[PushResult]
) -> list[int]:
    """Storage records for pushed images, for organisation-owned repositories only.

    Failures are warnings that say what really went wrong (actions/attest always blames
    the permission: actions/attest-build-provenance#781).
    """
    if not pushes or not config.inputs.create_storage_record:
        return []
    repository = config.runtime.repository
    try:
        if api.repository_owner_type(repository) != "Organization":
            _logger.debug("%s is not owned by an organisation: no storage records", repository)
            return []
    except AttestError as exc:
        workflow.warning(f"Failed to create storage record: {exc.report()}")
        return []
    ids: list[int] = []
    for push in pushes:
        try:
            ids += api.create_storage_record(
                repository.split("/")[0],
                name=push.image.name,
                digest=push.image.digest or "",
                version=config.inputs.subject_version or None,
                registry_url=f"https://{push.image.registry}",
            )
        except AttestError as exc:
            workflow.warning(f"Failed to create storage record for {push.image}: {exc.report()}")
    if ids:
        workflow.info(f"Storage record IDs: {', '.join(map(str, ids))}")
    return ids


def _summary(
    statement: Statement,
    signed: SignedBundle,
    attestation_url: str | None,
    pushes: Sequence[PushResult],
    images: Sequence[Reference],
    failure: AttestError | None,
) -> str:
    """The job summary: what was attested, where it is recorded and stored."""
    lines = ["### Attestation Created", ""]
    if attestation_url:
        lines += [f"- [{attestation_url}]({attestation_url})", ""]
    lines += [
        "| | |",
        "| --- | --- |",
        f"| Predicate type | `{statement.predicate_type}` |",
        f"| Signed with | {signed.instance.display_name} |",
    ]
    link = _tlog_link(signed)
    if link is not None:
        lines.append(f"| Transparency log | [{signed.tlog_index}]({link}) |")
    lines += ["", "| Subject | Digest |", "| --- | --- |"]
    shown = statement.subjects[:50]
    for subject in shown:
        digest = ", ".join(f"{alg}:{value}" for alg, value in subject.digest.items())
        lines.append(f"| `{_cell(subject.name)}` | `{digest}` |")
    if len(statement.subjects) > len(shown):
        lines.append(f"| … and {len(statement.subjects) - len(shown)} more | |")
    if images:
        lines += ["", "| Image | Attestation manifest | Stored as |", "| --- | --- | --- |"]
        stored = {str(p.image): p for p in pushes}
        for image in images:
            push = stored.get(str(image))
            if push is None:
                lines.append(f"| `{image}` | not stored | ❌ |")
            else:
                how = "referrer (referrers API)" if push.mode == "api" else "fallback tag"
                lines.append(f"| `{image}` | `{push.manifest_digest}` | {how} |")
    if failure is not None:
        lines += ["", f"> {_cell(failure.message)}"]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _report_signing(workflow: Workflow, signed: SignedBundle, subjects: int) -> None:
    with workflow.group(
        f"Attestation signed using certificate from {signed.instance.display_name}"
    ):
        workflow.info(signed.certificate.public_bytes(Encoding.PEM).decode().rstrip())
    link = _tlog_link(signed)
    if link is not None:
        workflow.info("Attestation signature uploaded to Rekor transparency log")
        workflow.info(link)
    workflow.info(f"Attestation created for {subjects} subject(s)")


def _tlog_link(signed: SignedBundle) -> str | None:
    """The public transparency log's page of the signature; other instances' logs have none."""
    if signed.tlog_index is None or signed.instance.kind is not InstanceKind.PUBLIC_GOOD:
        return None
    return f"https://search.sigstore.dev?logIndex={signed.tlog_index}"


def _write_bundle(config: Config, bundle: bytes) -> str:
    """``<RUNNER_TEMP>/<mkdtemp>/attestation.json``, recorded in created_attestation_paths.txt
    like actions/attest does; returns its path as the runner's host sees it."""
    temp = config.runtime.runner_temp
    directory = Path(tempfile.mkdtemp(prefix="attest-", dir=temp))
    path = directory / "attestation.json"
    path.write_bytes(bundle + b"\n")
    shown = host_path(
        path, runner_workspace=config.runtime.runner_workspace, repository=config.runtime.repository
    )
    if temp is not None:
        with (temp / "created_attestation_paths.txt").open("a", encoding="utf-8") as handle:
            handle.write(shown + "\n")
    return shown


def _push(
    config: Config, workflow: Workflow, images: Sequence[Reference], bundle: bytes
) -> tuple[list[PushResult], AttestError | None]:
    """Store the bundle next to every image (see :func:`attach_to_images`)."""
    if not images:
        return [], None
    outcomes = attach_to_images(
        config.registry,
        [(image, [lambda subject: bundle_artifact(bundle, subject)]) for image in images],
    )
    results, failures = [], []
    # Reported in the order the images were given, whatever order they finished in.
    for image, outcome in zip(images, outcomes, strict=True):
        if isinstance(outcome, AttestError):
            failures.append(f"{image}: {outcome.report()}")
            workflow.error(f"{image}: {outcome.report()}")
        else:
            [attached] = outcome
            results.append(PushResult(image, attached.manifest_digest, attached.mode))
            workflow.info(f"Attestation uploaded to registry ({attached.mode})")
            workflow.info(f"{image.name}@{attached.manifest_digest}")
    failure = None
    if failures:
        failure = AttestError(
            f"{len(failures)} of {len(images)} image(s) could not store the attestation: "
            + "; ".join(failures)
        )
    return results, failure
