"""make demo: the registry flow end to end against local registries.

Starts Debian's distribution 2.8.2 (no referrers API) and olareg (referrers API), pushes a
small image to each, attaches a real GitHub-made provenance bundle with ``attest attach``,
lists it with ``attest referrers`` and with oras, and shows which registry got a
``sha256-<digest>`` fallback tag.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.helpers import (  # noqa: E402
    PROVENANCE,
    push_image,
    run_attest,
    run_tool,
    tags,
)
from tests.integration.servers import start_registry  # noqa: E402


def _show(title: str, value: object) -> None:
    print(f"\n== {title}")
    print(value if isinstance(value, str) else json.dumps(value, indent=2))


def main() -> int:
    if not PROVENANCE.is_file():
        print(f"demo bundle missing: {PROVENANCE}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="attest-demo-") as scratch:
        work = Path(scratch)
        for kind in ("distribution", "olareg"):
            with start_registry(kind, work / kind) as registry:
                image = push_image(registry.host, "demo/app")
                print(f"\n== {kind}: pushed {image}")
                result = run_attest("attach", image, "--bundle", PROVENANCE)
                if result.code:
                    print(result.stderr, file=sys.stderr)
                    return 1
                _show(f"{kind}: attest attach", json.loads(result.stdout))
                _show(f"{kind}: attest referrers", run_attest("referrers", image).json())
                oras = run_tool("oras", "discover", "--plain-http", image, home=work)
                _show(f"{kind}: oras discover", oras.strip())
                _show(f"{kind}: tags in demo/app", tags(registry.host, "demo/app"))
    print(
        "\nThe registry with the referrers API got a plain referrer and no sha256- tag; "
        "the one without it got the fallback index."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
