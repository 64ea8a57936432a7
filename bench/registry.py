"""Registry round trips and wall time per attach: attest vs GitHub's @sigstore/oci 0.7.2 and
`oras attach`, side by side on the same local registries, plus a 100-attach batch.

    python bench/registry.py [--batch 100] [--repeat N] [--registry KIND] [--round-trip-ms MS]
    (make bench runs every bench script)

Needs the Go tools (scripts/install-tools.sh), Debian's docker-registry, and
`npm install` in bench/node. Requests are counted by a pass-through proxy in front of each
registry, in a process of its own (bench/proxy_process.py). @sigstore/oci keeps nothing
between calls, so each of its attaches is "cold"; attest's "warm" attach reuses one client
per registry, as a run with several images does.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from proxy_process import ProxyProcess  # noqa: E402

from attest.oci.artifact import bundle_artifact  # noqa: E402
from attest.oci.client import Registries  # noqa: E402
from attest.oci.reference import Reference  # noqa: E402
from attest.oci.referrers import Referrers  # noqa: E402
from tests.integration.helpers import distinct_bundles, push_image, through  # noqa: E402
from tests.integration.servers import start_registry, tool  # noqa: E402

NODE = ROOT / "bench" / "node"
BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
_REGISTRIES = (
    ("olareg", "API registry (olareg)"),
    ("distribution", "no-API registry (distribution 2.8.2)"),
    ("ggcr-referrers", "API registry without OCI-Subject (go-containerregistry)"),
)


def _measure(proxy: ProxyProcess, action: Callable[[], object]) -> tuple[int, float]:
    mark = proxy.requests()
    started = time.perf_counter()
    action()
    return proxy.requests() - mark, time.perf_counter() - started


def _ours(registries: Registries, referrers: Referrers, image: str, bundle: Path) -> None:
    reference = Reference.parse(image)
    data = bundle.read_bytes()
    referrers.attach(
        registries.client(reference.api_host), reference, lambda s: bundle_artifact(data, s)
    )


def _ours_batch(
    registries: Registries, referrers: Referrers, image: str, bundles: list[bytes]
) -> None:
    """``attest attach IMAGE --bundle …``: every bundle in one batch."""
    reference = Reference.parse(image)
    referrers.attach_all(
        registries.client(reference.api_host),
        reference,
        [lambda s, d=d: bundle_artifact(d, s) for d in bundles],
    )


def _node(image: str, bundles: list[Path]) -> float:
    name, digest = image.rsplit("@", 1)
    completed = subprocess.run(
        ["node", str(NODE / "attach.mjs"), name, digest, *map(str, bundles)],
        capture_output=True,
        text=True,
        check=True,
        cwd=NODE,
    )
    return float(json.loads(completed.stdout.splitlines()[-1])["seconds"])


def _oras(image: str, bundle: Path, home: Path) -> None:
    subprocess.run(
        [
            tool("oras"),
            "attach",
            "--plain-http",
            "--artifact-type",
            BUNDLE_TYPE,
            image,
            f"{bundle.name}:{BUNDLE_TYPE}",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=bundle.parent,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
    )


def _batch_pair(
    registry_host: str,
    name: str,
    datas: list[bytes],
    bundles: list[Path],
    proxy: ProxyProcess | None = None,
) -> tuple[float, float]:
    """Seconds for one ``attest attach --bundle ...`` batch and for the anchor's loop."""
    ours_image, anchor_image = (push_image(registry_host, f"{name}-{side}") for side in "ab")
    if proxy is not None:
        ours_image, anchor_image = through(proxy, ours_image), through(proxy, anchor_image)
    with Registries() as registries:
        started = time.perf_counter()
        _ours_batch(registries, Referrers(), ours_image, datas)
        ours = time.perf_counter() - started
    return ours, _node(anchor_image, bundles)


def _print_pairs(title: str, runs: list[tuple[float, float]]) -> None:
    ours = statistics.median(r[0] for r in runs)
    anchor = statistics.median(r[1] for r in runs)
    each = ", ".join(f"{a / o:.2f}x" for o, a in runs)
    print(
        f"  {title}: attest batch {ours:5.2f} s, @sigstore/oci {anchor:5.2f} s "
        f"(median of {len(runs)}), ratio {anchor / ours:.2f}x (each run: {each})"
    )


def _one_registry(
    label: str,
    proxy: ProxyProcess,
    images: list[str],
    registry_host: str,
    bundles: list[Path],
    work: Path,
    batch: int,
    repeat: int,
    round_trip: float,
) -> tuple[object, ...]:
    with Registries() as registries:
        referrers = Referrers()
        cold = _measure(proxy, lambda: _ours(registries, referrers, images[0], bundles[0]))
        warm = _measure(proxy, lambda: _ours(registries, referrers, images[0], bundles[1]))
    anchor = _measure(proxy, lambda: _node(images[1], [bundles[2]]))
    anchor_again = _measure(proxy, lambda: _node(images[1], [bundles[3]]))
    oras = _measure(proxy, lambda: _oras(images[2], bundles[4], work))

    many = bundles[8 : 8 + batch]
    with Registries() as registries:
        referrers = Referrers()
        ours_batch = _measure(
            proxy, lambda: [_ours(registries, referrers, images[3], b) for b in many]
        )
    datas = [b.read_bytes() for b in many]
    with Registries() as registries:
        referrers = Referrers()
        batch_run = _measure(proxy, lambda: _ours_batch(registries, referrers, images[3], datas))
    anchor_seconds: list[float] = []
    anchor_batch = _measure(proxy, lambda: anchor_seconds.append(_node(images[4], many)))
    print(f"\n{label}: {batch} attaches to one image, one process each side")
    print("  through the counting proxy:")
    print(
        f"  attest        {ours_batch[1]:6.2f} s  {ours_batch[0] / batch:5.1f} requests/attach"
        f"  {batch / ours_batch[1]:6.1f} attaches/s"
    )
    print(
        f"  @sigstore/oci {anchor_seconds[0]:6.2f} s  {anchor_batch[0] / batch:5.1f} "
        f"requests/attach  {batch / anchor_seconds[0]:6.1f} attaches/s"
    )
    print(
        f"  attest batch  {batch_run[1]:6.2f} s  {batch_run[0] / batch:5.1f} requests/attach"
        f"  {batch / batch_run[1]:6.1f} attaches/s  (attach --bundle x{batch})"
    )
    print(f"  throughput ratio attest/@sigstore/oci: {anchor_seconds[0] / ours_batch[1]:.2f}x")
    ratio = anchor_seconds[0] / batch_run[1]
    print(f"  throughput ratio attest batch/@sigstore/oci: {ratio:.2f}x")
    # The counting proxy costs every request the same, and the anchor makes more: time both
    # again straight against the registry, several times in turn, and at a hosted registry's
    # distance (every request delayed by a round trip).
    direct_runs = [
        _batch_pair(registry_host, f"bench/direct-{label[:3].lower()}{n}", datas, many)
        for n in range(repeat)
    ]
    _print_pairs("without the counting proxy", direct_runs)
    if round_trip:
        with ProxyProcess(f"http://{registry_host}", round_trip=round_trip) as far:
            far_run = _batch_pair(registry_host, f"bench/far-{label[:3].lower()}", datas, many, far)
        _print_pairs(f"{round_trip * 1000:.0f} ms round trip per request", [far_run])

    return (label, cold, warm, anchor, anchor_again, oras)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5, help="batch runs without the proxy")
    parser.add_argument(
        "--round-trip-ms", type=float, default=10.0, help="0 skips the distant-registry run"
    )
    parser.add_argument(
        "--registry",
        action="append",
        choices=[kind for kind, _ in _REGISTRIES],
        help="only these registries (repeatable; default: all)",
    )
    args = parser.parse_args()
    batch = args.batch
    if not (NODE / "node_modules" / "@sigstore" / "oci").is_dir():
        subprocess.run(["npm", "install", "--silent"], cwd=NODE, check=True)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        bundles = distinct_bundles(work, batch + 8)
        for kind, label in _REGISTRIES:
            if args.registry and kind not in args.registry:
                continue
            with (
                start_registry(kind, work / kind) as registry,
                ProxyProcess(registry.url) as proxy,
            ):
                direct = [push_image(registry.host, f"bench/{kind}{n}") for n in range(5)]
                images = [through(proxy, image) for image in direct]
                rows.append(
                    _one_registry(
                        label,
                        proxy,
                        images,
                        registry.host,
                        bundles,
                        work,
                        batch,
                        args.repeat,
                        args.round_trip_ms / 1000,
                    )
                )
    print("\nrequests (wall ms) per attach")
    print("registry | attest cold | attest warm | @sigstore/oci | @sigstore/oci 2nd | oras attach")
    for label, *measured in rows:
        cells = [f"{n} ({s * 1000:.0f})" for n, s in measured]  # type: ignore[misc]
        print(" | ".join([str(label), *cells]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
