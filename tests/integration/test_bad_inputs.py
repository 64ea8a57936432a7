"""Bad input through entrypoint.py as the runner runs it: one clear ::error:: line naming the
input, exit 1, no traceback, nothing written to any registry or API."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fakes.oidc_issuer import FakeIssuer

from .action_runner import ActionRunner
from .helpers import push_image, unique_repository
from .quirk_proxy import QuirkProxy, Quirks

SHA256 = "sha256:" + "ab" * 32

Setup = Callable[[Path], None]


def _file(relative: str, content: str | bytes = "x") -> Setup:
    def make(workspace: Path) -> None:
        path = workspace / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())

    return make


def _sparse(relative: str, size: int) -> Setup:
    def make(workspace: Path) -> None:
        with (workspace / relative).open("wb") as handle:
            handle.truncate(size)

    return make


def _nothing(workspace: Path) -> None:
    pass


SPDX = json.dumps({"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT"})
BIG = 16 * 1024 * 1024 + 1

# (id, inputs, workspace setup, artifacts list content or None, expected message fragment)
CASES: list[tuple[str, dict[str, str], Setup, str | None, str]] = [
    (
        "no-subject",
        {},
        _nothing,
        None,
        "One of subject-path, subject-digest, or subject-checksums must be provided",
    ),
    (
        "path-and-digest",
        {"subject-path": "a", "subject-digest": SHA256, "subject-name": "n"},
        _file("a"),
        None,
        "Only one of subject-path, subject-digest, or subject-checksums",
    ),
    (
        "path-and-checksums",
        {"subject-path": "a", "subject-checksums": "c"},
        _file("a"),
        None,
        "Only one of subject-path, subject-digest, or subject-checksums",
    ),
    (
        "digest-without-name",
        {"subject-digest": SHA256},
        _nothing,
        None,
        "subject-name must be provided when using subject-digest",
    ),
    (
        "digest-no-colon",
        {"subject-digest": "abc", "subject-name": "n"},
        _nothing,
        None,
        'subject-digest must be in the format "algorithm:hex_digest"',
    ),
    (
        "digest-md5",
        {"subject-digest": "md5:" + "a" * 32, "subject-name": "n"},
        _nothing,
        None,
        'subject-digest has unsupported algorithm "md5"',
    ),
    (
        "digest-not-hex",
        {"subject-digest": "sha256:" + "z" * 64, "subject-name": "n"},
        _nothing,
        None,
        "subject-digest has invalid hex digits",
    ),
    (
        "digest-short",
        {"subject-digest": "sha256:" + "a" * 63, "subject-name": "n"},
        _nothing,
        None,
        'subject-digest has invalid length for algorithm "sha256" (expected 64, got 63)',
    ),
    (
        "name-newline",
        {"subject-digest": SHA256, "subject-name": "a\nb"},
        _nothing,
        None,
        "Invalid subject name (contains a newline)",
    ),
    (
        "path-no-match",
        {"subject-path": "dist/*.whl"},
        _nothing,
        None,
        "Could not find subject at path dist/*.whl",
    ),
    (
        "path-only-dirs",
        {"subject-path": "empty/*"},
        lambda w: (w / "empty" / "d").mkdir(parents=True),
        None,
        "Could not find subject at path empty/*",
    ),
    (
        "path-all-excluded",
        {"subject-path": "a.txt\n!*.txt"},
        _file("a.txt"),
        None,
        "Could not find subject at path",
    ),
    (
        "checksums-too-big",
        {"subject-checksums": "sums.txt"},
        _sparse("sums.txt", 524289),
        None,
        "subject checksums file exceeds maximum allowed size: 524288 bytes",
    ),
    (
        "checksums-bad-digest",
        {"subject-checksums": "zz" * 32 + "  app"},
        _nothing,
        None,
        "Invalid digest: " + "zz" * 32,
    ),
    (
        "checksums-bad-length",
        {"subject-checksums": "ab" * 20 + "  app"},
        _nothing,
        None,
        "Unknown digest algorithm: " + "ab" * 20,
    ),
    ("checksums-no-lines", {"subject-checksums": "nospaces"}, _nothing, None, "subject-checksums"),
    ("artifacts-bad-json", {}, _nothing, "{not json", "Artifacts list"),
    (
        "artifacts-version",
        {},
        _nothing,
        '{"version": 2, "subjects": []}',
        "Unsupported artifacts list version",
    ),
    (
        "artifacts-bad-entry",
        {},
        _nothing,
        '{"version": 1, "subjects": [{"name": "a", "digest": "sha256:12", "kind": "file"}]}',
        "Artifacts list entry 0",
    ),
    (
        "artifacts-conflict",
        {},
        _nothing,
        json.dumps(
            {
                "version": 1,
                "subjects": [
                    {"name": "a", "digest": SHA256, "kind": "file"},
                    {"name": "a", "digest": "sha256:" + "cd" * 32, "kind": "file"},
                ],
            }
        ),
        "Artifacts list entry 1",
    ),
    (
        "artifacts-bom",
        {},
        _nothing,
        "\ufeff" + json.dumps({"version": 1, "subjects": []}),
        "Artifacts list",
    ),
    (
        "artifacts-file-kind-push",
        {"push-to-registry": "true"},
        _nothing,
        json.dumps({"version": 1, "subjects": [{"name": "a", "digest": SHA256, "kind": "file"}]}),
        "push-to-registry requires an OCI subject but the discovered artifacts list contains "
        "file-kind subjects",
    ),
    (
        "bool-push",
        {"subject-path": "a", "push-to-registry": "yes"},
        _file("a"),
        None,
        "push-to-registry: 'yes' is not a boolean",
    ),
    (
        "bool-summary",
        {"subject-path": "a", "show-summary": "0"},
        _file("a"),
        None,
        "show-summary: '0' is not a boolean",
    ),
    (
        "bool-storage",
        {"subject-path": "a", "create-storage-record": "no"},
        _file("a"),
        None,
        "create-storage-record: 'no' is not a boolean",
    ),
    (
        "bool-private",
        {"subject-path": "a", "private-signing": "sure"},
        _file("a"),
        None,
        "private-signing: 'sure' is not a boolean",
    ),
    (
        "referrers-mode",
        {"subject-path": "a", "referrers-mode": "oci"},
        _file("a"),
        None,
        "referrers-mode: 'oci' is not one of auto, api, tag",
    ),
    (
        "registry-user-only",
        {"subject-path": "a", "registry-username": "u"},
        _file("a"),
        None,
        "registry-username and registry-password must be given together",
    ),
    (
        "plain-http-url",
        {"subject-path": "a", "plain-http-registries": "http://r"},
        _file("a"),
        None,
        "plain-http-registries: 'http://r' must be a host name",
    ),
    (
        "sbom-missing",
        {"subject-path": "a", "sbom-path": "sbom.json"},
        _file("a"),
        None,
        "SBOM file not found: sbom.json",
    ),
    (
        "sbom-not-json",
        {"subject-path": "a", "sbom-path": "sbom.json"},
        lambda w: (_file("a")(w), _file("sbom.json", "{oops")(w)),
        None,
        "sbom-path sbom.json: invalid JSON at line 1 column 2",
    ),
    (
        "sbom-unknown",
        {"subject-path": "a", "sbom-path": "sbom.json"},
        lambda w: (_file("a")(w), _file("sbom.json", '{"a": 1}')(w)),
        None,
        "Unsupported SBOM format. Must be valid SPDX or CycloneDX JSON.",
    ),
    (
        "sbom-too-big",
        {"subject-path": "a", "sbom-path": "sbom.json"},
        lambda w: (_file("a")(w), _sparse("sbom.json", BIG)(w)),
        None,
        "SBOM file exceeds maximum allowed size: 16777216 bytes",
    ),
    (
        "sbom-and-predicate",
        {"subject-path": "a", "sbom-path": "s", "predicate-type": "t"},
        _file("a"),
        None,
        "Cannot specify sbom-path together with predicate-type, predicate, or predicate-path",
    ),
    (
        "predicate-no-type",
        {"subject-path": "a", "predicate": "{}"},
        _file("a"),
        None,
        "predicate-type is required when using predicate or predicate-path",
    ),
    (
        "predicate-both",
        {"subject-path": "a", "predicate-type": "t", "predicate": "{}", "predicate-path": "p"},
        _file("a"),
        None,
        "Only one of predicate-path or predicate may be provided",
    ),
    (
        "predicate-type-only",
        {"subject-path": "a", "predicate-type": "https://t"},
        _file("a"),
        None,
        "One of predicate-path or predicate must be provided",
    ),
    (
        "predicate-bad-json",
        {"subject-path": "a", "predicate-type": "t", "predicate": '{"a": }'},
        _file("a"),
        None,
        "predicate: invalid JSON at line 1 column 7",
    ),
    (
        "predicate-path-missing",
        {"subject-path": "a", "predicate-type": "t", "predicate-path": "p.json"},
        _file("a"),
        None,
        "predicate file not found: p.json",
    ),
    (
        "predicate-path-bad-json",
        {"subject-path": "a", "predicate-type": "t", "predicate-path": "p.json"},
        lambda w: (_file("a")(w), _file("p.json", "[1,\n2,,]")(w)),
        None,
        "predicate-path p.json: invalid JSON at line 2 column 3",
    ),
    (
        "predicate-path-too-big",
        {"subject-path": "a", "predicate-type": "t", "predicate-path": "p.json"},
        lambda w: (_file("a")(w), _sparse("p.json", BIG)(w)),
        None,
        "predicate file exceeds maximum allowed size: 16777216 bytes",
    ),
    (
        "predicate-not-utf8",
        {"subject-path": "a", "predicate-type": "t", "predicate-path": "p.json"},
        lambda w: (_file("a")(w), _file("p.json", b"\xff\xfe{}")(w)),
        None,
        "predicate-path p.json: not UTF-8 text",
    ),
    (
        "push-bad-image-name",
        {"subject-digest": SHA256, "subject-name": "bad name/app", "push-to-registry": "true"},
        _nothing,
        None,
        "subject-name",
    ),
    (
        "push-sha512",
        {
            "subject-digest": "sha512:" + "a" * 128,
            "subject-name": "ghcr.io/o/app",
            "push-to-registry": "true",
        },
        _nothing,
        None,
        "SHA-256",
    ),
]


@pytest.mark.parametrize(
    ("inputs", "setup", "artifacts", "message"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_input(tmp_path, inputs, setup, artifacts, message):
    runner = ActionRunner(tmp_path)
    setup(runner.workspace)
    if artifacts is not None:
        listing = runner.temp / "artifacts.json"
        listing.write_text(artifacts, encoding="utf-8")
        runner.env["GITHUB_ARTIFACTS_LIST"] = str(listing)
    # Sign-in material is present, so these fail on the input alone.
    runner.env["ACTIONS_ID_TOKEN_REQUEST_URL"] = "http://127.0.0.1:9/token?api-version=2.0"
    runner.env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = "request-token"

    result = runner.run(inputs)

    _assert_one_error(result, message)


def _assert_one_error(result, message: str) -> None:
    assert result.code == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.errors) == 1, result.commands
    assert message in result.errors[0].replace("%0A", "\n")
    assert result.outputs == {}


def test_the_matrix_is_large_enough():
    assert len(CASES) + len(OIDC_CASES) >= 40


OIDC_CASES = ["missing-permission", "endpoint-refuses", "missing-claims", "ghes"]


@pytest.mark.parametrize("case", OIDC_CASES)
def test_bad_oidc_setup(tmp_path, case):
    runner = ActionRunner(tmp_path)
    _file("app.bin")(runner.workspace)
    with FakeIssuer() as issuer:
        if case != "missing-permission":
            runner.env["ACTIONS_ID_TOKEN_REQUEST_URL"] = issuer.request_url
            runner.env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = issuer.request_token
            runner.env["ATTEST_OIDC_ISSUER"] = issuer.url
        if case == "endpoint-refuses":
            issuer.token_error = (403, '{"message": "Forbidden"}')
        if case == "missing-claims":
            issuer.claims["run_id"] = None
        if case == "ghes":
            del runner.env["ATTEST_OIDC_ISSUER"]
            runner.env["GITHUB_SERVER_URL"] = "https://github.example.com"
        result = runner.run({"subject-path": "app.bin"})
    expected = {
        "missing-permission": 'missing "id-token" permission. Please add '
        '"permissions: id-token: write" to your workflow.',
        "endpoint-refuses": "403",
        "missing-claims": "Missing claims: run_id",
        "ghes": "not available on GitHub Enterprise Server (https://github.example.com)",
    }[case]
    _assert_one_error(result, expected)
    assert issuer.request_token not in result.stdout + result.stderr


def test_bad_input_with_a_registry_subject_writes_nothing(tmp_path, registry_of):
    registry = registry_of("distribution")
    image = push_image(registry.host, unique_repository("badinput"))
    with QuirkProxy(registry.url, Quirks()) as proxy:
        runner = ActionRunner(tmp_path)
        result = runner.run(
            {
                "subject-digest": image.rsplit("@", 1)[1],
                "subject-name": proxy.host + "/" + image.split("/", 1)[1].rsplit("@", 1)[0],
                "push-to-registry": "true",
                "referrers-mode": "sideways",
            }
        )
    _assert_one_error(result, "referrers-mode")
    assert proxy.log == []
