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
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.github_api import FakeGitHubAPI  # noqa: E402
from tests.fakes.oidc_issuer import FakeIssuer  # noqa: E402
from tests.fakes.sigstore_instance import SigstoreInstance  # noqa: E402
from tests.integration.action_runner import ActionRunner  # noqa: E402
from tests.integration.helpers import (  # noqa: E402
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


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="attest-demo-") as scratch:
        work = Path(scratch)
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
            images = [push_image(r.host, "demo/app") for r in (olareg, distribution)]
            _show("images pushed", "\n".join(images))

            runner = ActionRunner(
                work / "runner", repository="octo-org/octo-repo", github_token=github.token
            )
            runner.event["repository"]["visibility"] = "private"
            listing = runner.temp / "artifacts-list.json"
            subjects = [
                {"name": i.rsplit("@", 1)[0], "digest": i.rsplit("@", 1)[1], "kind": "oci"}
                for i in images
            ]
            listing.write_text(json.dumps({"version": 1, "subjects": subjects}))
            runner.env.update(
                {
                    "ACTIONS_ID_TOKEN_REQUEST_URL": issuer.request_url,
                    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": issuer.request_token,
                    "ATTEST_OIDC_ISSUER": issuer.url,
                    "ATTEST_GITHUB_TRUST_CONFIG": str(work / "github-trust-config.json"),
                    "GITHUB_ARTIFACTS_LIST": str(listing),
                    "GITHUB_API_URL": github.url,
                }
            )
            result = runner.run({"push-to-registry": "true"})
            _show("entrypoint.py (the container action) printed", result.stdout.rstrip())
            if result.code:
                print(result.stderr, file=sys.stderr)
                return 1
            _show("outputs", result.outputs)
            _show("job summary", result.summary.rstrip())
            for image, registry in zip(images, (olareg, distribution), strict=True):
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
                _show(f"attest verify {image}", json.loads(verified.stdout))
                oras = run_tool("oras", "discover", "--plain-http", image, home=work)
                _show(f"oras discover ({registry.kind})", oras.strip())
                _show(f"tags in {registry.kind}", tags(registry.host, "demo/app"))
    print(
        "\nolareg serves the referrers API: a plain referrer, no sha256- tag. distribution "
        "does not: the fallback index under sha256-<digest>."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
