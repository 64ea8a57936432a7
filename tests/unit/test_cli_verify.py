"""`attest verify` on every real bundle GitHub produced, invoked as a user invokes gh."""

from __future__ import annotations

import pytest

from tests.integration.helpers import run_attest
from tests.shared_data import github_bundles

B = github_bundles()
ROOTS_2025 = str(B / "trusted_root-2025-11.jsonl")
PROBER = ["--repo", "actions/attest-build-provenance"]

ACCEPTED = [
    (
        "attest-build-provenance-13532655.sigstore.json",
        [
            "--digest",
            "sha256:bb030cb9e028ff6d4051f2103b3b08f7e3928aa80a7d3626cef6e2553dc714b8",
            *PROBER,
        ],
        "public-good",
    ),
    (
        "attest-build-provenance-13531551.sigstore.json",
        [
            "--digest",
            "sha256:b03d18ed0a16864ef2d2e559c660159a2170b9d086a1f42f570b1679326b90e6",
            *PROBER,
        ],
        "github",
    ),
    (
        "attest-build-provenance-13581567.sigstore.json",
        [
            "--digest",
            "sha256:658913cfebe8a49165264e2b5e54ad99b3bdbfbc8cd281b3cfaa949a21588f18",
            *PROBER,
        ],
        "github",
    ),
    (
        "attest-build-provenance-13739985.sigstore.json",
        [
            "--digest",
            "sha256:f4a0d47c6bdbf3bdbe3478a043b7030fcef5fdf34be90d841891803c2efe9fc5",
            *PROBER,
            "--predicate-type",
            "https://slsa.dev/provenance/v1",
        ],
        "github",
    ),
    (
        "github_provenance_demo-0.0.12-py3-none-any-bundle.jsonl",
        [
            str(B / "github_provenance_demo-0.0.12-py3-none-any.whl"),
            "--repo",
            "actions/attest-demo",
        ],
        "github",
    ),
    (
        "reusable-workflow-attestation.sigstore.json",
        [
            str(B / "reusable-workflow-artifact"),
            "--owner",
            "malancas",
            "--signer-repo",
            "github/artifact-attestations-workflows",
        ],
        "public-good",
    ),
    (
        "custom-issuer.sigstore.json",
        [
            str(B / "custom-issuer-artifact"),
            "--owner",
            "too-legit",
            "--cert-oidc-issuer",
            "https://token.actions.githubusercontent.com/hammer-time",
        ],
        "public-good",
    ),
]


@pytest.mark.parametrize(("name", "args", "instance"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
@pytest.mark.parametrize("roots", ["2025-11", "embedded"])
def test_real_bundles_are_accepted(name, args, instance, roots):
    extra = ["--trusted-root", ROOTS_2025] if roots == "2025-11" else []
    result = run_attest("verify", "--bundle", str(B / name), *args, *extra).json()
    assert result["verified"] is True
    assert result["instance"] == instance


def test_the_invalid_bundle_is_rejected():
    result = run_attest(
        "verify",
        "--bundle",
        str(B / "sigstoreBundle-invalid-signature.json"),
        "--digest",
        "sha256:" + "0" * 64,
        "--owner",
        "sigstore",
        "--trusted-root",
        ROOTS_2025,
    )
    assert result.code == 1
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # The digest is another artifact's.
        (["--digest", "sha256:" + "1" * 64, *PROBER], "sha256:" + "1" * 64),
        # Signed in another repository.
        (
            [
                "--digest",
                "sha256:b03d18ed0a16864ef2d2e559c660159a2170b9d086a1f42f570b1679326b90e6",
                "--repo",
                "actions/attest",
            ],
            "does not match",
        ),
        (
            [
                "--digest",
                "sha256:b03d18ed0a16864ef2d2e559c660159a2170b9d086a1f42f570b1679326b90e6",
                *PROBER,
                "--predicate-type",
                "https://spdx.dev/Document/v2.3",
            ],
            "predicate",
        ),
        (
            [
                "--digest",
                "sha256:b03d18ed0a16864ef2d2e559c660159a2170b9d086a1f42f570b1679326b90e6",
                *PROBER,
                "--signer-workflow",
                "actions/attest-build-provenance/.github/workflows/x.yml",
            ],
            "does not match",
        ),
        (
            [
                "--digest",
                "sha256:b03d18ed0a16864ef2d2e559c660159a2170b9d086a1f42f570b1679326b90e6",
                *PROBER,
                "--source-ref",
                "refs/heads/other",
            ],
            "refs/heads/other",
        ),
    ],
)
def test_policy_failures_name_the_reason(args, message):
    result = run_attest(
        "verify",
        "--bundle",
        str(B / "attest-build-provenance-13531551.sigstore.json"),
        *args,
        "--trusted-root",
        ROOTS_2025,
    )
    assert result.code == 1
    assert message in result.stderr
