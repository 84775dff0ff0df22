"""``claimwatch search``: the archived passages nearest in meaning to a text.

The text is encoded by each configured encoder (the main model, the multilingual one) whose model
revision has archived passages — as a query (e5's ``query:`` prompt) — and looked up in that
revision's vector index; the candidates are re-scored exactly from the archived float16 vectors,
filtered (language, date, source) in SQL, and merged. Scores of different models are not on one
scale (e5's cosines crowd into 0.7-1), so hits are ranked by where their score lies between the
model's calibrated match threshold (the score a passage needs to count as restating a claim) and 1:
``(score - threshold) / (1 - threshold)``; each hit reports its own cosine ``score``. The
multilingual model maps languages into one space: an English query finds Russian passages.

With filters that leave few of the nearest candidates, the search falls back to exact search over
the passages that pass the filters (SQL first, then a dot product), so a filter never hides a hit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from crawler.config import Settings
from crawler.services.archive import load_index
from crawler.services.matching import load_configured_encoder, load_multilingual
from db.archive import (
    ArchiveError,
    PassageHit,
    archive_counts,
    filtered_ids,
    passage_details,
    passage_ids,
    vectors_by_id,
)
from pipelines.encoding import Encoder, model_key
from pipelines.match import default_threshold
from pipelines.vector_index import VectorIndex, from_bytes

# candidates taken from the index (at least; OVERSAMPLE per hit wanted), re-scored exactly: the
# int8 HNSW graph's recall@10 at a million passages rises with them (docs/benchmarks.md)
CANDIDATES = 2000
OVERSAMPLE = 10
# exact search over at most this many filtered rows
EXACT_LIMIT = 400_000


@dataclass(frozen=True)
class SearchHit:
    score: float
    passage: str
    start: int
    end: int
    document_id: int
    title: str | None
    url: str
    outlet: str | None
    language: str | None
    date: str | None
    model: str

    def as_json(self) -> dict[str, Any]:
        """The ``--format jsonl`` line (without the model)."""
        row = asdict(self)
        row.pop("model")
        return row


@dataclass(frozen=True)
class Filters:
    language: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    source: str | None = None

    @property
    def any(self) -> bool:
        return any(value is not None for value in (self.language, self.since, self.until, self.source))

    def as_kwargs(self) -> dict[str, Any]:
        return {"language": self.language, "since": self.since, "until": self.until, "source": self.source}


def search_encoders(settings: Settings, sessions: sessionmaker[Session]) -> dict[str, Encoder]:
    """The configured encoders whose model revision has archived passages, by model key; a clean
    ArchiveError for an empty archive or one holding only other model revisions."""
    with sessions() as session:
        counts = archive_counts(session)
    if not counts:
        raise ArchiveError(
            "the passage archive is empty: nothing to search (match documents with archive_passages on)"
        )
    main = load_configured_encoder(settings)
    encoders = {model_key(main): main}
    if any(key not in encoders for key in counts):
        other = load_multilingual(settings, main)
        if other is not None:
            encoders[model_key(other)] = other
    found = {key: encoder for key, encoder in encoders.items() if key in counts}
    if not found:
        raise ArchiveError(
            f"unknown model revision: the archive holds {', '.join(sorted(counts))}, the configured "
            f"models are {', '.join(sorted(encoders))} (set CLAIMWATCH_MODEL, or rematch)"
        )
    return found


def nearest(
    sessions: sessionmaker[Session],
    settings: Settings,
    key: str,
    query: np.ndarray,
    limit: int,
    filters: Filters,
    indexes: dict[str, VectorIndex],
    candidates: int = CANDIDATES,
) -> list[tuple[float, PassageHit]]:
    """(exact cosine, passage) of the ``limit`` nearest passages of one model revision."""
    index = indexes.get(key)
    if index is None:
        index = indexes[key] = load_index(settings, sessions, key)
    ids, _ = index.search(query, max(limit * OVERSAMPLE, candidates))
    with sessions() as session:
        hits = passage_details(session, [int(i) for i in ids], **filters.as_kwargs())
        if filters.any and len(hits) < limit:
            subset = filtered_ids(session, key, **filters.as_kwargs())
            if len(subset) <= EXACT_LIMIT:
                blobs = vectors_by_id(session, subset)
                scores = from_bytes([blobs[i] for i in subset]) @ query if subset else np.zeros(0)
                best = [subset[i] for i in np.argsort(-scores)[:limit]]
                hits = passage_details(session, best)
        blobs = vectors_by_id(session, list(hits))
    scored = [(float(from_bytes([blobs[i]])[0] @ query), hit) for i, hit in hits.items()]
    scored.sort(key=lambda item: (-item[0], item[1].id))
    return scored[:limit]


def search_archive(
    settings: Settings,
    sessions: sessionmaker[Session],
    text: str,
    filters: Filters | None = None,
    limit: int = 10,
    encoders: dict[str, Encoder] | None = None,
    indexes: dict[str, VectorIndex] | None = None,
    candidates: int = CANDIDATES,
) -> list[SearchHit]:
    """The ``limit`` archived passages nearest to ``text``, best first (see the module doc).
    ``indexes``: loaded indexes by model key, kept for the next search (loaded when missing)."""
    filters = filters or Filters()
    indexes = {} if indexes is None else indexes
    encoders = encoders if encoders is not None else search_encoders(settings, sessions)
    ranked: list[tuple[float, SearchHit]] = []
    for key, encoder in encoders.items():
        query = encoder.encode([text], kind="claim")[0].astype(np.float32)
        threshold = default_threshold(encoder.model_name)
        for score, hit in nearest(sessions, settings, key, query, limit, filters, indexes, candidates):
            result = SearchHit(
                score=round(score, 6),
                passage=hit.passage,
                start=hit.start,
                end=hit.end,
                document_id=hit.document_id,
                title=hit.title,
                url=hit.url,
                outlet=hit.outlet or hit.source,
                language=hit.language,
                date=hit.date.date().isoformat() if hit.date else None,
                model=encoder.model_name,
            )
            ranked.append(((score - threshold) / max(1.0 - threshold, 1e-6), result))
    ranked.sort(key=lambda item: (-item[0], item[1].document_id, item[1].start))
    return [hit for _, hit in ranked[:limit]]


SEMANTIC_SEARCH_SQL = """
SELECT round(json_extract(n.value, '$[1]'), 3) AS score,
       substr(d.text, pv.passage_start + 1, pv.passage_end - pv.passage_start) AS passage,
       d.title, d.url, d.outlet, pv.language,
       date(coalesce(d.published_at, d.fetched_at)) AS date, d.id AS document_id
FROM json_each(claimwatch_nearest(:text, :limit)) AS n
JOIN passage_vectors AS pv ON pv.id = json_extract(n.value, '$[0]')
JOIN documents AS d ON d.id = pv.document_id
ORDER BY n.key
""".strip()


class DatasetteSearch:
    """A small Datasette plugin for `claimwatch browse`: the SQL function ``claimwatch_nearest(text,
    limit)`` returns the nearest archived passages as a JSON array of ``[passage_vectors.id, score]``
    (``search_archive``: same encoders, index and ranking), which the canned query
    ``semantic_search`` joins to the passages and documents. The encoders load on the first call."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session]) -> None:
        self.settings = settings
        self.sessions = sessions
        self.encoders: dict[str, Encoder] | None = None
        self.indexes: dict[str, VectorIndex] = {}

    def nearest(self, text: str | None, limit: Any = 20) -> str:
        import json

        if not text:
            return "[]"
        if self.encoders is None:
            self.encoders = search_encoders(self.settings, self.sessions)
        hits = search_archive(
            self.settings,
            self.sessions,
            text,
            limit=max(1, min(int(limit or 20), 200)),
            encoders=self.encoders,
            indexes=self.indexes,
        )
        with self.sessions() as session:
            ids = passage_ids(session, [(hit.document_id, hit.start, hit.end) for hit in hits])
        return json.dumps([[ids[(h.document_id, h.start, h.end)], h.score] for h in hits])

    def plugin(self) -> Any:
        """The object to register with Datasette's plugin manager."""
        from datasette import hookimpl

        search = self

        class Plugin:
            __name__ = "claimwatch_search"

            @hookimpl
            def prepare_connection(self, conn: Any) -> None:
                conn.create_function("claimwatch_nearest", 2, search.nearest)

        return Plugin()
