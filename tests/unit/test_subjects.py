from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from attest import subjects
from attest.errors import UsageError
from attest.subjects import Subject, resolve_subjects

HEX64 = "a" * 64


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(root: Path, rel: str, data: bytes | None = None) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(rel.encode() if data is None else data)
    return path


def resolve(ws: Path, **inputs: object) -> list[Subject]:
    return resolve_subjects(workspace=ws, **inputs)  # type: ignore[arg-type]


def error(ws: Path, **inputs: object) -> str:
    with pytest.raises(UsageError) as info:
        resolve(ws, **inputs)
    return info.value.message


# --- choosing the source ------------------------------------------------------------------------

ONE_OF = "One of subject-path, subject-digest, or subject-checksums must be provided"
ONLY_ONE = "Only one of subject-path, subject-digest, or subject-checksums may be provided"


def test_no_input_at_all(tmp_path: Path) -> None:
    assert error(tmp_path) == ONE_OF


def test_whitespace_only_inputs_count_as_not_given(tmp_path: Path) -> None:
    blank = {"subject_path": "  \n", "subject_digest": " ", "subject_checksums": "\t"}
    assert error(tmp_path, **blank) == ONE_OF


@pytest.mark.parametrize(
    "inputs",
    [
        {"subject_path": "a", "subject_digest": f"sha256:{HEX64}"},
        {"subject_path": "a", "subject_checksums": "c"},
        {"subject_digest": f"sha256:{HEX64}", "subject_checksums": "c"},
        {"subject_path": "a", "subject_digest": f"sha256:{HEX64}", "subject_checksums": "c"},
    ],
)
def test_more_than_one_input(tmp_path: Path, inputs: dict[str, str]) -> None:
    assert error(tmp_path, subject_name="n", **inputs) == ONLY_ONE


# --- subject-digest ------------------------------------------------------------------------------


def test_digest_subject(tmp_path: Path) -> None:
    [s] = resolve(tmp_path, subject_digest=f"sha256:{HEX64.upper()}", subject_name="ghcr.io/O/App")
    assert s == Subject("ghcr.io/O/App", {"sha256": HEX64}, "file")
    assert s.to_json() == {"name": "ghcr.io/O/App", "digest": {"sha256": HEX64}}
    assert list(s.to_json()) == ["name", "digest"]


def test_digest_with_push_lowercases_the_name_and_is_oci(tmp_path: Path) -> None:
    [s] = resolve(
        tmp_path,
        subject_digest=f"sha256:{HEX64}",
        subject_name="GHCR.io/Owner/App:Tag",
        push_to_registry=True,
    )
    assert (s.name, s.kind) == ("ghcr.io/owner/app:tag", "oci")


@pytest.mark.parametrize(
    ("algorithm", "length"),
    [
        ("sha224", 56),
        ("sha256", 64),
        ("sha384", 96),
        ("sha512", 128),
        ("sha512_224", 56),
        ("sha512_256", 64),
    ],
)
def test_digest_algorithms(tmp_path: Path, algorithm: str, length: int) -> None:
    [s] = resolve(tmp_path, subject_digest=f"{algorithm}:{'0' * length}", subject_name="n")
    assert dict(s.digest) == {algorithm: "0" * length}
    bad = f"{algorithm}:{'0' * (length - 1)}"
    assert error(tmp_path, subject_digest=bad, subject_name="n") == (
        f'subject-digest has invalid length for algorithm "{algorithm}" '
        f"(expected {length}, got {length - 1})"
    )


def test_digest_invalid_length_message(tmp_path: Path) -> None:
    assert error(tmp_path, subject_digest="sha256:" + "a" * 63, subject_name="n") == (
        'subject-digest has invalid length for algorithm "sha256" (expected 64, got 63)'
    )


@pytest.mark.parametrize(
    ("digest", "message"),
    [
        (HEX64, 'subject-digest must be in the format "algorithm:hex_digest"'),
        (f"sha256:{HEX64}:x", 'subject-digest must be in the format "algorithm:hex_digest"'),
        (f":{HEX64}", 'subject-digest must be in the format "algorithm:hex_digest"'),
        ("sha256:", 'subject-digest must be in the format "algorithm:hex_digest"'),
        (f"md5:{HEX64}", 'subject-digest has unsupported algorithm "md5"'),
        (f"SHA256:{HEX64}", 'subject-digest has unsupported algorithm "SHA256"'),
        ("sha256:" + "g" * 64, "subject-digest has invalid hex digits"),
        ("sha256:" + "a" * 32 + "\n" + "a" * 31, "subject-digest has invalid hex digits"),
    ],
)
def test_digest_errors(tmp_path: Path, digest: str, message: str) -> None:
    assert error(tmp_path, subject_digest=digest, subject_name="n") == message


def test_digest_needs_a_name(tmp_path: Path) -> None:
    assert error(tmp_path, subject_digest=f"sha256:{HEX64}") == (
        "subject-name must be provided when using subject-digest"
    )


def test_subject_name_with_a_newline(tmp_path: Path) -> None:
    message = error(tmp_path, subject_digest=f"sha256:{HEX64}", subject_name="a\nb")
    assert message == "Invalid subject name (contains a newline): a\nb"
    write(tmp_path, "f")
    message = error(tmp_path, subject_path="f", subject_name="a\rb")
    assert message == "Invalid subject name (contains a newline): a\rb"


# --- subject-path: basics ------------------------------------------------------------------------


def test_path_names_by_basename_and_hashes(tmp_path: Path) -> None:
    write(tmp_path, "dist/app.tar.gz", b"payload")
    [s] = resolve(tmp_path, subject_path="dist/app.tar.gz")
    assert s == Subject("app.tar.gz", {"sha256": sha256(b"payload")})
    assert s.kind == "file"


def test_path_subject_name_overrides_and_duplicates_are_dropped(tmp_path: Path) -> None:
    write(tmp_path, "a/x.bin", b"same")
    write(tmp_path, "b/x.bin", b"same")
    write(tmp_path, "c/y.bin", b"other")
    got = resolve(tmp_path, subject_path="**/*.bin", subject_name="release")
    assert got == [
        Subject("release", {"sha256": sha256(b"same")}),
        Subject("release", {"sha256": sha256(b"other")}),
    ]
    # Without the override: same basename and digest twice is one subject.
    got = resolve(tmp_path, subject_path="**/*.bin")
    assert [s.name for s in got] == ["x.bin", "y.bin"]


def test_path_same_basename_different_content_stays(tmp_path: Path) -> None:
    write(tmp_path, "a/x.bin", b"one")
    write(tmp_path, "b/x.bin", b"two")
    got = resolve(tmp_path, subject_path="a/x.bin\nb/x.bin\na/x.bin")
    assert [s.digest["sha256"] for s in got] == [sha256(b"one"), sha256(b"two")]


def test_path_subject_name_lowercased_with_push(tmp_path: Path) -> None:
    write(tmp_path, "f")
    [s] = resolve(tmp_path, subject_path="f", subject_name="Ghcr.IO/A", push_to_registry=True)
    assert (s.name, s.kind) == ("ghcr.io/a", "file")


def test_path_nothing_found_names_the_input_as_given(tmp_path: Path) -> None:
    write(tmp_path, "empty/.keep-dir/placeholder-is-a-dir/x").unlink()
    assert error(tmp_path, subject_path="nothing*, other") == (
        "Could not find subject at path nothing*, other"
    )
    # A directory without files matches, but yields no subject.
    assert error(tmp_path, subject_path="empty") == "Could not find subject at path empty"


def test_path_absolute_and_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write(home, "h.txt")
    ws = tmp_path / "ws"
    ws.mkdir()
    [s] = resolve(ws, subject_path=str(home / "h.txt"))
    assert s.name == "h.txt"
    [s] = resolve(ws, subject_path="~/h.txt", home=home)
    assert s.digest["sha256"] == sha256(b"h.txt")
    [s] = resolve(ws, subject_path="~", home=home)  # a directory: its files
    assert s.name == "h.txt"


def test_path_relative_dots(tmp_path: Path) -> None:
    write(tmp_path, "d/f.txt")
    assert [s.name for s in resolve(tmp_path, subject_path="./d/*.txt")] == ["f.txt"]
    for bad in ("../x", "d/../f.txt", "d/./f.txt"):
        assert error(tmp_path, subject_path=bad) == (
            f"subject-path: Invalid pattern '{bad}'. Relative pathing '.' and '..' is not allowed."
        )
    assert error(tmp_path, subject_path="!") == (
        "subject-path: Invalid pattern '!': pattern cannot be empty"
    )


# --- subject-path: @actions/glob semantics -------------------------------------------------------

TREE = [
    "B.txt",
    "a.txt",
    "b.txt",
    "a/z.txt",
    "a-b/y.txt",
    "dist/app.tar.gz",
    "dist/.env",
    "dist/sub/deep.txt",
    "dist/sub/skip/s.txt",
    ".github/w.yml",
    "c,d.txt",
    "[x].txt",
    "x.txt",
    "10.txt",
    "9.txt",
]
EVERYTHING = [
    ".github/w.yml",
    "10.txt",
    "9.txt",
    "B.txt",
    "[x].txt",
    "a/z.txt",
    "a-b/y.txt",
    "a.txt",
    "b.txt",
    "c,d.txt",
    "dist/.env",
    "dist/app.tar.gz",
    "dist/sub/deep.txt",
    "dist/sub/skip/s.txt",
    "x.txt",
]
DIST = ["dist/.env", "dist/app.tar.gz", "dist/sub/deep.txt", "dist/sub/skip/s.txt"]
TXT = [p for p in EVERYTHING if p.endswith(".txt")]

# Expected lists (content and order) are what @actions/glob 0.7.0 returned for the same tree,
# minus directories: its depth-first walk in byte order, a directory's files and subdirectories
# interleaved by name.
GLOB_CASES = [
    ("**", EVERYTHING),
    ("*", EVERYTHING),  # "*" matches the directories, and a directory brings its descendants
    ("**/*.txt", TXT),
    ("dist", DIST),
    ("dist/", DIST),
    ("dist/*", DIST),
    ("dist/**", DIST),
    ("dist/**/", DIST),
    ("*.txt\n!a.txt", ["10.txt", "9.txt", "B.txt", "[x].txt", "b.txt", "c,d.txt", "x.txt"]),
    (
        "!a.txt\n*.txt",
        ["10.txt", "9.txt", "B.txt", "[x].txt", "a.txt", "b.txt", "c,d.txt", "x.txt"],
    ),
    ("**/*.txt\n!**/skip/**", [p for p in TXT if "skip" not in p]),
    (
        "dist\n!dist/sub\ndist/sub/skip/s.txt",
        ["dist/.env", "dist/app.tar.gz", "dist/sub/skip/s.txt"],
    ),
    ("!**/*.gz\ndist", DIST),
    ("?.txt", ["9.txt", "B.txt", "a.txt", "b.txt", "x.txt"]),
    ("[ab].txt", ["a.txt", "b.txt"]),
    ("[!ab].txt", ["9.txt", "B.txt", "x.txt"]),
    ("[x].txt", ["x.txt"]),
    ("\\[x\\].txt", ["[x].txt"]),
    (".*", [".github/w.yml"]),
    ("**/.env", ["dist/.env"]),
    ("a.txt/**", ["a.txt"]),  # a trailing ** also matches the path itself, a file included
    ("a.txt/\nb.txt", ["b.txt"]),  # a trailing / only matches directories
    ("a*", ["a/z.txt", "a-b/y.txt", "a.txt"]),
    ("dist/sub/skip\ndist", DIST),
]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for rel in TREE:
        write(tmp_path, rel)
    return tmp_path


def paths_of(subjects_: list[Subject]) -> list[str]:
    # Every file's content is its relative path, so the digest tells which file it was.
    by_digest = {sha256(rel.encode()): rel for rel in TREE}
    return [by_digest[s.digest["sha256"]] for s in subjects_]


@pytest.mark.parametrize(("pattern", "expected"), GLOB_CASES)
def test_glob_like_actions_glob(tree: Path, pattern: str, expected: list[str]) -> None:
    got = resolve(tree, subject_path=pattern)
    assert paths_of(got) == expected
    assert [s.name for s in got] == [os.path.basename(p) for p in expected]


def test_glob_comma_and_newline_split_with_quotes(tree: Path) -> None:
    got = resolve(tree, subject_path='a.txt, b.txt\n"c,d.txt",x.txt \n\n# comment\n,')
    assert paths_of(got) == ["a.txt", "b.txt", "c,d.txt", "x.txt"]
    # A closing quote followed by more text makes the whole field literal again (relax_quotes).
    write(tree, '"q"x.txt', b"quoted")
    [s] = resolve(tree, subject_path='"q"x.txt')
    assert s.name == '"q"x.txt'
    # A quote opens a quoted field only as a field's first character: here the comma splits.
    assert error(tree, subject_path='x, "c,d.txt"') == (
        'Could not find subject at path x, "c,d.txt"'
    )

    # A quote inside a field is literal (relax_quotes).
    assert error(tree, subject_path='x"y.txt') == 'Could not find subject at path x"y.txt'


def test_glob_unclosed_quote(tree: Path) -> None:
    assert error(tree, subject_path='a.txt\n"b.txt') == (
        "subject-path: Quote Not Closed: the parsing is finished with an opening quote at line 2"
    )


def test_glob_character_classes_and_escapes(tmp_path: Path) -> None:
    for rel in ["a1.txt", "b2.txt", "C3.txt", "d-.txt", "*.txt", "e?.txt"]:
        write(tmp_path, rel)

    def names(pattern: str) -> list[str]:
        return [s.name for s in resolve(tmp_path, subject_path=pattern)]

    assert names("[a-b][0-9].txt") == ["a1.txt", "b2.txt"]
    assert names("[^a-z]*.txt") == ["*.txt", "C3.txt"]
    assert names("[[:upper:]]*") == ["C3.txt"]
    assert names("?[[:digit:]].txt") == ["C3.txt", "a1.txt", "b2.txt"]
    assert names("d[x-].txt") == ["d-.txt"]
    assert names("\\*.txt") == ["*.txt"]
    assert names("e\\?.txt") == ["e?.txt"]
    # minimatch's "*<suffix>" shortcut tests the raw suffix: the backslash stays literal.
    assert error(tmp_path, subject_path="*\\.txt") == "Could not find subject at path *\\.txt"


def test_glob_byte_order_of_names(tmp_path: Path) -> None:
    for rel in ["é.txt", "z.txt", "Z.txt", "_.txt", "~.txt"]:
        write(tmp_path, rel)
    got = [s.name for s in resolve(tmp_path, subject_path="*")]
    assert got == ["Z.txt", "_.txt", "z.txt", "~.txt", "é.txt"]


def test_symlinks_are_followed(tmp_path: Path) -> None:
    write(tmp_path, "real/f.txt", b"target")
    (tmp_path / "link.txt").symlink_to("real/f.txt")
    (tmp_path / "linkdir").symlink_to("real")
    (tmp_path / "broken.txt").symlink_to("missing")
    (tmp_path / "real" / "loop").symlink_to("..")  # a cycle back to the workspace
    got = resolve(tmp_path, subject_path="**")
    # link.txt: named after the link, digest of its target; real/f.txt has the same name and
    # digest as linkdir/f.txt, found first, so it is a duplicate. The loop is cut at its first
    # repeat.
    assert [(s.name, s.digest["sha256"]) for s in got] == [
        ("link.txt", sha256(b"target")),
        ("f.txt", sha256(b"target")),
    ]
    assert [s.name for s in resolve(tmp_path, subject_path="linkdir/*.txt")] == ["f.txt"]
    assert error(tmp_path, subject_path="broken.txt") == "Could not find subject at path broken.txt"


def test_self_referencing_symlink_is_skipped(tmp_path: Path) -> None:
    write(tmp_path, "ok.txt")
    (tmp_path / "self").symlink_to("self")
    assert [s.name for s in resolve(tmp_path, subject_path="*")] == ["ok.txt"]


def test_only_regular_files(tmp_path: Path) -> None:
    write(tmp_path, "dir/file.txt")
    os.mkfifo(tmp_path / "dir" / "fifo")
    got = resolve(tmp_path, subject_path="dir/*")  # must not open (and hang on) the FIFO
    assert [s.name for s in got] == ["file.txt"]
    assert error(tmp_path, subject_path="dir/fifo") == "Could not find subject at path dir/fifo"


def test_search_path_below_a_file_is_not_found(tmp_path: Path) -> None:
    write(tmp_path, "a.txt")
    assert error(tmp_path, subject_path="a.txt/x") == "Could not find subject at path a.txt/x"


def test_unreadable_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "ok.txt")
    bad = write(tmp_path, "secret.txt")
    real_open = os.open

    def fake_open(path: str, flags: int, *args: int) -> int:
        if path == str(bad):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", fake_open)
    assert error(tmp_path, subject_path="*.txt") == (
        f"subject-path: cannot read {bad}: Permission denied"
    )


def test_read_error_in_a_large_file_stops_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(6):
        write(tmp_path, f"big{i}.bin", bytes([i]) * (subjects._CHUNK + 1))
    write(tmp_path, "small.bin", b"s")
    real_readv = os.readv
    failing = (tmp_path / "big3.bin").stat().st_ino

    def failing_readv(fd: int, buffers: list[bytearray]) -> int:
        if os.fstat(fd).st_ino == failing:
            raise OSError(5, "Input/output error")
        return real_readv(fd, buffers)

    before = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(os, "readv", failing_readv)
    message = error(tmp_path, subject_path="*.bin", workers=2)
    assert message == f"subject-path: cannot read {tmp_path / 'big3.bin'}: Input/output error"
    assert len(os.listdir("/proc/self/fd")) == before  # every handed-off file was closed


# --- subject-path: scale, parallelism, progress --------------------------------------------------


@pytest.fixture
def fast_tmp(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs directory if there is one: creating 10,000 files on a busy disk can take seconds."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(dir=shm, prefix="test-subjects-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_ten_thousand_files(fast_tmp: Path) -> None:
    tmp_path = fast_tmp
    root = tmp_path / "out"
    for d in range(100):
        (root / f"d{d:02}" / "x").mkdir(parents=True)
    for i in range(10_000):  # os.open: three times quicker than Path.write_bytes
        fd = os.open(root / f"d{i % 100:02}" / "x" / f"f{i:05}.bin", os.O_WRONLY | os.O_CREAT)
        os.write(fd, b"%d" % i)
        os.close(fd)
    started = time.monotonic()
    got = resolve(tmp_path, subject_path="out/**")
    elapsed = time.monotonic() - started
    assert len(got) == 10_000
    by_name = {s.name: s.digest["sha256"] for s in got}
    for i in (0, 1, 4242, 9999):
        assert by_name[f"f{i:05}.bin"] == sha256(b"%d" % i)
    # Walk order: d00/x/f00000, f00100, ... then d01/x/...
    assert [s.name for s in got[:3]] == ["f00000.bin", "f00100.bin", "f00200.bin"]
    assert elapsed < 3, elapsed  # about 0.3 s here; the bound only catches a pathology


@pytest.mark.parametrize("workers", [1, 2, 7])
def test_large_and_small_files_in_order(tmp_path: Path, workers: int) -> None:
    sizes = [10, 3 * subjects._CHUNK + 5, 0, subjects._CHUNK, subjects._CHUNK + 1, 7]
    blobs = [os.urandom(16) * (size // 16) + os.urandom(size % 16) for size in sizes]
    for i, blob in enumerate(blobs):
        write(tmp_path, f"f{i}", blob)
    got = resolve(tmp_path, subject_path="f*", workers=workers)
    assert [s.name for s in got] == [f"f{i}" for i in range(len(sizes))]
    assert [s.digest["sha256"] for s in got] == [sha256(b) for b in blobs]


def test_progress_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(4):
        write(tmp_path, f"f{i}", b"x" * 100)
    real = subjects._hash_fd

    def slow(*args: object) -> str:
        time.sleep(0.03)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(subjects, "_hash_fd", slow)
    lines: list[str] = []
    got = resolve(tmp_path, subject_path="f*", progress=lines.append, progress_interval=0.01)
    assert len(got) == 4
    assert len(lines) >= 3
    assert all(re.fullmatch(r"hashed [0-3] of 4 files \(\d+ B\)", line) for line in lines)
    assert lines[-1] != lines[0]  # the count moves


def test_no_progress_for_quick_work(tmp_path: Path) -> None:
    write(tmp_path, "f")
    lines: list[str] = []
    resolve(tmp_path, subject_path="f", progress=lines.append)
    assert lines == []


def test_size_formatting() -> None:
    assert subjects._size(5) == "5 B"
    assert subjects._size(1536) == "1.5 KiB"
    assert subjects._size(int(1.2 * 2**30)) == "1.2 GiB"
    assert subjects._size(3 * 2**40) == "3.0 TiB"


# --- subject-checksums ---------------------------------------------------------------------------

SHA512 = "b" * 128


def test_checksums_file(tmp_path: Path) -> None:
    text = (
        f"{HEX64.upper()}  app.tar.gz\r\n"  # text mode, CRLF
        f"{SHA512} *app.zip\n"  # binary mode flag
        "\n"
        "no-space-line\n"
        f"{HEX64} name with spaces\n"
        f"{HEX64}  app.tar.gz\n"  # duplicate
        f"{HEX64} ** starred\n"  # only one flag character is removed
    )
    write(tmp_path, "sub/SHA256SUMS", text.encode())
    got = resolve(tmp_path, subject_checksums="sub/SHA256SUMS")
    assert got == [
        Subject("app.tar.gz", {"sha256": HEX64}),
        Subject("app.zip", {"sha512": SHA512}),
        Subject("name with spaces", {"sha256": HEX64}),
        Subject("* starred", {"sha256": HEX64}),
    ]


def test_checksums_inline_text(tmp_path: Path) -> None:
    got = resolve(tmp_path, subject_checksums=f"{HEX64}  a\n{SHA512}  b")
    assert got == [Subject("a", {"sha256": HEX64}), Subject("b", {"sha512": SHA512})]


def test_checksums_path_names_ignore_push(tmp_path: Path) -> None:
    [s] = resolve(tmp_path, subject_checksums=f"{HEX64}  Upper", push_to_registry=True)
    assert (s.name, s.kind) == ("Upper", "file")


def test_checksums_absolute_path_and_invalid_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, "sums", f"{HEX64}  caf\xe9".encode("latin-1"))
    [s] = resolve(tmp_path / "elsewhere", subject_checksums=str(path))
    assert s.name == "caf\ufffd"


def test_checksums_directory(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    assert error(tmp_path, subject_checksums="dir") == "subject checksums file not found: dir"


def test_checksums_size_cap(tmp_path: Path) -> None:
    line = f"{HEX64}  f\n".encode()
    filler = b"x" * (524288 - len(line) - 1) + b"\n"
    write(tmp_path, "ok", line + filler)
    assert (tmp_path / "ok").stat().st_size == 524288
    assert len(resolve(tmp_path, subject_checksums="ok")) == 1
    write(tmp_path, "big", line + filler + b"x")
    assert error(tmp_path, subject_checksums="big") == (
        "subject checksums file exceeds maximum allowed size: 524288 bytes"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"{'z' * 64}  f", f"Invalid digest: {'z' * 64}"),
        (f"{HEX64}  ok\n f", "Invalid digest: "),
        ("abc  f", "Unknown digest algorithm: abc"),
        ("a" * 96 + "  f", f"Unknown digest algorithm: {'a' * 96}"),
        (f"{HEX64}  a\rb", "Invalid subject name (contains a newline): a\rb"),
    ],
)
def test_checksums_errors(tmp_path: Path, text: str, message: str) -> None:
    assert error(tmp_path, subject_checksums=text) == message
    write(tmp_path, "sums", text.encode())
    assert error(tmp_path, subject_checksums="sums") == message


def test_checksums_without_lines(tmp_path: Path) -> None:
    assert error(tmp_path, subject_checksums="missing.txt") == (
        "subject-checksums is neither a file nor checksum text: missing.txt"
    )
    write(tmp_path, "empty.txt", b"\n\nnothing-here\n")
    with pytest.raises(UsageError) as info:
        resolve(tmp_path, subject_checksums="empty.txt")
    assert info.value.message == "subject checksums file has no checksum lines: empty.txt"
    assert info.value.hint is not None and "sha256sum" in info.value.hint


def test_checksums_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "sums", f"{HEX64}  f".encode())

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("builtins.open", denied)
    assert error(tmp_path, subject_checksums="sums") == (
        "subject-checksums: cannot read sums: Permission denied"
    )


# --- artifacts list ------------------------------------------------------------------------------


def listing(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "artifacts.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_text(json.dumps(content))
    return path


def entry(name: str = "n", digest: str = f"sha256:{HEX64}", kind: str = "file") -> dict[str, str]:
    return {"name": name, "digest": digest, "kind": kind}


def test_artifacts_list(tmp_path: Path) -> None:
    doc = {
        "version": 1,
        "subjects": [
            entry("dist/app.tgz"),
            entry("ghcr.io/O/App", "sha256:" + "C" * 64, "oci"),
            entry("dist/app.tgz"),  # exact duplicate: skipped
        ],
    }
    got = resolve(tmp_path, artifacts_list=listing(tmp_path, doc))
    assert got == [
        Subject("dist/app.tgz", {"sha256": HEX64}, "file"),
        Subject("ghcr.io/O/App", {"sha256": "c" * 64}, "oci"),
    ]


def test_artifacts_list_is_ignored_when_an_input_is_given(tmp_path: Path) -> None:
    garbage = listing(tmp_path, "{not json")
    got = resolve(
        tmp_path, subject_digest=f"sha256:{HEX64}", subject_name="n", artifacts_list=garbage
    )
    assert len(got) == 1


@pytest.mark.parametrize("content", ["", "  \n\t", {"version": 1, "subjects": []}])
def test_artifacts_list_without_subjects(tmp_path: Path, content: object) -> None:
    assert error(tmp_path, artifacts_list=listing(tmp_path, content)) == ONE_OF


def test_artifacts_list_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    assert error(tmp_path, artifacts_list=path) == (
        f'Failed to read artifacts list at "{path}": No such file or directory'
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"\xef\xbb\xbf{}",
            "Artifacts list file contains a UTF-8 BOM; the file must be plain UTF-8",
        ),
        (b"\xef\xbb\xbf", "Artifacts list file contains a UTF-8 BOM; the file must be plain UTF-8"),
        ("{", "Artifacts list file contains invalid JSON"),
        ('{"version": NaN}', "Artifacts list file contains invalid JSON"),
        ("[]", "Artifacts list must be a JSON object"),
        ("null", "Artifacts list must be a JSON object"),
        ({"subjects": []}, "Unsupported artifacts list version: undefined (expected 1)"),
        ({"version": 2, "subjects": []}, "Unsupported artifacts list version: 2 (expected 1)"),
        ({"version": "1"}, 'Unsupported artifacts list version: "1" (expected 1)'),
        ({"version": True}, "Unsupported artifacts list version: true (expected 1)"),
        ({"version": 2.0}, "Unsupported artifacts list version: 2 (expected 1)"),
        ({"version": None}, "Unsupported artifacts list version: null (expected 1)"),
        ({"version": 1}, 'Artifacts list is missing a "subjects" array'),
        ({"version": 1, "subjects": {}}, 'Artifacts list is missing a "subjects" array'),
    ],
)
def test_artifacts_list_document_errors(tmp_path: Path, content: object, message: str) -> None:
    assert error(tmp_path, artifacts_list=listing(tmp_path, content)) == message


def test_artifacts_list_version_one_point_zero(tmp_path: Path) -> None:
    path = listing(tmp_path, '{"version": 1.0, "subjects": [' + json.dumps(entry()) + "]}")
    assert len(resolve(tmp_path, artifacts_list=path)) == 1


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("x", "must be a JSON object"),
        ({"digest": f"sha256:{HEX64}", "kind": "file"}, '"name" must be a non-empty string'),
        (entry(name=""), '"name" must be a non-empty string'),
        ({"name": "n", "digest": f"sha256:{HEX64}"}, '"kind" must be a string'),
        ({**entry(), "kind": 1}, '"kind" must be a string'),
        (entry(kind="blob"), 'unsupported kind "blob" (expected "file" or "oci")'),
        ({"name": "n", "kind": "oci"}, '"digest" must be a non-empty string'),
        (entry(digest=""), '"digest" must be a non-empty string'),
        (entry(digest=HEX64), 'digest must be in the format "algorithm:hex"'),
        (
            entry(digest="sha512:" + "a" * 128, kind="oci"),
            'algorithm "sha512" is not allowed for kind "oci" (allowed: sha256)',
        ),
        (entry(digest="sha256:" + "x" * 64), "digest contains invalid hex characters"),
        (entry(digest="sha256:"), "digest contains invalid hex characters"),
        (
            entry(digest="sha256:" + "a" * 63),
            'digest has 63 hex characters but "sha256" requires exactly 64',
        ),
    ],
)
def test_artifacts_list_entry_errors(tmp_path: Path, bad: object, message: str) -> None:
    doc = {"version": 1, "subjects": [entry("first"), bad]}
    assert error(tmp_path, artifacts_list=listing(tmp_path, doc)) == (
        f"Artifacts list entry 1: {message}"
    )


def test_artifacts_list_conflicting_duplicate(tmp_path: Path) -> None:
    doc = {"version": 1, "subjects": [entry("a"), entry("b"), entry("a", kind="oci")]}
    assert error(tmp_path, artifacts_list=listing(tmp_path, doc)) == (
        'Artifacts list entry 2: duplicate name "a" with conflicting kind or digest'
    )


def test_artifacts_list_with_push(tmp_path: Path) -> None:
    doc = {
        "version": 1,
        "subjects": [
            entry("GHCR.io/O/App", kind="oci"),
            entry("ghcr.io/o/app", kind="oci"),  # same after lower-casing: a duplicate
            entry("ghcr.io/o/other", "sha256:" + "b" * 64, kind="oci"),
        ],
    }
    got = resolve(tmp_path, artifacts_list=listing(tmp_path, doc), push_to_registry=True)
    assert got == [
        Subject("ghcr.io/o/app", {"sha256": HEX64}, "oci"),
        Subject("ghcr.io/o/other", {"sha256": "b" * 64}, "oci"),
    ]
    # Without push, names keep their case, so the two spellings are two subjects.
    assert len(resolve(tmp_path, artifacts_list=listing(tmp_path, doc))) == 3


def test_artifacts_list_push_conflict_after_lowercasing(tmp_path: Path) -> None:
    doc = {
        "version": 1,
        "subjects": [entry("A", kind="oci"), entry("a", "sha256:" + "b" * 64, kind="oci")],
    }
    assert error(tmp_path, artifacts_list=listing(tmp_path, doc), push_to_registry=True) == (
        'Artifacts list entry 1: duplicate name "a" with conflicting kind or digest'
    )


def test_artifacts_list_push_rejects_files(tmp_path: Path) -> None:
    doc = {"version": 1, "subjects": [entry("img", kind="oci"), entry("f.tgz")]}
    assert error(tmp_path, artifacts_list=listing(tmp_path, doc), push_to_registry=True) == (
        "push-to-registry requires an OCI subject but the discovered artifacts list contains "
        "file-kind subjects"
    )


# --- the Subject type and the module's manners ---------------------------------------------------


def test_subject_is_frozen_and_hashable() -> None:
    source = {"sha256": HEX64}
    s = Subject("n", source)
    source["sha256"] = "changed"
    assert s.digest["sha256"] == HEX64
    with pytest.raises(TypeError):
        s.digest["sha256"] = "x"  # type: ignore[index]
    with pytest.raises(AttributeError):
        s.name = "m"  # type: ignore[misc]
    assert {s, Subject("n", {"sha256": HEX64})} == {s}
    assert s != Subject("n", {"sha256": HEX64}, "oci")


def test_public_names() -> None:
    assert subjects.__all__ == ["Subject", "resolve_subjects"]


class _NoEnviron(dict[str, str]):
    def __getitem__(self, key: str) -> str:
        raise AssertionError(f"read os.environ[{key!r}]")

    def get(self, key: str, default: object = None) -> str:
        raise AssertionError(f"read os.environ[{key!r}]")

    def __contains__(self, key: object) -> bool:
        raise AssertionError(f"read os.environ[{key!r}]")

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("iterated os.environ")


def test_never_reads_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "f.txt")
    doc = listing(tmp_path, {"version": 1, "subjects": [entry()]})
    monkeypatch.setattr(os, "environ", _NoEnviron())
    assert len(resolve(tmp_path, subject_path="~/nothing\nf.txt")) == 1  # ~ without home: passwd
    assert len(resolve(tmp_path, subject_digest=f"sha256:{HEX64}", subject_name="n")) == 1
    assert len(resolve(tmp_path, subject_checksums=f"{HEX64}  f")) == 1
    assert len(resolve(tmp_path, artifacts_list=doc)) == 1


def test_hashing_threads_are_gone_afterwards(tmp_path: Path) -> None:
    write(tmp_path, "big", b"x" * (subjects._CHUNK + 1))
    write(tmp_path, "small")
    resolve(tmp_path, subject_path="*", workers=3)
    assert not [t for t in threading.enumerate() if t.name.startswith("attest-hash")]
