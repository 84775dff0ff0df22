"""Optional faster encoder backends: a sentence-transformers model run by ONNX Runtime, fp32 or int8.

The model (transformer, pooling and normalisation: the whole sentence-transformers pipeline) is
exported to ONNX once with torch's TorchScript exporter, checked against the torch model, quantised
dynamically to int8, and cached under ``<cache dir>/onnx/``, keyed by model name, revision,
onnxruntime version and export recipe. Encoding then needs only ``onnxruntime`` and ``tokenizers``
(no torch import). Vectors carry a distinct revision (``…+onnx`` / ``…+onnx-int8``), so cached
vectors of one backend never mix with another's; the model name stays the same, so the model's
calibrated threshold still applies (docs/backends.md measures that it may).

int8 recipe: per-channel weights for the linear layers, except the feed-forward output projection
of the first two layers. Their inputs (GELU activations with outliers) lose most under the per-batch
uint8 activation scale of dynamic quantisation; per-tensor weights or quantising those two layers
brings the mean cosine to fp32 below 0.99 on the seed sentences.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.encoding import Encoder, ModelLoadError, default_cache_dir, length_batches

logger = logging.getLogger(__name__)

# Bump when the export or quantisation recipe changes: older cached files are then ignored.
EXPORT_RECIPE = 1
MODEL_FILE = "model.onnx"
INT8_FILE = "model-int8.onnx"
META_FILE = "meta.json"
TOKENIZER_FILE = "tokenizer.json"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
# Feed-forward output projections (from the first layers) left in fp32 by the int8 recipe.
FP32_FEED_FORWARD_LAYERS = 2
FEED_FORWARD_OUT = re.compile(r"layers?\.(\d+)/output/dense/MatMul$")
# Texts of different lengths (padding inside a batch) that the exported graph must reproduce.
PROBE_TEXTS = (
    "Baku and Moscow.",
    "Relations between Russia and Azerbaijan cooled after the detentions in Yekaterinburg last June.",
    "A short one.",
)
PROBE_MIN_COSINE = 0.9999


def require_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise ModelLoadError(
            f"the onnx encoder backends need onnxruntime: pip install 'claimwatch[onnx]' ({exc})"
        ) from None
    return onnxruntime


def onnx_cache_root(cache_dir: Path | str | None = None) -> Path:
    return (Path(cache_dir).expanduser() if cache_dir else default_cache_dir()) / "onnx"


def export_name(model_name: str, revision: str, onnxruntime_version: str) -> str:
    """Directory name of one export: readable prefix, hash of everything the files depend on."""
    digest = hashlib.sha256(
        f"{model_name}\0{revision}\0onnxruntime={onnxruntime_version}\0recipe={EXPORT_RECIPE}".encode()
    ).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(model_name).name or model_name)[:60]
    return f"{slug}-{digest}"


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (flock) across processes and threads, released on exit."""
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_export(root: Path, name: str, build: Callable[[Path], None]) -> Path:
    """``root/name``, built once by ``build(temporary directory)`` and renamed into place.

    A lock keeps concurrent processes from building the same export twice; the rename makes a
    half-written export invisible, so a killed build leaves only a temporary directory behind.
    """
    final = root / name
    if (final / META_FILE).is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    with file_lock(root / f"{name}.lock"):
        if (final / META_FILE).is_file():
            return final
        if final.exists():  # incomplete: not made by this module's rename
            shutil.rmtree(final, ignore_errors=True)
        building = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
        try:
            build(building)
            if not (building / META_FILE).is_file():
                raise ModelLoadError(f"ONNX export of {name} wrote no {META_FILE}")
            os.rename(building, final)
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return final


def sentence_embedding_graph(model: Any, input_names: Sequence[str]) -> Any:
    """A torch module mapping token tensors to the SentenceTransformer's sentence embedding."""
    import torch

    class SentenceEmbeddingGraph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: Any) -> Any:
            return self.model(dict(zip(input_names, tensors, strict=True)))["sentence_embedding"]

    return SentenceEmbeddingGraph().eval()


def model_input_names(model: Any) -> list[str]:
    names = list(getattr(model.tokenizer, "model_input_names", None) or ["input_ids", "attention_mask"])
    return [name for name in INPUT_NAMES if name in names]


def check_exportable(model: Any) -> None:
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None or not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError("the onnx backends need a model with a fast (Rust) tokenizer")
    prompts = [text for text in (getattr(model, "prompts", None) or {}).values() if text]
    if prompts and any(getattr(module, "include_prompt", True) is False for module in model):
        raise ModelLoadError("the onnx backends cannot pool without prompt tokens (include_prompt=False)")


def export_model(model: Any, directory: Path) -> None:
    """Write the fp32 ONNX graph, the int8 graph, the tokenizer and meta.json into ``directory``."""
    import torch

    check_exportable(model)
    names = model_input_names(model)
    graph = sentence_embedding_graph(model, names)
    sample = model.tokenizer(list(PROBE_TEXTS), padding=True, return_tensors="pt")
    dynamic = {name: {0: "batch", 1: "sequence"} for name in names} | {"sentence_embedding": {0: "batch"}}
    started = time.perf_counter()
    with warnings.catch_warnings(), torch.no_grad():
        # The tracer warns about shape checks that are constant for any padded batch.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            tuple(sample[name] for name in names),
            str(directory / MODEL_FILE),
            input_names=names,
            output_names=["sentence_embedding"],
            dynamic_axes=dynamic,
            opset_version=17,
            dynamo=False,
        )
    quantise_model(directory / MODEL_FILE, directory / INT8_FILE)
    model.tokenizer.backend_tokenizer.save(str(directory / TOKENIZER_FILE))
    meta = {
        "inputs": names,
        "max_seq_length": int(model.max_seq_length or 512),
        "pad_token_id": int(model.tokenizer.pad_token_id or 0),
        "prompts": dict(getattr(model, "prompts", None) or {}),
        "recipe": EXPORT_RECIPE,
    }
    reference = model.encode(list(PROBE_TEXTS), normalize_embeddings=True, convert_to_numpy=True)
    meta["dimension"] = int(reference.shape[1])
    (directory / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    exported = OnnxEncoder(directory, "probe", "probe", None, quantised=False).encode(list(PROBE_TEXTS))
    agreement = float(np.min(np.sum(exported * reference, axis=1)))
    if agreement < PROBE_MIN_COSINE:
        raise ModelLoadError(
            f"the ONNX export does not reproduce the model (cosine {agreement:.5f}): "
            "use encoder_backend torch"
        )
    logger.info("exported the model to ONNX (fp32 + int8) in %.1f s", time.perf_counter() - started)


def quantise_model(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation of the linear layers (see the module docstring for the recipe)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source), load_external_data=False).graph
    weights = {initializer.name for initializer in graph.initializer}
    linear = [node.name for node in graph.node if node.op_type == "MatMul" and node.input[1] in weights]
    kept = {
        name
        for name in linear
        if (found := FEED_FORWARD_OUT.search(name)) and int(found.group(1)) < FP32_FEED_FORWARD_LAYERS
    }
    previous = logging.root.manager.disable
    # The quantiser logs a line per tensor (and advice) through the root logger.
    logging.disable(logging.WARNING)
    try:
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_quantize=[name for name in linear if name not in kept],
        )
    finally:
        logging.disable(previous)


def session_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class OnnxEncoder:
    """An exported sentence-transformers model run by ONNX Runtime, behind the Encoder protocol.

    Texts are tokenised once, sorted by length and batched (at most ``batch_size`` texts and
    ``MAX_BATCH_TOKENS`` padded tokens per batch: pipelines.embed.length_batches, as the torch
    backend does), so each batch is padded only to its longest text; rows are returned in input order.
    """

    def __init__(
        self,
        directory: Path,
        model_name: str,
        revision: str,
        languages: frozenset[str] | None,
        quantised: bool = True,
        batch_size: int = 64,
        threads: int | None = None,
    ) -> None:
        onnxruntime = require_onnxruntime()
        from tokenizers import Tokenizer

        self.directory = directory
        self.model_name = model_name
        self.revision = revision
        self.languages = languages
        self.batch_size = max(1, int(batch_size))
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        self.inputs: list[str] = list(meta["inputs"])
        self.dimension = int(meta["dimension"])
        self.pad_token_id = int(meta["pad_token_id"])
        self.prompts: dict[str, str] = dict(meta.get("prompts") or {})
        self.tokenizer = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=int(meta["max_seq_length"]))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or session_threads()
        options.inter_op_num_threads = 1
        path = directory / (INT8_FILE if quantised else MODEL_FILE)
        self.session = onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def prompt(self, kind: str) -> str:
        aliases = {"claim": ("query",), "passage": ("passage", "document")}
        for name in (kind, *aliases.get(kind, ())):
            if name in self.prompts:
                return self.prompts[name]
        return ""

    def encode(self, texts: Sequence[str], kind: str = "passage") -> np.ndarray:
        """Normalised float32 vectors, one row per text (repeated texts are encoded once)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        unique = list(dict.fromkeys(texts))
        prefix = self.prompt(kind)
        encodings = self.tokenizer.encode_batch([prefix + text for text in unique])
        vectors = np.empty((len(unique), self.dimension), dtype=np.float32)
        for rows in length_batches([len(encoding.ids) for encoding in encodings], self.batch_size):
            vectors[rows] = self.run_batch([encodings[i] for i in rows])
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors /= np.clip(norms, 1e-12, None)
        if len(unique) == len(texts):
            return vectors
        row = {text: index for index, text in enumerate(unique)}
        return vectors[[row[text] for text in texts]]

    def run_batch(self, encodings: Sequence[Any]) -> np.ndarray:
        width = max(len(encoding.ids) for encoding in encodings)
        arrays = {
            "input_ids": np.full((len(encodings), width), self.pad_token_id, dtype=np.int64),
            "attention_mask": np.zeros((len(encodings), width), dtype=np.int64),
            "token_type_ids": np.zeros((len(encodings), width), dtype=np.int64),
        }
        for row, encoding in enumerate(encodings):
            length = len(encoding.ids)
            arrays["input_ids"][row, :length] = encoding.ids
            arrays["attention_mask"][row, :length] = encoding.attention_mask
            arrays["token_type_ids"][row, :length] = encoding.type_ids
        feed = {name: arrays[name] for name in self.inputs}
        return np.asarray(self.session.run(["sentence_embedding"], feed)[0], dtype=np.float32)


def load_onnx_encoder(
    open_model: Callable[[], Any],
    model_name: str,
    revision: str | None,
    languages: frozenset[str] | None,
    quantised: bool,
    batch_size: int = 64,
    cache_dir: Path | str | None = None,
    revision_of: Callable[[Any], str] | None = None,
    threads: int | None = None,
) -> OnnxEncoder:
    """The ONNX encoder of a sentence-transformers model, exported on first use.

    ``open_model()`` loads the torch model; it is called only to export, or to learn the revision of
    a hub model (``revision`` None, then ``revision_of(model)`` names it).
    """
    onnxruntime = require_onnxruntime()
    opened: Any = None
    if revision is None:
        opened = open_model()
        revision = revision_of(opened) if revision_of else "unknown"

    def build(directory: Path) -> None:
        export_model(opened if opened is not None else open_model(), directory)

    name = export_name(model_name, revision, onnxruntime.__version__)
    try:
        directory = cached_export(onnx_cache_root(cache_dir), name, build)
    except ModelLoadError:
        raise
    except Exception as exc:  # the exporter and quantiser raise many kinds of errors
        raise ModelLoadError(f"cannot export {model_name!r} to ONNX: {type(exc).__name__}: {exc}") from None
    suffix = "+onnx-int8" if quantised else "+onnx"
    encoder = OnnxEncoder(
        directory,
        model_name,
        revision + suffix,
        languages,
        quantised=quantised,
        batch_size=batch_size,
        threads=threads,
    )
    logger.info("loaded model %s (revision %s) with ONNX Runtime", model_name, encoder.revision)
    return encoder


@dataclass(frozen=True)
class Agreement:
    """How closely a backend reproduces a reference encoder, and both throughputs (interleaved)."""

    sentences: int
    mean_cosine: float
    min_cosine: float
    reference_rate: float  # sentences per second
    candidate_rate: float

    @property
    def speedup(self) -> float:
        return self.candidate_rate / self.reference_rate


def measure_agreement(
    reference: Encoder, candidate: Encoder, texts: Sequence[str], rounds: int = 3
) -> Agreement:
    """Cosine between the two encoders' vectors of ``texts`` and their sentences/s, timed in
    alternating rounds (after one warm-up each) so that load from other processes hits both alike."""
    unique = list(dict.fromkeys(texts))
    expected = reference.encode(unique)
    found = candidate.encode(unique)
    cosines = np.sum(expected * found, axis=1)
    seconds = {"reference": 0.0, "candidate": 0.0}
    for number in range(rounds):
        pair = [("reference", reference), ("candidate", candidate)]
        for label, encoder in pair if number % 2 == 0 else pair[::-1]:
            started = time.perf_counter()
            encoder.encode(unique)
            seconds[label] += time.perf_counter() - started
    count = len(unique) * rounds
    return Agreement(
        sentences=len(unique),
        mean_cosine=float(np.mean(cosines)),
        min_cosine=float(np.min(cosines)),
        reference_rate=count / max(seconds["reference"], 1e-9),
        candidate_rate=count / max(seconds["candidate"], 1e-9),
    )
