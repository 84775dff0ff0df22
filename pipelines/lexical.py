"""Okapi BM25 over claims: the lexical half of hybrid matching (see pipelines/match.py).

Each claim is one document (its text plus optional context: title, keywords). Tokens are lower-cased
runs of Unicode word characters (Latin and Cyrillic alike), minus a short English/Russian stop list
and one-character tokens. The index is a sparse claims × vocabulary matrix of BM25 term weights

    idf(t) · tf(t, c) · (k1 + 1) / (tf(t, c) + k1 · (1 − b + b · |c| / avgdl)),
    idf(t) = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5))   (never negative),

so scoring texts against all claims is one sparse product. A text's query terms count once each
(binary query vector). Plain BM25 grows with the text's length; the matcher divides a text's scores
by ``best_score`` (its best claim scores 1). ``coverage`` — score / the claim's *self score* (the
text holds every term of the claim), in [0, 1] — is the absolute alternative; it ranked worse when
fused on CheckThat! 2A train/dev (MAP@5 0.887 vs 0.904, docs/evaluation.md).

With a ``language`` (``LexicalIndex.build(..., language="ru")``) tokens are also stemmed, so that
inflected forms meet: Snowball stemmers (the ``snowballstemmer`` package) for English, Russian,
Turkish and Armenian, Turkish's for Azerbaijani; Ukrainian and Georgian, which Snowball lacks, are
cut to their first ``PREFIX_CHARS`` letters. The first stage keeps unstemmed tokens (language None);
the verifier compares a passage with the claim in the passage's own language, stemmed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy import sparse

TOKEN = re.compile(r"\w+", re.UNICODE)
STOPWORDS = frozenset(
    """
    a an and are as at be been but by for from had has have he her his i if in into is it its me my no not
    of on or our she so than that the their them there these they this those to was we were what when which
    who will with would you your
    а без бы в во вот все да для до его ее её же за и из или им их к как ли мы на над не нет ни но о об
    однако он она они от по под при с со так также то того тоже только у уже что чтобы это этот я
    """.split()  # noqa: SIM905
)
K1 = 1.2
B = 0.75


SNOWBALL = {"en": "english", "ru": "russian", "tr": "turkish", "az": "turkish", "hy": "armenian"}
PREFIX_LANGUAGES = frozenset({"uk", "ka"})
PREFIX_CHARS = 6


@cache
def stemmer_for(language: str | None) -> Callable[[str], str] | None:
    """A function from a lower-case token to its stem in ``language``; None: no stemming."""
    code = (language or "").lower()
    if code in SNOWBALL:
        import snowballstemmer

        algorithm = snowballstemmer.stemmer(SNOWBALL[code])
        return cache(algorithm.stemWord)
    if code in PREFIX_LANGUAGES:
        return lambda token: token[:PREFIX_CHARS]
    return None


def tokenize(text: str, language: str | None = None) -> list[str]:
    """Lower-cased word tokens of ``text`` without stop words and one-character tokens; stemmed when
    ``language`` has a stemmer."""
    tokens = [
        token
        for token in TOKEN.findall(text.lower().replace("ё", "е"))
        if len(token) > 1 and token not in STOPWORDS
    ]
    stem = stemmer_for(language) if language else None
    return [stem(token) for token in tokens] if stem is not None else tokens


@dataclass
class LexicalIndex:
    """BM25 weights of a set of claims (rows) over their vocabulary (columns)."""

    vocabulary: dict[str, int]
    weights: sparse.csr_matrix
    self_scores: np.ndarray
    idf: np.ndarray
    language: str | None = None

    @classmethod
    def build(
        cls, documents: Sequence[str], k1: float = K1, b: float = B, language: str | None = None
    ) -> LexicalIndex:
        vocabulary: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        for row, document in enumerate(documents):
            for token in tokenize(document, language):
                rows.append(row)
                cols.append(vocabulary.setdefault(token, len(vocabulary)))
        shape = (len(documents), len(vocabulary))
        counts = sparse.csr_matrix(
            (np.ones(len(rows), dtype=np.float64), (rows, cols)), shape=shape
        )  # duplicate (row, col) entries are summed: term frequencies
        counts.sum_duplicates()
        lengths = np.asarray(counts.sum(axis=1)).ravel()
        average = lengths.mean() if len(lengths) and lengths.mean() > 0 else 1.0
        frequency = np.bincount(counts.indices, minlength=shape[1])
        idf = np.log1p((len(documents) - frequency + 0.5) / (frequency + 0.5))
        tf = counts.data
        norm = np.repeat(k1 * (1 - b + b * lengths / average), np.diff(counts.indptr))
        weights = counts.copy()
        weights.data = idf[counts.indices] * tf * (k1 + 1) / (tf + norm)
        self_scores = np.asarray(weights.sum(axis=1)).ravel()
        return cls(vocabulary, weights.tocsr(), self_scores, idf, language)

    def __len__(self) -> int:
        return self.weights.shape[0]

    def query_matrix(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """Binary texts × vocabulary matrix of the known terms of each text."""
        rows: list[int] = []
        cols: list[int] = []
        for row, text in enumerate(texts):
            terms = {self.vocabulary[t] for t in tokenize(text, self.language) if t in self.vocabulary}
            rows.extend([row] * len(terms))
            cols.extend(terms)
        return sparse.csr_matrix(
            (np.ones(len(rows), dtype=np.float64), (rows, cols)), shape=(len(texts), len(self.vocabulary))
        )

    def scores(self, queries: sparse.csr_matrix, claims: slice = slice(None)) -> np.ndarray:
        """BM25 score of the ``claims`` (columns) for each row of ``query_matrix()``."""
        return (queries @ self.weights[claims].T).toarray()

    def best_score(self, queries: sparse.csr_matrix) -> float:
        """The highest score of any claim for any of the queries (0 if none shares a term)."""
        product = queries @ self.weights.T
        return float(product.max()) if product.nnz else 0.0

    def best_scores(self, queries: sparse.csr_matrix) -> np.ndarray:
        """Each query's highest score of any claim (0 where none shares a term)."""
        if not len(self):
            return np.zeros(queries.shape[0])
        return (queries @ self.weights.T).max(axis=1).toarray().ravel()

    def coverage(self, queries: sparse.csr_matrix, claims: slice = slice(None)) -> np.ndarray:
        """Score / self score of the ``claims`` for each query: 1 when it holds all the claim's terms."""
        return self.scores(queries, claims) / np.maximum(self.self_scores[claims], 1e-12)[None, :]
