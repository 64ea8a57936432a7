"""The ``attest`` command line: the same code path the action runs, for local use."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from attest import __version__
from attest.config import RegistryConfig, parse_plain_http_hosts, parse_referrers_mode
from attest.errors import AttestError, UsageError
from attest.oci.artifact import bundle_artifact
from attest.oci.client import Registries
from attest.oci.credentials import Credential, CredentialSources
from attest.oci.reference import Reference
from attest.oci.referrers import Referrers

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
    attach.add_argument("image", metavar="IMAGE@DIGEST")
    attach.add_argument("--bundle", required=True, type=Path, metavar="FILE")
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
    return parser


def _registry_config(
    args: argparse.Namespace, image: Reference, environ: Mapping[str, str], stdin: TextIO
) -> RegistryConfig:
    explicit: dict[str, Credential] = {}
    if args.password_stdin or args.username:
        if not (args.password_stdin and args.username):
            raise UsageError("--username and --password-stdin go together")
        password = stdin.read().rstrip("\r\n")
        if not password:
            raise UsageError("--password-stdin: no password on standard input")
        explicit[image.api_host] = Credential(args.username, password)
    return RegistryConfig(
        credential_sources=CredentialSources.from_environ(environ, Path.home()),
        referrers_mode=parse_referrers_mode(getattr(args, "referrers_mode", "auto")),
        plain_http_hosts=parse_plain_http_hosts(args.plain_http),
        explicit_credentials=explicit,
    )


def _attach(args: argparse.Namespace, config: RegistryConfig, image: Reference) -> Any:
    try:
        bundle = args.bundle.read_bytes()
    except OSError as exc:
        raise UsageError(f"--bundle {args.bundle}: {exc.strerror or exc}") from exc
    with Registries(
        plain_http_hosts=config.plain_http_hosts, credentials=config.credential_store()
    ) as registries:
        result = Referrers().attach(
            registries.client(image.api_host),
            image,
            lambda subject: bundle_artifact(bundle, subject, source=f"--bundle {args.bundle}"),
            mode=config.referrers_mode,
        )
    return result.to_json()


def _referrers(args: argparse.Namespace, config: RegistryConfig, image: Reference) -> Any:
    with Registries(
        plain_http_hosts=config.plain_http_hosts, credentials=config.credential_store()
    ) as registries:
        return Referrers().list(
            registries.client(image.api_host), image, artifact_type=args.artifact_type
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
        if self._in_actions and record.levelno >= logging.WARNING:
            kind = "error" if record.levelno >= logging.ERROR else "warning"
            self._stream.write(f"::{kind}::{_escape(message)}\n")
        else:
            self._stream.write(f"{level}: {message}\n")


def _escape(message: str) -> str:
    # Workflow command data escaping (actions/toolkit command.ts escapeData).
    return message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def main(argv: Sequence[str] | None = None, *, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    in_actions = environ.get("GITHUB_ACTIONS") == "true"
    handler = _ReportHandler(sys.stderr, in_actions=in_actions)
    _logger.handlers[:] = [handler]
    _logger.propagate = False
    _logger.setLevel(logging.WARNING)
    try:
        args = _parser().parse_args(argv)
        if args.verbose or environ.get("RUNNER_DEBUG") == "1":
            _logger.setLevel(logging.DEBUG)
        image = Reference.parse(args.image)
        config = _registry_config(args, image, environ, sys.stdin)
        command = _attach if args.command == "attach" else _referrers
        result = command(args, config, image)
    except AttestError as exc:
        report = exc.report()
        sys.stderr.write(f"::error::{_escape(report)}\n" if in_actions else f"error: {report}\n")
        return 1
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0
