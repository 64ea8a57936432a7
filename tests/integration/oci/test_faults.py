"""A registry that fails one request in five: every attach still succeeds, and the registry is
left consistent."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from attest.oci.artifact import bundle_artifact
from attest.oci.client import Registries
from attest.oci.descriptor import referrers_tag
from attest.oci.reference import Reference
from attest.oci.referrers import Referrers, ReferrersMode

from ..helpers import (
    distinct_bundles,
    get_json,
    manifest_exists,
    push_image,
    through,
    unique_repository,
)
from ..quirk_proxy import RESET, QuirkProxy, Quirks

ATTACHES = 100


class _Flaky:
    """503, 429 with Retry-After, connection resets and slow answers, 5 % each."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.injected: dict[str, int] = {"503": 0, "429": 0, "reset": 0, "slow": 0}

    def __call__(self, method: str, path: str) -> tuple[int, dict[str, str], bytes] | None:
        if not path.startswith("/v2/"):
            return None
        with self._lock:
            draw = self._random.random()
        if draw < 0.05:
            self.injected["503"] += 1
            return 503, {"Content-Type": "text/plain"}, b"service unavailable"
        if draw < 0.10:
            self.injected["429"] += 1
            return 429, {"Retry-After": "0"}, b"too many requests"
        if draw < 0.15:
            self.injected["reset"] += 1
            return RESET, {}, b""
        if draw < 0.20:
            self.injected["slow"] += 1
            time.sleep(0.2)
        return None


def test_a_hundred_attaches_through_twenty_percent_faults(registry_of, tmp_path):
    registry = registry_of("distribution")
    repository = unique_repository("faults")
    images = [push_image(registry.host, repository, seed=str(n)) for n in range(10)]
    bundles = [path.read_bytes() for path in distinct_bundles(tmp_path, ATTACHES // len(images))]
    flaky = _Flaky(seed=int(time.time()))
    with QuirkProxy(registry.url, Quirks(faults=flaky)) as proxy, Registries() as registries:
        referrers = Referrers()

        def attach(job: tuple[str, bytes]) -> str:
            image, bundle = job
            reference = Reference.parse(through(proxy, image))
            return referrers.attach(
                registries.client(reference.api_host),
                reference,
                lambda subject: bundle_artifact(bundle, subject),
                mode=ReferrersMode.TAG,
            ).manifest_digest

        jobs = [(image, bundle) for image in images for bundle in bundles]
        with ThreadPoolExecutor(max_workers=8) as pool:
            digests = list(pool.map(attach, jobs))
    assert len(digests) == ATTACHES
    assert sum(flaky.injected.values()) > ATTACHES  # the faults really happened
    for image in images:
        index = get_json(registry.host, repository, referrers_tag(image.rsplit("@", 1)[1]))
        listed = [entry["digest"] for entry in index["manifests"]]
        assert len(listed) == len(set(listed)) == len(bundles), "no loss, no duplicate"
        for digest in listed:
            # Every entry resolves, and every manifest's blobs exist.
            manifest = get_json(registry.host, repository, digest)
            for blob in [manifest["config"], *manifest["layers"]]:
                assert manifest_exists_blob(registry.host, repository, blob["digest"])
    assert not manifest_exists(registry.host, repository, "sha256:" + "0" * 64)


def manifest_exists_blob(host: str, repository: str, digest: str) -> bool:
    import requests

    return requests.head(f"http://{host}/v2/{repository}/blobs/{digest}", timeout=10).ok
