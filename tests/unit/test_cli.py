"""Bad input: one clear line naming the input, exit code 1, nothing else."""

from __future__ import annotations

import json

import pytest

from tests.integration.helpers import PROVENANCE, run_attest

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


def _good(image: str = f"127.0.0.1:1/a@{DIGEST}") -> dict[str, object]:
    return {"image": image, "bundles": [str(PROVENANCE)]}


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        (None, [], "--list {list}: No such file or directory"),
        ("[a: b", [], "--list {list}: not YAML or JSON"),
        ("{}", [], "--list {list}: expected a non-empty list of {{image, bundles}}"),
        ("[]", [], "--list {list}: expected a non-empty list"),
        ([_good(), {"image": f"127.0.0.1:1/b@{DIGEST}"}], [], "entry 2: expected exactly the keys"),
        ([{**_good(), "tag": "x"}], [], "entry 1: expected exactly the keys image and bundles"),
        ([{"image": 3, "bundles": ["b"]}], [], "entry 1: image must be a string"),
        ([_good("bad ref")], [], "entry 1: image reference 'bad ref' is empty or contains spaces"),
        ([{"image": f"r.example/a@{DIGEST}", "bundles": []}], [], "entry 1: bundles must be"),
        ([{"image": f"r.example/a@{DIGEST}", "bundles": "b.json"}], [], "entry 1: bundles must be"),
        (
            [_good(), {"image": f"127.0.0.1:1/b@{DIGEST}", "bundles": ["missing.json"]}],
            [],
            "entry 2 bundle {dir}/missing.json: No such file or directory",
        ),
        (
            [{"image": f"127.0.0.1:1/b@{DIGEST}", "bundles": ["broken.json"]}],
            [],
            "entry 1 bundle {dir}/broken.json",
        ),
        (
            [_good()],
            [f"127.0.0.1:1/a@{DIGEST}"],
            "attach: --list replaces IMAGE@DIGEST and --bundle",
        ),
        ([_good()], ["--bundle", "b.json"], "attach: --list replaces IMAGE@DIGEST and --bundle"),
        (
            [_good(), _good(f"127.0.0.1:2/a@{DIGEST}")],
            ["--username", "u", "--password-stdin"],
            "--username with --list: every image must be on one registry "
            "(found 127.0.0.1:1, 127.0.0.1:2)",
        ),
    ],
)
def test_bad_attach_lists_are_one_line_naming_the_entry(tmp_path, content, extra, message):
    listing = tmp_path / "attach.yaml"
    (tmp_path / "broken.json").write_text("{}")
    if content is not None:
        listing.write_text(content if isinstance(content, str) else json.dumps(content))
    result = run_attest("attach", "--list", str(listing), *extra, stdin="secret\n")
    assert result.code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1
    assert message.format(list=listing, dir=tmp_path) in result.stderr


def test_attach_needs_an_image_or_a_list():
    result = run_attest("attach", "--bundle", "b.json")
    assert (result.code, result.stdout) == (1, "")
    assert result.stderr == "error: attach: IMAGE@DIGEST with --bundle FILE, or --list FILE\n"


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
