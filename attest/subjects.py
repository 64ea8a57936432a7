"""Resolve the attestation subjects from the action inputs (``actions/attest`` v4.2.2 semantics).

Four sources, checked in the anchor's order (``src/subject.ts``, ``src/artifacts.ts``):

* ``subject-path``: globs with ``@actions/glob`` 0.7.0 semantics, every matched regular file is
  SHA-256'd (in parallel, streamed in 1 MiB chunks). No 1024-file cap.
* ``subject-digest`` + ``subject-name``: one subject, ``algorithm:hex``.
* ``subject-checksums``: a shasum-style file, or the same text inline.
* the runner's artifacts list (``$GITHUB_ARTIFACTS_LIST``, passed in as a path) when none of the
  above is given.

Deliberate differences from the anchor: digests are lower-cased (hex is case-insensitive, and the
registries and the attestations API compare lower-case); there is no subject count cap; with
push-to-registry the artifacts list may hold several images; a glob search path below a regular file
(``file.txt/x``) or a symlink loop counts as "not found" instead of crashing; subject-name is also
checked for newlines; POSIX classes like ``[[:upper:]]`` use Python's classes (ASCII for some).

Glob walk order: the anchor's depth-first walk, search paths in pattern order, directory entries in
byte order (Node's ``readdir`` comes from libuv's ``scandir`` sorted with ``strcmp``), a directory's
entries interleaved by name. Subjects keep the first-seen order after dropping duplicates.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import pwd
import queue
import re
import stat
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from attest.errors import UsageError

__all__ = ["Subject", "resolve_subjects"]

_CHUNK = 1 << 20
_MAX_CHECKSUMS_BYTES = 512 * 1024
_HEX = r"[0-9a-fA-F]+"
# Canonical in-toto SHA-2 names and their hex lengths (anchor SUPPORTED_DIGEST_ALGORITHMS).
_DIGEST_LENGTHS = {
    "sha224": 56,
    "sha256": 64,
    "sha384": 96,
    "sha512": 128,
    "sha512_224": 56,
    "sha512_256": 64,
}
_ONE_OF = "One of subject-path, subject-digest, or subject-checksums must be provided"
_ONLY_ONE = "Only one of subject-path, subject-digest, or subject-checksums may be provided"


@dataclass(frozen=True)
class Subject:
    """One in-toto ResourceDescriptor; ``kind`` says whether it is a file or an OCI image."""

    name: str
    digest: Mapping[str, str] = field(hash=False)
    kind: str = "file"

    def __post_init__(self) -> None:
        # A read-only copy, so a frozen Subject cannot change through the caller's dict.
        object.__setattr__(self, "digest", MappingProxyType(dict(self.digest)))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "digest": dict(self.digest)}


def resolve_subjects(
    *,
    subject_path: str = "",
    subject_digest: str = "",
    subject_name: str = "",
    subject_checksums: str = "",
    artifacts_list: Path | None = None,
    push_to_registry: bool = False,
    workspace: Path,
    progress: Callable[[str], None] | None = None,
    workers: int | None = None,
    progress_interval: float = 5.0,
    home: Path | None = None,
) -> list[Subject]:
    """The subjects named by the inputs; raises :class:`UsageError` for any bad input.

    Inputs are trimmed as ``core.getInput`` trims them. ``home`` expands a leading ``~`` in
    subject-path (the caller passes ``$HOME``; by default the passwd entry's home directory).
    ``workers`` threads hash the files over 1 MiB (default: the usable CPUs, 2 to 8) while one
    more opens every file and hashes the small ones; ``progress`` gets a line every
    ``progress_interval`` seconds while hashing.
    """
    subject_path = subject_path.strip()
    subject_digest = subject_digest.strip()
    subject_name = subject_name.strip()
    subject_checksums = subject_checksums.strip()
    given = [v for v in (subject_path, subject_digest, subject_checksums) if v]
    if not given:
        if artifacts_list is not None:
            found = _read_artifacts_list(artifacts_list, push_to_registry=push_to_registry)
            if found:
                return found
        raise UsageError(_ONE_OF)
    if len(given) > 1:
        raise UsageError(_ONLY_ONE)
    if subject_digest and not subject_name:
        raise UsageError("subject-name must be provided when using subject-digest")
    if subject_checksums:
        return _from_checksums(subject_checksums, workspace)
    # OCI names are lower-case; the anchor lower-cases whenever it pushes (downcaseName).
    name = subject_name.lower() if push_to_registry else subject_name
    if _has_newline(name):
        raise UsageError(f"Invalid subject name (contains a newline): {name}")
    if subject_digest:
        algorithm, hex_digest = _parse_digest(subject_digest)
        return [Subject(name, {algorithm: hex_digest}, "oci" if push_to_registry else "file")]
    return _from_paths(
        subject_path,
        name,
        workspace=workspace,
        home=home,
        progress=progress,
        interval=progress_interval,
        workers=workers or _default_workers(),
    )


# --- subject-digest ----------------------------------------------------------------------------


def _parse_digest(value: str) -> tuple[str, str]:
    match = re.fullmatch(r"([^:]+):([^:]+)", value)
    if match is None:
        raise UsageError('subject-digest must be in the format "algorithm:hex_digest"')
    algorithm, hex_digest = match.groups()
    expected = _DIGEST_LENGTHS.get(algorithm)
    if expected is None:
        raise UsageError(f'subject-digest has unsupported algorithm "{algorithm}"')
    if re.fullmatch(_HEX, hex_digest) is None:
        raise UsageError("subject-digest has invalid hex digits")
    if len(hex_digest) != expected:
        raise UsageError(
            f'subject-digest has invalid length for algorithm "{algorithm}" '
            f"(expected {expected}, got {len(hex_digest)})"
        )
    return algorithm, hex_digest.lower()


def _has_newline(name: str) -> bool:
    return "\n" in name or "\r" in name


# --- subject-checksums -------------------------------------------------------------------------


def _from_checksums(value: str, workspace: Path) -> list[Subject]:
    path = workspace / value
    try:
        st = os.stat(path)  # the anchor's fs.access(): if it exists, it is meant as a file
    except (OSError, ValueError):  # ValueError: an embedded NUL, so surely inline text
        st = None
    if st is None:
        subjects = _parse_checksums(value)
        if not subjects:
            shown = value if len(value) <= 200 else value[:200] + "…"
            raise UsageError(
                f"subject-checksums is neither a file nor checksum text: {shown}",
                hint='give a file, or lines like "<hex digest>  <name>" as sha256sum writes them',
            )
        return subjects
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"subject checksums file not found: {value}")
    if st.st_size > _MAX_CHECKSUMS_BYTES:
        raise _checksums_too_big()
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_CHECKSUMS_BYTES + 1)
    except OSError as e:
        raise UsageError(f"subject-checksums: cannot read {value}: {e.strerror}") from None
    if len(data) > _MAX_CHECKSUMS_BYTES:  # grew since the stat
        raise _checksums_too_big()
    # Node's readFile(…, 'utf-8') replaces invalid bytes rather than failing.
    subjects = _parse_checksums(data.decode("utf-8", errors="replace"))
    if not subjects:
        raise UsageError(
            f"subject checksums file has no checksum lines: {value}",
            hint='each line must be "<hex digest>  <name>", as sha256sum writes them',
        )
    return subjects


def _checksums_too_big() -> UsageError:
    return UsageError(
        f"subject checksums file exceeds maximum allowed size: {_MAX_CHECKSUMS_BYTES} bytes"
    )


def _parse_checksums(text: str) -> list[Subject]:
    subjects: list[Subject] = []
    for record in re.split(r"\r?\n", text):
        space = record.find(" ")
        if space < 0:  # also skips empty lines
            continue
        rest = record[space + 1 :]
        # One leading "*" (binary mode) or " " (text mode) flag before the name.
        name = rest[1:] if rest[:1] in ("*", " ") else rest
        if _has_newline(name):  # a lone CR: the lines were not split right
            raise UsageError(f"Invalid subject name (contains a newline): {name}")
        digest = record[:space]
        if re.fullmatch(_HEX, digest) is None:
            raise UsageError(f"Invalid digest: {digest}")
        if len(digest) == 64:
            algorithm = "sha256"
        elif len(digest) == 128:
            algorithm = "sha512"
        else:
            raise UsageError(f"Unknown digest algorithm: {digest}")
        subjects.append(Subject(name, {algorithm: digest.lower()}))
    return list(dict.fromkeys(subjects))  # duplicates dropped, first seen first


# --- artifacts list ----------------------------------------------------------------------------


def _read_artifacts_list(path: Path, *, push_to_registry: bool) -> list[Subject]:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UsageError(f'Failed to read artifacts list at "{path}": {e.strerror}') from None
    content = raw.decode("utf-8", errors="replace")
    # The runner writes UTF-8 without a BOM; checked before the emptiness test on purpose.
    if content.startswith("\ufeff"):
        raise UsageError("Artifacts list file contains a UTF-8 BOM; the file must be plain UTF-8")
    if not content.strip():  # the runner leaves it empty when the feature is off
        return []
    try:
        data = json.loads(content, parse_constant=_reject_constant)
    except ValueError:
        raise UsageError("Artifacts list file contains invalid JSON") from None
    if not isinstance(data, dict):
        raise UsageError("Artifacts list must be a JSON object")
    version = data.get("version", _MISSING)
    if not (_is_number(version) and version == 1):
        raise UsageError(
            f"Unsupported artifacts list version: {_js_stringify(version)} (expected 1)"
        )
    entries = data.get("subjects")
    if not isinstance(entries, list):
        raise UsageError('Artifacts list is missing a "subjects" array')

    subjects: list[Subject] = []
    seen: dict[str, tuple[str, str]] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise UsageError(f"Artifacts list entry {i}: must be a JSON object")
        raw_name, kind, algorithm, hex_digest = _validate_entry(entry, i)
        # Lower-cased before the duplicate check, so case-only duplicates collapse.
        name = raw_name.lower() if push_to_registry and kind == "oci" else raw_name
        previous = seen.get(name)
        if previous is not None:
            if previous == (kind, hex_digest):
                continue
            raise UsageError(
                f'Artifacts list entry {i}: duplicate name "{name}" with conflicting kind or digest'
            )
        seen[name] = (kind, hex_digest)
        subjects.append(Subject(name, {algorithm: hex_digest}, kind))
    if push_to_registry and any(s.kind != "oci" for s in subjects):
        raise UsageError(
            "push-to-registry requires an OCI subject but the discovered artifacts list "
            "contains file-kind subjects"
        )
    return subjects


_MISSING = object()
# Per kind, the allowed digest algorithms and their hex lengths (anchor DIGEST_RULES).
_ARTIFACT_DIGESTS = {"file": {"sha256": 64}, "oci": {"sha256": 64}}


def _validate_entry(entry: Mapping[str, Any], i: int) -> tuple[str, str, str, str]:
    prefix = f"Artifacts list entry {i}:"
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise UsageError(f'{prefix} "name" must be a non-empty string')
    kind = entry.get("kind")
    if not isinstance(kind, str):
        raise UsageError(f'{prefix} "kind" must be a string')
    allowed = _ARTIFACT_DIGESTS.get(kind)
    if allowed is None:
        raise UsageError(f'{prefix} unsupported kind "{kind}" (expected "file" or "oci")')
    digest = entry.get("digest")
    if not isinstance(digest, str) or not digest:
        raise UsageError(f'{prefix} "digest" must be a non-empty string')
    algorithm, colon, hex_digest = digest.partition(":")
    if not colon:
        raise UsageError(f'{prefix} digest must be in the format "algorithm:hex"')
    expected = allowed.get(algorithm)
    if expected is None:
        raise UsageError(
            f'{prefix} algorithm "{algorithm}" is not allowed for kind "{kind}" '
            f"(allowed: {', '.join(allowed)})"
        )
    if re.fullmatch(_HEX, hex_digest) is None:
        raise UsageError(f"{prefix} digest contains invalid hex characters")
    if len(hex_digest) != expected:
        raise UsageError(
            f'{prefix} digest has {len(hex_digest)} hex characters but "{algorithm}" '
            f"requires exactly {expected}"
        )
    return name, kind, algorithm, hex_digest.lower()


def _reject_constant(name: str) -> Any:
    raise ValueError(name)  # NaN and Infinity are not JSON (JSON.parse rejects them)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _js_stringify(value: object) -> str:
    """``JSON.stringify`` as the anchor's message shows it."""
    if value is _MISSING:
        return "undefined"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))  # JS prints 2.0 as 2
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --- subject-path: the input list --------------------------------------------------------------


def _split_path_list(text: str) -> list[str]:
    """Glob lines from subject-path, as the anchor gets them.

    The anchor runs csv-parse (relax_quotes, skip_empty_lines) over the input, trims each field,
    joins the fields with newlines and hands that to ``@actions/glob``, which splits on newlines,
    trims again and skips empty lines and ``#`` comments.
    """
    fields = [f for record in _parse_csv(text) for f in record if f]
    lines = "\n".join(f.strip() for f in fields).split("\n")
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def _parse_csv(text: str) -> list[list[str]]:
    """csv-parse 7 with ``relax_quotes``, ``relax_column_count`` and ``skip_empty_lines``.

    A port of its state machine for the default quote/escape ``"`` and delimiter ``,``. The record
    delimiter is the first of CRLF, LF or CR met outside quotes, and only that one afterwards.
    """
    records: list[list[str]] = []
    record: list[str] = []
    chars: list[str] = []
    delimiter = ""
    quoting = was_quoting = escaping = False
    lines, row_flag = 1, False
    n = len(text)

    def discover(pos: int) -> int:
        nonlocal delimiter
        for candidate in ("\r\n", "\n", "\r"):
            if text.startswith(candidate, pos):
                delimiter = candidate
                return len(candidate)
        return 0

    def end_field() -> None:
        nonlocal was_quoting
        record.append("".join(chars))
        chars.clear()
        was_quoting = False

    pos = 0
    while pos < n:
        if row_flag:
            lines += 1
            row_flag = False
        if not quoting and not delimiter:
            discover(pos)
        c = text[pos]
        if c in "\r\n":
            row_flag = True
        if escaping:
            escaping = False
        else:
            if quoting and c == '"' and pos + 1 < n and text[pos + 1] == '"':
                escaping = True  # "" inside quotes: the next quote is a plain character
                pos += 1
                continue
            if c == '"':
                if quoting:
                    after = pos + 1
                    closes = (
                        after >= n
                        or text[after] == ","
                        or (discover(after) if not delimiter else text.startswith(delimiter, after))
                    )
                    quoting, was_quoting = False, True
                    if closes:
                        pos += 1
                        continue
                    # relax_quotes: a quote followed by text makes the field literal again.
                    chars.insert(0, '"')
                elif not chars:
                    quoting = True
                    pos += 1
                    continue
            if not quoting:
                if delimiter and text.startswith(delimiter, pos):
                    if was_quoting or record or chars:
                        end_field()
                        records.append(record)
                        record = []
                    pos += len(delimiter)
                    continue
                if c == ",":
                    end_field()
                    pos += 1
                    continue
        chars.append(c)
        pos += 1
    if quoting:
        raise UsageError(
            "subject-path: Quote Not Closed: the parsing is finished with an opening quote "
            f"at line {lines}"
        )
    if was_quoting or record or chars:
        end_field()
        records.append(record)
    return records


# --- subject-path: @actions/glob patterns ------------------------------------------------------

_DIR, _FILE = 1, 2  # MatchKind bits
_ALL = _DIR | _FILE
_GLOBSTAR = "**"

# POSIX classes as minimatch translates them. Python's re has no \p{..}: the Unicode-wide ones map
# onto \w, \d, \s; lower, upper, punct, print and graph are ASCII (or control-character) only.
# Each value: (one-character regex, negated).
_POSIX_CLASSES = {
    "[:alnum:]": (r"[^\W_]", False),
    "[:alpha:]": (r"[^\W\d_]", False),
    "[:ascii:]": (r"[\x00-\x7f]", False),
    "[:blank:]": (r"[\t \xa0\u1680\u2000-\u200a\u202f\u205f\u3000]", False),
    "[:cntrl:]": (r"[\x00-\x1f\x7f-\x9f]", False),
    "[:digit:]": (r"\d", False),
    "[:graph:]": (r"[\s\x00-\x1f\x7f-\x9f]", True),
    "[:lower:]": (r"[a-z]", False),
    "[:print:]": (r"[\x00-\x1f\x7f-\x9f]", False),  # sic: minimatch maps print to \p{C}
    "[:punct:]": (r"[!-#%-*,-/:;?@\[-\]_{}]", False),
    "[:space:]": (r"\s", False),
    "[:upper:]": (r"[A-Z]", False),
    "[:word:]": (r"\w", False),
    "[:xdigit:]": (r"[A-Fa-f0-9]", False),
}


@dataclass(frozen=True)
class _Pattern:
    """One @actions/glob pattern (``internal-pattern.ts``), compiled to whole-path regexes."""

    negate: bool
    segments: tuple[str, ...]  # "/" then one glob segment per path component
    trailing_separator: bool  # "dir/": matches directories only
    search_path: str
    implicit: bool
    matcher: Callable[[str], object]
    partial_matcher: Callable[[str], object]

    @property
    def kind(self) -> int:
        return _DIR if self.trailing_separator else _ALL


def _make_pattern(text: str, *, cwd: str, home: str) -> _Pattern:
    pattern = text.strip()
    negate = False
    while pattern.startswith("!"):
        negate = not negate
        pattern = pattern[1:].strip()
    if not pattern:
        raise UsageError(f"subject-path: Invalid pattern '{text}': pattern cannot be empty")
    literals = [_literal(s) for s in _segments(pattern)]
    if any((s == "." and i) or s == ".." for i, s in enumerate(literals)):
        raise UsageError(
            f"subject-path: Invalid pattern '{pattern}'. "
            "Relative pathing '.' and '..' is not allowed."
        )
    pattern = _normalize(pattern)
    if pattern == "." or pattern.startswith("./"):
        pattern = _glob_escape(cwd) + pattern[1:]
    elif pattern == "~" or pattern.startswith("~/"):
        pattern = _glob_escape(home) + pattern[1:]
    elif not pattern.startswith("/"):
        root = _glob_escape(cwd)
        pattern = (root if root.endswith("/") else root + "/") + pattern
    return _compile(negate, _normalize(pattern), implicit=False)


def _compile(negate: bool, pattern: str, *, implicit: bool) -> _Pattern:
    segments = _segments(pattern)
    trailing = pattern.endswith("/") and pattern != "/"
    search: list[str] = []
    for segment in segments:
        literal = _literal(segment)
        if not literal:
            break
        search.append(literal)
    # minimatch drops repeated globstars.
    parts = [s for i, s in enumerate(segments[1:]) if not (s == _GLOBSTAR == segments[i])]
    # A pattern ending in ** needs one more component, except a user's own trailing ** which
    # @actions/glob lets match the directory itself (it appends "/" to the path it tests).
    full = _path_regex(parts, final_at_least_one=implicit)
    head = parts[: parts.index(_GLOBSTAR)] if _GLOBSTAR in parts else parts
    tail = r"(?:/.*)?" if _GLOBSTAR in parts else ""
    partial = tail
    for part in reversed(head):
        partial = f"(?:/{_segment_regex(part)}{partial})?"
    return _Pattern(
        negate=negate,
        segments=tuple(segments),
        trailing_separator=trailing,
        search_path=_join_segments(search),
        implicit=implicit,
        matcher=re.compile(full).fullmatch,
        partial_matcher=re.compile(partial).fullmatch,
    )


def _implicit_descendants(p: _Pattern) -> _Pattern:
    return _compile(p.negate, _join_segments([*p.segments, _GLOBSTAR]), implicit=True)


def _path_regex(parts: Sequence[str], *, final_at_least_one: bool) -> str:
    if not parts:
        return "/"
    out = []
    for i, part in enumerate(parts):
        if part == _GLOBSTAR:
            last = i == len(parts) - 1
            out.append(r"(?:/[^/]+)+" if last and final_at_least_one else r"(?:/[^/]+)*")
        else:
            out.append("/" + _segment_regex(part))
    return "".join(out)


def _segment_regex(segment: str) -> str:
    """One path component's glob as a regex (minimatch: dot, noext, nobrace, escapes)."""
    # minimatch's shortcuts for common shapes; they test the raw text, so an escape in the
    # suffix stays a backslash (`*\.txt` only matches names ending in a literal `\.txt`).
    if re.fullmatch(r"\*+", segment):
        return r"[^/]+"  # a lone star matches something, never the empty string
    if shortcut := re.fullmatch(r"\*+([^+@!?*\[(]*)", segment):
        return r"[^/]*" + re.escape(shortcut[1])
    if shortcut := re.fullmatch(r"(\?+)([^+@!?*\[(]*)", segment):
        return rf"[^/]{{{len(shortcut[1])}}}" + re.escape(shortcut[2])
    if re.fullmatch(r"\*+\.\*+", segment):
        return r"[^/]*\.[^/]*"
    if re.fullmatch(r"\.\*+", segment):
        return r"\.[^/]*"
    out: list[str] = []
    i, n = 0, len(segment)
    escaping = in_star = False
    while i < n:
        c = segment[i]
        if escaping:
            escaping = False
            out.append(re.escape(c))
            i += 1
            continue
        if c == "*":
            if not in_star:
                out.append(r"[^/]*")
            in_star = True
            i += 1
            continue
        in_star = False
        if c == "\\":
            if i == n - 1:
                out.append(r"\\")
            else:
                escaping = True
            i += 1
            continue
        if c == "[":
            source, consumed = _class_regex(segment, i)
            if consumed:
                out.append(source)
                i += consumed
                continue
        out.append(r"[^/]" if c == "?" else re.escape(c))
        i += 1
    return "".join(out)


def _class_regex(glob: str, start: int) -> tuple[str, int]:
    """A ``[...]`` class at ``start`` (minimatch ``parseClass``); (regex, chars consumed)."""
    i = start + 1
    saw_start = escaping = negate = False
    end = start
    range_start = ""
    ranges: list[str] = []
    positive: list[str] = []
    negative: list[str] = []
    while i < len(glob):
        c = glob[i]
        if c in "!^" and i == start + 1:
            negate = True
            i += 1
            continue
        if c == "]" and saw_start and not escaping:
            end = i + 1
            break
        saw_start = True
        if c == "\\" and not escaping:
            escaping = True
            i += 1
            continue
        if c == "[" and not escaping:
            posix = next((k for k in _POSIX_CLASSES if glob.startswith(k, i)), None)
            if posix is not None:
                if range_start:  # [a-[:alpha:]] poisons the whole segment
                    return "(?!)", len(glob) - start
                regex, negated = _POSIX_CLASSES[posix]
                (negative if negated else positive).append(regex)
                i += len(posix)
                continue
        escaping = False
        if range_start:
            if c > range_start:  # an inverted range is dropped
                ranges.append(f"{_class_escape(range_start)}-{_class_escape(c)}")
            elif c == range_start:
                ranges.append(_class_escape(c))
            range_start = ""
            i += 1
        elif glob.startswith("-]", i + 1):
            ranges.append(_class_escape(c) + r"\-")
            i += 2
        elif glob.startswith("-", i + 1):
            range_start = c
            i += 2
        else:
            ranges.append(_class_escape(c))
            i += 1
    if end < i:
        return "", 0  # not closed: the "[" is a literal character
    members = ([f"[{''.join(ranges)}]"] if ranges else []) + positive
    if not members and not negative:
        return "(?!)", len(glob) - start
    inside = f"(?:{'|'.join(members)})"
    in_negative = f"(?:{'|'.join(negative)})"
    if negate:
        alternatives = ([rf"(?!{inside})[^/]"] if members else []) + (
            [rf"(?!/){in_negative}"] if negative else []
        )
    else:
        alternatives = ([rf"(?!/){inside}"] if members else []) + (
            [rf"(?!{in_negative})[^/]"] if negative else []
        )
    return f"(?:{'|'.join(alternatives)})", end - start


def _class_escape(c: str) -> str:
    # Also escape what Python would read as (future) set operations.
    return "\\" + c if c in "\\]-[^&~|" else c


def _literal(segment: str) -> str:
    """The segment as a literal path component, or "" if it has glob magic (``getLiteral``)."""
    out: list[str] = []
    i, n = 0, len(segment)
    while i < n:
        c = segment[i]
        if c == "\\" and i + 1 < n:
            out.append(segment[i + 1])
            i += 2
            continue
        if c in "*?":
            return ""
        if c == "[" and i + 1 < n:
            members: list[str] = []
            j = i + 1
            closed = -1
            while j < n:
                if segment[j] == "\\" and j + 1 < n:
                    members.append(segment[j + 1])
                    j += 2
                    continue
                if segment[j] == "]":
                    closed = j
                    break
                members.append(segment[j])
                j += 1
            if closed >= 0:
                if len(members) > 1:
                    return ""
                if members:  # [x] is an escaped x
                    out.append(members[0])
                    i = closed + 1
                    continue
        out.append(c)
        i += 1
    return "".join(out)


def _glob_escape(path: str) -> str:
    path = path.replace("\\", "\\\\")
    path = re.sub(r"\[(?=[^/]+\])", "[[]", path)
    return path.replace("?", "[?]").replace("*", "[*]")


def _normalize(path: str) -> str:
    return re.sub(r"//+", "/", path)


def _trim_trailing(path: str) -> str:
    path = _normalize(path)
    return path[:-1] if path.endswith("/") and path != "/" else path


def _segments(pattern: str) -> list[str]:
    """``Path(pattern).segments``: "/" then the components, or the components if relative."""
    pattern = _trim_trailing(pattern)
    if pattern.startswith("/"):
        return ["/", *[s for s in pattern.split("/") if s]]
    return pattern.split("/")


def _join_segments(segments: Sequence[str]) -> str:
    if not segments:
        return ""
    first, rest = segments[0], "/".join(segments[1:])
    if not rest:
        return first
    return first + rest if first.endswith("/") else f"{first}/{rest}"


def _search_paths(patterns: Sequence[_Pattern]) -> list[str]:
    """Search roots of the positive patterns, minus those below another (``getSearchPaths``)."""
    positive = [p.search_path for p in patterns if not p.negate]
    candidates = set(positive)
    included: set[str] = set()
    result: list[str] = []
    for path in positive:
        if path in included:
            continue
        parent, child = os.path.dirname(path), path
        while parent != child:
            if parent in candidates:
                break
            parent, child = os.path.dirname(parent), parent
        else:
            result.append(path)
            included.add(path)
    return result


def _glob_files(patterns: Sequence[_Pattern]) -> Iterator[tuple[str, bool, bool]]:
    """Walk like ``DefaultGlobber.globGenerator`` with the default options.

    Yields (path, is_directory, is_regular_file), symlinks followed, for every match,
    directories included (followSymbolicLinks, implicitDescendants, matchDirectories,
    omitBrokenSymbolicLinks: all true; hidden files included).
    """
    matchers = [(p.negate, p.kind, p.matcher) for p in patterns]
    partials = [p.partial_matcher for p in patterns if not p.negate]

    def match(path: str) -> int:
        result = 0
        for negate, kind, matcher in matchers:
            if matcher(path) is not None:
                result = result & ~kind if negate else result | kind
        return result

    stack: list[tuple[str, int, os.DirEntry[str] | None]] = []
    for search_path in _search_paths(patterns):
        try:
            os.lstat(search_path)
        except OSError as e:
            if _is_absent(e):
                continue
            raise UsageError(f"subject-path: cannot read {search_path}: {e.strerror}") from None
        stack.insert(0, (search_path, 1, None))

    # (st_dev, st_ino) of the directories from the search root down to the current one; a
    # directory already on it is a symlink cycle. @actions/glob compares realpaths: same thing.
    chain: list[tuple[int, int]] = []
    while stack:
        path, level, entry = stack.pop()
        kind = match(path)
        if not kind and not (
            os.path.dirname(path) == path or any(m(path) is not None for m in partials)
        ):
            continue
        try:
            if entry is not None and not entry.is_symlink():
                # The directory entry's type saves a stat() per file; directories still need
                # one, for the cycle check.
                is_dir = entry.is_dir(follow_symlinks=False)
                is_regular = not is_dir and entry.is_file(follow_symlinks=False)
                st = os.stat(path) if is_dir else None
            else:
                st = os.stat(path)
                is_dir, is_regular = stat.S_ISDIR(st.st_mode), stat.S_ISREG(st.st_mode)
        except OSError as e:
            if _is_absent(e):  # a broken symlink, a loop, or gone meanwhile
                continue
            raise UsageError(f"subject-path: cannot read {path}: {e.strerror}") from None
        if st is not None and is_dir:
            del chain[level - 1 :]
            key = (st.st_dev, st.st_ino)
            if key in chain:
                continue
            chain.append(key)
            if kind & _DIR:
                yield path, True, False
            try:
                with os.scandir(path) as it:
                    children = list(it)
            except OSError as e:
                raise UsageError(f"subject-path: cannot list {path}: {e.strerror}") from None
            # Byte order, as libuv's scandir sorts; str order is the same for ASCII names.
            if all(c.name.isascii() for c in children):
                children.sort(key=lambda c: c.name, reverse=True)
            else:
                children.sort(key=lambda c: os.fsencode(c.name), reverse=True)
            stack.extend((c.path, level + 1, c) for c in children)
        elif kind & _FILE:
            yield path, False, is_regular


def _is_absent(e: OSError) -> bool:
    return isinstance(e, FileNotFoundError | NotADirectoryError) or e.errno == errno.ELOOP


def _home() -> str:
    return pwd.getpwuid(os.getuid()).pw_dir


def _glob_regular_files(text: str, *, cwd: str, home: str | None) -> list[str]:
    """The regular files the subject-path globs match, in walk order."""
    patterns: list[_Pattern] = []
    home = home or _home()
    for line in _split_path_list(text):
        pattern = _make_pattern(line, cwd=cwd, home=home)
        patterns.append(pattern)
        if pattern.trailing_separator or pattern.segments[-1] != _GLOBSTAR:
            patterns.append(_implicit_descendants(pattern))
    # The anchor keeps what fs.stat() calls a file: regular files, symlinks to them included.
    return [path for path, _, regular in _glob_files(patterns) if regular]


# --- subject-path: hashing ---------------------------------------------------------------------


def _from_paths(
    text: str,
    name: str,
    *,
    workspace: Path,
    home: Path | None,
    progress: Callable[[str], None] | None,
    interval: float,
    workers: int,
) -> list[Subject]:
    cwd = os.path.abspath(workspace)
    files = _glob_regular_files(text, cwd=cwd, home=str(home) if home is not None else None)
    digests = _hash_files(files, workers=workers, progress=progress, interval=interval)
    subjects = list(
        dict.fromkeys(
            Subject(name or os.path.basename(path), {"sha256": digest})
            for path, digest in zip(files, digests, strict=True)
        )
    )
    if not subjects:
        raise UsageError(f"Could not find subject at path {text}")
    return subjects


def _default_workers() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(2, min(8, cpus))


def _hash_files(
    paths: Sequence[str],
    *,
    workers: int,
    progress: Callable[[str], None] | None,
    interval: float,
) -> list[str]:
    """SHA-256 of each file, in order.

    One thread opens every file and hashes those of one chunk or less itself: for them the time
    goes to Python and system calls, and threads taking turns at the GIL on every call are slower
    than one. It hands bigger files, where hashlib runs without the GIL, to ``workers`` threads.
    """
    total = len(paths)
    digests = [""] * total
    if not total:
        return digests
    workers = max(1, workers)
    # Bounded, so the opener cannot hold more than a few open files ahead of the hashers.
    handoff: queue.Queue[tuple[int, int] | None] = queue.Queue(maxsize=2 * workers)
    files_done = [0] * (workers + 1)
    bytes_done = [0] * (workers + 1)  # each slot written by one thread only
    errors: list[tuple[int, Exception]] = []
    stop = threading.Event()

    def hash_fd(i: int, fd: int, buffer: bytearray, slot: int) -> None:
        try:
            if not stop.is_set():
                digests[i] = _hash_fd(fd, paths[i], buffer, bytes_done, slot)
                files_done[slot] += 1
        except Exception as e:  # recorded, so that this thread lives on to drain the queue
            errors.append((i, e))
            stop.set()
        finally:
            os.close(fd)

    def opener() -> None:
        buffer = bytearray(_CHUNK)  # one per thread: a fresh 1 MiB per file would cost more
        try:
            for i, path in enumerate(paths):
                if stop.is_set():
                    break
                try:
                    fd, size = _open_regular(path)
                except UsageError as e:
                    errors.append((i, e))
                    stop.set()
                    break
                if size > _CHUNK:
                    handoff.put((i, fd))
                else:
                    hash_fd(i, fd, buffer, 0)
        finally:
            for _ in range(workers):
                handoff.put(None)

    def hasher(slot: int) -> None:
        buffer = bytearray(_CHUNK)
        # Runs until its end marker, even after an error, so that every handed-off file is
        # closed and the opener never blocks on a full queue.
        while (item := handoff.get()) is not None:
            hash_fd(*item, buffer, slot)

    with ThreadPoolExecutor(max_workers=workers + 1, thread_name_prefix="attest-hash") as pool:
        futures = [pool.submit(opener), *(pool.submit(hasher, s) for s in range(1, workers + 1))]
        try:
            while wait(futures, timeout=interval).not_done:
                if progress is not None:
                    progress(
                        f"hashed {sum(files_done)} of {total} files ({_size(sum(bytes_done))})"
                    )
        finally:
            stop.set()  # on an interrupt, stop after the current files
    for future in futures:
        future.result()
    if errors:
        raise min(errors, key=lambda e: e[0])[1]
    return digests


def _open_regular(path: str) -> tuple[int, int]:
    """An open descriptor and the size of a file that is still a regular file."""
    try:
        # O_NONBLOCK: if the file was swapped for a FIFO since the walk, do not hang on it.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as e:
        raise UsageError(f"subject-path: cannot read {path}: {e.strerror}") from None
    try:
        st = os.fstat(fd)
    except OSError as e:
        os.close(fd)
        raise UsageError(f"subject-path: cannot read {path}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise UsageError(f"subject-path: {path} is no longer a regular file")
    return fd, st.st_size


def _hash_fd(fd: int, path: str, buffer: bytearray, bytes_done: list[int], slot: int) -> str:
    view = memoryview(buffer)
    digest = hashlib.sha256()
    try:
        if (n := os.readv(fd, (buffer,))) == len(buffer):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)  # a big file: read ahead more
        while n:
            digest.update(view[:n])  # hashlib releases the GIL for large updates
            bytes_done[slot] += n
            n = os.readv(fd, (buffer,))
    except OSError as e:
        raise UsageError(f"subject-path: cannot read {path}: {e.strerror}") from None
    return digest.hexdigest()


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
