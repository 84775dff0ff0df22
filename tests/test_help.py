"""Every command's --help renders, and every option and argument of every command says what it does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer
from typer.testing import CliRunner

from crawler.cli.app import app


def commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, command) of the app and every command under it (typer's own click-like classes)."""
    yield path, group
    for name, command in sorted(getattr(group, "commands", {}).items()):
        yield from commands(command, (*path, name))


def test_every_help_renders_and_every_parameter_has_help() -> None:
    runner = CliRunner()
    missing = []
    seen = 0
    for path, command in commands(typer.main.get_command(app)):
        result = runner.invoke(app, [*path, "--help"], terminal_width=100)
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output
        if path and not hasattr(command, "commands"):
            assert (command.help or "").strip(), f"`claimwatch {' '.join(path)}` has no description"
        for param in command.params:
            if not (getattr(param, "help", None) or "").strip():
                missing.append(f"claimwatch {' '.join(path)} {param.name}")
        seen += 1
    assert seen > 30 and not missing, missing


def test_score_threshold_is_the_fused_score() -> None:
    result = CliRunner().invoke(app, ["score", "--help"], terminal_width=200)
    text = " ".join(result.output.split())
    assert "fused" in text and "cosine score" not in text.lower()
