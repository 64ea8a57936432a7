"""Launchers for real OCI registries, run as subprocesses on loopback for integration tests.

Kinds:

* ``distribution``: Debian's ``docker-registry`` (CNCF distribution 2.8): no referrers API, no
  ``OCI-Subject`` header; an unknown route such as ``/referrers/`` answers 404 text/plain.
  Optional htpasswd (bcrypt) basic auth.
* ``olareg``: olareg with an in-memory store: referrers API and ``OCI-Subject`` header;
  optionally over TLS (``tls=``, a certificate from :func:`write_tls_files`).
* ``olareg-noapi``: olareg with the referrers API disabled (no header either).
* ``ggcr-referrers``: ``tests/registries/referrers-no-header`` (go-containerregistry's registry):
  referrers API but never an ``OCI-Subject`` header.

Binaries come from ``scripts/install-tools.sh`` (``$ATTEST_TOOLS_DIR/bin``, default
``~/.cache/attest-tools/bin``) or ``PATH``. A missing tool raises ``RuntimeError`` so that tests
fail instead of being skipped.
"""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import json
import os
import select
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KINDS = ("distribution", "olareg", "olareg-noapi", "ggcr-referrers")

_START_TIMEOUT = 20.0
_STOP_TIMEOUT = 5.0
# The registry's HTTP secret only signs upload state; a fixed value keeps restarts compatible.
_DISTRIBUTION_SECRET = "attest-integration-tests-not-a-secret"

_T = TypeVar("_T")


class TlsFiles(NamedTuple):
    ca: Path
    certificate: Path
    key: Path


def write_tls_files(directory: Path, addresses: tuple[str, ...]) -> TlsFiles:
    """A throwaway CA and a server certificate for ``addresses`` (IP SANs), as PEM files."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attest test CA")])

    def certificate(
        subject: x509.Name, public: ec.EllipticCurvePublicKey
    ) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
        )

    ca = (
        certificate(ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    sans = [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    leaf = (
        certificate(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "registry")]), key.public_key()
        )
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.pem", directory / "registry.pem", directory / "registry.key")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.certificate.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


@dataclass
class Registry:
    kind: str
    host: str
    process: subprocess.Popen[bytes]
    stderr_path: Path | None = field(default=None, repr=False)
    tls: TlsFiles | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    def stderr(self) -> str:
        """What the registry process wrote to stderr so far (for failure messages)."""
        if self.stderr_path is None or not self.stderr_path.exists():
            return ""
        return self.stderr_path.read_text(errors="replace")


def tools_bin() -> Path:
    root = os.environ.get("ATTEST_TOOLS_DIR") or str(Path.home() / ".cache" / "attest-tools")
    return Path(root) / "bin"


def tool(name: str) -> str:
    """Absolute path of ``name`` from :func:`tools_bin` or ``PATH``; RuntimeError if missing."""
    candidate = tools_bin() / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which(name)
    if found:
        return os.path.abspath(found)
    raise RuntimeError(
        f"required tool {name!r} not found in {tools_bin()} or on PATH; "
        "run scripts/install-tools.sh (Go tools) or install the Debian packages "
        "docker-registry and apache2-utils"
    )


def launch_on_free_port(launch: Callable[[], _T], attempts: int = 3) -> _T:
    """Start a server on a port from free_port(), again if another took it meanwhile."""
    for attempt in range(attempts):
        try:
            return launch()
        except RuntimeError as exc:
            if "address already in use" not in str(exc) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_distribution_config(workdir: Path, port: int, htpasswd: tuple[str, str] | None) -> Path:
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    # JSON string literals are valid YAML scalars and quote paths safely.
    q = json.dumps
    lines = [
        "version: 0.1",
        "log:",
        "  level: error",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {q(str(data))}",
        "  delete:",
        "    enabled: true",
        "http:",
        f"  addr: {q(f'127.0.0.1:{port}')}",
        f"  secret: {q(_DISTRIBUTION_SECRET)}",
    ]
    if htpasswd is not None:
        user, password = htpasswd
        result = subprocess.run(
            [tool("htpasswd"), "-Bbn", user, password],
            check=True,
            capture_output=True,
        )
        htpasswd_file = workdir / "htpasswd"
        htpasswd_file.write_bytes(result.stdout)
        lines += [
            "auth:",
            "  htpasswd:",
            "    realm: basic-realm",
            f"    path: {q(str(htpasswd_file))}",
        ]
    cfg = workdir / "config.yml"
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


def _command(
    kind: str,
    workdir: Path,
    port: int,
    htpasswd: tuple[str, str] | None,
    tls: TlsFiles | None,
) -> list[str]:
    if tls is not None and kind != "olareg":
        raise ValueError(f"tls is only supported for olareg, not {kind}")
    if kind == "distribution":
        cfg = _write_distribution_config(workdir, port, htpasswd)
        return [tool("docker-registry"), "serve", str(cfg)]
    if htpasswd is not None:
        raise ValueError(f"htpasswd is only supported for the distribution registry, not {kind}")
    if kind in ("olareg", "olareg-noapi"):
        # --dir: an empty directory, so the memory store does not import whatever OCI layout
        # happens to be in the current directory (the default is ".").
        store = workdir / "olareg"
        store.mkdir(parents=True, exist_ok=True)
        cmd = [
            tool("olareg"),
            "serve",
            "--addr",
            "127.0.0.1",
            "--port",
            str(port),
            "--store-type",
            "mem",
            "--dir",
            str(store),
            "--api-delete",
        ]
        if kind == "olareg-noapi":
            cmd.append("--api-referrer=false")
        if tls is not None:
            cmd += ["--tls-cert", str(tls.certificate), "--tls-key", str(tls.key)]
        return cmd
    if kind == "ggcr-referrers":
        return [tool("referrers-no-header"), "-port", str(port)]
    raise ValueError(f"unknown registry kind {kind!r}; expected one of {', '.join(KINDS)}")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate, wait, kill if it will not go."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


def _read_listen_line(process: subprocess.Popen[bytes], deadline: float) -> str:
    """Read the ``listening on HOST:PORT`` line the Go program prints once it listens."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    buf = b""
    while b"\n" not in buf:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no 'listening on' line")
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            raise EOFError("process closed stdout before printing 'listening on'")
        buf += chunk
    line = buf.split(b"\n", 1)[0].decode(errors="replace").strip()
    prefix = "listening on "
    if not line.startswith(prefix):
        raise ValueError(f"unexpected first line {line!r}")
    return line[len(prefix) :]


def _v2_answers(host: str, tls: TlsFiles | None) -> bool:
    conn = (
        http.client.HTTPSConnection(
            host, timeout=2, context=ssl.create_default_context(cafile=tls.ca)
        )
        if tls
        else http.client.HTTPConnection(host, timeout=2)
    )
    try:
        conn.request("GET", "/v2/")
        status = conn.getresponse().status
    except OSError:
        return False
    finally:
        conn.close()
    return status in (200, 401)


def _wait_ready(registry: Registry, deadline: float) -> None:
    while time.monotonic() < deadline:
        if registry.process.poll() is not None:
            raise RuntimeError(
                f"{registry.kind} registry exited with status {registry.process.returncode} "
                f"before answering GET /v2/; stderr:\n{registry.stderr()}"
            )
        if _v2_answers(registry.host, registry.tls):
            return
        time.sleep(0.05)
    raise RuntimeError(
        f"{registry.kind} registry did not answer GET /v2/ on {registry.host} within "
        f"{_START_TIMEOUT:.0f}s; stderr:\n{registry.stderr()}"
    )


def _launch(
    kind: str, workdir: Path, htpasswd: tuple[str, str] | None, tls: TlsFiles | None
) -> Registry:
    reports_port = kind == "ggcr-referrers"
    port = 0 if reports_port else free_port()
    cmd = _command(kind, workdir, port, htpasswd, tls)
    stderr_path = workdir / f"{kind}.stderr.log"
    deadline = time.monotonic() + _START_TIMEOUT
    with stderr_path.open("ab") as stderr:
        process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if reports_port else subprocess.DEVNULL,
            stderr=stderr,
            cwd=workdir,
        )
    registry = Registry(kind, f"127.0.0.1:{port}", process, stderr_path, tls)
    try:
        if reports_port:
            try:
                registry.host = _read_listen_line(process, deadline)
            except (OSError, TimeoutError, ValueError) as exc:
                raise RuntimeError(
                    f"{kind} registry did not report its address: {exc}; "
                    f"stderr:\n{registry.stderr()}"
                ) from exc
        _wait_ready(registry, deadline)
    except BaseException:
        stop_process(process)
        raise
    return registry


@contextmanager
def start_registry(
    kind: str,
    workdir: Path,
    *,
    htpasswd: tuple[str, str] | None = None,
    tls: TlsFiles | None = None,
) -> Iterator[Registry]:
    """Start a registry of ``kind`` on 127.0.0.1 and stop it when the context exits.

    ``htpasswd`` (distribution only) enables basic auth for that user and password; ``tls``
    (olareg only) serves HTTPS with that certificate.
    Raises RuntimeError (with the process's stderr) if it does not answer ``GET /v2/`` with
    200 or 401 within 20 seconds.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    registry = launch_on_free_port(lambda: _launch(kind, workdir, htpasswd, tls))
    try:
        yield registry
    finally:
        stop_process(registry.process)
