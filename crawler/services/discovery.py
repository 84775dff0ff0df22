"""``claimwatch discover``: claims nobody wrote down yet — clusters of archived passages that match no
active claim, recurring across documents.

1. Candidates: the archived sentences (and short whole texts) of documents seen in the window whose
   best score against the active claims — the live matcher's first-stage fused score (``ClaimIndex.
   score_passages``) — stays below the model's calibrated first-stage threshold for their language
   (the threshold the matcher uses without its verifier: the verifier's probability is only
   computed for a text's few best candidates, so it cannot rank every archived passage). Only originals are
   matched and archived, so a syndicated copy never adds a passage: copies count once.
2. Clusters: scikit-learn's HDBSCAN over each model revision's vectors (normalised, so euclidean
   distance orders like cosine), ``leaf`` selection (fine-grained clusters: one assertion each);
   a cluster is a candidate claim when its passages come from at least ``min_documents`` documents.
   Each model revision (the main model's English, the multilingual model's other languages) is
   clustered in its own vector space.
3. Each candidate: a stable id (from its model and its earliest passage, which later documents do not
   change), size (passages), documents, sources (outlets), languages, first/last seen, a label (its
   most distinctive words), representatives (the passages nearest its centre, one per document)
   and growth (documents in the window's last ``growth_days`` per earlier document), ranked by
   growth, then size.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from crawler.config import Settings
from crawler.services.matching import CountingEncoder, Matcher, load_configured_encoder
from db.archive import ArchiveError, archive_counts
from db.models import Document, PassageVector
from db.queries import active_claims
from pipelines.claims import Claim as ClaimSpec
from pipelines.encoding import Encoder
from pipelines.lexical import tokenize
from pipelines.match import default_threshold
from pipelines.vector_index import from_bytes

ProgressCallback = Callable[[int, int], None]
# passages clustered at most per model revision (HDBSCAN's cost grows faster than linearly)
MAX_PASSAGES = 60_000
MIN_PASSAGE_CHARS = 40
REPRESENTATIVES = 3


@dataclass
class Candidate:
    id: str
    size: int
    documents: int
    sources: list[str]
    languages: list[str]
    first_seen: str | None
    last_seen: str | None
    label: str
    representatives: list[dict[str, Any]]
    growth: float
    model: str = field(default="", repr=False)

    def as_json(self) -> dict[str, Any]:
        row = asdict(self)
        row.pop("model")
        return row


@dataclass(frozen=True)
class Passage:
    id: int
    document_id: int
    start: int
    end: int
    text: str
    language: str | None
    url: str
    outlet: str | None
    seen: datetime | None


def load_passages(
    session: Session, model_key: str, since: datetime | None, until: datetime | None
) -> tuple[list[Passage], np.ndarray]:
    seen = func.coalesce(Document.published_at, Document.fetched_at)
    query = (
        select(
            PassageVector.id,
            PassageVector.document_id,
            PassageVector.passage_start,
            PassageVector.passage_end,
            func.substr(
                Document.text,
                PassageVector.passage_start + 1,
                PassageVector.passage_end - PassageVector.passage_start,
            ),
            PassageVector.language,
            Document.url,
            Document.outlet,
            seen,
            PassageVector.vector,
        )
        .join(Document, Document.id == PassageVector.document_id)
        .where(PassageVector.model_key == model_key, Document.duplicate_of_id.is_(None))
        .order_by(PassageVector.id.desc())
        .limit(MAX_PASSAGES)
    )
    if since is not None:
        query = query.where(seen >= since)
    if until is not None:
        query = query.where(seen < until)
    rows = session.execute(query).all()
    rows = [r for r in rows if r[3] - r[2] >= MIN_PASSAGE_CHARS]
    rows.reverse()  # oldest first
    passages = [
        Passage(int(r[0]), int(r[1]), int(r[2]), int(r[3]), r[4] or "", r[5], r[6], r[7], r[8]) for r in rows
    ]
    return passages, from_bytes([bytes(r[9]) for r in rows])


def label_of(texts: Sequence[str], document_frequency: Counter[str], total: int, words: int = 5) -> str:
    """The cluster's most distinctive words: frequent in its passages, rare in the others."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(set(tokenize(text)))
    scored = {
        word: count * math.log((1 + total) / (1 + document_frequency[word]))
        for word, count in counts.items()
        if count >= 2 or len(texts) < 2
    }
    return " ".join(word for word, _ in sorted(scored.items(), key=lambda item: (-item[1], item[0]))[:words])


def cluster_candidates(
    passages: Sequence[Passage],
    vectors: np.ndarray,
    model_key: str,
    min_documents: int,
    window_end: datetime,
    growth_days: int,
    cohesion: float,
) -> list[Candidate]:
    """HDBSCAN clusters of the passages that span at least ``min_documents`` documents and restate
    one another: the median cosine of their passages from different documents is at least
    ``cohesion`` (the model's calibrated match threshold: they would match each other as claims)."""
    from sklearn.cluster import HDBSCAN

    if len(passages) < max(2, min_documents):
        return []
    labels = HDBSCAN(
        min_cluster_size=max(2, min_documents), min_samples=1, cluster_selection_method="leaf", copy=True
    ).fit_predict(vectors)
    frequency: Counter[str] = Counter()
    for passage in passages:
        frequency.update(set(tokenize(passage.text)))
    recent_from = window_end - timedelta(days=growth_days)
    candidates = []
    for label in sorted(set(labels) - {-1}):
        rows = np.flatnonzero(labels == label)
        documents = {passages[r].document_id for r in rows}
        if len(documents) < min_documents:
            continue
        similarity = vectors[rows] @ vectors[rows].T
        owners = np.array([passages[r].document_id for r in rows])
        across = similarity[owners[:, None] != owners[None, :]]
        if across.size == 0 or float(np.median(across)) < cohesion:
            continue
        centre = vectors[rows].mean(axis=0)
        centre /= max(float(np.linalg.norm(centre)), 1e-12)
        order = rows[np.argsort(-(vectors[rows] @ centre))]
        representatives, used = [], set()
        for row in order:
            passage = passages[row]
            if passage.document_id in used:
                continue
            used.add(passage.document_id)
            representatives.append(
                {"document_id": passage.document_id, "url": passage.url, "passage": passage.text}
            )
            if len(representatives) == REPRESENTATIVES:
                break
        first_doc: dict[int, datetime | None] = {}
        for r in rows:
            p = passages[r]
            first_doc.setdefault(p.document_id, p.seen)
        dates = [d for d in first_doc.values() if d is not None]
        recent = sum(1 for d in dates if d >= recent_from)
        earliest = min(rows, key=lambda r: (passages[r].seen or datetime.max, passages[r].id))
        anchor = f"{model_key}|{passages[earliest].document_id}|{passages[earliest].start}"
        candidates.append(
            Candidate(
                id="c-" + hashlib.sha256(anchor.encode()).hexdigest()[:10],
                size=len(rows),
                documents=len(documents),
                sources=sorted({passages[r].outlet for r in rows if passages[r].outlet}),
                languages=sorted({passages[r].language for r in rows if passages[r].language}),
                first_seen=min(dates).date().isoformat() if dates else None,
                last_seen=max(dates).date().isoformat() if dates else None,
                label=label_of([passages[r].text for r in rows], frequency, len(passages)),
                representatives=representatives,
                growth=round(recent / max(1, len(documents) - recent), 3),
                model=model_key,
            )
        )
    return candidates


def discover(
    settings: Settings,
    sessions: sessionmaker[Session],
    since: datetime | None = None,
    until: datetime | None = None,
    min_documents: int = 2,
    growth_days: int = 7,
    encoder: Encoder | None = None,
    multilingual: Encoder | None = None,
    progress: ProgressCallback | None = None,
) -> list[Candidate]:
    """Candidate claims of the window [since, until), best (fastest-growing) first."""
    with sessions() as session:
        counts = archive_counts(session)
        if not counts:
            raise ArchiveError(
                "the passage archive is empty: nothing to discover (match documents with archive_passages on)"
            )
        claims = [
            ClaimSpec(id=str(c.id), text=c.text, claim_set=c.claim_set, extra=c.extra or {})
            for c in active_claims(session)
        ]
    counting = CountingEncoder(encoder or load_configured_encoder(settings))
    matcher = Matcher(settings, sessions, 0, counting, claims, multilingual) if claims else None
    window_end = until or datetime.utcnow()
    found: list[Candidate] = []
    keys = sorted(counts)
    for step, key in enumerate(keys):
        with sessions() as session:
            passages, vectors = load_passages(session, key, since, until)
        if matcher is not None and passages:
            matcher._ensure_routes(passages)  # type: ignore[arg-type]  # the route of each language
            route = next((r for r in matcher.matcher.routes if r.index.model_key == key), None)
            if route is None:
                continue  # archived by a model revision no longer configured
            scores = route.index.score_passages(vectors, [p.text for p in passages]).max(axis=1)
            model = route.encoder.model_name
            keep = [i for i, p in enumerate(passages) if scores[i] < default_threshold(model, p.language)]
            passages, vectors = [passages[i] for i in keep], vectors[keep]
        cohesion = default_threshold(key.split("@")[0])
        found.extend(
            cluster_candidates(passages, vectors, key, min_documents, window_end, growth_days, cohesion)
        )
        if progress is not None:
            progress(step + 1, len(keys))
    found.sort(key=lambda c: (-c.growth, -c.documents, -c.size, c.id))
    return found


class DiscoveryError(RuntimeError):
    """A candidate id that the current discovery does not produce."""


def find_candidate(candidates: Sequence[Candidate], ident: str) -> Candidate:
    for candidate in candidates:
        if candidate.id == ident:
            return candidate
    raise DiscoveryError(f"no candidate {ident} in the current discovery (run `claimwatch discover` first)")


def promote(
    session: Session, candidate: Candidate, key: str, text: str | None, claim_set: str = "discovered"
) -> int:
    """Add a candidate as an active claim (``text``, default: its nearest-to-centre passage) of
    ``claim_set``; returns the claim id. Its history comes from `match --backfill --claim KEY`."""
    from db.models import Claim
    from db.timeutil import utcnow
    from pipelines.encoding import text_hash

    exists = session.scalar(select(Claim.id).where(Claim.claim_set == claim_set, Claim.key == key))
    if exists is not None:
        raise DiscoveryError(f"claim {key} already exists in claim set {claim_set}")
    text = " ".join((text or candidate.representatives[0]["passage"]).split())
    now = utcnow()
    claim = Claim(
        claim_set=claim_set,
        key=key,
        text=text,
        extra={
            "title": candidate.label,
            "discovered_from": candidate.id,
            "discovered_documents": [r["url"] for r in candidate.representatives],
        },
        text_hash=text_hash(text),
        active=True,
        created_at=now,
        updated_at=now,
    )
    session.add(claim)
    session.flush()
    return claim.id
