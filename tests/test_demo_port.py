"""`claimwatch demo` with its port taken: the default port falls back to a free one (and says so); an
explicit --port says what holds it and how to choose another."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

import crawler.demo.runner as runner
from crawler.cli.app import app
from crawler.services.app import UsageError


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        yield blocker.getsockname()[1]


def test_port_holder_names_the_listening_process(taken_port: int) -> None:
    holder = runner.port_holder(taken_port)
    if holder is None:
        pytest.skip("this system does not tell which process holds a port (/proc)")
    assert holder.startswith(f"pid {os.getpid()}:")


def test_default_port_taken_falls_back_to_a_free_port(
    taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "DEFAULT_DEMO_PORT", taken_port)
    notes: list[str] = []
    with runner.start_demo_site(None, notes.append) as site:
        chosen = int(site.base_url.rsplit(":", 1)[1])
        assert chosen != taken_port
        assert site.articles()  # it serves
    (note,) = notes
    assert f"port {taken_port} is taken" in note and f"port {chosen} instead" in note


def test_explicit_port_taken_is_a_clean_error(taken_port: int) -> None:
    with pytest.raises(UsageError, match=f"port {taken_port} on 127.0.0.1 is already in use.*--port"):
        runner.start_demo_site(taken_port, lambda _message: None)
    result = CliRunner().invoke(app, ["demo", "--serve", "--port", str(taken_port)])
    assert result.exit_code == 1
    assert "already in use" in result.output and "Errno" not in result.output
    assert "Traceback" not in result.output
