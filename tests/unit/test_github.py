from __future__ import annotations

import io
import re
from pathlib import Path, PurePosixPath

import pytest

from attest.github import Workflow, escape_data, escape_property, host_path
from tests.integration.action_runner import parse_file_commands


def test_outputs_use_random_heredoc_delimiters_the_runner_parses(tmp_path):
    output = tmp_path / "output"
    workflow = Workflow(in_actions=True, output_file=output, stream=io.StringIO())
    workflow.set_output("bundle-path", "/tmp/x/attestation.json")
    workflow.set_output("attestation-manifest-digests", "a@sha256:1\nb@sha256:2")
    workflow.set_output("empty", "")
    text = output.read_text()
    assert parse_file_commands(text) == {
        "bundle-path": "/tmp/x/attestation.json",
        "attestation-manifest-digests": "a@sha256:1\nb@sha256:2",
        "empty": "",
    }
    delimiters = re.findall(r"<<(ghadelimiter_[0-9a-f-]{36})\n", text)
    assert len(set(delimiters)) == 3


def test_commands_are_escaped():
    assert escape_data("50%\r\nnext") == "50%25%0D%0Anext"
    assert escape_property("a:b,c\n") == "a%3Ab%2Cc%0A"
    stream = io.StringIO()
    workflow = Workflow(in_actions=True, stream=stream)
    workflow.mask("token-value")
    workflow.warning("two\nlines")
    with workflow.group("Signing"):
        workflow.info("inside")
    assert stream.getvalue() == (
        "::add-mask::token-value\n::warning::two%0Alines\n::group::Signing\ninside\n::endgroup::\n"
    )


def test_outside_actions_nothing_is_masked_and_no_files_are_written(tmp_path, capsys):
    stream = io.StringIO()
    workflow = Workflow(in_actions=False, stream=stream)
    workflow.mask("secret")
    workflow.set_output("x", "y")
    workflow.summary("# hi")
    assert stream.getvalue() == ""
    assert workflow.outputs == {"x": "y"}


def test_summary_is_appended_and_capped(tmp_path):
    summary = tmp_path / "summary.md"
    stream = io.StringIO()
    workflow = Workflow(in_actions=True, summary_file=summary, stream=stream)
    workflow.summary("### Attestation Created\n")
    workflow.summary("more\n")
    assert summary.read_text() == "### Attestation Created\nmore\n"
    workflow.summary("x" * (1024 * 1024))
    assert summary.stat().st_size < 100
    assert "::warning::the job summary would exceed 1 MiB" in stream.getvalue()


@pytest.mark.parametrize(
    ("inside", "outside"),
    [
        (
            "/github/runner_temp/attest-1/attestation.json",
            "/home/runner/work/_temp/attest-1/attestation.json",
        ),
        ("/github/workspace/dist/app", "/home/runner/work/app/app/dist/app"),
        (
            "/github/home/.docker/config.json",
            "/home/runner/work/_temp/_github_home/.docker/config.json",
        ),
        ("/tmp/other", "/tmp/other"),
    ],
)
def test_host_paths_for_container_paths(inside, outside):
    assert (
        host_path(
            PurePosixPath(inside),
            runner_workspace="/home/runner/work/app",  # type: ignore[arg-type]
            repository="octo/app",
        )
        == outside
    )


def test_host_path_is_unchanged_outside_a_container():
    assert host_path(Path("/github/workspace/x"), runner_workspace="", repository="o/r") == (
        "/github/workspace/x"
    )
