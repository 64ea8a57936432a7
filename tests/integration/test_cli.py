"""The installed program as users run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DIGEST = "sha256:" + "a" * 64


def test_unreachable_registry_is_one_line_without_traceback(tmp_path: Path):
    bundle = tmp_path / "b.json"
    bundle.write_text("{}")
    # Port 9 on loopback: nothing listens; the real program, as users run it.
    completed = subprocess.run(
        [sys.executable, "-m", "attest", "referrers", f"127.0.0.1:9/app@{DIGEST}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    assert completed.stderr.count("\n") == 1
    assert completed.stderr.startswith(f"error: HEAD http://127.0.0.1:9/v2/app/manifests/{DIGEST}:")
    assert "cannot reach the registry" in completed.stderr
