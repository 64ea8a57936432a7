"""The ``attest`` command line: the same code path the action runs, for local use."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

import yaml

from attest import __version__
from attest.config import (
    INPUT_DEFAULTS,
    Config,
    Inputs,
    RegistryConfig,
    Runtime,
    action_inputs,
    parse_plain_http_hosts,
    parse_referrers_mode,
    read_input,
)
from attest.errors import AttestError, UsageError, one_line
from attest.github import Workflow, escape_data
from attest.identity import IdentityPolicy
from attest.oci.artifact import BundleArtifact, bundle_artifact
from attest.oci.credentials import ANY_REGISTRY, Credential, CredentialSources
from attest.oci.descriptor import Descriptor
from attest.oci.reference import Reference
from attest.oci.referrers import Referrers
from attest.run import attach_to_images, cleanup_plans, run, statement_for, token_source
from attest.verify import run_verify

_logger = logging.getLogger("attest")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, exit 1, like every other bad input.
        raise UsageError(f"{self.prog}: {message}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="attest", description=__doc__)
    parser.add_argument("--version", action="version", version=f"attest {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    registry = _Parser(add_help=False)
    registry.add_argument(
        "--plain-http",
        action="append",
        default=[],
        metavar="HOST",
        help="reach HOST over plain HTTP (loopback hosts always are); repeatable",
    )
    registry.add_argument("--username", help="registry user name (with --password-stdin)")
    registry.add_argument(
        "--password-stdin", action="store_true", help="read the registry password from stdin"
    )

    attach = commands.add_parser(
        "attach", parents=[registry], help="store a Sigstore bundle as a referrer of an image"
    )
    attach.add_argument("image", metavar="IMAGE@DIGEST", nargs="?")
    attach.add_argument(
        "--bundle",
        type=Path,
        metavar="FILE",
        action="append",
        help="repeat to attach several bundles with one index update",
    )
    attach.add_argument(
        "--list",
        type=Path,
        metavar="FILE",
        help="instead of IMAGE and --bundle: a YAML or JSON list of {image, bundles} for "
        "several images in one call (bundle paths relative to FILE)",
    )
    attach.add_argument(
        "--referrers-mode",
        default="auto",
        metavar="auto|api|tag",
        help="auto: the referrers API when the registry serves it, else the fallback tag",
    )

    referrers = commands.add_parser(
        "referrers", parents=[registry], help="list the referrers of an image as JSON"
    )
    referrers.add_argument("image", metavar="IMAGE@DIGEST")
    referrers.add_argument("--artifact-type", metavar="TYPE")

    cleanup = commands.add_parser(
        "cleanup",
        parents=[registry],
        help="plan (or --apply) removal of orphaned fallback tags, dangling entries, and the "
        "migration of fallback tags to the referrers API",
    )
    cleanup.add_argument("repository", metavar="REGISTRY/REPOSITORY")
    cleanup.add_argument("--apply", action="store_true", help="act on the plan (default: dry run)")

    verify = commands.add_parser(
        "verify",
        parents=[registry],
        help="verify attestations of an artifact or image (gh attestation verify's policy)",
        description="attest verify (--bundle FILE | IMAGE@DIGEST) (ARTIFACT | --digest ALG:HEX) "
        "(--repo OWNER/REPO | --owner OWNER) [policy flags]",
    )
    verify.add_argument("targets", nargs="*", metavar="IMAGE@DIGEST|ARTIFACT")
    verify.add_argument("--bundle", type=Path, metavar="FILE", help="a bundle file (.json/.jsonl)")
    verify.add_argument("--image", metavar="IMAGE@DIGEST", help="find bundles in the registry")
    verify.add_argument("--artifact", type=Path, metavar="FILE")
    verify.add_argument("--digest", metavar="ALG:HEX")
    verify.add_argument("--repo", metavar="OWNER/REPO")
    verify.add_argument("--owner", metavar="OWNER")
    verify.add_argument("--signer-workflow", metavar="[HOST/]OWNER/REPO/PATH")
    verify.add_argument("--signer-repo", metavar="OWNER/REPO")
    verify.add_argument("--signer-digest", metavar="SHA")
    verify.add_argument("--cert-identity", metavar="SAN")
    verify.add_argument("--cert-identity-regex", metavar="REGEX")
    verify.add_argument("--cert-oidc-issuer", metavar="URL")
    verify.add_argument("--source-ref", metavar="REF")
    verify.add_argument("--source-digest", metavar="SHA")
    verify.add_argument("--hostname", default="github.com")
    verify.add_argument("--deny-self-hosted-runners", action="store_true")
    verify.add_argument("--predicate-type", metavar="URI")
    verify.add_argument(
        "--trusted-root",
        type=Path,
        metavar="FILE",
        help="trusted root JSON, or the JSONL `gh attestation trusted-root` prints",
    )

    inputs = _Parser(add_help=False)
    for name in INPUT_DEFAULTS:
        if name in _SECRET_INPUTS:
            continue
        options = [f"--{name}"] + (["--trust-config"] if name == "sigstore-trust-config" else [])
        flag = inputs.add_argument(*options, dest=_dest(name), metavar="VALUE")
        if INPUT_DEFAULTS[name] in ("true", "false"):
            flag.nargs, flag.const, flag.metavar = "?", "true", "true|false"
    inputs.add_argument(
        "--registry-password-stdin",
        action="store_true",
        help="read registry-password from standard input",
    )
    commands.add_parser(
        "statement",
        parents=[inputs],
        help="print the in-toto statement `attest run` would sign (nothing is signed)",
        description="Flags mirror the action's inputs; INPUT_* variables are read as the "
        "action reads them, and flags override them. The token comes from GITHUB_TOKEN.",
    )
    commands.add_parser(
        "run",
        parents=[inputs],
        help="the whole action, as the container runs it",
        description="Flags mirror the action's inputs; INPUT_* variables are read as the "
        "action reads them, and flags override them. The token comes from GITHUB_TOKEN.",
    )
    return parser


#: Inputs never taken as flags: command lines are visible to other processes.
_SECRET_INPUTS = frozenset({"github-token", "registry-password"})


def _dest(name: str) -> str:
    return "input_" + name.replace("-", "_")


def _config(args: argparse.Namespace, environ: Mapping[str, str], stdin: TextIO) -> Config:
    raw = action_inputs(environ)
    for name in INPUT_DEFAULTS:
        value = getattr(args, _dest(name), None)
        if value is not None:
            raw[name] = value
    token = environ.get("GITHUB_TOKEN") or environ.get("GH_TOKEN")
    if "github-token" not in raw and token:
        raw["github-token"] = token
    if args.registry_password_stdin:
        raw["registry-password"] = stdin.read().rstrip("\r\n")
    return Config(Inputs.parse(raw), Runtime.from_environ(environ, cwd=Path.cwd()))


def _statement(config: Config, workflow: Workflow) -> Any:
    statement = statement_for(config, workflow=workflow, tokens=token_source(config, workflow))
    return json.loads(statement.data)


def _registry_config(
    args: argparse.Namespace, image: Reference | None, environ: Mapping[str, str], stdin: TextIO
) -> RegistryConfig:
    explicit: dict[str, Credential] = {}
    if args.password_stdin or args.username:
        if not (args.password_stdin and args.username):
            raise UsageError("--username and --password-stdin go together")
        password = stdin.read().rstrip("\r\n")
        if not password:
            raise UsageError("--password-stdin: no password on standard input")
        explicit[image.api_host if image else ANY_REGISTRY] = Credential(args.username, password)
    return RegistryConfig(
        credential_sources=CredentialSources.from_environ(environ, Path.home()),
        referrers_mode=parse_referrers_mode(getattr(args, "referrers_mode", "auto")),
        plain_http_hosts=parse_plain_http_hosts(args.plain_http),
        explicit_credentials=explicit,
    )


def _attach(args: argparse.Namespace, config: RegistryConfig, image: Reference) -> Any:
    builds = [_checked_bundle(path, "--bundle") for path in args.bundle]
    with config.registries() as registries:
        results = Referrers().attach_all(
            registries.client(image.api_host), image, builds, mode=config.referrers_mode
        )
    outputs = [result.to_json() for result in results]
    return outputs[0] if len(outputs) == 1 else outputs


def _checked_bundle(path: Path, name: str) -> Callable[[Descriptor], BundleArtifact]:
    """The artifact builder for a bundle file; ``name`` (its flag or list entry) names it in
    errors. The bundle is checked now: a bad one stops the command before anything is
    written."""
    bundle = read_input(path, name)
    source = f"{name} {path}"
    bundle_artifact(bundle, _NO_SUBJECT, source=source)
    return lambda subject: bundle_artifact(bundle, subject, source=source)


def _attach_plan(
    path: Path,
) -> list[tuple[Reference, list[Callable[[Descriptor], BundleArtifact]]]]:
    """``attach --list FILE``: every image and bundle read and checked before any write.

    An image named twice gets all its bundles in one batch; a bundle named twice for one
    image is attached once.
    """
    try:
        entries = yaml.safe_load(read_input(path, "--list"))
    except yaml.YAMLError as exc:
        raise UsageError(f"--list {path}: not YAML or JSON ({one_line(str(exc), 200)})") from exc
    if not isinstance(entries, list) or not entries:
        raise UsageError(f"--list {path}: expected a non-empty list of {{image, bundles}}")
    bundles_of: dict[Reference, dict[Path, Callable[[Descriptor], BundleArtifact]]] = {}
    for number, entry in enumerate(entries, 1):
        where = f"--list {path} entry {number}"
        if not isinstance(entry, dict) or set(entry) != {"image", "bundles"}:
            raise UsageError(f"{where}: expected exactly the keys image and bundles")
        image, bundles = entry["image"], entry["bundles"]
        if not isinstance(image, str):
            raise UsageError(f"{where}: image must be a string (IMAGE@DIGEST)")
        if (
            not isinstance(bundles, list)
            or not bundles
            or not all(isinstance(b, str) for b in bundles)
        ):
            raise UsageError(f"{where}: bundles must be a non-empty list of file paths")
        try:
            reference = Reference.parse(image)
        except AttestError as exc:
            raise UsageError(f"{where}: {exc.report()}") from exc
        known = bundles_of.setdefault(reference, {})
        for name in bundles:
            bundle_path = (path.parent / name).resolve()
            if bundle_path not in known:
                known[bundle_path] = _checked_bundle(bundle_path, f"{where} bundle")
    return [(image, list(builds.values())) for image, builds in bundles_of.items()]


def _attach_list(
    args: argparse.Namespace, environ: Mapping[str, str], stdin: TextIO
) -> tuple[list[Any], list[str]]:
    """The results of every image that got its bundles, and one line per image that did not."""
    plan = _attach_plan(args.list)
    hosts = {image.api_host for image, _ in plan}
    if args.username and len(hosts) > 1:
        raise UsageError(
            "--username with --list: every image must be on one registry "
            f"(found {', '.join(sorted(hosts))})"
        )
    config = _registry_config(args, plan[0][0], environ, stdin)
    results: list[Any] = []
    failures: list[str] = []
    for (image, _), outcome in zip(plan, attach_to_images(config, plan), strict=True):
        if isinstance(outcome, AttestError):
            failures.append(f"{image}: {outcome.report()}")
        else:
            results.extend(result.to_json() for result in outcome)
    return results, failures


#: A placeholder subject for checking a bundle before the registry is asked for the real one.
_NO_SUBJECT = Descriptor("application/vnd.oci.image.manifest.v1+json", "sha256:" + "0" * 64, 0)


def _referrers(args: argparse.Namespace, config: RegistryConfig, image: Reference) -> Any:
    with config.registries() as registries:
        return Referrers().list(
            registries.client(image.api_host), image, artifact_type=args.artifact_type
        )


def _cleanup(args: argparse.Namespace, environ: Mapping[str, str], stdin: TextIO) -> Any:
    registry_config = _registry_config(args, Reference.parse(args.repository), environ, stdin)
    [planned] = cleanup_plans(registry_config, [args.repository], apply=args.apply)
    # The readable table on stderr, the plan as JSON on stdout.
    verb = "applied" if args.apply else "planned (dry run; --apply to act)"
    sys.stderr.write(f"{len(planned.actions)} action(s) {verb} in {planned.repository}\n")
    for action in planned.actions:
        status = action.outcome or "-"
        sys.stderr.write(f"  {action.kind:24} {action.tag[:20]}…  {action.reason}  [{status}]\n")
    for tag, why in planned.kept.items():
        sys.stderr.write(f"  {'kept':24} {tag[:20]}…  {why}\n")
    return planned.to_json()


def _verify(args: argparse.Namespace, environ: Mapping[str, str], stdin: TextIO) -> Any:
    image, artifact = args.image, args.artifact
    targets = list(args.targets)
    if args.bundle is None and image is None and targets:
        image = targets.pop(0)
    if targets and artifact is None:
        artifact = Path(targets.pop(0))
    if targets:
        raise UsageError(f"verify: unexpected argument {targets[0]!r}")
    policy_fields = {
        "owner": args.owner,
        "repository": args.repo,
        "signer_workflow": args.signer_workflow,
        "signer_repository": args.signer_repo,
        "signer_digest": args.signer_digest,
        "san": args.cert_identity,
        "san_regex": args.cert_identity_regex,
        "source_ref": args.source_ref,
        "source_digest": args.source_digest,
        "hostname": args.hostname,
        "deny_self_hosted_runners": args.deny_self_hosted_runners,
    }
    if args.cert_oidc_issuer:
        policy_fields["issuer"] = args.cert_oidc_issuer
    policy = IdentityPolicy(**policy_fields)
    registry_config = _registry_config(
        args, Reference.parse(image) if image else None, environ, stdin
    )
    with registry_config.registries() as registries:
        return run_verify(
            bundle_path=args.bundle,
            image=image,
            artifact=artifact,
            digest=args.digest,
            policy=policy,
            predicate_type=args.predicate_type,
            trusted_root_path=args.trusted_root,
            registries=registries,
        )


class _ReportHandler(logging.Handler):
    """Warnings as one line each: ``::warning::`` in Actions, ``warning:`` elsewhere."""

    def __init__(self, stream: TextIO, *, in_actions: bool) -> None:
        super().__init__()
        self._stream = stream
        self._in_actions = in_actions

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        level = record.levelname.lower()
        if self._in_actions:
            if record.levelno >= logging.ERROR:
                kind = "error"
            elif record.levelno >= logging.WARNING:
                kind = "warning"
            else:
                # Shown by the runner only when step debug logging is on.
                kind = "debug"
            self._stream.write(f"::{kind}::{escape_data(message)}\n")
        else:
            self._stream.write(f"{level}: {message}\n")


def main(argv: Sequence[str] | None = None, *, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    in_actions = environ.get("GITHUB_ACTIONS") == "true"
    saved = (_logger.handlers[:], _logger.propagate, _logger.level)
    _logger.handlers[:] = [_ReportHandler(sys.stderr, in_actions=in_actions)]
    _logger.propagate = False
    _logger.setLevel(logging.WARNING)
    try:
        return _main(argv, environ, in_actions)
    finally:
        # Callers in the same process (tests, other tools) get their logging back.
        _logger.handlers[:], _logger.propagate = saved[0], saved[1]
        _logger.setLevel(saved[2])


def _main(argv: Sequence[str] | None, environ: Mapping[str, str], in_actions: bool) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.verbose or environ.get("RUNNER_DEBUG") == "1":
            _logger.setLevel(logging.DEBUG)
        if args.command == "cleanup":
            result = _cleanup(args, environ, sys.stdin)
        elif args.command == "verify":
            result = _verify(args, environ, sys.stdin)
        elif args.command in ("statement", "run"):
            config = _config(args, environ, sys.stdin)
            workflow = Workflow(
                in_actions=config.runtime.in_actions,
                output_file=config.runtime.output_file,
                summary_file=config.runtime.summary_file,
                stream=sys.stderr if args.command == "statement" else sys.stdout,
            )
            if args.command == "statement":
                result = _statement(config, workflow)
            else:
                run(config, workflow)
                if config.runtime.in_actions:
                    return 0
                result = workflow.outputs
        elif args.command == "attach" and (args.list is not None or args.image is None):
            if args.list is None:
                raise UsageError("attach: IMAGE@DIGEST with --bundle FILE, or --list FILE")
            if args.image is not None or args.bundle:
                raise UsageError("attach: --list replaces IMAGE@DIGEST and --bundle")
            result, failures = _attach_list(args, environ, sys.stdin)
            # What was attached is printed; each image that failed is an error line.
            sys.stdout.write(json.dumps(result, indent=2) + "\n")
            for failure in failures:
                _report(failure, in_actions)
            return 1 if failures else 0
        else:
            if args.command == "attach" and not args.bundle:
                raise UsageError("attach: --bundle FILE is required with IMAGE@DIGEST")
            image = Reference.parse(args.image)
            registry_config = _registry_config(args, image, environ, sys.stdin)
            command = _attach if args.command == "attach" else _referrers
            result = command(args, registry_config, image)
    except AttestError as exc:
        _report(exc.report(), in_actions)
        return 1
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


def _report(error: str, in_actions: bool) -> None:
    line = f"::error::{escape_data(error)}" if in_actions else f"error: {error}"
    sys.stderr.write(line + "\n")
