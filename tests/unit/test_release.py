"""The image and the workflows that build it: everything they pull is pinned."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
_COMMIT = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def _base_images() -> list[str]:
    """The images the Dockerfile's stages start from (not its own earlier stages)."""
    stages: set[str] = set()
    images = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if match := re.match(r"FROM (\S+)(?: AS (\S+))?$", line, re.I):
            if match[1] not in stages:
                images.append(match[1])
            if match[2]:
                stages.add(match[2])
    return images


def test_every_base_image_is_pinned_by_digest():
    images = _base_images()
    assert images, "the Dockerfile has no FROM"
    unpinned = [image for image in images if not _DIGEST.search(image)]
    assert not unpinned


def test_release_builds_the_dockerfile_as_committed():
    release = yaml.safe_load((WORKFLOWS / "release.yml").read_text())
    build = next(s for s in release["jobs"]["image"]["steps"] if s.get("id") == "build")
    assert "build-args" not in build["with"]


def test_every_workflow_step_is_pinned_by_commit():
    unpinned = []
    for workflow in sorted(WORKFLOWS.glob("*.yml")):
        for job in yaml.safe_load(workflow.read_text())["jobs"].values():
            for step in job["steps"]:
                uses = step.get("uses")
                if uses and uses != "./" and not _COMMIT.match(uses):
                    unpinned.append(f"{workflow.name}: {uses}")
    assert not unpinned


def test_release_workflow_can_point_action_yml_at_an_image(tmp_path):
    """The release workflow rewrites runs.image; run its script on a copy of action.yml."""
    release = yaml.safe_load((WORKFLOWS / "release.yml").read_text())
    step = next(s for s in release["jobs"]["image"]["steps"] if "action.yml" in s.get("name", ""))
    script = re.search(r"python3 - <<'PY'\n(.*?)\n *PY\n", step["run"], re.S)
    assert script is not None
    (tmp_path / "action.yml").write_text((ROOT / "action.yml").read_text())
    digest = "sha256:" + "5" * 64
    subprocess.run(
        [sys.executable, "-c", "\n".join(line.strip() for line in script.group(1).splitlines())],
        cwd=tmp_path,
        check=True,
        env={"IMAGE": "ghcr.io/o/attest", "DIGEST": digest},
    )
    rewritten = yaml.safe_load((tmp_path / "action.yml").read_text())
    assert rewritten["runs"] == {"using": "docker", "image": f"docker://ghcr.io/o/attest@{digest}"}
    assert rewritten["inputs"] == yaml.safe_load((ROOT / "action.yml").read_text())["inputs"]
