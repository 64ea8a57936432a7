"""Benchmark subject resolution against coreutils.

    python bench/subjects.py [--quick] [--tmp DIR] [--runs N]

1. Hashing throughput on one big file: ``resolve_subjects(subject_path=<file>)`` against
   ``sha256sum <file>``, in MB/s (10^6 bytes) and their ratio.
2. A whole subject-path run over many 4 KiB files in nested directories:
   ``resolve_subjects(subject_path="<dir>/**")`` (glob, hash, subject list) against
   ``find <dir> -type f -exec sha256sum {} +``, in wall seconds and their ratio.

The files are real data (a random MiB repeated with a counter in each MiB, so nothing is sparse
or deduplicated) in a temporary directory that is removed afterwards. Each side runs once to warm
the page cache, then ``--runs`` times; the median is reported. Full: 1 GiB and 10,000 files;
``--quick``: 64 MiB and 1,000 files.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from attest.subjects import resolve_subjects

MIB = 1 << 20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="64 MiB and 1,000 files")
    parser.add_argument("--tmp", type=Path, default=None, help="where to make the test files")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per side (median)")
    args = parser.parse_args()
    big_mib, small_count = (64, 1_000) if args.quick else (1024, 10_000)

    work = Path(tempfile.mkdtemp(prefix="attest-bench-", dir=args.tmp))
    try:
        print(f"files in {work} ({'quick' if args.quick else 'full'}), median of {args.runs}")
        bench_big_file(work, big_mib, args.runs)
        bench_many_files(work, small_count, args.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def bench_big_file(work: Path, mib: int, runs: int) -> None:
    path = work / "big.bin"
    write_big_file(path, mib)
    size = path.stat().st_size

    ours = ""

    def attest() -> None:
        nonlocal ours
        [subject] = resolve_subjects(subject_path=str(path), workspace=work)
        ours = subject.digest["sha256"]

    theirs = ""

    def coreutils() -> None:
        nonlocal theirs
        out = subprocess.run(["sha256sum", str(path)], check=True, capture_output=True, text=True)
        theirs = out.stdout.split()[0]

    t_ours, t_theirs = timed(attest, runs), timed(coreutils, runs)
    if ours != theirs:
        raise SystemExit(f"digests differ: attest {ours}, sha256sum {theirs}")
    mbps_ours, mbps_theirs = size / t_ours / 1e6, size / t_theirs / 1e6
    print(f"\n1. hashing one {mib} MiB file")
    print(f"   attest resolve_subjects  {mbps_ours:8.0f} MB/s  ({t_ours:.3f} s)")
    print(f"   sha256sum                {mbps_theirs:8.0f} MB/s  ({t_theirs:.3f} s)")
    print(f"   ratio attest/sha256sum   {mbps_ours / mbps_theirs:8.2f}x")


def bench_many_files(work: Path, count: int, runs: int) -> None:
    root = work / "tree"
    directories = write_tree(root, count)

    found = 0

    def attest() -> None:
        nonlocal found
        found = len(resolve_subjects(subject_path=f"{root}/**", workspace=work))

    script = (
        "import sys; from pathlib import Path; from attest.subjects import resolve_subjects; "
        "resolve_subjects(subject_path=sys.argv[1], workspace=Path(sys.argv[2]))"
    )
    project = str(Path(__file__).resolve().parent.parent)

    def attest_process() -> None:
        subprocess.run(
            [sys.executable, "-c", script, f"{root}/**", str(work)],
            check=True,
            cwd=project,
        )

    def coreutils() -> None:
        subprocess.run(
            ["find", str(root), "-type", "f", "-exec", "sha256sum", "{}", "+"],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    t_ours = timed(attest, runs)
    t_process = timed(attest_process, runs)
    t_theirs = timed(coreutils, runs)
    if found != count:
        raise SystemExit(f"attest found {found} subjects, expected {count}")
    print(f"\n2. subject-path '<dir>/**': {count:,} files of 4 KiB in {directories:,} directories")
    print(f"   attest resolve_subjects (in process)      {t_ours:7.3f} s")
    print(f"   attest in a new Python process            {t_process:7.3f} s")
    print(f"   find -type f -exec sha256sum {{}} +         {t_theirs:7.3f} s")
    print(f"   ratio find/attest (in process)            {t_theirs / t_ours:7.2f}x")
    print(f"   ratio find/attest (new process)           {t_theirs / t_process:7.2f}x")


def write_big_file(path: Path, mib: int) -> None:
    block = bytearray(os.urandom(MIB))
    with open(path, "wb") as f:
        for i in range(mib):
            block[:8] = i.to_bytes(8, "little")  # every MiB differs
            f.write(block)


def write_tree(root: Path, count: int) -> int:
    """``count`` files of 4 KiB, three levels of ten directories; returns the directory count."""
    data = bytearray(os.urandom(4096))
    directories = {root}
    for i in range(count):
        parent = root / f"d{i % 10}" / f"e{i // 10 % 10}" / f"f{i // 100 % 10}"
        if parent not in directories:
            parent.mkdir(parents=True, exist_ok=True)
            directories.update([parent, parent.parent, parent.parent.parent])
        data[:8] = i.to_bytes(8, "little")
        fd = os.open(parent / f"file{i}.bin", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, data)
        os.close(fd)
    return len(directories)


def timed(run: Callable[[], None], runs: int) -> float:
    run()  # warm the page cache and the imports
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


if __name__ == "__main__":
    raise SystemExit(main())
