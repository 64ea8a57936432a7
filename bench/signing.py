"""Sign and verify times on the local Sigstore instance, both bundle shapes.

python bench/signing.py [--runs N]

Prints medians and spreads of attest.signing.sign (key, Fulcio, TSA and/or Rekor round
trips and the self-verification) and verify_bundle, in process, on loopback.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attest.signing import instance_from_trust_config, sign, verify_bundle  # noqa: E402
from attest.statement import build_statement  # noqa: E402
from attest.subjects import Subject  # noqa: E402
from tests.fakes.oidc_issuer import FakeIssuer  # noqa: E402
from tests.fakes.sigstore_instance import SigstoreInstance  # noqa: E402
from tests.integration.tsa import start_timestamp_server  # noqa: E402


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    return (
        f"median {statistics.median(ordered) * 1000:6.1f} ms  "
        f"min {ordered[0] * 1000:6.1f}  max {ordered[-1] * 1000:6.1f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    statement = build_statement(
        [Subject("app.tar.gz", {"sha256": "ab" * 32})], "https://slsa.dev/provenance/v1", {}
    ).data
    shapes = {
        "GitHub shape (Fulcio + TSA, no log)": (
            {"ct_log": False, "rekor": False, "ca_org": "GitHub, Inc."},
            True,
        ),
        "public-good shape (Fulcio + CT + Rekor v1 + TSA)": (
            {"ct_log": True, "rekor": True, "ca_org": "sigstore.dev"},
            True,
        ),
    }
    with (
        tempfile.TemporaryDirectory() as scratch,
        FakeIssuer() as issuer,
        start_timestamp_server(Path(scratch)) as tsa,
    ):
        for title, (options, with_tsa) in shapes.items():
            with SigstoreInstance(issuer, **options) as local:
                config = local.client_trust_config(
                    tsa_url=tsa.url if with_tsa else None,
                    tsa_chains=[tsa.chain_der] if with_tsa else [],
                )
                instance = instance_from_trust_config(json.dumps(config).encode(), source="bench")
                signing, verifying = [], []
                for _ in range(runs):
                    token = issuer.mint("sigstore")
                    start = time.perf_counter()
                    signed = sign(statement, instance=instance, identity_token=token)
                    signing.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    verify_bundle(signed.bundle, trusted_roots=instance.trusted_roots)
                    verifying.append(time.perf_counter() - start)
                print(f"{title}: {runs} runs, bundle {len(signed.bundle)} bytes")
                print(f"  sign (incl. self-verification): {_ms(signing)}")
                print(f"  verify_bundle:                  {_ms(verifying)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
