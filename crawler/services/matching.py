"""The match stage: embeds pending documents' passages and stores their matches against claims.

Resumable and shareable: documents are claimed in batches of ``match_batch_documents``; each batch
commits its matches together with the documents' new ``match_status``, so an interrupted stage
continues where it stopped and never stores a match twice, and several matchers (``claimwatch match
--worker`` on any number of machines, the matcher of ``claimwatch run`` overlapping its crawl) share
the pending documents without taking one twice (see ``Matcher``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from crawler.config import Settings
from crawler.services.archive import ArchiveHook
from crawler.services.crawling import StageResult, result_of
from db.archive import replace_passage_vectors
from db.models import Document
from db.queries import (
    DatabaseEmbeddingCache,
    active_claims,
    add_run_counters,
    claim_pending_documents,
    count_pending_documents,
    finish_run,
    set_match_status,
    start_run,
    still_pending_ids,
    store_matches,
)
from db.reviews import review_match_rows, reviewed_examples
from db.session import session_scope
from pipelines.claims import Claim as ClaimSpec
from pipelines.claims import with_examples
from pipelines.embed import load_encoder
from pipelines.encoding import EmbeddingCache, Encoder, ModelLoadError
from pipelines.match import default_threshold
from pipelines.matcher import NO_VERIFIER, ClaimMatcher, MatchRoute
from pipelines.matcher import covers_language as covers_language
from pipelines.segment import Passage
from pipelines.status import MatchStatus, RunStatus

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]


class CountingEncoder:
    """Wraps an encoder to count the texts it embeds and the seconds it spends (throughput)."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.model_name = inner.model_name
        self.revision = inner.revision
        self.languages = inner.languages
        self.encoded = 0
        self.seconds = 0.0

    def encode(self, texts: Sequence[str], **kwargs: Any) -> np.ndarray:
        started = time.perf_counter()
        vectors = self.inner.encode(texts, **kwargs)
        self.seconds += time.perf_counter() - started
        self.encoded += len(texts)
        return vectors


def load_configured_encoder(
    settings: Settings, model: str | None = None, show_progress: bool = False
) -> Encoder:
    """The main encoder as configured (model, batch size, languages, backend); ``model`` overrides
    the configured model name."""
    return load_encoder(
        model or settings.model,
        batch_size=settings.encode_batch_size,
        languages=settings.language_set(),
        show_progress=show_progress,
        backend=settings.encoder_backend,
        cache_dir=settings.cache_dir or None,
        threads=settings.encoder_threads or None,
    )


def active_claim_specs(session: Session) -> list[ClaimSpec]:
    """The active claims as the matcher takes them, with the passages researchers reviewed as more
    examples (restates, rebuts, reports: about the claim) and counter-examples (wrong)."""
    claims = list(active_claims(session))
    reviewed = reviewed_examples(session, [c.id for c in claims])
    specs = []
    for c in claims:
        spec = ClaimSpec(id=str(c.id), text=c.text, claim_set=c.claim_set, extra=c.extra or {})
        if c.id in reviewed:
            spec = with_examples(spec, reviewed[c.id].examples, reviewed[c.id].counter_examples)
        specs.append(spec)
    return specs


def build_matcher(
    settings: Settings,
    claims: Sequence[ClaimSpec],
    cache: EmbeddingCache | None,
    model: str | None = None,
    languages: Sequence[str | None] = (),
    verifier: bool = True,
    threshold: float | None = None,
    show_progress: bool = False,
    main: Encoder | None = None,
    multilingual: Encoder | None = None,
) -> ClaimMatcher:
    """The matcher of ``claimwatch score`` and the match stage: the main encoder's route, the
    multilingual route when one of ``languages`` needs it, the verifier (unless ``verifier`` is
    false) and the threshold override (``threshold``, else the setting)."""
    matcher = ClaimMatcher(
        claims,
        verifier=NO_VERIFIER if verifier else None,
        threshold=threshold if threshold is not None else settings.match_threshold,
    )
    matcher.add_route(main or load_configured_encoder(settings, model, show_progress=show_progress), cache)
    add_multilingual_route(settings, matcher, languages, cache, multilingual)
    return matcher


def add_multilingual_route(
    settings: Settings,
    matcher: ClaimMatcher,
    languages: Sequence[str | None],
    cache: EmbeddingCache | None,
    encoder: Encoder | None = None,
) -> bool:
    """Add the multilingual route (once) when a text's language is not covered yet; whether added."""
    if len(matcher.routes) != 1 or matcher.covers(languages):
        return False
    main = matcher.routes[0].encoder
    other = encoder or load_multilingual(settings, main)
    if other is None:
        return False
    matcher.add_route(other if isinstance(other, CountingEncoder) else CountingEncoder(other), cache)
    return True


@dataclass
class ScoredBatch:
    """The encoder's results for a batch of documents, not yet written."""

    rows: list[dict[str, Any]]
    statuses: dict[int, tuple[str, str]]  # document id → (match_status, model)
    passages: int
    archive: list[dict[str, Any]] = field(default_factory=list)  # passage_vectors rows (archive hook)


class ScoredText(Protocol):
    """What scoring needs of a document besides its passages."""

    id: int
    language: str | None


def score_encoded(
    matcher: ClaimMatcher,
    route: MatchRoute,
    documents: Sequence[ScoredText],
    encoded: Sequence[tuple[Sequence[Passage], np.ndarray]],
    top_k: int,
    run_id: int,
) -> tuple[list[dict[str, Any]], dict[int, tuple[str, str]]]:
    """Match rows and match statuses of documents whose passages and vectors ``route`` encoded, by
    ``ClaimMatcher.match_encoded``: the one scoring function of the live match stage and of backfill
    over archived vectors (crawler/services/backfill.py)."""
    rows: list[dict[str, Any]] = []
    statuses: dict[int, tuple[str, str]] = {}
    weights = route.index.fusion.as_dict()
    results = matcher.match_encoded(route, encoded, [d.language for d in documents], top_k=top_k)
    for document, result in zip(documents, results, strict=True):
        model = result.model or ""
        statuses[document.id] = (MatchStatus.MATCHED if result.matches else MatchStatus.NO_MATCH, model)
        rows.extend(
            {
                "document_id": document.id,
                "claim_id": int(match.claim_id),
                "passage": match.passage,
                "passage_start": match.start,
                "passage_end": match.end,
                "score": match.score,
                "score_components": {**match.components, "weights": weights},
                "threshold": result.threshold,
                "model": model,
                "model_revision": result.revision,
                "crawl_run_id": run_id,
            }
            for match in result.matches
        )
    return rows, statuses


def score_batch(
    documents: Sequence[Document],
    matcher: ClaimMatcher,
    top_k: int,
    run_id: int,
    archive: ArchiveHook | None = None,
) -> ScoredBatch:
    """Encode and match a batch (no database access) with the matcher ``claimwatch score`` uses:
    each document goes through the route covering its language; documents no route covers are
    'not_scored'. With ``archive``, each route's encoded sentences are kept for the passage archive
    (rounded to their stored float16 form first: those are the vectors scored)."""
    rows: list[dict[str, Any]] = []
    statuses: dict[int, tuple[str, str]] = {}
    archived: list[dict[str, Any]] = []
    with_text = [d for d in documents if d.text]
    matcher.prepare([d.language for d in with_text])  # claim texts first: only passages count below
    counting = [r.encoder for r in matcher.routes if isinstance(r.encoder, CountingEncoder)]
    before = sum(e.encoded for e in counting)
    for route, positions in matcher.partition([d.language for d in with_text]):
        mine = [with_text[n] for n in positions]
        encoded = matcher.encode(route, [d.text or "" for d in mine])
        if archive is not None:  # the archive hook (issue 13): rounds the vectors in place
            archived.extend(archive.capture(route.index.model_key, mine, encoded))
        route_rows, route_statuses = score_encoded(
            matcher, route, mine, matcher.passages_of(encoded), top_k, run_id
        )
        rows.extend(route_rows)
        statuses.update(route_statuses)
    for document in documents:
        if document.id not in statuses:
            statuses[document.id] = (MatchStatus.NOT_SCORED, matcher.routes[0].encoder.model_name)
    return ScoredBatch(rows, statuses, sum(e.encoded for e in counting) - before, archived)


def write_batch(session: Session, scored: ScoredBatch, keep: set[int] | None = None) -> dict[str, int]:
    """Store a scored batch's matches and the documents' new match_status in the caller's
    transaction; with ``keep``, only for those documents (the others were matched meanwhile)."""
    statuses = {i: s for i, s in scored.statuses.items() if keep is None or i in keep}
    rows = [row for row in scored.rows if row["document_id"] in statuses]
    rows, statuses = review_match_rows(session, rows, statuses)  # stance; reviewed per-claim thresholds
    stored = store_matches(session, rows)
    if scored.archive:  # the archive hook (issue 13): same transaction as the matches
        replace_passage_vectors(session, [row for row in scored.archive if row["document_id"] in statuses])
    groups: dict[tuple[str, str], list[int]] = {}
    for ident, key in statuses.items():
        groups.setdefault(key, []).append(ident)
    for (status, model), ids in sorted(groups.items()):
        set_match_status(session, sorted(ids), status, model)
    return {
        "documents_matched": sum(status != MatchStatus.NOT_SCORED for status, _ in statuses.values()),
        "passages_encoded": scored.passages,
        "matches_stored": stored,
    }


def load_multilingual(settings: Settings, main: Encoder) -> Encoder | None:
    """The encoder for languages the main model does not cover, or None (not configured, or not
    installed: then those documents stay not_scored, with a warning)."""
    if not settings.multilingual_model or main.languages is None:
        return None
    try:
        return load_encoder(
            settings.multilingual_model,
            batch_size=settings.encode_batch_size,
            threads=settings.encoder_threads or None,
        )
    except ModelLoadError as exc:
        logger.warning(
            "multilingual model unavailable, non-%s documents stay not_scored: %s", main.languages, exc
        )
        return None


def begin_immediate(session: Session) -> None:
    """On SQLite, start the session's transaction as a write transaction at once (BEGIN IMMEDIATE):
    the claim's re-check and the writes then see no concurrent writer. No-op elsewhere."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("BEGIN IMMEDIATE"))


class Matcher:
    """Claims batches of pending documents and matches them; several matchers (processes, machines)
    may share one database.

    PostgreSQL: a batch is claimed with ``SELECT … FOR UPDATE SKIP LOCKED`` and encoded, stored and
    marked in that same transaction, so concurrent workers never take the same document, and a
    worker killed mid-batch (its connection drops, the transaction rolls back) leaves the batch
    pending for the others. SQLite: writers are serialised by the database, and holding its single
    write lock while encoding would stall the crawl's inserts for seconds; so the batch is read,
    encoded outside any transaction, then written in one short BEGIN IMMEDIATE transaction that
    first re-checks which documents are still pending (documents another matcher finished
    meanwhile are dropped from the batch: encoded twice at worst, never stored twice).
    """

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        run_id: int,
        main: CountingEncoder,
        claims: list[ClaimSpec],
        multilingual: Encoder | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.run_id = run_id
        self.claims = claims
        self.threshold = (
            settings.match_threshold
            if settings.match_threshold is not None
            else default_threshold(settings.model)
        )
        self.matcher = ClaimMatcher(claims, threshold=settings.match_threshold)
        with session_scope(sessions) as session:
            self.matcher.add_route(main, DatabaseEmbeddingCache(session))
        self._multilingual = multilingual
        self._multilingual_tried = False
        self.archive = ArchiveHook.from_settings(settings)  # the passage archive (issue 13)
        self.postgres = sessions.kw["bind"].dialect.name == "postgresql"

    def _ensure_routes(self, documents: Sequence[Document]) -> None:
        """Load the multilingual encoder the first time a document needs it."""
        if self._multilingual_tried:
            return
        languages = [d.language for d in documents if d.text]
        if self.matcher.covers(languages):
            return
        self._multilingual_tried = True
        with session_scope(self.sessions) as session:
            add_multilingual_route(
                self.settings, self.matcher, languages, DatabaseEmbeddingCache(session), self._multilingual
            )

    def step(self, limit: int) -> int:
        """Claim and match one batch of at most ``limit`` documents; the number claimed (0: none
        pending)."""
        top_k = self.settings.match_top_k
        if self.postgres:
            with session_scope(self.sessions) as session:
                documents = claim_pending_documents(session, limit)
                if not documents:
                    return 0
                self._ensure_routes(documents)
                scored = score_batch(documents, self.matcher, top_k, self.run_id, self.archive)
                counters = write_batch(session, scored)
                add_run_counters(session, self.run_id, counters)
            self._archived(scored)
            return len(documents)
        with self.sessions() as session:
            documents = claim_pending_documents(session, limit)  # closing detaches them, loaded
        if not documents:
            return 0
        self._ensure_routes(documents)
        scored = score_batch(documents, self.matcher, top_k, self.run_id, self.archive)
        with session_scope(self.sessions) as session:
            begin_immediate(session)
            keep = still_pending_ids(session, list(scored.statuses))
            counters = write_batch(session, scored, keep)
            add_run_counters(session, self.run_id, counters)
        if len(keep) < len(scored.statuses):
            logger.info(
                "%d documents were matched by another matcher meanwhile", len(scored.statuses) - len(keep)
            )
        self._archived(scored)
        return len(documents)

    def _archived(self, scored: ScoredBatch) -> None:
        """After a batch committed: the archive hook updates the vector index."""
        if self.archive is not None and scored.archive:
            self.archive.batch_written(self.sessions, sorted({row["model_key"] for row in scored.archive}))

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()

    def stats(self) -> dict[str, Any]:
        routes = self.matcher.routes
        main = routes[0].encoder
        return {
            "threshold": self.threshold,
            "model": main.model_name,
            "model_revision": main.revision,
            "claims": len(self.claims),
            "routes": [
                {
                    "model": r.encoder.model_name,
                    "threshold": self.matcher.threshold_for(r, None),
                    "passages": getattr(r.encoder, "encoded", 0),
                }
                for r in routes
            ],
            "verifier_version": self.matcher.verifier_version,
            "first_stage_seconds": round(self.matcher.first_stage_seconds, 3),
            "verifier_seconds": round(self.matcher.verifier_seconds, 3),
        }


def run_match(
    settings: Settings,
    sessions: sessionmaker[Session],
    encoder: Encoder | None = None,
    progress: ProgressCallback | None = None,
    limit: int | None = None,
    multilingual: Encoder | None = None,
    *,
    producing: Callable[[], bool] | None = None,
    idle_exit: float | None = 0.0,
    poll: float = 1.0,
    stop: threading.Event | None = None,
    run_id: int | None = None,
) -> StageResult:
    """Match pending documents against the active claims, in claimed batches, as one 'match' run.

    Ends when nothing is pending — once ``producing()`` (e.g. "the crawl is still running") is false
    and the queue has stayed empty for ``idle_exit`` seconds (None: never; a worker polls every
    ``poll`` seconds) — or after ``limit`` documents, or when ``stop`` is set (after the batch).
    ``run_id``: an existing crawl_runs row of kind 'match' to record into (default: a new one).
    """
    if run_id is None:
        with session_scope(sessions) as session:
            run_id = start_run(session, "match", pid=os.getpid()).id
    started = time.monotonic()
    stop = stop or threading.Event()
    try:
        # asked before counting: a producer that has ended has committed everything it stored
        nothing_coming = producing is None or not producing()
        with session_scope(sessions) as session:
            claims = active_claim_specs(session)
            total = count_pending_documents(session)
        if not claims:
            raise RuntimeError("no active claims: load a claims file with `claimwatch claims load FILE`")
        if encoder is None and total == 0 and idle_exit == 0 and nothing_coming:
            # nothing to match and nothing coming: do not spend seconds loading the model
            with session_scope(sessions) as session:
                stats = {"model": settings.model, "claims": len(claims)}
                finish_run(session, run_id, RunStatus.SUCCEEDED, stats=stats)
            with sessions() as session:
                return result_of(session, run_id, time.monotonic() - started)
        counting = CountingEncoder(encoder or load_configured_encoder(settings))
        matcher = Matcher(settings, sessions, run_id, counting, claims, multilingual)
        done = 0
        idle_since: float | None = None
        while not stop.is_set() and (limit is None or done < limit):
            # asked before claiming: a producer that has ended has committed everything it stored
            still_producing = producing is not None and producing()
            size = (
                settings.match_batch_documents
                if limit is None
                else min(settings.match_batch_documents, limit - done)
            )
            claimed = matcher.step(size)
            if claimed:
                done += claimed
                idle_since = None
                if progress is not None:
                    progress(done, max(total, done))
                continue
            if not still_producing:
                idle_since = idle_since if idle_since is not None else time.monotonic()
                if idle_exit is not None and time.monotonic() - idle_since >= idle_exit:
                    break
            stop.wait(poll)
        matcher.close()
        with session_scope(sessions) as session:
            status = RunStatus.INTERRUPTED if stop.is_set() else RunStatus.SUCCEEDED
            finish_run(session, run_id, status, stats=matcher.stats())
    except BaseException as exc:
        with session_scope(sessions) as session:
            status = RunStatus.INTERRUPTED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED
            finish_run(session, run_id, status, error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    with sessions() as session:
        return result_of(session, run_id, time.monotonic() - started)
