"""The runner's side of a container action: workflow commands, outputs, the job summary.

Workflow commands (actions/runner ``ActionCommandManager.cs``) are parsed from stdout and
stderr; file commands (``FileCommandManager.cs``) are appended to the files the runner
names in ``GITHUB_OUTPUT`` and ``GITHUB_STEP_SUMMARY`` and read after the step.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TextIO

from attest.errors import AttestError

_logger = logging.getLogger(__name__)

#: The runner rejects a step summary above 1 MiB.
MAX_SUMMARY_BYTES = 1024 * 1024

#: Where the runner mounts its directories inside an action's container (ContainerActionHandler.cs).
_CONTAINER_WORKSPACE = PurePosixPath("/github/workspace")
_CONTAINER_TEMP = PurePosixPath("/github/runner_temp")
_CONTAINER_HOME = PurePosixPath("/github/home")


def escape_data(value: str) -> str:
    """Escaping for a command's message (toolkit ``command.ts`` escapeData)."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    """Escaping for a command's properties (toolkit ``command.ts`` escapeProperty)."""
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


class Workflow:
    """Talks to the runner, or to a terminal when not inside GitHub Actions."""

    def __init__(
        self,
        *,
        in_actions: bool,
        output_file: Path | None = None,
        summary_file: Path | None = None,
        stream: TextIO | None = None,
    ) -> None:
        self.in_actions = in_actions
        self._output_file = output_file
        self._summary_file = summary_file
        self._stream = stream or sys.stdout
        self.outputs: dict[str, str] = {}

    def _command(self, name: str, message: str, **properties: str) -> None:
        props = ",".join(f"{k}={escape_property(v)}" for k, v in properties.items() if v)
        self._stream.write(f"::{name}{' ' + props if props else ''}::{escape_data(message)}\n")
        self._stream.flush()

    def mask(self, secret: str) -> None:
        """Ask the runner to hide ``secret`` in logs, the moment it exists."""
        if self.in_actions and secret:
            for line in secret.splitlines():
                if line.strip():
                    self._command("add-mask", line)

    def info(self, message: str) -> None:
        self._stream.write(message + "\n")
        self._stream.flush()

    def warning(self, message: str) -> None:
        if self.in_actions:
            self._command("warning", message)
        else:
            sys.stderr.write(f"warning: {message}\n")

    def error(self, message: str) -> None:
        if self.in_actions:
            self._command("error", message)
        else:
            sys.stderr.write(f"error: {message}\n")

    @contextlib.contextmanager
    def group(self, title: str) -> Iterator[None]:
        if not self.in_actions:
            self.info(title)
            yield
            return
        self._command("group", title)
        try:
            yield
        finally:
            self._stream.write("::endgroup::\n")
            self._stream.flush()

    def set_output(self, name: str, value: str) -> None:
        """Write an output with the heredoc form, delimiter ``ghadelimiter_<uuid>``."""
        self.outputs[name] = value
        if self._output_file is None:
            return
        delimiter = f"ghadelimiter_{uuid.uuid4()}"
        if delimiter in name or delimiter in value:
            raise AttestError(f"output {name} contains its own delimiter")
        _append(self._output_file, f"{name}<<{delimiter}\n{value}\n{delimiter}\n", "GITHUB_OUTPUT")

    def summary(self, markdown: str) -> None:
        """Append to the job summary; a summary the runner would reject becomes a warning."""
        if self._summary_file is None:
            return
        try:
            existing = self._summary_file.stat().st_size
        except OSError:
            existing = 0
        if existing + len(markdown.encode()) > MAX_SUMMARY_BYTES:
            self.warning("the job summary would exceed 1 MiB; it was left out")
            return
        _append(self._summary_file, markdown, "GITHUB_STEP_SUMMARY")


def _append(path: Path, text: str, what: str) -> None:
    try:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise AttestError(f"cannot write {what} file {path}: {exc.strerror or exc}") from exc


def host_path(path: Path, *, runner_workspace: str, repository: str) -> str:
    """The runner host's path for a path inside the action's container.

    The runner translates environment values to container paths but not outputs back
    (actions/runner ``ContainerActionHandler.cs``), so an output such as ``bundle-path``
    must be the host's path for later steps to find it. ``RUNNER_WORKSPACE`` arrives
    untranslated: ``<work>/<repo>``; the host's temp directory is ``<work>/_temp``.
    """
    if not runner_workspace:
        return str(path)
    work = PurePosixPath(runner_workspace).parent
    posix = PurePosixPath(path)
    mounts = {
        _CONTAINER_TEMP: work / "_temp",
        _CONTAINER_HOME: work / "_temp" / "_github_home",
        _CONTAINER_WORKSPACE: PurePosixPath(runner_workspace) / repository.split("/")[-1],
    }
    for inside, outside in mounts.items():
        if posix == inside or inside in posix.parents:
            return str(outside / posix.relative_to(inside))
    return str(path)
