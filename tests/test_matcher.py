"""The one matcher (pipelines/matcher.py): routes by language, claims in the passage's language, the
verifier, and agreement between `claimwatch score` and the match stage's stored matches."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipelines.claims import Claim, load_claims
from pipelines.matcher import ClaimMatcher, guess_language
from pipelines.verifier import FEATURES, Verifier

SEED_CLAIMS = Path(__file__).resolve().parents[1] / "crawler" / "data" / "seed_claims.yaml"
DIMENSION = 256


class WordsEncoder:
    """A stand-in for a model: the normalised bag of a text's hashed words (texts sharing words are
    close; no two languages share any)."""

    def __init__(self, name: str, languages: frozenset[str] | None) -> None:
        self.model_name, self.revision, self.languages = name, "1", languages
        self.encoded = 0

    def encode(self, texts: Any, kind: str = "passage") -> np.ndarray:
        self.encoded += len(texts)
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, int(hashlib.sha256(word.encode()).hexdigest(), 16) % DIMENSION] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.clip(norms, 1e-12, None)


CLAIMS = [
    Claim(
        "a",
        "The raid in Yekaterinburg was deliberate and not an accident",
        extra={
            "translations": {"ru": "Рейд в Екатеринбурге был преднамеренным, а не случайностью"},
            "examples": ["Officials insist the Yekaterinburg raid was planned on purpose"],
            "counter_examples": [
                "Investigators say the Yekaterinburg deaths were an accident of heart failure"
            ],
        },
    ),
    Claim("b", "Turkey urges Central Asian states to stop relying on Russia"),
]


def matcher_with_routes(verifier: Verifier | None = None, threshold: float | None = -1.0) -> ClaimMatcher:
    matcher = ClaimMatcher(CLAIMS, verifier=verifier, threshold=threshold)
    matcher.add_route(WordsEncoder("english", frozenset({"en"})))
    matcher.add_route(WordsEncoder("multi", None))
    return matcher


def example_verifier() -> Verifier:
    """A hand-set verifier that trusts the example margin and the same-language cosine."""
    weights = np.zeros(len(FEATURES))
    weights[FEATURES.index("example_margin")] = 3.0
    weights[FEATURES.index("same_language")] = 2.0
    count = len(FEATURES)
    return Verifier(weights, -1.0, np.zeros(count), np.ones(count), 0.5, {"ru": 0.6}, version="lr-test")


def test_routes_follow_the_language_and_translations_count_first() -> None:
    matcher = matcher_with_routes()
    english = "The raid in Yekaterinburg was deliberate, says a minister."
    russian = "Рейд в Екатеринбурге был преднамеренным, а не случайностью, считают в Баку."
    results = matcher.match([english, russian, ""], ["en", "ru", "en"], top_k=2)
    assert [r.model for r in results] == ["english", "multi", "english"]
    assert results[0].matches[0].claim_id == "a" and results[2].matches == []
    ru = results[1].matches[0]
    assert ru.claim_id == "a"
    # compared with the Russian text of the claim: the bag-of-words "model" shares no English words
    assert ru.components["same_language"] > 0.5 > ru.components["cosine"]
    untranslated = next(m for m in results[1].matches if m.claim_id == "b")
    assert untranslated.components["same_language"] == untranslated.components["cosine"]


def test_a_language_no_route_covers_is_not_scored() -> None:
    matcher = ClaimMatcher(CLAIMS, verifier=None, threshold=-1.0)
    matcher.add_route(WordsEncoder("english", frozenset({"en"})))
    [result] = matcher.match(["Рейд в Екатеринбурге был преднамеренным."], ["ru"])
    assert not result.scored and result.matches == []
    assert not matcher.covers(["en", "ru"]) and matcher.covers(["en"])


def test_the_verifier_scores_candidates_and_is_recorded() -> None:
    matcher = matcher_with_routes(example_verifier(), threshold=None)
    texts = [
        "Officials insist the Yekaterinburg raid was planned on purpose, a deliberate act.",
        "Investigators say the Yekaterinburg deaths were an accident of heart failure.",
    ]
    asserting, contradicting = matcher.match(texts, ["en", "en"], top_k=3)
    assert asserting.threshold == 0.5
    assert [m.claim_id for m in asserting.matches] == ["a"]
    best = asserting.matches[0]
    assert best.score == best.components["verifier"] and best.components["verifier_version"] == "lr-test"
    assert best.components["score"] == best.score  # the match's score is the verifier's
    assert "first_stage" in best.components
    assert contradicting.matches == []  # nearer its counter-example than its example
    assert matcher.verifier_seconds > 0 and matcher.first_stage_seconds > 0
    [ru] = matcher.match(["Рейд в Екатеринбурге был преднамеренным."], ["ru"])
    assert ru.threshold == 0.6  # the verifier's Russian threshold


def test_without_a_verifier_the_first_stage_decides() -> None:
    matcher = matcher_with_routes(None, threshold=0.3)
    [result] = matcher.match(["The raid in Yekaterinburg was deliberate and not an accident."], ["en"])
    assert [m.claim_id for m in result.matches] == ["a"]
    assert result.matches[0].score == result.matches[0].components["first_stage"]
    assert "verifier" not in result.matches[0].components


def test_guess_language_of_short_and_long_texts() -> None:
    assert guess_language("Рейд в Екатеринбурге был преднамеренным, считают эксперты.") == "ru"
    assert guess_language("Baku says no") is not None
    assert guess_language("12 34") is None


def test_the_match_stage_stores_what_the_matcher_finds(tmp_path: Path) -> None:
    """score_batch (the crawl's match stage) is the matcher's output, row for row."""
    from crawler.services.matching import score_batch

    matcher = matcher_with_routes(example_verifier(), threshold=None)
    texts = [
        ("en", "Officials insist the Yekaterinburg raid was planned on purpose, a deliberate act."),
        ("ru", "Рейд в Екатеринбурге был преднамеренным, а не случайностью."),
        (None, "Turkey urges Central Asian states to stop relying on Russia."),
    ]
    claims = [dataclasses.replace(c, id=str(n + 1)) for n, c in enumerate(CLAIMS)]
    matcher.claims = claims
    for route in matcher.routes:
        route.claims = claims
    documents = [
        type("Doc", (), {"id": n + 10, "text": text, "language": language})()
        for n, (language, text) in enumerate(texts)
    ]
    scored = score_batch(documents, matcher, top_k=5, run_id=1)
    direct = matcher.match([t for _, t in texts], [lang for lang, _ in texts], top_k=5)
    for document, result in zip(documents, direct, strict=True):
        rows = [r for r in scored.rows if r["document_id"] == document.id]
        assert [(str(r["claim_id"]), r["score"], r["passage"]) for r in rows] == [
            (m.claim_id, m.score, m.passage) for m in result.matches
        ]
        assert all(r["score_components"]["verifier_version"] == "lr-test" for r in rows)
        assert scored.statuses[document.id][1] == result.model


@pytest.mark.slow
def test_score_agrees_with_the_pipelines_stored_matches(tmp_path: Path) -> None:
    """`claimwatch score` on documents' texts gives the matches the match stage stored for them."""
    from sqlalchemy import select

    from crawler.config import load_settings
    from crawler.services.app import initialise, open_sessions
    from crawler.services.matching import run_match
    from db.models import Claim as ClaimRow
    from db.models import Match
    from db.queries import store_documents
    from db.session import session_scope
    from pipelines.language import detect_language
    from tests.test_cli import claimwatch

    texts = [
        "Baku, 3 July. In the view of many analysts, the Kremlin has still not come to terms with the "
        "fact that its sway over Azerbaijan is gone. A simple apology from Vladimir Putin to Ilham "
        "Aliyev over the airliner shot down near Grozny would have ended the matter; instead Moscow "
        "raised the stakes.",
        "По мнению бакинских экспертов, Кремль так и не смирился с тем, что потерял влияние в "
        "Азербайджане. Путину достаточно было извиниться перед Алиевым за сбитый самолёт.",
    ]
    database = f"sqlite:///{tmp_path / 'agree.db'}"
    env = {"CLAIMWATCH_DATABASE_URL": database, "CLAIMWATCH_CACHE_DIR": str(tmp_path / "cache")}
    settings = load_settings(environ=env)
    initialise(settings)
    sessions = open_sessions(settings)
    records = [
        {
            "url": f"https://example.org/{n}",
            "status": "ok",
            "match_status": "pending",
            "text": text,
            "language": detect_language(text),
        }
        for n, text in enumerate(texts)
    ]
    with session_scope(sessions) as session:
        store_documents(session, records)
    assert run_match(settings, sessions).status == "succeeded"
    with sessions() as session:
        keys = {row.id: row.key for row in session.scalars(select(ClaimRow))}
        stored = [
            (m.document_id, keys[m.claim_id], round(m.score, 5), m.passage)
            for m in session.scalars(select(Match).order_by(Match.document_id, Match.score.desc()))
        ]
    inputs = "".join(
        json.dumps({"id": n + 1, "text": t}, ensure_ascii=False) + "\n" for n, t in enumerate(texts)
    )
    result = claimwatch(
        "score", "--claims", str(SEED_CLAIMS), "--input", "-", cwd=tmp_path, env=env, stdin=inputs
    )
    assert result.returncode == 0, result.stderr[-3000:]
    scored = [
        (line["id"], m["claim_id"], round(m["score"], 5), m["passage"])
        for line in map(json.loads, result.stdout.splitlines())
        for m in line["matches"]
    ]
    assert stored and {d for d, *_ in stored} == {1, 2}  # both languages matched
    assert scored == stored
    assert {c.id for c in load_claims(SEED_CLAIMS)} >= {claim for _, claim, _, _ in scored}
