"""Offline tools that need no database: ``score`` (match texts against a claims file) and ``extract``
(article text from saved HTML files)."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from crawler.cli.context import clean_errors, state

logger = logging.getLogger(__name__)


def read_jsonl_inputs(path: Path) -> list[tuple[Any, str]]:
    from pipelines.claims import ClaimsFileError, iter_jsonl

    inputs = []
    stream = sys.stdin if str(path) == "-" else path.open(encoding="utf-8")
    with stream:
        for number, record in iter_jsonl(stream, path):
            if not isinstance(record, dict) or "id" not in record or not isinstance(record.get("text"), str):
                raise ClaimsFileError(f'{path}:{number}: expected {{"id": ..., "text": "..."}}')
            inputs.append((record["id"], record["text"]))
    return inputs


def score(
    claims: Annotated[
        Path,
        typer.Option(
            "--claims", help="Claims file (YAML `claims:` list, JSONL, or fact-checkers' ClaimReview JSON)."
        ),
    ],
    input: Annotated[Path, typer.Option("--input", help='JSONL of {"id", "text"} (- for stdin).')],
    top_k: Annotated[int, typer.Option("--top-k", help="At most K matches per input.", min=1)] = 10,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            help="Lowest match score kept. The score is the fused one: the passage-claim cosine combined "
            "with the claim-context cosine and BM25 coverage by the model's fitted weights (plain cosine "
            "for a model without fitted weights; pipelines/fusion.json). Default: the threshold "
            "calibrated on that score for the model (pipelines/thresholds.json); -1 returns all.",
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="sentence-transformers model (default: settings).")
    ] = None,
    batch_inputs: Annotated[
        int, typer.Option("--batch-inputs", help="Inputs matched per batch.", min=1)
    ] = 256,
) -> None:
    """Match arbitrary texts against a claims file offline; JSONL results on stdout, in input order."""
    from crawler.services.matching import load_configured_encoder
    from pipelines.claimreview import load_claim_file
    from pipelines.embed import FileEmbeddingCache
    from pipelines.match import ClaimIndex, default_threshold, match_texts

    settings = state.settings()
    with clean_errors():
        claim_list = load_claim_file(claims)
        inputs = read_jsonl_inputs(input)
        model_name = model or settings.model
        # embedding thousands of new claims takes minutes: show progress
        encoder = load_configured_encoder(settings, model_name, show_progress=sys.stderr.isatty())
        cache = FileEmbeddingCache(Path(settings.cache_dir)) if settings.cache_dir else FileEmbeddingCache()
        index = ClaimIndex.build(encoder, claim_list, cache=cache)
        cutoff = default_threshold(model_name) if threshold is None else threshold
        for start in range(0, len(inputs), batch_inputs):
            chunk = inputs[start : start + batch_inputs]
            results = match_texts(encoder, index, [text for _, text in chunk], threshold=cutoff, top_k=top_k)
            for (ident, _), matches in zip(chunk, results, strict=True):
                payload = {"id": ident, "matches": [dataclasses.asdict(m) for m in matches]}
                sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
            sys.stdout.flush()


def extract_file(path: Path) -> dict[str, Any]:
    import gzip

    from pipelines.extract import decode_html, extract_article, sniff_non_html

    record: dict[str, Any] = {
        "path": str(path),
        "url": None,
        "title": None,
        "author": None,
        "date": None,
        "language": None,
        "text": None,
    }
    try:
        body = path.read_bytes()
        if path.suffix == ".gz":
            body = gzip.decompress(body)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        record["error"] = f"cannot read file: {exc}"
        return record
    reason = sniff_non_html(body, None)
    html = decode_html(body) if reason is None else None
    if reason is None and html is None:
        reason = "undecodable body"
    article = extract_article(html) if html is not None else None
    if article is None:
        record["error"] = reason or "no article text extracted"
        return record
    record.update(
        url=article.url,
        title=article.title,
        author=article.author,
        date=article.date,
        language=article.language,
        text=article.text,
    )
    return record


def extract(
    paths: Annotated[list[Path], typer.Argument(help="Saved HTML files (.html or .html.gz).")],
) -> None:
    """Extract article text and metadata from saved HTML files; JSONL on stdout, one line per file."""
    for path in paths:
        sys.stdout.write(json.dumps(extract_file(path), ensure_ascii=False) + "\n")
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    app.command()(score)
    app.command()(extract)
