"""Bad input: one clear line naming the input, exit code 1, nothing else."""

from __future__ import annotations

import pytest

from tests.integration.helpers import run_attest

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        ([], "", "the following arguments are required: command"),
        (["attach", f"127.0.0.1:1/a@{DIGEST}"], "", "--bundle"),
        (["attach", "127.0.0.1:1/a@sha256:12", "--bundle", "b"], "", "'127.0.0.1:1/a@sha256:12'"),
        (
            ["attach", f"127.0.0.1:1/a@{DIGEST}", "--bundle", "/nonexistent/b.json"],
            "",
            "--bundle /nonexistent/b.json: No such file or directory",
        ),
        (
            ["attach", f"127.0.0.1:1/a@{DIGEST}", "--bundle", "b", "--referrers-mode", "both"],
            "",
            "--referrers-mode: 'both' is not one of auto, api, tag",
        ),
        (
            ["attach", f"127.0.0.1:1/a@{DIGEST}", "--bundle", "b", "--username", "u"],
            "",
            "--username and --password-stdin go together",
        ),
        (
            [
                "attach",
                f"127.0.0.1:1/a@{DIGEST}",
                "--bundle",
                "b",
                "--username",
                "u",
                "--password-stdin",
            ],
            "",
            "--password-stdin: no password on standard input",
        ),
        (
            ["referrers", f"r.example/a@{DIGEST}", "--plain-http", "http://r.example"],
            "",
            "--plain-http: 'http://r.example' must be a host name",
        ),
        (["nonsense"], "", "invalid choice: 'nonsense'"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(args, stdin, message):
    result = run_attest(*args, stdin=stdin)
    assert result.code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1
    assert message in result.stderr


def test_in_actions_errors_are_workflow_commands():
    result = run_attest("attach", "bad ref", "--bundle", "b", environ={"GITHUB_ACTIONS": "true"})
    assert result.code == 1
    assert result.stderr.startswith("::error::image reference 'bad ref'")


def test_debug_lines_become_debug_commands_in_actions(tmp_path):
    environ = {
        "GITHUB_ACTIONS": "true",
        "RUNNER_DEBUG": "1",
        "GITHUB_WORKSPACE": str(tmp_path),
        "HOME": str(tmp_path),
    }
    result = run_attest(
        "statement",
        "--subject-digest",
        "sha256:" + "a" * 64,
        "--subject-name",
        "x",
        "--predicate-type",
        "t",
        "--predicate",
        "{}",
        environ=environ,
    )
    assert result.code == 0
    assert "::debug::" in result.stderr
