"""Fact-checkers' claims (schema.org ClaimReview, Fact Check Tools responses) loaded as claims: every
shape of tests/data/claimreview/, stable ids, the review kept in claim columns, shown by `claims list`,
claim_lifecycle and digests."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from crawler.cli.app import app
from crawler.services.app import load_claims_into
from db.alerts import claim_refs
from db.models import Claim as ClaimRow
from db.session import session_scope
from pipelines.alerts import ClaimRef
from pipelines.claimreview import load_claim_file, looks_like_claimreview, parse_claimreview, review_id
from pipelines.claims import ClaimsFileError

DATA = Path(__file__).parent / "data" / "claimreview"


def by_url(path: Path) -> dict[str, Any]:
    return {c.extra["review_url"]: c for c in load_claim_file(path)}


def test_single_object() -> None:
    (claim,) = load_claim_file(DATA / "single.json")
    url = "https://factdesk.example.org/checks/2025/caspian-pipeline-halt"
    assert claim.id == review_id(url) and claim.id.startswith("cr-") and len(claim.id) == 19
    assert claim.text.startswith("Azerbaijan halted all gas exports")
    assert claim.claim_set == "single"
    assert claim.extra["verdict"] == "False"
    assert claim.extra["claimant"] == "A. Commentator"
    assert claim.extra["reviewer"] == "Example Fact Desk"
    assert claim.extra["reviewed_at"] == "2025-11-21T00:00:00+00:00"
    assert claim.extra["claim_date"] == "2025-11-18T00:00:00+00:00"
    assert claim.extra["language"] == "en"


def test_list_with_variants_and_a_review_left_out() -> None:
    parsed = parse_claimreview((DATA / "list.json").read_text(encoding="utf-8"), DATA / "list.json")
    claims = {c.extra["review_url"]: c for c in parsed.claims}
    assert len(claims) == 2 and len(parsed.skipped) == 1 and "has no url" in parsed.skipped[0]
    airline = claims["https://factdesk.example.org/checks/2025/airline-ban?utm_source=feed"]
    # the id comes from the canonical address: the tracking parameter does not change it
    assert airline.id == review_id("https://factdesk.example.org/checks/2025/airline-ban")
    assert airline.extra["language"] == "en"  # a Language object's alternateName
    assert airline.extra["reviewed_at"] == "2025-12-02T08:30:00+00:00"  # to UTC
    assert airline.extra["claimant"] == "Channel Nine Talk"
    quota = claims["https://proverka.example.ru/2025/transit-quota"]
    assert quota.text.startswith("Москва") and quota.extra["reviewer"] == "Proverka Example"
    assert quota.extra["verdict"] == "Half true"


def test_graph_of_a_page() -> None:
    (claim,) = load_claim_file(DATA / "graph.jsonld")
    assert claim.extra["review_url"] == "https://checks.example.az/2025/diaspora-arrests"
    assert claim.extra["verdict"] == "Misleading" and claim.extra["language"] == "az"


def test_html_page_with_ld_json() -> None:
    (claim,) = load_claim_file(DATA / "review_page.html")
    assert claim.extra["verdict"] == "Unproven" and claim.extra["claimant"] == "B. Blogger"


def test_fact_check_tools_response() -> None:
    claims = by_url(DATA / "factcheck_api.json")
    assert len(claims) == 3  # one claim per review: the first claim has two
    first = claims["https://factdesk.example.org/checks/2025/ambassador-recalled"]
    assert first.text == "Baku recalled its ambassador from Moscow on 1 December."
    assert first.extra["claimant"] == "Social media posts"
    assert first.extra["verdict"] == "False" and first.extra["reviewer"] == "Example Fact Desk"
    assert first.extra["review_title"] == "No, Baku did not recall its ambassador"
    second = claims["https://second.example.com/fact-check/ambassador"]
    assert second.extra["reviewer"] == "second.example.com"  # publisher without a name: its site
    assert claims["https://proverka.example.ru/2025/tomatoes"].extra["language"] == "ru"
    assert "claimant" not in claims["https://proverka.example.ru/2025/tomatoes"].extra


def test_jsonl_of_reviews_and_detection(tmp_path: Path) -> None:
    lines = (DATA / "single.json").read_text(encoding="utf-8").replace("\n", " ")
    jsonl = tmp_path / "reviews.jsonl"
    jsonl.write_text(lines + "\n" + lines + "\n", encoding="utf-8")
    assert len(load_claim_file(jsonl)) == 1  # the same review twice counts once
    assert not looks_like_claimreview('{"id": "m1", "text": "An own claim."}\n')
    assert not looks_like_claimreview("claims:\n  - {id: a, text: b}\n")
    own = tmp_path / "own.jsonl"
    own.write_text('{"id": "m1", "text": "Baku and Moscow sign a transit deal."}\n', encoding="utf-8")
    assert [c.id for c in load_claim_file(own)] == ["m1"]  # other files go to pipelines/claims.py


def test_no_usable_review_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"@type": "ClaimReview", "url": "https://x.example/r"}', encoding="utf-8")
    with pytest.raises(ClaimsFileError, match="no usable ClaimReview.*no claim text"):
        load_claim_file(bad)


def test_loaded_into_columns_idempotent_and_shown(sessions: Any, database_url: str, monkeypatch: Any) -> None:
    with session_scope(sessions) as session:
        name, first = load_claims_into(session, DATA / "factcheck_api.json")
    assert name == "factcheck_api" and first.added == 3
    with session_scope(sessions) as session:
        _, again = load_claims_into(session, DATA / "factcheck_api.json")
    assert (again.added, again.updated, again.unchanged) == (0, 0, 3)
    with sessions() as session:
        row = session.scalars(
            select(ClaimRow).where(
                ClaimRow.review_url == "https://factdesk.example.org/checks/2025/ambassador-recalled"
            )
        ).one()
        assert (row.verdict, row.claimant, row.reviewer, row.language) == (
            "False",
            "Social media posts",
            "Example Fact Desk",
            "en",
        )
        assert row.reviewed_at == datetime(2025, 12, 2)
        assert row.extra is not None and row.extra["review_title"].startswith("No, Baku")
        assert "verdict" not in row.extra  # kept in its column, not twice
        life = session.execute(
            text("SELECT verdict, claimant, review_url FROM claim_lifecycle WHERE claim_key = :k"),
            {"k": row.key},
        ).one()
        assert tuple(life) == ("False", "Social media posts", row.review_url)
        refs = {r.key: r for r in claim_refs(session)}
    line = refs[row.key].review_line()
    assert line == (
        "Fact-check: False (Example Fact Desk) · claimed by Social media posts · "
        "https://factdesk.example.org/checks/2025/ambassador-recalled"
    )
    monkeypatch.setenv("CLAIMWATCH_DATABASE_URL", database_url)
    listed = CliRunner().invoke(app, ["claims", "list"])
    assert listed.exit_code == 0
    fields = next(x for x in listed.output.splitlines() if row.key in x).split("\t")
    assert fields[4:] == ["False", "Social media posts", row.review_url]


def test_review_line_only_with_a_review() -> None:
    assert ClaimRef(1, "s", "k", "t").review_line() is None
    hostile = ClaimRef(1, "s", "k", "t", verdict="False", review_url="javascript:alert(1)")
    assert hostile.review_line() == "Fact-check: False"
