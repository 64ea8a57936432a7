"""`attest statement`: the statement `attest run` would sign, from INPUT_* or flags, with the
OIDC token fetched and verified for real against a local issuer."""

from __future__ import annotations

import hashlib
import json

from tests.fakes.oidc_issuer import FakeIssuer

from .helpers import run_attest


def _environ(issuer: FakeIssuer, workspace, **inputs: str) -> dict[str, str]:
    environ = {
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_SERVER_URL": "https://github.com",
        "ACTIONS_ID_TOKEN_REQUEST_URL": issuer.request_url,
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": issuer.request_token,
        "ATTEST_OIDC_ISSUER": issuer.url,
        "HOME": str(workspace),
    }
    environ.update({f"INPUT_{name.upper()}": value for name, value in inputs.items()})
    return environ


def test_provenance_statement_from_input_variables(tmp_path):
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "app.tar.gz").write_bytes(b"app")
    (tmp_path / "dist" / "app.sig").write_bytes(b"sig")
    with FakeIssuer() as issuer:
        issuer.claims["job_workflow_ref"] = "central/ci/.github/workflows/build.yml@refs/tags/v2"
        statement = run_attest(
            "statement",
            environ=_environ(issuer, tmp_path, **{"SUBJECT-PATH": "dist/*, !dist/*.sig"}),
        ).json()
        audiences = [seen.path for seen in issuer.requests if seen.path.startswith("/token")]
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"] == [
        {"name": "app.tar.gz", "digest": {"sha256": hashlib.sha256(b"app").hexdigest()}}
    ]
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    predicate = statement["predicate"]
    assert predicate["runDetails"]["builder"]["id"] == (
        "https://github.com/central/ci/.github/workflows/build.yml@refs/tags/v2"
    )
    assert predicate["buildDefinition"]["externalParameters"]["workflow"] == {
        "ref": "refs/heads/main",
        "repository": "https://github.com/octo-org/octo-repo",
        "path": ".github/workflows/release.yml",
    }
    assert predicate["runDetails"]["metadata"]["invocationId"] == (
        "https://github.com/octo-org/octo-repo/actions/runs/9876543210/attempts/2"
    )
    # The claims come from a token for audience "nobody", not the signing audience.
    assert audiences == ["/token?api-version=2.0&audience=nobody"]


def test_flags_override_input_variables_and_sbom_mode_needs_no_token(tmp_path):
    sbom = {"bomFormat": "CycloneDX", "serialNumber": "urn:uuid:1", "specVersion": "1.6"}
    (tmp_path / "bom.json").write_text(json.dumps(sbom))
    environ = {
        "GITHUB_WORKSPACE": str(tmp_path),
        "HOME": str(tmp_path),
        "INPUT_SUBJECT-PATH": "nothing-here",
    }
    digest = "sha256:" + "e" * 64
    statement = run_attest(
        "statement",
        "--subject-path",
        "",
        "--subject-digest",
        digest,
        "--subject-name",
        "img",
        "--sbom-path",
        "bom.json",
        environ=environ,
    ).json()
    assert statement["subject"] == [{"name": "img", "digest": {"sha256": "e" * 64}}]
    assert statement["predicateType"] == "https://cyclonedx.org/bom"
    assert statement["predicate"] == sbom


def test_custom_predicate_and_spdx_types(tmp_path):
    environ = {"GITHUB_WORKSPACE": str(tmp_path), "HOME": str(tmp_path)}
    custom = run_attest(
        "statement",
        "--subject-digest",
        "sha512:" + "a" * 128,
        "--subject-name",
        "x",
        "--predicate-type",
        "https://example.com/test/v1",
        "--predicate",
        '{"ok": true}',
        environ=environ,
    ).json()
    assert custom["predicateType"] == "https://example.com/test/v1"
    assert custom["predicate"] == {"ok": True}
    assert custom["subject"][0]["digest"] == {"sha512": "a" * 128}
    (tmp_path / "spdx.json").write_text(
        json.dumps({"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT"})
    )
    spdx = run_attest(
        "statement",
        "--subject-digest",
        "sha256:" + "b" * 64,
        "--subject-name",
        "x",
        "--sbom-path",
        str(tmp_path / "spdx.json"),
        environ=environ,
    ).json()
    assert spdx["predicateType"] == "https://spdx.dev/Document/v2.3"
