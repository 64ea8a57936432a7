"""Launcher for the real RFC 3161 timestamp authority (sigstore/timestamp-authority).

``timestamp-server`` (installed by ``scripts/install-tools.sh``) runs with its in-memory signer,
which makes a fresh ECDSA chain (root, intermediate, leaf with critical EKU timeStamping) at
every start::

    with start_timestamp_server(tmp_path) as tsa:
        requests.post(tsa.url, data=der_request,
                      headers={"Content-Type": "application/timestamp-query"})
        instance.trusted_root(tsa_chains=[tsa.chain_der])

The server always opens its Prometheus endpoint on the fixed port ``:2112`` (v2.1.3 has no
flag to move or disable it) and exits when that port is taken. Launches therefore take an
exclusive lock file, so concurrent test runs on one machine wait for each other instead of
failing; a foreign process holding 2112 is reported as such. A missing binary raises
``RuntimeError`` (never a skip).
"""

from __future__ import annotations

import fcntl
import http.client
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .servers import free_port, launch_on_free_port, stop_process, tool

_START_TIMEOUT = 20.0
_STOP_TIMEOUT = 5.0
#: How long a launch waits for another run's timestamp-server to release port 2112.
_LOCK_TIMEOUT = 300.0
METRICS_PORT = 2112
CERTCHAIN_PATH = "/api/v1/timestamp/certchain"
TIMESTAMP_PATH = "/api/v1/timestamp"


@dataclass
class TimestampServer:
    host: str
    process: subprocess.Popen[bytes]
    #: The PEM certificates of ``GET /api/v1/timestamp/certchain``, leaf first.
    chain_pem: list[bytes]
    stderr_path: Path = field(repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}"

    @property
    def url(self) -> str:
        """The RFC 3161 POST URL (what a signing config's ``tsaUrls`` holds)."""
        return f"{self.base_url}{TIMESTAMP_PATH}"

    @property
    def chain_der(self) -> list[bytes]:
        """The certificate chain as DER, leaf first (for a trusted root)."""
        return [
            x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
            for pem in self.chain_pem
        ]

    @property
    def chain(self) -> list[x509.Certificate]:
        return [x509.load_pem_x509_certificate(pem) for pem in self.chain_pem]

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""


def split_pem(text: bytes) -> list[bytes]:
    """The PEM blocks of ``text``, each ending with its END line and a newline."""
    blocks: list[bytes] = []
    current: list[bytes] = []
    for line in text.splitlines():
        if line.startswith(b"-----BEGIN "):
            current = [line]
        elif current:
            current.append(line)
            if line.startswith(b"-----END "):
                blocks.append(b"\n".join(current) + b"\n")
                current = []
    return blocks


def _get(host: str, path: str) -> tuple[int, bytes] | None:
    conn = http.client.HTTPConnection(host, timeout=2)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    except OSError:
        return None
    finally:
        conn.close()


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return True
        return False


@contextmanager
def _metrics_port_lock() -> Iterator[None]:
    """Hold the machine-wide lock for timestamp-server's fixed metrics port."""
    path = Path(tempfile.gettempdir()) / f"attest-timestamp-server-{METRICS_PORT}.lock"
    with path.open("a") as handle:
        deadline = time.monotonic() + _LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"another timestamp-server held {path} for {_LOCK_TIMEOUT:.0f}s"
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _launch(binary: str, workdir: Path) -> TimestampServer:
    port = free_port()
    config = workdir / "timestamp-server.yaml"
    config.write_text("{}\n")  # not $HOME/.timestamp-server.yaml, whatever it holds
    cmd = [
        binary,
        "serve",
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--scheme",
        "http",
        "--timestamp-signer",
        "memory",
        "--disable-ntp-monitoring",
        "--log-type",
        "prod",
    ]
    stderr_path = workdir / "timestamp-server.stderr.log"
    with stderr_path.open("ab") as stderr:
        process = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr, cwd=workdir
        )
    server = TimestampServer(f"127.0.0.1:{port}", process, [], stderr_path)
    deadline = time.monotonic() + _START_TIMEOUT
    try:
        while True:
            if process.poll() is not None:
                hint = ""
                if _port_in_use(METRICS_PORT):
                    hint = f" (port {METRICS_PORT}, its fixed metrics port, is taken)"
                raise RuntimeError(
                    f"timestamp-server exited with status {process.returncode}{hint}; "
                    f"stderr:\n{server.stderr()}"
                )
            answer = _get(server.host, CERTCHAIN_PATH)
            if answer is not None and answer[0] == 200:
                server.chain_pem = split_pem(answer[1])
                if len(server.chain_pem) < 2:
                    raise RuntimeError(f"unexpected certificate chain: {answer[1]!r}")
                return server
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"timestamp-server did not answer GET {CERTCHAIN_PATH} on {server.host} "
                    f"within {_START_TIMEOUT:.0f}s; stderr:\n{server.stderr()}"
                )
            time.sleep(0.05)
    except BaseException:
        stop_process(process)
        raise


@contextmanager
def start_timestamp_server(workdir: Path) -> Iterator[TimestampServer]:
    """Run ``timestamp-server`` on 127.0.0.1 with its in-memory signer until the context exits.

    Raises RuntimeError if the binary is missing or it does not serve its certificate chain
    within 20 seconds.
    """
    binary = tool("timestamp-server")
    workdir.mkdir(parents=True, exist_ok=True)
    with _metrics_port_lock():
        server = launch_on_free_port(lambda: _launch(binary, workdir))
        try:
            yield server
        finally:
            stop_process(server.process)
