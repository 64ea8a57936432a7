from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .servers import Registry, start_registry
from .tsa import TimestampServer, start_timestamp_server

#: Registry kinds and whether each serves the referrers API.
API_KINDS = ("olareg", "ggcr-referrers")
TAG_KINDS = ("distribution", "olareg-noapi")
ALL_KINDS = API_KINDS + TAG_KINDS


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def registry_of(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Registry]]:
    """Start each registry kind once per session, on first use."""
    started: dict[str, Registry] = {}
    with contextlib.ExitStack() as stack:

        def get(kind: str) -> Registry:
            if kind not in started:
                workdir = tmp_path_factory.mktemp(kind)
                started[kind] = stack.enter_context(start_registry(kind, workdir))
            return started[kind]

        yield get


@pytest.fixture(scope="session")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TimestampServer]:
    """The real timestamp authority, once per session."""
    with start_timestamp_server(tmp_path_factory.mktemp("tsa")) as server:
        yield server
