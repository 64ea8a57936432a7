"""Our predicate against the predicates GitHub produced, from the claims in their certificates."""

from __future__ import annotations

import base64
import json
import re

import pytest
from cryptography import x509

from attest.provenance import SLSA_PROVENANCE_V1, provenance_predicate
from attest.statement import build_statement
from attest.subjects import Subject
from tests.shared_data import github_bundles

#: Bundles made by the current generator (2025 and the custom-issuer one); the 2024 bundles
#: predate GitHub's buildType and builder.id change and are not what GitHub makes today.
CURRENT = [
    "attest-build-provenance-13531551.sigstore.json",
    "attest-build-provenance-13532655.sigstore.json",
    "attest-build-provenance-13581567.sigstore.json",
    "attest-build-provenance-13739985.sigstore.json",
    "custom-issuer.sigstore.json",
]
_FULCIO = "1.3.6.1.4.1.57264.1."


def _extensions(bundle: dict) -> dict[int, str]:
    """Fulcio's certificate extensions .8-.22: DER UTF8String values."""
    raw = base64.b64decode(bundle["verificationMaterial"]["certificate"]["rawBytes"])
    certificate = x509.load_der_x509_certificate(raw)
    values = {}
    for extension in certificate.extensions:
        oid = extension.oid.dotted_string
        if oid.startswith(_FULCIO) and isinstance(extension.value, x509.UnrecognizedExtension):
            der = extension.value.value
            if der[0] == 0x0C:  # UTF8String, short or long form length
                length, offset = der[1], 2
                if length & 0x80:
                    count = length & 0x7F
                    length, offset = int.from_bytes(der[2 : 2 + count], "big"), 2 + count
                values[int(oid[len(_FULCIO) :])] = der[offset : offset + length].decode()
    return values


def _claims(values: dict[int, str], server: str) -> dict[str, str]:
    """The OIDC claims Fulcio copied into the certificate (sigstore/fulcio docs/oid-info.md)."""
    run = re.fullmatch(rf"{server}/(.+)/actions/runs/(\d+)/attempts/(\d+)", values[21])
    assert run is not None
    return {
        "iss": values[8],
        "job_workflow_ref": values[9].removeprefix(server + "/"),
        "runner_environment": values[11],
        "repository": values[12].removeprefix(server + "/"),
        "sha": values[13],
        "ref": values[14],
        "repository_id": values[15],
        "repository_owner_id": values[17],
        "workflow_ref": values[18].removeprefix(server + "/"),
        "event_name": values[20],
        "run_id": run.group(2),
        "run_attempt": run.group(3),
    }


@pytest.mark.parametrize("name", CURRENT)
def test_statement_is_byte_for_byte_githubs(name):
    bundle = json.loads((github_bundles() / name).read_text())
    payload = base64.b64decode(bundle["dsseEnvelope"]["payload"])
    theirs = json.loads(payload)
    claims = _claims(_extensions(bundle), "https://github.com")

    predicate = provenance_predicate(claims, server_url="https://github.com")

    # Field by field first, for a readable failure...
    assert json.dumps(predicate, indent=1) == json.dumps(theirs["predicate"], indent=1)
    # ...then the whole statement, byte for byte.
    subjects = [Subject(s["name"], s["digest"]) for s in theirs["subject"]]
    statement = build_statement(subjects, SLSA_PROVENANCE_V1, predicate)
    assert statement.data == payload


def test_reusable_workflow_builder_is_the_called_workflow_and_workflow_the_caller():
    claims = {
        "repository": "caller/app",
        "ref": "refs/tags/v1.2@beta",
        "sha": "a" * 40,
        "event_name": "push",
        "workflow_ref": "caller/app/.github/workflows/release.yml@refs/tags/v1.2@beta",
        "job_workflow_ref": "central/templates/.github/workflows/build.yml@refs/heads/main",
        "repository_id": "1",
        "repository_owner_id": "2",
        "runner_environment": "self-hosted",
        "run_id": "3",
        "run_attempt": "4",
    }
    predicate = provenance_predicate(claims, server_url="https://octo.ghe.com/")
    assert predicate["runDetails"]["builder"]["id"] == (
        "https://octo.ghe.com/central/templates/.github/workflows/build.yml@refs/heads/main"
    )
    assert predicate["buildDefinition"]["externalParameters"]["workflow"] == {
        "ref": "refs/tags/v1.2@beta",
        "repository": "https://octo.ghe.com/caller/app",
        "path": ".github/workflows/release.yml",
    }
    assert predicate["buildDefinition"]["resolvedDependencies"] == [
        {
            "uri": "git+https://octo.ghe.com/caller/app@refs/tags/v1.2@beta",
            "digest": {"gitCommit": "a" * 40},
        }
    ]
    assert predicate["runDetails"]["metadata"]["invocationId"] == (
        "https://octo.ghe.com/caller/app/actions/runs/3/attempts/4"
    )
