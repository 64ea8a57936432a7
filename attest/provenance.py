"""The SLSA provenance v1 predicate, built exactly as GitHub's generator builds it.

actions/toolkit ``packages/attest/src/provenance.ts``: every value comes from the verified
OIDC token's claims; only the server URL comes from the environment. The key order is
GitHub's, so the serialised statement matches theirs byte for byte.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
GITHUB_WORKFLOW_BUILD_TYPE = "https://actions.github.io/buildtypes/workflow/v1"


def provenance_predicate(claims: Mapping[str, Any], *, server_url: str) -> dict[str, Any]:
    """The predicate for a run described by verified OIDC ``claims``.

    In a reusable workflow ``job_workflow_ref`` names the called workflow (the builder)
    while ``workflow_ref`` names the caller (the workflow the user ran).
    """
    server = server_url.rstrip("/")
    repository = str(claims["repository"])
    ref = str(claims["ref"])
    # "<repository>/<path>@<ref>": drop the repository prefix, keep what precedes the "@".
    workflow_path = str(claims["workflow_ref"]).replace(f"{repository}/", "", 1).split("@")[0]
    return {
        "buildDefinition": {
            "buildType": GITHUB_WORKFLOW_BUILD_TYPE,
            "externalParameters": {
                "workflow": {
                    "ref": ref,
                    "repository": f"{server}/{repository}",
                    "path": workflow_path,
                }
            },
            "internalParameters": {
                "github": {
                    "event_name": claims["event_name"],
                    "repository_id": claims["repository_id"],
                    "repository_owner_id": claims["repository_owner_id"],
                    "runner_environment": claims["runner_environment"],
                }
            },
            "resolvedDependencies": [
                {
                    "uri": f"git+{server}/{repository}@{ref}",
                    "digest": {"gitCommit": claims["sha"]},
                }
            ],
        },
        "runDetails": {
            "builder": {"id": f"{server}/{claims['job_workflow_ref']}"},
            "metadata": {
                "invocationId": f"{server}/{repository}/actions/runs/{claims['run_id']}"
                f"/attempts/{claims['run_attempt']}"
            },
        },
    }
