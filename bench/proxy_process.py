"""The tests' pass-through proxy (QuirkProxy) in a process of its own.

In the benchmark's process its threads would share the interpreter with attest's client and
not with Node, and every request through it would cost attest alone. Run by
:class:`ProxyProcess`; on each line read from stdin it prints how many requests it has
forwarded so far.

    python bench/proxy_process.py UPSTREAM_URL ROUND_TRIP_SECONDS
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Self

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.loopback import Service  # noqa: E402


class ProxyProcess(Service):
    """A counting (and optionally delaying) proxy in front of ``upstream``, in a subprocess."""

    def __init__(self, upstream: str, *, round_trip: float = 0.0) -> None:
        self._command = [sys.executable, __file__, upstream, str(round_trip)]
        self.host = ""

    def start(self) -> Self:
        self._process = subprocess.Popen(
            self._command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self.host = self._answer()
        return self

    def stop(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=30)

    def requests(self) -> int:
        """Requests forwarded so far."""
        assert self._process.stdin is not None
        self._process.stdin.write("\n")
        self._process.stdin.flush()
        return int(self._answer())

    def _answer(self) -> str:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the proxy process exited ({self._process.wait()})")
        return line.strip()


def _serve(upstream: str, round_trip: float) -> None:
    from tests.integration.quirk_proxy import QuirkProxy, Quirks

    with QuirkProxy(upstream, Quirks(round_trip=round_trip)) as proxy:
        print(proxy.host, flush=True)
        for _ in sys.stdin:
            print(len(proxy.log), flush=True)


if __name__ == "__main__":
    _serve(sys.argv[1], float(sys.argv[2]))
