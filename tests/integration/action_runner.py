"""Runs entrypoint.py the way the runner runs a container action.

The environment is built like actions/runner's ContainerActionHandler: every input of
action.yml as ``INPUT_<NAME>`` (hyphens kept, defaults applied, required not enforced),
the github and runner context variables, fresh file-command files, a workspace as the
working directory. Afterwards the files are read the way the runner reads them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
GITHUB_TOKEN = "ghs_test0000000000000000000000000000000"
_COMMAND = re.compile(r"^::([a-z-]+)(?: ([^:]*))?::(.*)$")


@dataclass
class ActionResult:
    code: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str
    commands: list[tuple[str, str]] = field(default_factory=list)

    def of(self, kind: str) -> list[str]:
        return [message for name, message in self.commands if name == kind]

    @property
    def errors(self) -> list[str]:
        return self.of("error")


def parse_file_commands(text: str) -> dict[str, str]:
    """The runner's reading of GITHUB_OUTPUT (FileCommandManager.cs): key=value or heredoc."""
    values: dict[str, str] = {}
    lines = text.split("\n")
    if lines[-1] != "":
        raise AssertionError("EOF marker missing new line")
    lines.pop()
    index = 0
    while index < len(lines):
        line = lines[index]
        heredoc = line.find("<<")
        equals = line.find("=")
        if heredoc > 0 and (equals < 0 or heredoc < equals):
            name, delimiter = line[:heredoc], line[heredoc + 2 :]
            try:
                end = lines.index(delimiter, index + 1)
            except ValueError:
                raise AssertionError(f"Matching delimiter not found '{delimiter}'") from None
            values[name] = "\n".join(lines[index + 1 : end])
            index = end + 1
        else:
            values[line[:equals]] = line[equals + 1 :]
            index += 1
    return values


class ActionRunner:
    """One job's worth of runner directories; :meth:`run` is one step."""

    def __init__(
        self,
        root: Path,
        *,
        repository: str = "octo-org/app",
        command: list[str] | None = None,
        github_token: str = GITHUB_TOKEN,
    ) -> None:
        self.repository = repository
        #: What `${{ github.token }}` evaluates to: the default of the github-token input.
        self.github_token = github_token
        #: How the container starts the action (the image's ENTRYPOINT).
        self.command = command or [sys.executable, str(ROOT / "entrypoint.py")]
        name = repository.split("/")[1]
        self.work = root / "work"
        self.runner_workspace = self.work / name
        self.workspace = self.runner_workspace / name
        self.temp = self.work / "_temp"
        self.home = self.temp / "_github_home"
        self.commands_dir = self.temp / "_runner_file_commands"
        for directory in (self.workspace, self.home, self.commands_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self.event: dict[str, Any] = {
            "repository": {
                "full_name": repository,
                "visibility": "public",
                "owner": {"login": repository.split("/")[0], "type": "Organization"},
            }
        }
        self.env: dict[str, str] = {}
        #: Host path -> container path, when the step runs in a container.
        self.mounts: dict[Path, str] = {}
        self._step = 0

    def in_container(self, runtime: Path) -> None:
        """Run the step the way the runner runs the container: the image's runtime at
        /opt/attest, the runner's directories mounted under /github (ContainerActionHandler.cs
        MountVolumes), environment values translated to container paths, /github/workspace as
        the working directory. bubblewrap stands in for Docker."""
        self.mounts = {
            self.temp / "_github_home": "/github/home",
            self.temp / "_github_workflow": "/github/workflow",
            self.commands_dir: "/github/file_commands",
            self.temp: "/github/runner_temp",
            self.workspace: "/github/workspace",
        }
        binds = ["--tmpfs", "/github"]
        for host, inside in self.mounts.items():
            host.mkdir(parents=True, exist_ok=True)
            binds += ["--bind", str(host), inside]
        self.command = [
            "bwrap",
            "--bind",
            "/",
            "/",
            *binds,
            "--bind",
            str(runtime),
            "/opt/attest",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--chdir",
            "/github/workspace",
            "/opt/attest/bin/python",
            "-I",
            "/opt/attest/entrypoint.py",
        ]

    def _translate(self, value: str) -> str:
        """TranslateToContainerPath: a value equal to or under a mounted host path."""
        for host, inside in sorted(self.mounts.items(), key=lambda m: -len(str(m[0]))):
            if value == str(host) or value.startswith(f"{host}/"):
                return inside + value[len(str(host)) :]
        return value

    def artifacts_list(self, images: list[str]) -> None:
        """The runner's artifacts list ($GITHUB_ARTIFACTS_LIST) naming these images."""
        listing = self.temp / "artifacts-list.json"
        subjects = [
            {"name": ref.rsplit("@", 1)[0], "digest": ref.rsplit("@", 1)[1], "kind": "oci"}
            for ref in images
        ]
        listing.write_text(json.dumps({"version": 1, "subjects": subjects}))
        self.env["GITHUB_ARTIFACTS_LIST"] = str(listing)

    def environment(self, inputs: dict[str, str]) -> dict[str, str]:
        self._step += 1
        event_path = self.temp / "_github_workflow" / "event.json"
        event_path.parent.mkdir(parents=True, exist_ok=True)
        event_path.write_text(json.dumps(self.event))
        files = {
            kind: self.commands_dir / f"{kind}_{self._step}"
            for kind in ("set_output", "step_summary", "set_env", "add_path", "save_state")
        }
        for path in files.values():
            path.write_text("")
        unknown = set(inputs) - set(ACTION["inputs"])
        assert not unknown, f"not inputs of action.yml: {unknown}"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_API_URL": "https://api.github.com",
            "GITHUB_REPOSITORY": self.repository,
            "GITHUB_REPOSITORY_OWNER": self.repository.split("/")[0],
            "GITHUB_EVENT_NAME": "push",
            "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_SHA": "ba965ac88abfc6fa49344893ed19e5bf479a07d6",
            "GITHUB_REF": "refs/heads/main",
            "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_OUTPUT": str(files["set_output"]),
            "GITHUB_STEP_SUMMARY": str(files["step_summary"]),
            "GITHUB_ENV": str(files["set_env"]),
            "GITHUB_PATH": str(files["add_path"]),
            "GITHUB_STATE": str(files["save_state"]),
            "RUNNER_TEMP": str(self.temp),
            "RUNNER_WORKSPACE": str(self.runner_workspace),
            "RUNNER_ENVIRONMENT": "github-hosted",
            "RUNNER_OS": "Linux",
        }
        for name, spec in ACTION["inputs"].items():
            default = str(spec.get("default", ""))
            if default == "${{ github.token }}":
                default = self.github_token
            # The runner exports every declared input, "" when it has no value.
            env["INPUT_" + name.replace(" ", "_").upper()] = inputs.get(name, default)
        env.update(self.env)
        self._files = files
        # RUNNER_WORKSPACE is not under a mount: the runner leaves it as the host's path.
        return {
            name: value if name == "RUNNER_WORKSPACE" else self._translate(value)
            for name, value in env.items()
        }

    def run(self, inputs: dict[str, str] | None = None, *, timeout: float = 120) -> ActionResult:
        env = self.environment(inputs or {})
        completed = subprocess.run(
            self.command,
            cwd=self.workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        commands = []
        for line in (completed.stdout + completed.stderr).splitlines():
            match = _COMMAND.match(line)
            if match:
                commands.append((match.group(1), match.group(3)))
        return ActionResult(
            code=completed.returncode,
            stdout=completed.stdout,
            stderr=completed.stderr,
            outputs=parse_file_commands(self._files["set_output"].read_text()),
            summary=self._files["step_summary"].read_text(),
            commands=commands,
        )
