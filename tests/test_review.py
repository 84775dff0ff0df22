"""Reviews and stance: verdict history, the views and aggregates with verdicts (SQLite and
PostgreSQL), the spreadsheet round trip and every bad row, `review set`, the terminal session through a
real pseudo-terminal, alert suppression, and `calibrate --from-reviews` on held-out reviews."""

from __future__ import annotations

import csv
import dataclasses
import logging
import random
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from db.models import Claim, ClaimThreshold, Document, Match, MatchReview
from db.queries import store_documents, store_matches
from db.reviews import (
    ReviewError,
    ReviewInput,
    add_reviews,
    review_history,
    review_match_rows,
    review_queue,
    reviewed_examples,
    set_verdict,
    undo_review,
)
from db.session import session_scope
from db.timeutil import utcnow

REPO = Path(__file__).resolve().parents[1]
LABELLED = REPO / "crawler" / "data" / "labelled"

CLAIM_TEXTS = {
    "c1": "The Kremlin refuses to accept that it has lost its influence in Azerbaijan.",
    "c2": "Pressure on Azerbaijanis living in Russia is meant to stir up discontent inside Azerbaijan.",
}
PASSAGES = [
    # (claim, language, passage, score)
    ("c1", "en", "Moscow still cannot accept that its influence in Baku is gone.", 0.62),
    ("c1", "en", "The Kremlin denied that it had lost any influence in Azerbaijan, calling it a myth.", 0.58),
    ("c1", "ru", "По словам эксперта, Кремль не признаёт, что потерял влияние в Азербайджане.", 0.71),
    ("c2", "en", "Officials said the raids on the diaspora aim to stir discontent in Azerbaijan.", 0.66),
    ("c2", "tr", "Diasporaya baskı, Azerbaycan'da hoşnutsuzluk yaratmayı amaçlıyor.", 0.56),
    ("c2", "en", "Grain exports through the Caspian port rose in May.", 0.551),
]


def fill(sessions: sessionmaker[Session]) -> dict[str, Any]:
    """Two claims, one document per passage (with text around the passage), one match each; stance
    predicted as the match stage does (review_match_rows)."""
    now = utcnow()
    with session_scope(sessions) as session:
        for key, claim_text in CLAIM_TEXTS.items():
            session.add(Claim(claim_set="test", key=key, text=claim_text, text_hash=key))
        session.flush()
        claims = {c.key: c.id for c in session.scalars(select(Claim))}
        records = []
        for n, (_, language, passage, _) in enumerate(PASSAGES):
            body = f"Lead sentence number {n}. {passage} Closing sentence {n}."
            records.append(
                {"url": f"https://outlet{n % 3}.example/{n}", "status": "ok", "title": f"Article {n}",
                 "outlet": f"outlet{n % 3}.example", "language": language, "text": body,
                 "published_at": now - timedelta(days=n), "match_status": "matched"}
            )  # fmt: skip
        store_documents(session, records)
        docs = {d.url: d for d in session.scalars(select(Document))}
        rows = []
        for n, (claim, _, passage, score) in enumerate(PASSAGES):
            doc = docs[f"https://outlet{n % 3}.example/{n}"]
            start = (doc.text or "").index(passage)
            rows.append(
                {"document_id": doc.id, "claim_id": claims[claim], "passage": passage, "passage_start": start,
                 "passage_end": start + len(passage), "score": score, "threshold": 0.55, "model": "m",
                 "model_revision": "r"}
            )  # fmt: skip
        rows, _ = review_match_rows(session, rows)
        store_matches(session, rows)
        matches = {m.passage: m.id for m in session.scalars(select(Match))}
    return {"claims": claims, "matches": matches}


def match_of(data: dict[str, Any], number: int) -> int:
    return data["matches"][PASSAGES[number][2]]


# --- verdicts and history --------------------------------------------------------------------------


def test_verdict_history_latest_wins_and_undo(database_url: str, sessions) -> None:  # type: ignore[no-untyped-def]
    data = fill(sessions)
    first = match_of(data, 0)
    with session_scope(sessions) as session:
        set_verdict(session, first, "wrong", "alice")
        second = set_verdict(session, first, "Restates", "bob", note="on reflection")
    with sessions() as session:
        match = session.get(Match, first)
        assert (match.verdict, match.review_id) == ("restates", second)
        assert [(r.verdict, r.reviewer) for r in review_history(session, first)] == [
            ("wrong", "alice"),
            ("restates", "bob"),
        ]
    with session_scope(sessions) as session:
        undo_review(session, second)
    with sessions() as session:
        assert session.get(Match, first).verdict == "wrong"
    with session_scope(sessions) as session, pytest.raises(ReviewError, match="unknown verdict"):
        set_verdict(session, first, "agrees", "alice")
    with session_scope(sessions) as session, pytest.raises(ReviewError, match="no match with id"):
        set_verdict(session, 999_999, "wrong", "alice")


def test_every_stored_match_has_a_predicted_stance(database_url: str, sessions) -> None:  # type: ignore[no-untyped-def]
    data = fill(sessions)
    with sessions() as session:
        stances = {
            m.id: (m.predicted_stance, m.stance_confidence, m.verdict) for m in session.scalars(select(Match))
        }
    assert all(
        s in ("restates", "rebuts", "reports") and 0 < c < 1 and v is None for s, c, v in stances.values()
    )
    assert stances[match_of(data, 1)][0] == "rebuts"  # "denied ... a myth"
    assert stances[match_of(data, 2)][0] == "reports"  # "По словам эксперта"
    assert stances[match_of(data, 3)][0] == "reports"  # "Officials said"


def test_queue_orders_by_uncertainty_then_newest_and_filters(database_url: str, sessions) -> None:  # type: ignore[no-untyped-def]
    data = fill(sessions)
    with sessions() as session:
        queue = review_queue(session)
        assert [q.match_id for q in queue][:2] == [match_of(data, 5), match_of(data, 4)]  # 0.551, 0.56
        margins = [q.margin for q in queue]
        assert margins == sorted(margins)
        item = queue[0]
        assert item.before.endswith("Lead sentence number 5. ") and item.after.startswith(" Closing")
        assert {q.language for q in review_queue(session, language="ru")} == {"ru"}
        assert {q.claim_key for q in review_queue(session, claim="c2")} == {"c2"}
        recent = review_queue(session, since=utcnow() - timedelta(days=2, hours=1))
        assert {q.match_id for q in recent} == {match_of(data, n) for n in (0, 1, 2)}
    with session_scope(sessions) as session:
        set_verdict(session, match_of(data, 5), "wrong", "alice")
    with sessions() as session:
        assert match_of(data, 5) not in {q.match_id for q in review_queue(session)}
        assert match_of(data, 5) in {q.match_id for q in review_queue(session, include_reviewed=True)}


# --- views and aggregates --------------------------------------------------------------------------


def test_views_and_aggregates_exact_with_verdicts(database_url: str, sessions) -> None:  # type: ignore[no-untyped-def]
    from tests.helpers import (
        assert_aggregates_equal_rebuild,
        assert_views_equal_direct,
        fill_random_research_data,
    )

    engine = sessions.kw["bind"]
    rng = random.Random(11)
    ids = fill_random_research_data(sessions, seed=5)
    with session_scope(sessions) as session:  # predicted stances, as the match stage stores them
        for match_id in ids["matches"]:
            stance = rng.choice(["restates", "rebuts", "reports", None])
            session.execute(update(Match).where(Match.id == match_id).values(predicted_stance=stance))
    assert_views_equal_direct(engine)
    sample = rng.sample(ids["matches"], 120)
    verdicts = ["restates", "rebuts", "reports", "wrong"]
    with session_scope(sessions) as session:
        add_reviews(session, [ReviewInput(m, rng.choice(verdicts)) for m in sample[:80]], "alice", "import")
    assert_views_equal_direct(engine)
    with session_scope(sessions) as session:  # re-reviews: wrong -> right and right -> wrong
        add_reviews(session, [ReviewInput(m, rng.choice(verdicts)) for m in sample[:40]], "bob", "terminal")
        add_reviews(session, [ReviewInput(m, "wrong") for m in sample[80:]], "bob", "set")
    assert_views_equal_direct(engine)
    with session_scope(sessions) as session:  # undo of the latest reviews
        latest = session.scalars(select(MatchReview.id).order_by(MatchReview.id.desc()).limit(25)).all()
        for review_id in latest:
            undo_review(session, review_id)
    assert_views_equal_direct(engine)
    # deletes cascading to reviews: reviewed matches, a document and a claim with reviewed matches
    with session_scope(sessions) as session:
        reviewed = session.scalars(select(Match).where(Match.verdict.is_not(None)).order_by(Match.id)).all()
        session.execute(delete(Match).where(Match.id.in_([m.id for m in reviewed[:5]])))
        session.execute(delete(Document).where(Document.id == reviewed[6].document_id))
        session.execute(delete(Claim).where(Claim.id == reviewed[-1].claim_id))
    assert_views_equal_direct(engine)
    assert_aggregates_equal_rebuild(engine)
    with engine.connect() as connection:
        wrong = connection.execute(text("SELECT COUNT(*) FROM matches WHERE verdict = 'wrong'")).scalar()
        counted = connection.execute(text("SELECT SUM(matches) FROM claim_documents")).scalar()
        originals = connection.execute(
            text("SELECT COUNT(*) FROM matches m JOIN documents d ON d.id = m.document_id "
                 "WHERE d.duplicate_of_id IS NULL AND COALESCE(m.verdict, '') <> 'wrong'")
        ).scalar()  # fmt: skip
        stats = connection.execute(
            text("SELECT SUM(matches), SUM(reviewed), SUM(wrong) FROM claim_review_stats")
        ).one()
    assert wrong > 0 and counted == originals
    assert stats[2] > 0 and stats[0] == counted + stats[2]


def test_claim_review_stats_and_match_details(database_url: str, sessions) -> None:  # type: ignore[no-untyped-def]
    from db.research import ViewQuery, view_rows
    from db.views import get_view

    data = fill(sessions)
    with session_scope(sessions) as session:
        set_verdict(session, match_of(data, 0), "restates", "alice", note="clear")
        set_verdict(session, match_of(data, 1), "rebuts", "alice")
        set_verdict(session, match_of(data, 2), "wrong", "alice")
    with sessions() as session:
        stats = {r["claim_key"]: r for r in view_rows(session, ViewQuery(get_view("claim_review_stats")))}
        details = {r["match_id"]: r for r in view_rows(session, ViewQuery(get_view("match_details")))}
        lifecycle = {r["claim_key"]: r for r in view_rows(session, ViewQuery(get_view("claim_lifecycle")))}
    c1 = stats["c1"]
    assert (c1["matches"], c1["reviewed"], c1["restates"], c1["rebuts"], c1["wrong"]) == (3, 3, 1, 1, 1)
    assert c1["precision"] == pytest.approx(2 / 3)
    assert stats["c2"]["reviewed"] == 0 and stats["c2"]["precision"] is None and stats["c2"]["matches"] == 3
    reviewed = details[match_of(data, 0)]
    assert (reviewed["verdict"], reviewed["reviewer"], reviewed["review_note"]) == (
        "restates",
        "alice",
        "clear",
    )
    assert details[match_of(data, 3)]["verdict"] is None and details[match_of(data, 3)]["predicted_stance"]
    assert details[match_of(data, 2)]["verdict"] == "wrong"  # match_details shows every match
    # the trend views leave the wrong one out and count stances (c1: restating 1, rebutting 1)
    assert (lifecycle["c1"]["documents"], lifecycle["c1"]["matches"]) == (2, 2)
    assert (lifecycle["c1"]["restating"], lifecycle["c1"]["rebutting"], lifecycle["c1"]["reporting"]) == (
        1,
        1,
        0,
    )


def test_migration_backfills_predicted_stances(database_url: str, sessions) -> None:  # type: ignore[no-untyped-def]
    from alembic import command

    from db.migrate import alembic_config
    from tests.helpers import assert_views_equal_direct

    config = alembic_config(database_url)
    command.downgrade(config, "0005")
    engine = sessions.kw["bind"]
    with engine.begin() as connection:
        for statement in (
            "INSERT INTO claims (claim_set, key, text, text_hash, active, created_at, updated_at) "
            "VALUES ('s', 'k', 'Baku left the union.', 'h', true, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            "INSERT INTO documents (url, status, fetched_at, retryable, fetch_attempts, match_status, "
            "language) VALUES ('https://x.example/1', 'ok', CURRENT_TIMESTAMP, false, 1, 'matched', 'en')",
            "INSERT INTO matches (document_id, claim_id, passage, passage_start, passage_end, score, "
            "threshold, model, model_revision, created_at) SELECT d.id, c.id, "
            "'The ministry denied that Baku left the union.', 0, 9, 0.6, 0.5, 'm', 'r', CURRENT_TIMESTAMP "
            "FROM documents d, claims c",
        ):
            connection.execute(text(statement))
    command.upgrade(config, "head")
    with sessions() as session:
        match = session.scalars(select(Match)).one()
        assert match.predicted_stance == "rebuts" and match.verdict is None
    engine.dispose()
    assert_views_equal_direct(sessions.kw["bind"])


# --- the spreadsheet round trip ------------------------------------------------------------------


def test_spreadsheet_round_trip_csv_and_xlsx(database_url: str, sessions, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from openpyxl import load_workbook

    from crawler.services.review import EXPORT_COLUMNS, export_queue, import_reviews

    fill(sessions)
    out = tmp_path / "queue.csv"
    result = export_queue(sessions, out, "csv")
    assert result.rows == len(PASSAGES)
    with out.open(encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    assert tuple(rows[0]) == EXPORT_COLUMNS
    assert {"match_id", "claim_key", "passage", "url", "predicted_stance", "verdict", "note"} <= set(rows[0])
    assert all(r["verdict"] == "" and r["predicted_stance"] for r in rows)
    assert "[[" + rows[0]["passage"] + "]]" in rows[0]["context"]
    rows[0]["verdict"], rows[0]["note"] = "wrong", "grain, not the diaspora"
    rows[1]["verdict"] = "Restates"
    with out.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    imported = import_reviews(sessions, out, "carol")
    assert (imported.stored, imported.not_reviewed) == (2, len(PASSAGES) - 2)
    with sessions() as session:
        first = session.get(Match, int(rows[0]["match_id"]))
        assert first.verdict == "wrong"
        review = session.get(MatchReview, first.review_id)
        assert (review.reviewer, review.note, review.via) == ("carol", "grain, not the diaspora", "import")
    # xlsx: the rest, then everything again with --all (re-review keeps the history)
    book_path = tmp_path / "queue.xlsx"
    assert export_queue(sessions, book_path, "xlsx").rows == len(PASSAGES) - 2
    book = load_workbook(book_path)
    sheet = book.active
    header = [c.value for c in sheet[1]]
    assert tuple(header) == EXPORT_COLUMNS
    verdict_column = header.index("verdict") + 1
    for row in range(2, sheet.max_row + 1):
        sheet.cell(row=row, column=verdict_column, value="reports")
    book.save(book_path)
    assert import_reviews(sessions, book_path, "carol").stored == len(PASSAGES) - 2
    assert export_queue(sessions, book_path, "xlsx").rows == 0
    everything = export_queue(sessions, tmp_path / "all.csv", "csv", include_reviewed=True)
    assert everything.rows == len(PASSAGES)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(MatchReview)) == len(PASSAGES)
        assert session.scalar(select(func.count()).where(Match.verdict.is_(None))) == 0


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
def test_import_rejects_every_bad_row_and_stores_nothing(
    database_url: str, sessions, tmp_path: Path, suffix: str
) -> None:  # type: ignore[no-untyped-def]
    from openpyxl import Workbook

    from crawler.services.review import ReviewImportError, import_reviews

    data = fill(sessions)
    good, other = match_of(data, 0), match_of(data, 1)
    table = [
        ["match_id", "claim_key", "verdict", "note"],
        [str(good), "c1", "restates", ""],  # row 2: fine
        ["999999", "c1", "wrong", ""],  # row 3: unknown match
        [str(other), "c1", "agrees", ""],  # row 4: unknown verdict
        [str(good), "c1", "wrong", ""],  # row 5: duplicate of row 2
        ["abc", "c1", "wrong", ""],  # row 6: not an id
        ["", "", "", ""],  # blank line: ignored
    ]
    path = tmp_path / f"bad.{suffix}"
    if suffix == "csv":
        with path.open("w", encoding="utf-8", newline="") as stream:
            csv.writer(stream).writerows(table)
    else:
        book = Workbook()
        for line in table:
            book.active.append([int(v) if v.isdigit() else (v or None) for v in line])
        book.save(path)
    with pytest.raises(ReviewImportError) as caught:
        import_reviews(sessions, path, "carol")
    problems = caught.value.problems
    assert problems == [
        "row 3: no match with id 999999",
        "row 4: unknown verdict 'agrees' (use restates, rebuts, reports, wrong or leave it empty)",
        f"row 5: match {good} again (first in row 2)",
        "row 6: match_id 'abc' is not a match id",
    ]
    assert "nothing imported" in str(caught.value)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(MatchReview)) == 0
    missing = tmp_path / f"nocol.{suffix}"
    if suffix == "csv":
        missing.write_text("match_id,note\n1,x\n", encoding="utf-8")
        with pytest.raises(ReviewError, match="no verdict column"):
            import_reviews(sessions, missing, "carol")


# --- the command line ----------------------------------------------------------------------------


def invoke(database_url: str, *args: str, env: dict[str, str] | None = None) -> Any:
    from crawler.cli.app import app

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return CliRunner().invoke(app, ["--database-url", database_url, *args], env=env or {})
    finally:
        root.handlers[:], root.level = handlers, level


def test_cli_set_export_import_stats(database_url: str, sessions, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = fill(sessions)
    target = match_of(data, 3)
    result = invoke(
        database_url, "review", "set", str(target), "reports", "--note", "quoted", "--reviewer", "dan"
    )
    assert result.exit_code == 0, result.output
    assert f"match {target}: reports" in result.output
    bad = invoke(database_url, "review", "set", str(target), "maybe")
    assert bad.exit_code == 1 and "unknown verdict 'maybe'" in bad.output and "Traceback" not in bad.output
    missing = invoke(database_url, "review", "set", "424242", "wrong")
    assert missing.exit_code == 1 and "no match with id 424242" in missing.output
    out = tmp_path / "q.csv"
    exported = invoke(database_url, "review", "export", "--format", "csv", "-o", str(out), "--claim", "c1")
    assert exported.exit_code == 0 and "3 matches written" in exported.output
    assert len(out.read_text(encoding="utf-8").splitlines()) == 4  # header + c1's three matches
    broken = tmp_path / "broken.csv"
    broken.write_text("match_id,verdict\n77777,wrong\n", encoding="utf-8")
    refused = invoke(database_url, "review", "import", str(broken))
    assert refused.exit_code == 1 and "row 2: no match with id 77777" in refused.output
    stats = invoke(database_url, "review", "stats")
    assert stats.exit_code == 0 and "precision" in stats.output
    c2 = next(line for line in stats.output.splitlines() if line.startswith("c2"))
    assert c2.split()[1:4] == ["3", "1", "1.00"]
    with sessions() as session:
        assert session.get(Match, target).verdict == "reports"


def test_interactive_session_in_a_pseudo_terminal(database_url: str, sessions, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Drive `claimwatch review` through a real pty: verdict keys, note, skip, undo, quit."""
    pexpect = pytest.importorskip("pexpect")
    from tests.helpers import cli_environment

    data = fill(sessions)
    env = cli_environment({"CLAIMWATCH_DATABASE_URL": database_url, "CLAIMWATCH_REVIEWER": "erin",
                           "COLUMNS": "120", "NO_COLOR": "1"})  # fmt: skip
    child = pexpect.spawn(
        sys.executable, ["-m", "crawler.cli", "review", "--claim", "c2"], env=env, cwd=str(tmp_path),
        encoding="utf-8", timeout=60, dimensions=(40, 120),
    )  # fmt: skip
    transcript = tmp_path / "session.txt"
    child.logfile_read = transcript.open("w", encoding="utf-8")
    child.expect("3 matches to review")
    child.expect(rf"match {match_of(data, 5)} +\(1/3\)")  # 0.551: nearest the threshold first
    child.expect("predicted stance")
    child.expect(r"\[q\]uit")
    child.send("w")
    child.expect("→ wrong")
    child.expect(rf"match {match_of(data, 4)} +\(2/3\)")
    child.expect(r"\[q\]uit")
    child.send("r")
    child.expect("→ restates")
    child.expect(r"\(3/3\)")
    child.send("u")  # undo: back to the second match
    child.expect("→ undid restates")
    child.expect(rf"match {match_of(data, 4)} +\(2/3\)")
    child.expect(r"\[q\]uit")
    child.send("n")
    child.expect("note")
    child.sendline("Turkish wording, checked")
    child.expect("now the verdict")
    child.send("p")
    child.expect("→ reports")
    child.expect(r"\(3/3\)")
    child.expect(r"\[q\]uit")
    child.send("s")
    child.expect("→ skipped")
    child.expect("queue done: 2 reviewed")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    with sessions() as session:
        assert session.get(Match, match_of(data, 5)).verdict == "wrong"
        assert session.get(Match, match_of(data, 3)).verdict is None  # skipped
        second = session.get(Match, match_of(data, 4))
        review = session.get(MatchReview, second.review_id)
        assert (second.verdict, review.note, review.reviewer, review.via) == (
            "reports", "Turkish wording, checked", "erin", "terminal"
        )  # fmt: skip
        assert len(review_history(session, match_of(data, 4))) == 1  # the undone verdict is gone
    # quitting early keeps what was reviewed
    child = pexpect.spawn(sys.executable, ["-m", "crawler.cli", "review"], env=env, cwd=str(tmp_path),
                          encoding="utf-8", timeout=60)  # fmt: skip
    child.expect(r"\[q\]uit")
    child.send("b")
    child.expect("→ rebuts")
    child.expect(r"\[q\]uit")
    child.send("q")
    child.expect("stopped: 1 reviewed")
    child.expect(pexpect.EOF)
    with sessions() as session:
        assert session.scalar(select(func.count()).where(Match.verdict == "rebuts")) == 1


# --- alerts --------------------------------------------------------------------------------------


def test_wrong_matches_never_alert_and_rebuttals_follow_the_setting(database_url: str, sessions) -> None:  # type: ignore[no-untyped-def]
    from crawler.config import load_settings
    from crawler.services.alerting import compute_digests
    from db.alerts import add_subscription, new_matches
    from pipelines.alerts import digest_text

    data = fill(sessions)
    with session_scope(sessions) as session:
        add_subscription(session, "alice@example.org")
    settings = dataclasses.replace(load_settings(environ={}), database_url=database_url, alert_to="")
    with sessions() as session:
        before = {m.match_id: m for m in new_matches(session, list(data["claims"].values()))}
    assert before[match_of(data, 1)].stance == "rebuts" and not before[match_of(data, 1)].reviewed
    with session_scope(sessions) as session:
        set_verdict(session, match_of(data, 0), "wrong", "alice")
        set_verdict(session, match_of(data, 3), "restates", "alice")
    with sessions() as session:
        after = {m.match_id: m for m in new_matches(session, list(data["claims"].values()))}
        alerts, _ = compute_digests(session, settings, utcnow())
        quiet = dataclasses.replace(settings, alert_rebuttals=False)
        no_rebuttals, _ = compute_digests(session, quiet, utcnow())
    assert match_of(data, 0) not in after and set(before) - set(after) == {match_of(data, 0)}
    assert after[match_of(data, 3)].reviewed and after[match_of(data, 3)].stance == "restates"
    covered = {p.match_id for a in alerts for p in a.covered}
    assert match_of(data, 0) not in covered and match_of(data, 1) in covered
    assert match_of(data, 1) not in {p.match_id for a in no_rebuttals for p in a.covered}
    digest = digest_text(alerts, utcnow(), 28)
    assert "REBUTTAL, predicted" in digest and "restates, reviewed" in digest


# --- stance and calibration ------------------------------------------------------------------------


def test_stance_cues_in_several_languages() -> None:
    from pipelines.stance import predict_stance

    claim = (
        "Russia's failure to win its war in Ukraine is one of the catalysts of the crisis with Azerbaijan."
    )
    cases = [
        ("en", "The war is not a catalyst of anything; officials dismissed the idea as nonsense.", "rebuts"),
        ("ru", "Эксперт заявил, что провал в Украине стал катализатором кризиса.", "reports"),
        ("uk", "Міністерство спростувало зв'язок війни з кризою.", "rebuts"),
        ("az", "Ekspert bildirib ki, Ukraynadakı uğursuzluq böhranı sürətləndirib.", "reports"),
        ("tr", "Ukrayna'daki başarısızlık krizin katalizörlerinden biri oldu.", "restates"),
        ("ka", "ექსპერტის თქმით, უკრაინაში წარუმატებლობამ კრიზისი დააჩქარა.", "reports"),
    ]  # fmt: skip
    for language, passage, expected in cases:
        prediction = predict_stance(passage, claim, language, 0.7, 0.55)
        assert prediction.stance == expected, (language, passage, prediction)
        assert 0 < prediction.confidence < 1


def test_stance_accuracy_on_held_out_labelled_passages() -> None:
    """The cue lists were tuned on stance_dev.jsonl only; the test split is the report (docs/review.md)."""
    from pipelines.stance import STANCES, evaluate_stance, load_stance_examples

    test = load_stance_examples(LABELLED / "stance_test.jsonl")
    assert {e.language for e in test} >= {"en", "ru", "uk", "az", "tr", "hy", "ka"}
    assert {e.stance for e in test} == set(STANCES)
    report = evaluate_stance(test)
    assert report.examples == len(test) >= 45
    assert report.accuracy >= 0.6  # a floor well below the reported number: regressions fail
    assert all(report.per_class[s]["recall"] > 0.4 for s in STANCES)


def sim_match(document_id: int, claim_id: int, passage: str, start: int, score: float) -> dict[str, Any]:
    return {"document_id": document_id, "claim_id": claim_id, "passage": passage, "passage_start": start,
            "passage_end": start + 9, "score": score, "threshold": 0.5, "model": "m",
            "model_revision": "r"}  # fmt: skip


def test_calibration_from_reviews_improves_held_out_precision(database_url: str, sessions) -> None:  # type: ignore[no-untyped-def]
    """Simulated reviews: wrong matches concentrate at low scores for one claim; the fitted threshold
    raises held-out precision, is stored, and the match stage then applies it."""
    from crawler.services.review import calibrate_from_reviews

    rng = random.Random(3)
    with session_scope(sessions) as session:
        claims = [Claim(claim_set="sim", key=f"k{i}", text=f"Claim {i}.", text_hash=str(i)) for i in range(3)]
        session.add_all(claims)
        session.flush()
        documents = [
            {"url": f"https://sim.example/{n}", "status": "ok", "language": "en", "text": f"Text {n}."}
            for n in range(240)
        ]
        store_documents(session, documents)
        docs = list(session.scalars(select(Document.id).order_by(Document.id)))
        rows = []
        for n, doc in enumerate(docs):
            claim = claims[n % 3]
            score = round(rng.uniform(0.5, 0.9), 4)
            rows.append(sim_match(doc, claim.id, f"Passage {n}.", 0, score))
        store_matches(session, rows)
        reviews = []
        for match in session.scalars(select(Match)):
            noisy = match.claim_id == claims[0].id  # k0: wrong below ~0.7; k1, k2: mostly right
            wrong = (match.score < 0.7 and rng.random() < 0.8) if noisy else rng.random() < 0.05
            reviews.append(ReviewInput(match.id, "wrong" if wrong else rng.choice(["restates", "reports"])))
        add_reviews(session, reviews, "sim", "import")
    result = calibrate_from_reviews(sessions, min_reviews=10, write=True)
    held = result.held_out
    assert held.reviews == 3 * (80 // 3)  # every third of each claim's 80 reviews
    assert held.precision_fitted > held.precision_default + 0.1
    assert held.recall_fitted > 0.8
    k0 = result.fits[claims[0].id]
    assert k0.threshold is not None and 0.6 < k0.threshold < 0.75
    with sessions() as session:
        stored = {t.claim_id: t.threshold for t in session.scalars(select(ClaimThreshold))}
        assert stored[claims[0].id] == pytest.approx(k0.threshold)
        # the match stage drops a new k0 match below it; the document becomes no_match
        low = sim_match(docs[0], claims[0].id, "Claim 0 again.", 20, k0.threshold - 0.01)
        high = {**low, "passage_start": 40, "score": k0.threshold + 0.01, "document_id": docs[1]}
        kept, statuses = review_match_rows(
            session, [low, high], {docs[0]: ("matched", "m"), docs[1]: ("matched", "m")}
        )
        assert [r["score"] for r in kept] == [high["score"]] and kept[0]["predicted_stance"]
        assert statuses[docs[0]] == ("no_match", "m") and statuses[docs[1]] == ("matched", "m")
        examples = reviewed_examples(session, [claims[0].id])[claims[0].id]
        assert examples.counter_examples and examples.examples
        assert not set(examples.counter_examples) & set(examples.examples)


def test_calibrate_from_reviews_cli(database_url: str, sessions) -> None:  # type: ignore[no-untyped-def]
    fill(sessions)
    nothing = invoke(database_url, "calibrate", "--from-reviews")
    assert nothing.exit_code == 1 and "no reviewed matches yet" in nothing.output
    with session_scope(sessions) as session:
        for match in session.scalars(select(Match)):
            set_verdict(session, match.id, "wrong" if match.score < 0.6 else "restates", "alice")
    result = invoke(
        database_url, "calibrate", "--from-reviews", "--write", env={"CLAIMWATCH_REVIEW_MIN_REVIEWS": "2"}
    )
    assert result.exit_code == 0, result.output
    assert "held-out third" in result.output and "stored in claim_thresholds" in result.output
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(ClaimThreshold)) >= 1


def test_report_shows_reviewed_precision_and_stances(database_url: str, sessions) -> None:  # type: ignore[no-untyped-def]
    from crawler.services.reporting import build_report

    data = fill(sessions)
    with session_scope(sessions) as session:
        set_verdict(session, match_of(data, 0), "restates", "alice")
        set_verdict(session, match_of(data, 1), "wrong", "alice")
    with sessions() as session:
        page = build_report(session)
    reviews = page.split("<table id=reviews>", 1)[1].split("</table>", 1)[0]
    assert "<td>c1</td><td class=n>3</td><td class=n>2</td><td class=n>0.50</td>" in reviews
    assert "restates <small>(reviewed)</small>" in page and "<small>(predicted)</small>" in page
    assert PASSAGES[1][2] not in page  # reviewed wrong: not among the latest matches


def test_export_refuses_unknown_format(database_url: str, sessions, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fill(sessions)
    result = invoke(database_url, "review", "export", "--format", "ods", "-o", str(tmp_path / "x.ods"))
    assert result.exit_code == 1 and "unknown format 'ods'" in result.output


def test_reviewed_passages_become_the_matchers_examples(database_url: str, sessions) -> None:  # type: ignore[no-untyped-def]
    from crawler.services.matching import active_claim_specs
    from pipelines.claims import claim_examples

    data = fill(sessions)
    with session_scope(sessions) as session:
        set_verdict(session, match_of(data, 0), "restates", "alice")
        set_verdict(session, match_of(data, 1), "wrong", "alice")
    with sessions() as session:
        specs = {spec.id: spec for spec in active_claim_specs(session)}
        first, second = session.get(Match, match_of(data, 0)), session.get(Match, match_of(data, 1))
        assert first is not None and second is not None
        examples = claim_examples(specs[str(first.claim_id)])
        counters = claim_examples(specs[str(second.claim_id)], "counter_examples")
    assert " ".join(first.passage.split()) in examples
    assert " ".join(second.passage.split()) in counters
