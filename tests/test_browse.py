"""`claimwatch browse`: Datasette on 127.0.0.1 serves the views and research questions, read-only."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import start_claimwatch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def browse_url(research_data, tmp_path: Path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    try:
        import datasette  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("Datasette is required in CI (make install installs the [browse] extra)")
        pytest.skip('Datasette is an optional extra: pip install -e ".[browse]"')
    if research_data.backend != "sqlite":
        pytest.skip("Datasette serves SQLite files")
    process = start_claimwatch(
        ["--database-url", research_data.url, "browse", "--port", "0"],
        tmp_path,
        {},
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()  # "serving PATH read-only at http://127.0.0.1:PORT/NAME (...)"
        found = re.search(r"(http://127\.0\.0\.1:\d+/\w+)", line)
        assert found, line + (process.stderr.read() if process.poll() is not None else "")
        yield found.group(1)
    finally:
        process.terminate()
        process.wait(timeout=30)


def get_json(url: str, deadline: float = 30) -> object:
    started = time.monotonic()
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.URLError as exc:
            if isinstance(exc, urllib.error.HTTPError) or time.monotonic() - started > deadline:
                raise
            time.sleep(0.2)


def test_browse_serves_views_and_canned_queries(browse_url: str) -> None:
    daily = get_json(f"{browse_url}/claim_daily.json?_shape=array&claim_key=seed-01")
    assert isinstance(daily, list) and sum(row["documents"] for row in daily) == 3
    dormant = get_json(f"{browse_url}/dormant_claims.json?_shape=array&days=30")
    assert [row["claim_key"] for row in dormant] == ["seed-03"]  # type: ignore[index]
    tables = get_json(f"{browse_url}.json")
    views = {view["name"] for view in tables["views"]} if isinstance(tables, dict) else set()  # type: ignore[index]
    assert {"claim_daily", "match_details", "source_health"} <= views


def test_browse_is_read_only(browse_url: str) -> None:
    get_json(f"{browse_url}.json")  # up
    query = urllib.parse.urlencode({"sql": "DELETE FROM claims", "_shape": "array"})
    with pytest.raises(urllib.error.HTTPError):
        get_json(f"{browse_url}.json?{query}")
    remaining = get_json(
        f"{browse_url}.json?"
        + urllib.parse.urlencode({"sql": "SELECT COUNT(*) AS n FROM claims", "_shape": "array"})
    )
    assert remaining == [{"n": 4}]
