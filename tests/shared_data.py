"""Where the shared, read-only test data lives (``shared/testdata`` beside the checkout).

A missing directory is a test failure, never a skip.
"""

from __future__ import annotations

import os
from pathlib import Path


def github_bundles() -> Path:
    """The directory of real bundles GitHub produced."""
    candidates = []
    if os.environ.get("ATTEST_SHARED_DIR"):
        candidates.append(Path(os.environ["ATTEST_SHARED_DIR"]))
    candidates += [parent / "shared" for parent in Path(__file__).resolve().parents]
    # The workplace's fixed location, for clones made elsewhere (CI, mktemp).
    candidates.append(Path("/work/shared"))
    for candidate in candidates:
        bundles = candidate / "testdata" / "github-bundles"
        if bundles.is_dir():
            return bundles
    raise RuntimeError(
        "shared/testdata/github-bundles not found beside the checkout or in /work/shared; "
        "set ATTEST_SHARED_DIR to the shared directory"
    )
