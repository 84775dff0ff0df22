"""`claimwatch report`: the HTML page on both backends, rendered by headless Chromium (Debian `chromium`)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crawler.cli.app import app
from crawler.services.reporting import _link, build_report

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail("headless Chromium is required in CI (.ci/run installs the Debian package)")
    pytest.skip("headless Chromium is not installed (apt-get install -y chromium; CI installs it)")


def screenshot(html: Path, png: Path, profile: Path, size: str = "1280,1600") -> None:
    command = [
        chromium(),
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        f"--window-size={size}",
        f"--screenshot={png}",
        html.resolve().as_uri(),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0 and png.exists(), completed.stderr[-2000:]


def coloured_share(png: Path) -> float:
    """Share of clearly coloured pixels: the page itself is black, grey and white text."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)
    spread = pixels.max(axis=2) - pixels.min(axis=2)
    return float((spread > 30).mean())


def test_report_contents_on_both_backends(research_data) -> None:  # type: ignore[no-untyped-def]
    with research_data.sessions() as session:
        page = build_report(session)
    assert page.startswith("<!DOCTYPE html>") and page.count('id="heatmap"') == 1
    assert page.count('class="trend"') == 3  # seed-01, seed-02, seed-03 (seed-04 never matched)
    assert "<script" not in page and not re.search(r'src="(?!data:image/png;base64,)', page)
    assert '<a href="https://tass.example/news/1"' in page and "copy.example" not in page
    assert "<td>tass.example</td>" in page  # top outlets


def test_links_only_for_web_urls() -> None:
    assert "href" not in _link("javascript:alert(1)", "x") and _link("https://a.example/?q=<b>", "<t>") == (
        '<a href="https://a.example/?q=&lt;b&gt;" rel="noopener noreferrer nofollow">&lt;t&gt;</a>'
    )


def test_report_renders_in_headless_chromium(research_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    if research_data.backend != "sqlite":
        pytest.skip("the page is the same on both backends; rendered once")
    chromium()
    output = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["--database-url", research_data.url, "report", "--output", str(output)])
    assert result.exit_code == 0, result.output
    png = tmp_path / "report.png"
    screenshot(output, png, tmp_path / "profile")
    with_plots = coloured_share(png)
    # The same page with every image broken: what the page looks like when plots do not render.
    broken = tmp_path / "broken.html"
    broken.write_text(
        re.sub(r"data:image/png;base64,[^\"]+", "data:image/png;base64,AAAA", output.read_text())
    )
    screenshot(broken, tmp_path / "broken.png", tmp_path / "profile-broken")
    without_plots = coloured_share(tmp_path / "broken.png")
    assert with_plots > 0.03, f"plots did not render: {with_plots:.2%} coloured pixels"
    assert without_plots < 0.005 and with_plots > 5 * without_plots, (with_plots, without_plots)
    print(f"coloured pixels: {with_plots:.2%} with plots, {without_plots:.2%} with broken images")
