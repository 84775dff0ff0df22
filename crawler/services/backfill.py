"""``claimwatch match --backfill``: score the passage archive against the current claims without
encoding any document.

Which documents: every archived document whose match stage ran before the claims last changed
(``claims.updated_at``: a claim added, edited or deactivated by ``claims load``); documents matched
since then were scored against the current claims already. How: the archived sentence vectors are
turned back into the live matcher's ``EncodedText``, whose passages (sentences, windows averaged
from the sentences' vectors, the whole of a short text) are scored by ``score_encoded`` →
``ClaimMatcher.match_encoded`` — the path the live match stage uses — with the same matcher (routes,
claims with their reviewed examples, first stage, verifier, thresholds, top-k) and the same review
step (stance, reviewed per-claim thresholds). Since the live stage scores the float16-rounded vectors
it archives, the stored rows are exactly those ``match --rematch`` would store.

Against *all* active claims, not the new ones alone: the lexical score component is BM25 relative
to the text's best claim over the whole claim set, with IDF over the claim set, so adding a claim
can change an existing claim's fused scores too; ``match --rematch`` stores those rows, so backfill
must as well to equal it. It costs scoring (a matrix product per document), not encoding.
``--claim``/``--claim-set`` narrow what is stored (and which claims' changes count).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from crawler.config import Settings
from crawler.services.crawling import StageResult, result_of
from crawler.services.matching import (
    CountingEncoder,
    Matcher,
    active_claim_specs,
    load_configured_encoder,
    score_encoded,
)
from db.archive import (
    ArchivedDocument,
    ArchiveError,
    archive_counts,
    changed_claims,
    claims_changed_at,
    count_stale_documents,
    stale_documents,
    unarchived_stale,
)
from db.models import Claim
from db.queries import active_claims, add_run_counters, finish_run, set_match_status, start_run, store_matches
from db.reviews import review_match_rows
from db.session import session_scope
from pipelines.encoding import Encoder
from pipelines.match import EncodedText
from pipelines.matcher import MatchRoute
from pipelines.segment import Passage
from pipelines.status import RunStatus
from pipelines.vector_index import from_bytes

ProgressCallback = Callable[[int, int], None]


class BackfillError(RuntimeError):
    """Backfill cannot run (no claims, unknown claim, empty archive)."""


def encoded_text(document: ArchivedDocument) -> EncodedText:
    """An archived document as the live matcher's EncodedText (sentences in order, then the whole)."""
    text = document.text
    sentences = [Passage(text[s:e], s, e) for s, e, whole, _ in document.rows if not whole]
    wholes = [Passage(text[s:e], s, e) for s, e, whole, _ in document.rows if whole]
    blobs = [blob for *_, whole, blob in document.rows if not whole]
    blobs += [blob for *_, whole, blob in document.rows if whole]
    return EncodedText(text, sentences, wholes[0] if wholes else None, from_bytes(blobs))


@dataclass(frozen=True)
class BackfillOutcome:
    result: StageResult
    claims: int  # claims whose changes triggered the backfill (new, edited, deactivated)
    documents: int
    unarchived: int  # documents scored before the change that have no archived vectors


def run_backfill(
    settings: Settings,
    sessions: sessionmaker[Session],
    encoder: Encoder | None = None,
    multilingual: Encoder | None = None,
    claim_set: str | None = None,
    claim_keys: Sequence[str] = (),
    progress: ProgressCallback | None = None,
    batch: int = 200,
) -> BackfillOutcome:
    """Score the archived documents scored before the claims last changed; a crawl_runs row of kind
    'backfill' records it (passages_encoded 0)."""
    with session_scope(sessions) as session:
        claims = active_claims(session)
        if not claims:
            raise BackfillError("no active claims: load a claims file with `claimwatch claims load FILE`")
        if not archive_counts(session):
            raise ArchiveError(
                "the passage archive is empty: nothing to backfill (match documents with archive_passages "
                "on, or `claimwatch match --rematch` once to archive documents matched before)"
            )
        targets = narrowed(session, claims, claim_set, claim_keys)
        changed_at = claims_changed_at(session, None if targets is None else [c.id for c in targets])
        stale = count_stale_documents(session, changed_at) if changed_at else 0
        trigger = changed_claims(session, changed_at, target_ids_of(targets)) if stale and changed_at else 0
        run_id = start_run(session, "backfill", pid=os.getpid()).id
        specs = active_claim_specs(session)  # as the match stage takes them (reviewed examples too)
    started = time.monotonic()
    target_ids = target_ids_of(targets)
    try:
        done = 0
        unarchived = 0
        if stale and changed_at is not None:
            counting = CountingEncoder(encoder or load_configured_encoder(settings))
            matcher = Matcher(settings, sessions, run_id, counting, specs, multilingual)
            with sessions() as session:
                keys = sorted(archive_counts(session))
            for key in keys:
                after = 0
                while True:
                    with sessions() as session:
                        documents = stale_documents(session, key, changed_at, after, batch)
                    if not documents:
                        break
                    after = documents[-1].id
                    matcher._ensure_routes(documents)  # the multilingual route, when a document needs it
                    for route, positions in matcher.matcher.partition([d.language for d in documents]):
                        if route.index.model_key != key:
                            continue  # archived by a model revision that no longer scores these
                        mine = [documents[n] for n in positions]
                        store_scored(sessions, matcher, route, mine, settings.match_top_k, run_id, target_ids)
                    done += len(documents)
                    if progress is not None:
                        progress(done, max(stale, done))
            with sessions() as session:
                unarchived = unarchived_stale(
                    session, [route.index.model_key for route in matcher.matcher.routes], changed_at
                )
        with session_scope(sessions) as session:
            stats: dict[str, Any] = {"claims_changed": trigger, "documents": done, "unarchived": unarchived}
            finish_run(session, run_id, RunStatus.SUCCEEDED, stats=stats)
    except BaseException as exc:
        with session_scope(sessions) as session:
            status = RunStatus.INTERRUPTED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED
            finish_run(session, run_id, status, error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    with sessions() as session:
        result = result_of(session, run_id, time.monotonic() - started)
    return BackfillOutcome(result, trigger, done, unarchived)


def store_scored(
    sessions: sessionmaker[Session],
    matcher: Matcher,
    route: MatchRoute,
    documents: Sequence[ArchivedDocument],
    top_k: int,
    run_id: int,
    target_ids: set[int] | None,
) -> int:
    """Score archived documents with the live scoring function and store the rows in one
    transaction (with ``target_ids``, only those claims' rows, and the documents stay stale)."""
    if not documents:
        return 0
    claim_matcher = matcher.matcher
    encoded = claim_matcher.passages_of([encoded_text(d) for d in documents])
    rows, statuses = score_encoded(claim_matcher, route, documents, encoded, top_k, run_id)
    with session_scope(sessions) as session:
        rows, statuses = review_match_rows(session, rows, statuses)  # as write_batch does
        if target_ids is not None:
            rows = [row for row in rows if row["claim_id"] in target_ids]
        stored = store_matches(session, rows)
        if target_ids is None:  # scored against every active claim: no longer stale
            groups: dict[tuple[str, str], list[int]] = {}
            for ident, status_model in statuses.items():
                groups.setdefault(status_model, []).append(ident)
            for (status, model), ids in sorted(groups.items()):
                set_match_status(session, sorted(ids), status, model)
        counters = {"documents_matched": len(documents), "passages_encoded": 0, "matches_stored": stored}
        add_run_counters(session, run_id, counters)
    return stored


def target_ids_of(targets: list[Claim] | None) -> set[int] | None:
    return None if targets is None else {c.id for c in targets}


def narrowed(
    session: Session, claims: list[Claim], claim_set: str | None, claim_keys: Sequence[str]
) -> list[Claim] | None:
    """The claims ``--claim-set``/``--claim`` name (None: all); BackfillError for an unknown one."""
    if claim_set is None and not claim_keys:
        return None
    chosen = [c for c in claims if claim_set is None or c.claim_set == claim_set]
    if claim_keys:
        known = {c.key for c in chosen}
        unknown = [key for key in claim_keys if key not in known]
        if unknown:
            raise BackfillError(
                f"no active claim {', '.join(unknown)}" + (f" in {claim_set}" if claim_set else "")
            )
        chosen = [c for c in chosen if c.key in set(claim_keys)]
    if not chosen:
        raise BackfillError(f"no active claims in claim set {claim_set!r}")
    return chosen
