"""make demo: the action end to end on this machine, against local services.

Starts a local OIDC issuer (standing in for GitHub's token endpoint), a local GitHub REST
API (attestations and storage records), a local Sigstore
instance shaped like GitHub's (Fulcio + the real timestamp-server, no transparency log),
Debian's distribution 2.8.2 (no referrers API) and olareg (referrers API). Pushes one image
to each registry, runs entrypoint.py exactly as the runner runs the container action with
push-to-registry, then verifies each image's attestation from the registry with
`attest verify` and lists it with oras.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.github_api import FakeGitHubAPI  # noqa: E402
from tests.fakes.oidc_issuer import FakeIssuer  # noqa: E402
from tests.fakes.sigstore_instance import SigstoreInstance  # noqa: E402
from tests.integration.action_runner import ActionResult, ActionRunner  # noqa: E402
from tests.integration.helpers import (  # noqa: E402
    gh_binary,
    gh_environment,
    push_image,
    run_attest,
    run_tool,
    tags,
    write_trusted_root,
)
from tests.integration.servers import start_registry  # noqa: E402
from tests.integration.tsa import start_timestamp_server  # noqa: E402


def _show(title: str, value: object) -> None:
    print(f"\n== {title}")
    print(value if isinstance(value, str) else json.dumps(value, indent=2))


def _step(runner: ActionRunner, inputs: dict[str, str], title: str) -> ActionResult:
    """One step as the runner runs it: its log, outputs and summary shown; stop on failure."""
    result = runner.run(inputs)
    _show(title, _log(result.stdout))
    if result.code:
        raise SystemExit(result.stderr)
    _show(f"{title.split(':')[0]} outputs", result.outputs)
    _show(f"{title.split(':')[0]} job summary", result.summary.rstrip())
    return result


def _gh_verify(target: Path | str, bundle: Path, root: Path, issuer: FakeIssuer, home: Path) -> str:
    completed = subprocess.run(
        [
            gh_binary(),
            "attestation",
            "verify",
            str(target),
            "--bundle",
            str(bundle),
            "--custom-trusted-root",
            str(root),
            "--owner",
            "octo-org",
            "--cert-oidc-issuer",
            issuer.url,
            "--format",
            "json",
        ],
        env=gh_environment(home),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if completed.returncode:
        raise SystemExit(f"gh attestation verify failed: {completed.stderr}")
    results = json.loads(completed.stdout)
    lines = [f"gh {gh_version()}: {len(results)} attestation(s) verified"]
    for result in results:
        verified = result["verificationResult"]
        certificate = verified["signature"]["certificate"]
        lines.append(f"  signer:   {certificate['subjectAlternativeName']}")
        lines.append(f"  subjects: {[s['name'] for s in verified['statement']['subject']]}")
        times = [t["type"] for t in verified["verifiedTimestamps"]]
        lines.append(f"  verified timestamps: {times}")
    return "\n".join(lines)


def gh_version() -> str:
    completed = subprocess.run(
        [gh_binary(), "--version"], capture_output=True, text=True, check=False
    )
    return completed.stdout.split()[2] if completed.stdout else "?"


def _log(text: str) -> str:
    """A step's log as the runner shows it: masked values replaced by ***."""
    return "\n".join(
        "::add-mask::***" if line.startswith("::add-mask::") else line
        for line in text.rstrip().splitlines()
    )


def main() -> int:
    work = ROOT / ".demo"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    with (
        FakeIssuer() as issuer,
        FakeGitHubAPI() as github,
        start_timestamp_server(work / "tsa") as tsa,
        SigstoreInstance(issuer, ct_log=False, rekor=False, ca_org="GitHub, Inc.") as fulcio,
        start_registry("distribution", work / "distribution") as distribution,
        start_registry("olareg", work / "olareg") as olareg,
    ):
        config = fulcio.client_trust_config(tsa_url=tsa.url, tsa_chains=[tsa.chain_der])
        (work / "github-trust-config.json").write_text(json.dumps(config))
        root = write_trusted_root(work / "github-root.jsonl", config["trustedRoot"])

        def runner(name: str) -> ActionRunner:
            step = ActionRunner(
                work / name, repository="octo-org/octo-repo", github_token=github.token
            )
            step.event["repository"]["visibility"] = "private"
            step.env.update(
                {
                    "ACTIONS_ID_TOKEN_REQUEST_URL": issuer.request_url,
                    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": issuer.request_token,
                    "ATTEST_OIDC_ISSUER": issuer.url,
                    "ATTEST_GITHUB_TRUST_CONFIG": str(work / "github-trust-config.json"),
                    "GITHUB_API_URL": github.url,
                }
            )
            return step

        # 1. A file artifact, as `uses: attest` with `subject-path: dist/*`.
        files = runner("files-job")
        (files.workspace / "dist").mkdir()
        artifact = files.workspace / "dist" / "app-1.0.tar.gz"
        artifact.write_bytes(b"a sample build output\n")
        result = _step(
            files,
            {"subject-path": "dist/*"},
            "step 1: attest a file (entrypoint.py as the runner runs it)",
        )
        bundle = Path(result.outputs["bundle-path"])
        _show(
            "gh attestation verify (file)", _gh_verify(artifact, bundle, root, issuer, work / "gh")
        )

        # 2. One image in each registry, with push-to-registry, from the runner's artifacts list.
        images = [push_image(r.host, "demo/app") for r in (olareg, distribution)]
        step = runner("images-job")
        step.artifacts_list(images)
        result = _step(
            step, {"push-to-registry": "true"}, "step 2: attest two images with push-to-registry"
        )
        image_bundle = Path(result.outputs["bundle-path"])
        for image, registry in zip(images, (olareg, distribution), strict=True):
            oras = run_tool("oras", "discover", "--plain-http", image, home=work)
            _show(f"oras discover ({registry.kind})", oras.strip())
            _show(f"tags in {registry.kind}", tags(registry.host, "demo/app"))
            verified = run_attest(
                "verify",
                image,
                "--owner",
                "octo-org",
                "--cert-oidc-issuer",
                issuer.url,
                "--trusted-root",
                str(root),
            )
            if verified.code:
                print(verified.stderr, file=sys.stderr)
                return 1
            summary = json.loads(verified.stdout)
            _show(
                f"attest verify {image} (bundle found in the registry)",
                {k: summary[k] for k in ("verified", "bundle", "instance", "signedAt")},
            )
        _show(
            f"gh attestation verify oci://{images[1]}",
            _gh_verify(f"oci://{images[1]}", image_bundle, root, issuer, work / "gh"),
        )
        where = (
            f"file bundle:   {bundle}\nimage bundle:  {image_bundle}\n"
            f"trusted root:  {root}\nrunner dirs:   {work / 'files-job'}, {work / 'images-job'}\n"
            f"registries:    {olareg.kind} was at {olareg.host}, {distribution.kind} at "
            f"{distribution.host} (their data stays under {work})"
        )
    print(f"\n== where everything is (every service the demo started is stopped)\n{where}")
    print(
        "\nolareg serves the referrers API: a plain referrer, no sha256- tag. distribution "
        "does not: the fallback index under sha256-<digest>."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
