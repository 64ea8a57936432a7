"""The in-toto statement we sign, and the SBOM and custom predicates.

actions/toolkit ``packages/attest/src/intoto.ts``: ``{_type, subject, predicateType,
predicate}`` in that order. The statement is serialised once; those bytes are signed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attest.errors import UsageError
from attest.subjects import Subject

IN_TOTO_STATEMENT_V1 = "https://in-toto.io/Statement/v1"
CYCLONEDX_BOM = "https://cyclonedx.org/bom"
#: actions/attest caps predicates and SBOMs at 16 MiB.
MAX_PREDICATE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Statement:
    """A statement's exact bytes, and what we need to know of it without parsing them again."""

    data: bytes
    predicate_type: str
    subjects: tuple[Subject, ...]


def build_statement(subjects: Sequence[Subject], predicate_type: str, predicate: Any) -> Statement:
    body = {
        "_type": IN_TOTO_STATEMENT_V1,
        "subject": [subject.to_json() for subject in subjects],
        "predicateType": predicate_type,
        "predicate": predicate,
    }
    # JSON.stringify's form: compact, UTF-8, keys in insertion order.
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return Statement(data, predicate_type, tuple(subjects))


def sbom_predicate(path_text: str, *, workspace: Path) -> tuple[str, Any]:
    """(predicate type, predicate) for an SPDX or CycloneDX JSON document."""
    path = _resolve(path_text, workspace)
    if not path.is_file():
        raise UsageError(f"SBOM file not found: {path_text}")
    data = _read_capped(path, "SBOM file", "sbom-path")
    sbom = _parse_json(data, f"sbom-path {path_text}")
    if isinstance(sbom, dict) and isinstance(sbom.get("spdxVersion"), str) and "SPDXID" in sbom:
        version = sbom["spdxVersion"].split("-", 1)[-1]
        return f"https://spdx.dev/Document/v{version}", sbom
    if isinstance(sbom, dict) and all(
        k in sbom for k in ("bomFormat", "serialNumber", "specVersion")
    ):
        return CYCLONEDX_BOM, sbom
    raise UsageError("Unsupported SBOM format. Must be valid SPDX or CycloneDX JSON.")


def custom_predicate(
    predicate_type: str, *, predicate: str, predicate_path: str, workspace: Path
) -> tuple[str, Any]:
    """(predicate type, predicate) from the predicate input or the file it names."""
    if predicate_path:
        path = _resolve(predicate_path, workspace)
        if not path.is_file():
            raise UsageError(f"predicate file not found: {predicate_path}")
        data = _read_capped(path, "predicate file", "predicate-path")
        return predicate_type, _parse_json(data, f"predicate-path {predicate_path}")
    if len(predicate.encode()) > MAX_PREDICATE_BYTES:
        raise UsageError(
            f"predicate string exceeds maximum allowed size: {MAX_PREDICATE_BYTES} bytes"
        )
    return predicate_type, _parse_json(predicate.encode(), "predicate")


def _resolve(path_text: str, workspace: Path) -> Path:
    path = Path(path_text).expanduser()
    return path if path.is_absolute() else workspace / path


def _read_capped(path: Path, what: str, input_name: str) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_PREDICATE_BYTES:
            raise UsageError(f"{what} exceeds maximum allowed size: {MAX_PREDICATE_BYTES} bytes")
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{input_name}: cannot read {path}: {exc.strerror or exc}") from exc


def _parse_json(data: bytes, source: str) -> Any:
    try:
        # UTF-8 (a BOM tolerated), never the UTF-16/32 guessing of json.loads(bytes).
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise UsageError(f"{source}: not UTF-8 text (byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{source}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
