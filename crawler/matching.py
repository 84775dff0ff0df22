"""The match stage: embeds pending documents' passages and stores their matches against claims.

Resumable: documents are taken in batches of ``match_batch_documents``; each batch commits its
matches together with the documents' new ``match_status``, so an interrupted stage continues
where it stopped and never stores a match twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crawler.config import Settings
from crawler.runner import StageResult, result_of
from db.models import Document
from db.queries import (
    DatabaseEmbeddingCache,
    active_claims,
    add_run_counters,
    documents_by_id,
    finish_run,
    pending_document_ids,
    set_match_status,
    start_run,
    store_matches,
)
from db.session import session_scope
from pipelines.claims import Claim as ClaimSpec
from pipelines.embed import Encoder, ModelLoadError, load_encoder
from pipelines.match import ClaimIndex, default_threshold, match_texts

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


def covers_language(encoder: Encoder, language: str | None) -> bool:
    if encoder.languages is None:
        return True
    return language is not None and language.split("-")[0].lower() in encoder.languages


def load_configured_encoder(settings: Settings, show_progress: bool = False) -> Encoder:
    return load_encoder(
        settings.model,
        batch_size=settings.encode_batch_size,
        languages=settings.language_set(),
        show_progress=show_progress,
    )


@dataclass
class Route:
    """One encoder with its claim index and threshold; documents go to the first route covering
    their language."""

    encoder: CountingEncoder
    index: ClaimIndex
    threshold: float


def route_for(routes: Sequence[Route], language: str | None) -> Route | None:
    return next((r for r in routes if covers_language(r.encoder, language)), None)


def match_batch(
    session: Session, documents: Sequence[Document], routes: Sequence[Route], top_k: int, run_id: int
) -> dict[str, int]:
    rows = []
    scored: list[int] = []
    routed = {d.id: route_for(routes, d.language) if d.text else None for d in documents}
    not_scored = [ident for ident, route in routed.items() if route is None]
    before = sum(r.encoder.encoded for r in routes)
    for route in routes:
        mine = [d for d in documents if routed[d.id] is route]
        if not mine:
            continue
        results = match_texts(
            route.encoder, route.index, [d.text or "" for d in mine], threshold=route.threshold, top_k=top_k
        )
        for document, matches in zip(mine, results, strict=True):
            scored.append(document.id)
            rows.extend(
                {
                    "document_id": document.id,
                    "claim_id": int(match.claim_id),
                    "passage": match.passage,
                    "passage_start": match.start,
                    "passage_end": match.end,
                    "score": match.score,
                    "threshold": route.threshold,
                    "model": route.encoder.model_name,
                    "model_revision": route.encoder.revision,
                    "crawl_run_id": run_id,
                }
                for match in matches
            )
    stored = store_matches(session, rows)
    matched_ids = {row["document_id"] for row in rows}
    for route in routes:
        model = route.encoder.model_name
        mine = [i for i in scored if routed[i] is route]
        set_match_status(session, [i for i in mine if i in matched_ids], "matched", model)
        set_match_status(session, [i for i in mine if i not in matched_ids], "no_match", model)
    set_match_status(session, not_scored, "not_scored", routes[0].encoder.model_name)
    return {
        "documents_matched": len(scored),
        "passages_encoded": sum(r.encoder.encoded for r in routes) - before,
        "matches_stored": stored,
    }


def load_multilingual(settings: Settings, main: Encoder) -> Encoder | None:
    """The encoder for languages the main model does not cover, or None (not configured, or not
    installed: then those documents stay not_scored, with a warning)."""
    if not settings.multilingual_model or main.languages is None:
        return None
    try:
        return load_encoder(settings.multilingual_model, batch_size=settings.encode_batch_size)
    except ModelLoadError as exc:
        logger.warning(
            "multilingual model unavailable, non-%s documents stay not_scored: %s", main.languages, exc
        )
        return None


def pending_languages_uncovered(session: Session, encoder: Encoder) -> bool:
    languages = session.scalars(
        select(Document.language).where(Document.match_status == "pending").distinct()
    )
    return any(not covers_language(encoder, language) for language in languages)


def run_match(
    settings: Settings,
    sessions: sessionmaker[Session],
    encoder: Encoder | None = None,
    progress: ProgressCallback | None = None,
    limit: int | None = None,
    multilingual: Encoder | None = None,
) -> StageResult:
    """Match every pending document against the active claims."""
    with session_scope(sessions) as session:
        run_id = start_run(session, "match").id
    started = time.monotonic()
    try:
        counting = CountingEncoder(encoder or load_configured_encoder(settings))
        threshold = (
            settings.match_threshold
            if settings.match_threshold is not None
            else default_threshold(settings.model)
        )
        with session_scope(sessions) as session:
            claims = [
                ClaimSpec(id=str(c.id), text=c.text, claim_set=c.claim_set) for c in active_claims(session)
            ]
            if not claims:
                raise RuntimeError("no active claims: load a claims file with `claimwatch claims load FILE`")
            cache = DatabaseEmbeddingCache(session)
            routes = [Route(counting, ClaimIndex.build(counting, claims, cache=cache), threshold)]
            pending = pending_document_ids(session, limit=limit)
            if pending and pending_languages_uncovered(session, counting):
                other = multilingual if multilingual is not None else load_multilingual(settings, counting)
                if other is not None:
                    second = CountingEncoder(other)
                    index = ClaimIndex.build(second, claims, cache=cache)
                    routes.append(Route(second, index, default_threshold(second.model_name)))
        total = len(pending)
        done = 0
        for start in range(0, total, settings.match_batch_documents):
            ids = pending[start : start + settings.match_batch_documents]
            with session_scope(sessions) as session:
                documents = [d for d in documents_by_id(session, ids) if d.match_status == "pending"]
                counters = match_batch(session, documents, routes, settings.match_top_k, run_id)
                add_run_counters(session, run_id, counters)
            done += len(ids)
            if progress is not None:
                progress(done, total)
        with session_scope(sessions) as session:
            finish_run(
                session,
                run_id,
                "succeeded",
                stats={
                    "threshold": threshold,
                    "model": counting.model_name,
                    "model_revision": counting.revision,
                    "claims": len(claims),
                    "routes": [
                        {
                            "model": r.encoder.model_name,
                            "threshold": r.threshold,
                            "passages": r.encoder.encoded,
                        }
                        for r in routes
                    ],
                },
            )
    except BaseException as exc:
        with session_scope(sessions) as session:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            finish_run(session, run_id, status, error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    with sessions() as session:
        return result_of(session, run_id, time.monotonic() - started)
