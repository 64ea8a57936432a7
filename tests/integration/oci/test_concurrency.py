"""Many writers, one subject, a registry that ignores If-Match: no referrer may be lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from attest.oci.descriptor import referrers_tag

from ..helpers import distinct_bundles, get_json, push_image, unique_repository

WRITERS = 32
# More trials for a closing note: ATTEST_RACE_TRIALS=10.
TRIALS = int(os.environ.get("ATTEST_RACE_TRIALS", "2"))

# Each writer imports everything first, then waits for the start signal, so all 32
# read-modify-write the fallback index at the same moment.
_WRITER = """
import pathlib, sys, time
from attest import cli
go = pathlib.Path(sys.argv[1])
while not go.exists():
    time.sleep(0.005)
sys.exit(cli.main(sys.argv[2:], environ={}))
"""


def test_concurrent_writers_lose_nothing_on_a_registry_that_ignores_if_match(registry_of, tmp_path):
    registry = registry_of("distribution")
    bundles = distinct_bundles(tmp_path, WRITERS)
    for trial in range(TRIALS):
        repository = unique_repository("race")
        image = push_image(registry.host, repository)
        go = tmp_path / f"go-{trial}"
        writers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _WRITER,
                    str(go),
                    "attach",
                    image,
                    "--bundle",
                    str(b),
                    "--referrers-mode",
                    "tag",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for b in bundles
        ]
        time.sleep(1.0)  # let every writer finish importing
        go.touch()
        outcomes = [writer.communicate(timeout=180) for writer in writers]
        assert [w.returncode for w in writers] == [0] * WRITERS, [e for _, e in outcomes if e]
        attached = {json.loads(out)["manifest_digest"] for out, _ in outcomes}
        assert len(attached) == WRITERS
        index = get_json(registry.host, repository, referrers_tag(image.rsplit("@", 1)[1]))
        listed = [m["digest"] for m in index["manifests"]]
        assert sorted(listed) == sorted(attached), (
            f"trial {trial}: {len(attached - set(listed))} lost"
        )
