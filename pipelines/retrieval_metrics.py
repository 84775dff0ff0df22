"""Ranking metrics of claim retrieval, as the CLEF CheckThat! 2A scorer (``trectools``) computes them.

A *run* gives, per query, candidate documents with a score. Like the official scorer, candidates are
re-sorted by score, descending, ties broken by document id, descending (the run's own order is
ignored); a document listed twice keeps its best score.

* AP@k of one query: walking down the top ``k``, each relevant document found at position ``i``
  contributes (relevant documents seen so far) / ``i``; the sum is divided by the query's total
  number of relevant documents (not by ``min(k, R)``).
* MAP@k: the mean AP@k over the queries of the run. A query of the qrels missing from the run is an
  error (the official scorer refuses such runs); a run query without relevant documents scores 0.
* RR: 1 / rank of the first relevant document (0 if none is ranked, or none within ``k`` when a cut-off
  is given); MRR is its mean over the run's queries, with the same rules as MAP.

With one relevant document per query, MAP@k equals MRR cut at ``k``.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence

logger = logging.getLogger(__name__)

Run = Mapping[str, Iterable[tuple[str, float]]]
Qrels = Mapping[str, Collection[str]]


def rank_candidates(candidates: Iterable[tuple[str, float]]) -> list[str]:
    """Document ids in the official order: score descending, then id descending; duplicates once."""
    best: dict[str, float] = {}
    for doc_id, score in candidates:
        if doc_id not in best or score > best[doc_id]:
            best[doc_id] = float(score)
    return [doc_id for doc_id, _ in sorted(best.items(), key=lambda item: (item[1], item[0]), reverse=True)]


def average_precision_at_k(ranked_ids: Sequence[str], relevant_ids: Collection[str], k: int) -> float:
    """AP@k of one ranking (already in rank order), normalised by the number of relevant documents."""
    if k < 1:
        raise ValueError("k must be at least 1")
    if not relevant_ids:
        return 0.0
    found = 0
    total = 0.0
    for position, doc_id in enumerate(ranked_ids[:k], 1):
        if doc_id in relevant_ids:
            found += 1
            total += found / position
    return total / len(relevant_ids)


def reciprocal_rank(ranked_ids: Sequence[str], relevant_ids: Collection[str], k: int | None = None) -> float:
    """1 / rank of the first relevant document of a ranking (0 if there is none in the first ``k``)."""
    if k is not None and k < 1:
        raise ValueError("k must be at least 1")
    for position, doc_id in enumerate(ranked_ids[:k] if k is not None else ranked_ids, 1):
        if doc_id in relevant_ids:
            return 1.0 / position
    return 0.0


def _ranked_run(runs: Run, qrels: Qrels) -> dict[str, list[str]]:
    missing = sorted(set(qrels) - set(runs))
    if missing:
        shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        raise ValueError(
            f"the run lacks {len(missing)} quer{'y' if len(missing) == 1 else 'ies'} of the qrels: {shown}"
        )
    ranked = {query: rank_candidates(candidates) for query, candidates in runs.items()}
    unjudged = [query for query in ranked if not qrels.get(query)]
    if unjudged:
        logger.warning("%d run queries have no relevant documents in the qrels and score 0", len(unjudged))
    return ranked


def mean_average_precision(runs: Run, qrels: Qrels, k: int) -> float:
    """MAP@k over the queries of ``runs`` (see the module docstring)."""
    ranked = _ranked_run(runs, qrels)
    if not ranked:
        return 0.0
    return sum(average_precision_at_k(ids, qrels.get(q, ()), k) for q, ids in ranked.items()) / len(ranked)


def mean_reciprocal_rank(runs: Run, qrels: Qrels, k: int | None = None) -> float:
    """MRR over the queries of ``runs``; ``k`` cuts each ranking first (default: the whole run)."""
    ranked = _ranked_run(runs, qrels)
    if not ranked:
        return 0.0
    return sum(reciprocal_rank(ids, qrels.get(q, ()), k) for q, ids in ranked.items()) / len(ranked)
