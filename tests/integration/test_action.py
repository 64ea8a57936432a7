"""The whole action through entrypoint.py, on a local Sigstore instance, verified by us, by
sigstore-python and by gh; pushed to real registries."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.github_api import FakeGitHubAPI
from tests.fakes.oidc_issuer import FakeIssuer
from tests.fakes.sigstore_instance import SigstoreInstance

from .action_runner import ROOT, ActionRunner
from .helpers import (
    gh_binary,
    gh_environment,
    push_image,
    run_attest,
    run_tool,
    through,
    unique_repository,
    write_trusted_root,
)
from .quirk_proxy import QuirkProxy, Quirks
from .servers import tool

ARTIFACT = b"the build output\n"
OWNER = "octo-org"


@dataclass
class Local:
    """One local instance: its client trust config and trusted root, as files."""

    kind: str
    trust_config: Path
    trusted_root: Path
    document: dict[str, Any]


@pytest.fixture
def github() -> Iterator[FakeGitHubAPI]:
    with FakeGitHubAPI() as api:
        yield api


@pytest.fixture(scope="module")
def issuer() -> Iterator[FakeIssuer]:
    with FakeIssuer() as fake:
        yield fake


@pytest.fixture(scope="module")
def locals_(issuer, tsa, tmp_path_factory) -> Iterator[dict[str, Local]]:
    """public good (Fulcio+CT+Rekor+TSA), GitHub's shape (Fulcio+TSA), a custom one (+Rekor)."""
    shapes = {
        "public-good": ({"ct_log": True, "rekor": True, "ca_org": "sigstore.dev"}, True),
        "github": ({"ct_log": False, "rekor": False, "ca_org": "GitHub, Inc."}, True),
        "custom": ({"ct_log": True, "rekor": True, "ca_org": "Example Corp"}, False),
    }
    directory = tmp_path_factory.mktemp("sigstore")
    started = {}
    instances = []
    try:
        for kind, (options, with_tsa) in shapes.items():
            instance = SigstoreInstance(issuer, **options).start()
            instances.append(instance)
            chains = [tsa.chain_der] if with_tsa else []
            config = instance.client_trust_config(
                tsa_url=tsa.url if with_tsa else None, tsa_chains=chains
            )
            trust_config = directory / f"{kind}-trust-config.json"
            trust_config.write_text(json.dumps(config))
            root = write_trusted_root(directory / f"{kind}-root.jsonl", config["trustedRoot"])
            started[kind] = Local(kind, trust_config, root, config)
        yield started
    finally:
        for instance in instances:
            instance.stop()


def _runner(
    tmp_path: Path,
    issuer: FakeIssuer,
    locals_: dict[str, Local],
    kind: str,
    github: FakeGitHubAPI,
) -> ActionRunner:
    runner = ActionRunner(tmp_path, repository="octo-org/octo-repo", github_token=github.token)
    runner.event["repository"]["visibility"] = "public" if kind == "public-good" else "private"
    runner.env.update(
        {
            "ACTIONS_ID_TOKEN_REQUEST_URL": issuer.request_url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": issuer.request_token,
            "ATTEST_OIDC_ISSUER": issuer.url,
            "ATTEST_PUBLIC_GOOD_TRUST_CONFIG": str(locals_["public-good"].trust_config),
            "ATTEST_GITHUB_TRUST_CONFIG": str(locals_["github"].trust_config),
            "GITHUB_API_URL": github.url,
        }
    )
    (runner.workspace / "dist").mkdir()
    (runner.workspace / "dist" / "app.tar.gz").write_bytes(ARTIFACT)
    return runner


def _inputs(kind: str, locals_: dict[str, Local], **more: str) -> dict[str, str]:
    inputs = {"subject-path": "dist/*", **more}
    if kind == "custom":
        inputs["sigstore-trust-config"] = str(locals_["custom"].trust_config)
    return inputs


def _gh_verify(artifact: Path, bundle: Path, root: Path, issuer: FakeIssuer, home: Path):
    env = gh_environment(home)
    return subprocess.run(
        [
            gh_binary(),
            "attestation",
            "verify",
            str(artifact),
            "--bundle",
            str(bundle),
            "--custom-trusted-root",
            str(root),
            "--owner",
            OWNER,
            "--cert-oidc-issuer",
            issuer.url,
            "--format",
            "json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("kind", ["public-good", "github", "custom"])
def test_signs_on_every_instance_kind_and_real_verifiers_accept_it(
    tmp_path, github, issuer, locals_, kind
):
    runner = _runner(tmp_path, issuer, locals_, kind, github)

    result = runner.run(_inputs(kind, locals_))

    assert result.code == 0, result.stdout + result.stderr
    assert result.errors == []
    bundle_path = Path(result.outputs["bundle-path"])
    bundle = json.loads(bundle_path.read_text())
    has_log = kind != "github"
    assert bool(bundle["verificationMaterial"].get("tlogEntries")) is has_log
    timestamps = bundle["verificationMaterial"].get("timestampVerificationData") or {}
    assert bool(timestamps.get("rfc3161Timestamps")) is (kind != "custom")
    # Every token the step obtained was masked.
    assert len(result.of("add-mask")) >= 2
    assert issuer.request_token not in result.stdout + result.stderr
    listing = runner.temp / "created_attestation_paths.txt"
    assert listing.read_text().splitlines()[-1] == str(bundle_path)
    # Recorded with GitHub: the bundle as the body's object, the id and URL as outputs.
    (stored,) = github.attestations
    assert stored["repository"] == "octo-org/octo-repo"
    assert stored["bundle"] == bundle
    assert result.outputs["attestation-id"] == str(stored["id"])
    assert result.outputs["attestation-url"] == (
        f"https://github.com/octo-org/octo-repo/attestations/{stored['id']}"
    )
    assert "### Attestation Created" in result.summary
    assert result.outputs["attestation-url"] in result.summary
    expected = {"public-good": "Public Good", "github": "GitHub", "custom": "custom"}[kind]
    assert f"Attestation signed using certificate from {expected} Sigstore instance" in result.of(
        "group"
    )

    # Our verifier...
    artifact = runner.workspace / "dist" / "app.tar.gz"
    ours = run_attest(
        "verify",
        "--bundle",
        str(bundle_path),
        str(artifact),
        "--owner",
        OWNER,
        "--cert-oidc-issuer",
        issuer.url,
        "--trusted-root",
        str(locals_[kind].trusted_root),
    ).json()
    assert ours["subject"] == [
        {"name": "app.tar.gz", "digest": {"sha256": hashlib.sha256(ARTIFACT).hexdigest()}}
    ]
    assert ours["predicateType"] == "https://slsa.dev/provenance/v1"
    # ...and gh's, which picks its checks by the CA's organisation.
    gh = _gh_verify(artifact, bundle_path, locals_[kind].trusted_root, issuer, tmp_path / "gh")
    assert gh.returncode == 0, gh.stderr
    assert json.loads(gh.stdout)[0]["verificationResult"]["statement"]["subject"][0]["name"] == (
        "app.tar.gz"
    )


def test_sigstore_python_verifies_the_public_good_bundle(tmp_path, github, issuer, locals_):
    from sigstore.models import Bundle, ClientTrustConfig
    from sigstore.verify import Verifier
    from sigstore.verify.policy import Identity

    runner = _runner(tmp_path, issuer, locals_, "public-good", github)
    result = runner.run(_inputs("public-good", locals_))
    assert result.code == 0, result.stderr
    config = ClientTrustConfig.from_json(locals_["public-good"].trust_config.read_text())
    bundle = Bundle.from_json(Path(result.outputs["bundle-path"]).read_bytes())
    san = f"https://github.com/{issuer.claims['job_workflow_ref']}"
    payload_type, payload = Verifier(trusted_root=config.trusted_root).verify_dsse(
        bundle, Identity(identity=san, issuer=issuer.url)
    )
    assert payload_type == "application/vnd.in-toto+json"
    assert json.loads(payload)["subject"][0]["name"] == "app.tar.gz"


def test_sbom_attestation_on_githubs_instance(tmp_path, github, issuer, locals_):
    runner = _runner(tmp_path, issuer, locals_, "github", github)
    sbom = {"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "app"}
    (runner.workspace / "sbom.spdx.json").write_text(json.dumps(sbom))
    result = runner.run(_inputs("github", locals_, **{"sbom-path": "sbom.spdx.json"}))
    assert result.code == 0, result.stderr
    verified = run_attest(
        "verify",
        "--bundle",
        result.outputs["bundle-path"],
        str(runner.workspace / "dist" / "app.tar.gz"),
        "--owner",
        OWNER,
        "--cert-oidc-issuer",
        issuer.url,
        "--trusted-root",
        str(locals_["github"].trusted_root),
        "--predicate-type",
        "https://spdx.dev/Document/v2.3",
    ).json()
    assert verified["instance"] == "github"


def test_a_refused_certificate_request_is_one_error_and_nothing_is_written(
    tmp_path, github, issuer, locals_
):
    runner = _runner(tmp_path, issuer, locals_, "github", github)
    # Tokens from an issuer this Fulcio does not trust.
    with FakeIssuer() as stranger:
        runner.env["ACTIONS_ID_TOKEN_REQUEST_URL"] = stranger.request_url
        runner.env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = stranger.request_token
        runner.env["ATTEST_OIDC_ISSUER"] = stranger.url
        result = runner.run(_inputs("github", locals_))
    assert result.code == 1
    assert len(result.errors) == 1
    assert "Fulcio refused the certificate request" in result.errors[0]
    assert "bundle-path" not in result.outputs
    assert not (runner.temp / "created_attestation_paths.txt").exists()


def test_pushes_to_several_images_on_different_registries(
    tmp_path, github, issuer, locals_, registry_of
):
    images = []
    for kind in ("olareg", "distribution"):
        registry = registry_of(kind)
        images.append(push_image(registry.host, unique_repository(f"e2e-{kind}")))
    runner = _runner(tmp_path, issuer, locals_, "github", github)
    runner.artifacts_list(images)

    result = runner.run({"push-to-registry": "true"})

    assert result.code == 0, result.stdout + result.stderr
    manifests = result.outputs["attestation-manifest-digests"].splitlines()
    modes = result.outputs["referrers-modes"].splitlines()
    assert [m.rsplit("@", 1)[0] for m in manifests] == [i.rsplit("@", 1)[0] for i in images]
    assert modes == [f"{images[0]} api", f"{images[1]} tag"]
    # One storage record per pushed image: the repository is organisation-owned.
    ids = result.outputs["storage-record-ids"].split(",")
    assert len(ids) == 2
    assert {r["digest"] for r in github.storage_records} == {i.rsplit("@", 1)[1] for i in images}
    assert "fallback tag" in result.summary and "referrers API" in result.summary
    for image, manifest in zip(images, manifests, strict=True):
        found = json.loads(
            run_tool("oras", "discover", "--plain-http", "--format", "json", image, home=tmp_path)
        )
        assert [r["digest"] for r in found["referrers"]] == [manifest.rsplit("@", 1)[1]]
        # attest verify finds the bundle in the registry by itself.
        verified = run_attest(
            "verify",
            image,
            "--owner",
            OWNER,
            "--cert-oidc-issuer",
            issuer.url,
            "--trusted-root",
            str(locals_["github"].trusted_root),
        ).json()
        digests = [subject["digest"]["sha256"] for subject in verified["subject"]]
        assert image.rsplit(":", 1)[1] in digests


def test_one_failing_image_does_not_stop_the_others(tmp_path, github, issuer, locals_, registry_of):
    registry = registry_of("olareg")
    good = push_image(registry.host, unique_repository("e2e-good"))
    missing = f"{registry.host}/{unique_repository('e2e-missing')}@sha256:{'0' * 64}"
    runner = _runner(tmp_path, issuer, locals_, "github", github)
    runner.artifacts_list([missing, good])

    result = runner.run({"push-to-registry": "true"})

    assert result.code == 1
    assert any(missing in error for error in result.errors)
    assert result.errors[-1].startswith("1 of 2 image(s) could not store the attestation")
    assert len(run_attest("referrers", good).json()) == 1


@pytest.fixture(scope="module")
def image_runtime(tmp_path_factory) -> list[str]:
    """The image's Python layer, built by the script the Dockerfile runs."""
    runtime = tmp_path_factory.mktemp("image") / "opt-attest"
    subprocess.run(
        ["sh", str(ROOT / "scripts" / "build-runtime.sh"), str(runtime), sys.executable],
        check=True,
        capture_output=True,
        timeout=600,
    )
    # The Dockerfile's ENTRYPOINT.
    return [str(runtime / "bin" / "python"), "-I", str(runtime / "entrypoint.py")]


def test_the_image_runtime_runs_the_action_with_a_poisoned_environment(
    tmp_path, github, issuer, locals_, image_runtime
):
    runner = _runner(tmp_path, issuer, locals_, "github", github)
    runner.command = image_runtime
    # What a job may leave in the environment must not reach the action (pypa's smoke test).
    runner.env.update(
        {
            "PYTHONPATH": str(tmp_path / "evil"),
            "PYTHONHOME": "/nonexistent",
            "PATH": "utter-nonsense",
        }
    )
    (tmp_path / "evil").mkdir()
    (tmp_path / "evil" / "requests.py").write_text("raise SystemExit('poisoned')\n")
    result = runner.run(_inputs("github", locals_))
    assert result.code == 0, result.stdout + result.stderr
    assert Path(result.outputs["bundle-path"]).is_file()


@pytest.mark.parametrize("kind", ["public-good", "github"])
def test_cosign_verifies_our_bundles(tmp_path, github, issuer, locals_, kind):
    runner = _runner(tmp_path, issuer, locals_, kind, github)
    result = runner.run(_inputs(kind, locals_))
    assert result.code == 0, result.stderr
    root = tmp_path / "trusted_root.json"
    root.write_text(json.dumps(locals_[kind].document["trustedRoot"]))
    # GitHub's shape has neither a transparency log entry nor an SCT: cosign's flags for it.
    no_log = ["--use-signed-timestamps", "--insecure-ignore-tlog", "--insecure-ignore-sct"]
    completed = subprocess.run(
        [
            tool("cosign"),
            "verify-blob-attestation",
            "--new-bundle-format",
            "--bundle",
            result.outputs["bundle-path"],
            "--trusted-root",
            str(root),
            "--certificate-identity",
            f"https://github.com/{issuer.claims['job_workflow_ref']}",
            "--certificate-oidc-issuer",
            issuer.url,
            "--type",
            "slsaprovenance1",
            *(no_log if kind == "github" else []),
            str(runner.workspace / "dist" / "app.tar.gz"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert completed.returncode == 0, completed.stderr
    assert "Verified OK" in completed.stderr + completed.stdout


def test_many_images_in_one_run_share_each_registrys_client(
    tmp_path, github, issuer, locals_, registry_of
):
    registry = registry_of("distribution")
    # The artifacts list allows one digest per name: ten repositories on one registry.
    images = [push_image(registry.host, unique_repository("many")) for _ in range(10)]
    with QuirkProxy(registry.url, Quirks()) as proxy:
        behind = [through(proxy, image) for image in images]
        runner = _runner(tmp_path, issuer, locals_, "github", github)
        runner.artifacts_list(behind)
        result = runner.run({"push-to-registry": "true"})
        probes = [r.path for r in proxy.log if "/referrers/" in r.path]
        config_heads = [r for r in proxy.log if r.method == "HEAD" and "44136fa3" in r.path]
    assert result.code == 0, result.stdout + result.stderr
    assert len(result.outputs["attestation-manifest-digests"].splitlines()) == 10
    assert [line.split()[-1] for line in result.outputs["referrers-modes"].splitlines()] == (
        ["tag"] * 10
    )
    # One probe per repository; the empty config blob is looked up once per repository.
    assert len(probes) == 10
    assert len(config_heads) == 10
    for image in images:
        assert len(run_attest("referrers", image).json()) == 1


def test_the_container_contract_with_github_paths(tmp_path, github, issuer, locals_, image_runtime):
    """The image's runtime under /github/..., as the runner mounts it; outputs name host paths."""
    runner = _runner(tmp_path, issuer, locals_, "github", github)
    runner.in_container(Path(image_runtime[0]).parents[1])
    # The runner translates input values that start with a mounted host path.
    result = runner.run(
        _inputs(
            "github",
            locals_,
            **{
                "subject-path": f"{runner.workspace}/dist/app.tar.gz",
            },
        )
    )
    assert result.code == 0, result.stdout + result.stderr
    bundle = Path(result.outputs["bundle-path"])
    # A host path: later steps run on the host and must find the file there.
    assert bundle.is_relative_to(runner.temp)
    assert bundle.is_file()
    assert (runner.temp / "created_attestation_paths.txt").read_text().splitlines() == [str(bundle)]
    assert "### Attestation Created" in result.summary
    assert result.outputs["attestation-url"].startswith("https://github.com/octo-org/octo-repo/")


def test_no_secret_appears_anywhere_but_in_mask_commands(
    tmp_path, github, issuer, locals_, registry_of
):
    registry = registry_of("olareg")
    image = push_image(registry.host, unique_repository("secrets"))
    password = "registry-pa55word-VALUE"
    with QuirkProxy(registry.url, Quirks(bearer_auth=("ci-bot", password))) as proxy:
        runner = _runner(tmp_path, issuer, locals_, "github", github)
        runner.artifacts_list([through(proxy, image)])
        runner.env["RUNNER_DEBUG"] = "1"  # debug logging on: still nothing leaks
        result = runner.run(
            {
                "push-to-registry": "true",
                "registry-username": "ci-bot",
                "registry-password": password,
            }
        )
        tokens_issued = [r for r in proxy.token_requests if r.get("outcome") == "granted"]
    assert result.code == 0, result.stdout + result.stderr
    assert tokens_issued
    secrets = {password, github.token, issuer.request_token}
    masked = set(result.of("add-mask"))
    assert {password, github.token} <= masked
    printed = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if not line.startswith("::add-mask::")
    ]
    everything = "\n".join(printed) + json.dumps(result.outputs) + result.summary
    for secret in secrets | {m for m in masked if m.startswith("eyJ")}:
        assert secret not in everything
