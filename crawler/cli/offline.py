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


def read_jsonl_inputs(path: Path) -> list[tuple[Any, str, str | None]]:
    """(id, text, lang or None) of each input line; ``lang`` overrides language detection."""
    from pipelines.claims import ClaimsFileError, iter_jsonl
    from pipelines.language import normalise_language

    inputs = []
    stream = sys.stdin if str(path) == "-" else path.open(encoding="utf-8")
    with stream:
        for number, record in iter_jsonl(stream, path):
            if not isinstance(record, dict) or "id" not in record or not isinstance(record.get("text"), str):
                raise ClaimsFileError(f'{path}:{number}: expected {{"id": ..., "text": "..."}}')
            lang = record.get("lang")
            if lang is not None and (not isinstance(lang, str) or normalise_language(lang) is None):
                raise ClaimsFileError(f"{path}:{number}: `lang` must be a language code such as 'ru'")
            inputs.append((record["id"], record["text"], normalise_language(lang) if lang else None))
    return inputs


def score(
    claims: Annotated[
        Path,
        typer.Option(
            "--claims", help="Claims file (YAML `claims:` list, JSONL, or fact-checkers' ClaimReview JSON)."
        ),
    ],
    input: Annotated[
        Path,
        typer.Option(
            "--input", help='JSONL of {"id", "text", "lang"?} (- for stdin); lang overrides detection.'
        ),
    ],
    top_k: Annotated[int, typer.Option("--top-k", help="At most K matches per input.", min=1)] = 10,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            help="Lowest match score kept. The score is the verifier's probability that the passage "
            "restates the claim (with --no-verifier: the fused first-stage score, the passage-claim cosine "
            "combined with the claim-context cosine and BM25 by the model's fitted weights; "
            "pipelines/fusion.json). Default: the threshold calibrated for the input's language "
            "(pipelines/verifier.json; without the verifier pipelines/thresholds.json); -1 returns every "
            "candidate.",
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Main (English) encoder (default: settings).")
    ] = None,
    verifier: Annotated[
        bool,
        typer.Option(
            "--verifier/--no-verifier",
            help="Re-score the first stage's candidates with the verifier (default) or not.",
        ),
    ] = True,
    batch_inputs: Annotated[
        int, typer.Option("--batch-inputs", help="Inputs matched per batch.", min=1)
    ] = 256,
) -> None:
    """Match arbitrary texts against a claims file offline with the crawl's matcher (language routes,
    per-language thresholds, verifier); JSONL results on stdout, in input order."""
    from crawler.services.matching import build_matcher
    from pipelines.claimreview import load_claim_file
    from pipelines.embed import FileEmbeddingCache
    from pipelines.matcher import guess_language

    settings = state.settings()
    with clean_errors():
        claim_list = load_claim_file(claims)
        inputs = read_jsonl_inputs(input)
        languages = [lang or guess_language(text) for _, text, lang in inputs]
        cache = FileEmbeddingCache(Path(settings.cache_dir)) if settings.cache_dir else FileEmbeddingCache()
        # embedding thousands of new claims takes minutes: show progress
        matcher = build_matcher(
            settings,
            claim_list,
            cache,
            model=model,
            languages=languages,
            verifier=verifier,
            threshold=threshold,
            show_progress=sys.stderr.isatty(),
        )
        matcher.passage_cache = cache  # inputs scored again (evaluations) reuse their vectors
        for start in range(0, len(inputs), batch_inputs):
            chunk = inputs[start : start + batch_inputs]
            results = matcher.match(
                [text for _, text, _ in chunk], languages[start : start + batch_inputs], top_k=top_k
            )
            for (ident, _, _), result in zip(chunk, results, strict=True):
                payload = {
                    "id": ident,
                    "language": result.language,
                    "model": result.model,
                    "threshold": result.threshold,
                    "matches": [dataclasses.asdict(m) for m in result.matches],
                }
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
