"""CLI commands that measure the matcher: ``eval checkthat``, ``eval labels`` and ``calibrate``.

``register(app)`` is called by crawler/cli/app.py; the shared CLI state comes from crawler/cli/context.py.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crawler.cli.context import clean_errors, state

if TYPE_CHECKING:
    from crawler.config import Settings
    from pipelines.embed import FileEmbeddingCache, SentenceTransformerEncoder

logger = logging.getLogger(__name__)

eval_app = typer.Typer(
    help="Measure the matcher: CLEF CheckThat! 2A claim retrieval, labelled texts.", no_args_is_help=True
)

ModelOption = Annotated[
    str | None, typer.Option("--model", help="sentence-transformers model name or path (default: settings).")
]
DataOption = Annotated[
    Path | None,
    typer.Option(
        "--data", help="The checkthat-2a data directory (default: checkthat-2a in the corpora_dir setting)."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")]


def _encoder(settings: Settings, model: str | None) -> SentenceTransformerEncoder:
    from crawler.services.matching import load_configured_encoder

    return load_configured_encoder(settings, model)  # type: ignore[return-value]


def _cache(settings: Settings) -> FileEmbeddingCache:
    from pipelines.embed import FileEmbeddingCache

    return FileEmbeddingCache(Path(settings.cache_dir)) if settings.cache_dir else FileEmbeddingCache()


@eval_app.command("checkthat")
def checkthat(
    edition: Annotated[
        str, typer.Option("--edition", help="CheckThat! edition: 2021 or 2022 (each with its own vclaims).")
    ] = "2022",
    split: Annotated[
        str, typer.Option("--split", help="Split: dev or test (also train; 2022 also dev-test).")
    ] = "test",
    data: DataOption = None,
    model: ModelOption = None,
    top_k: Annotated[
        int, typer.Option("--top-k", help="K of the reported MAP@K (the official score is MAP@5).", min=1)
    ] = 5,
    with_title: Annotated[
        bool, typer.Option("--with-title", help="Embed each vclaim with its title appended.")
    ] = False,
    scoring: Annotated[
        str,
        typer.Option(
            "--scoring",
            help="hybrid: the model's fitted fusion of the components (as `score` and `match`); "
            "cosine, context or lexical: that component alone.",
        ),
    ] = "hybrid",
    as_json: JsonOption = False,
    limit_queries: Annotated[
        int | None,
        typer.Option("--limit-queries", help="Only the first N tweets (quick checks).", min=1, hidden=True),
    ] = None,
    limit_claims: Annotated[
        int | None,
        typer.Option(
            "--limit-claims",
            help="Only the relevant vclaims plus random distractors, N in all.",
            min=1,
            hidden=True,
        ),
    ] = None,
) -> None:
    """Score the matcher on a CLEF CheckThat! 2A (English) split: MAP@1, MAP@K, MRR and time taken.

    Every tweet is matched against all vclaims of the edition (top 20 kept; vclaim vectors are cached
    on disk between runs) and the ranking is scored as the official scorer does."""

    settings = state.settings()
    from crawler.services.evaluation import SCORINGS

    if scoring not in SCORINGS:
        raise typer.BadParameter(f"expected one of: {', '.join(SCORINGS)}", param_hint="'--scoring'")
    with clean_errors():
        from crawler.services.evaluation import evaluate_checkthat
        from pipelines.checkthat import load_split

        data = data or Path(settings.corpora_dir) / "checkthat-2a"
        split_data = load_split(edition, split, data)  # bad data fail before the model loads
        encoder = _encoder(settings, model)
        report = evaluate_checkthat(
            encoder,
            split_data,
            cache=_cache(settings),
            with_title=with_title,
            k=top_k,
            limit_queries=limit_queries,
            limit_claims=limit_claims,
            progress=lambda message: typer.echo(message, err=True),
            scoring=scoring,
        )
    values = report.as_dict()
    if as_json:
        typer.echo(json.dumps(values))
        return
    text = "vclaim + title" if with_title else "vclaim text"
    weights = ", ".join(f"{name} {value:g}" for name, value in report.fusion.items())
    typer.echo(
        f"CheckThat! 2A {report.edition} {report.split} ({text}), model {report.model}, "
        f"top {report.depth} vclaims per tweet, scoring {report.scoring} ({weights})"
    )
    for name in dict.fromkeys(["map@1", f"map@{top_k}", "mrr"]):
        typer.echo(f"{name.upper():<12}{values[name]:.4f}")
    typer.echo(f"{'queries':<12}{report.queries}")
    typer.echo(f"{'claims':<12}{report.claims} ({report.claims_encoded} claim and title texts newly encoded)")
    typer.echo(f"{'seconds':<12}{report.seconds:.1f}")
    typer.echo(f"{'encodes/s':<12}{report.encodes_per_second:.1f} ({report.texts_encoded} texts)")


@eval_app.command("fit-fusion")
def fit_fusion_command(
    data: DataOption = None,
    model: ModelOption = None,
    write: Annotated[
        bool, typer.Option("--write/--no-write", help="Store the weights in pipelines/fusion.json.")
    ] = False,
) -> None:
    """Fit the weights of the match score's components (cosine, claim context, BM25 coverage) on the
    CheckThat! 2A 2022 train and dev splits (never on a test split): the grid point with the best MAP@5.

    --write stores them in pipelines/fusion.json, read by `score`, `match` and `eval checkthat`; then
    re-run `claimwatch calibrate --write` (the score's scale changes)."""

    settings = state.settings()
    with clean_errors():
        from crawler.services.evaluation import fit_fusion, write_fusion
        from pipelines.checkthat import load_split

        data = data or Path(settings.corpora_dir) / "checkthat-2a"
        splits = [load_split("2022", name, data) for name in ("train", "dev")]
        encoder = _encoder(settings, model)
        result = fit_fusion(
            encoder, splits, cache=_cache(settings), progress=lambda message: typer.echo(message, err=True)
        )
        if write:
            write_fusion(result)
    typer.echo(f"model {result.model}, fitted on {', '.join(result.fitted_on)} ({result.queries} tweets)")
    typer.echo(
        f"weights: cosine 1, context {result.fusion.context:g}, lexical {result.fusion.lexical:g}; "
        f"MAP@5 {result.map_at_5:.4f} (cosine alone {result.cosine_map_at_5:.4f})"
    )
    if write:
        from pipelines.match import FUSION_FILE

        typer.echo(f"written to {FUSION_FILE}")


@eval_app.command("fit-verifier")
def fit_verifier_command(
    train: Annotated[
        list[Path] | None,
        typer.Option(
            "--train",
            help="Labelled passages to train on (JSONL; repeat the option; default: seed_dev.jsonl). "
            "Never a test split.",
        ),
    ] = None,
    claims: Annotated[
        Path | None,
        typer.Option("--claims", help="Claims file the labels refer to (default: the shipped seed claims)."),
    ] = None,
    write: Annotated[
        bool, typer.Option("--write/--no-write", help="Store the verifier in pipelines/verifier.json.")
    ] = False,
) -> None:
    """Train the matcher's verifier (logistic regression over first-stage features, fixed seed) on
    labelled passages; thresholds per language from 5-fold cross-validation.

    --write stores it in pipelines/verifier.json, read by `score`, `match` and `eval labels`."""

    settings = state.settings()
    with clean_errors():
        from crawler.services.evaluation import LABELLED_DIR
        from crawler.services.verification import fit_verifier, write_verifier
        from pipelines.claims import ClaimsFileError, default_claims_path, load_claims

        claim_list = load_claims(claims or default_claims_path())
        paths = list(train or [LABELLED_DIR / "seed_dev.jsonl"])
        for path in paths:
            if not path.is_file():
                raise ClaimsFileError(f"{path}: no such file")
        result = fit_verifier(
            settings, claim_list, paths, _cache(settings), progress=lambda m: typer.echo(m, err=True)
        )
        if write:
            write_verifier(result)
    verifier = result.verifier
    typer.echo(f"verifier {verifier.version}: {result.passages} passages, {result.rows} candidate rows")
    typer.echo(f"threshold {verifier.threshold:.2f}; per language: {verifier.language_thresholds or 'none'}")
    for name, score in result.cross_validated.items():
        typer.echo(
            f"  5-fold {name}: threshold {score['threshold']:.2f} P {score['precision']:.3f} "
            f"R {score['recall']:.3f} F1 {score['f1']:.3f}"
        )
    if write:
        from pipelines.verifier import VERIFIER_FILE

        typer.echo(f"written to {VERIFIER_FILE}")


@eval_app.command("labels")
def labels(
    path: Annotated[
        Path,
        typer.Argument(
            help='JSONL of {"id", "text", "label": claim id or null, "language"?} (one per line).'
        ),
    ],
    claims: Annotated[
        Path, typer.Option("--claims", help="Claims file the labels refer to (YAML or JSONL).")
    ],
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold", help="Match threshold (default: the calibrated threshold of each text's language)."
        ),
    ] = None,
    model: ModelOption = None,
    verifier: Annotated[
        bool,
        typer.Option("--verifier/--no-verifier", help="Re-score candidates with the verifier (default)."),
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """Precision, recall and F1 per language of the best match of labelled texts, and a threshold sweep.

    Texts are matched exactly as by `claimwatch score` (language routes, verifier); a prediction is the
    best claim at or above the threshold, correct when it is the text's label."""

    settings = state.settings()
    with clean_errors():
        from crawler.services.evaluation import evaluate_labels, read_labels
        from crawler.services.matching import build_matcher
        from pipelines.claims import load_claims

        claim_list = load_claims(claims)
        items = read_labels(path, {claim.id for claim in claim_list})
        languages = [None if item.language == "und" else item.language for item in items]
        matcher = build_matcher(
            settings, claim_list, _cache(settings), model=model, languages=languages, verifier=verifier,
            threshold=-1.0,
        )  # fmt: skip
        report = evaluate_labels(matcher, items, threshold)
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
        return
    source = "given" if threshold is not None else "calibrated per language"
    shown = f"{threshold:.3f}" if threshold is not None else "of each text's language"
    typer.echo(f"model {report.model}, threshold {shown} ({source}), verifier {report.verifier or 'none'}")
    typer.echo(f"{'language':<10}{'texts':>7}{'labelled':>10}{'predicted':>11}{'P':>8}{'R':>8}{'F1':>8}")
    for name, score in report.languages.items():
        note = "" if report.is_covered(name) else "  (no route covers this language)"
        typer.echo(
            f"{name:<10}{report.items[name]:>7}{score.positives:>10}{score.predicted:>11}"
            f"{score.precision:>8.3f}{score.recall:>8.3f}{score.f1:>8.3f}{note}"
        )
    best = max(report.sweep, key=lambda s: (s.f1, s.threshold))
    scope = ", ".join(report.sweep_languages) if report.sweep_languages else "all"
    typer.echo(f"sweep ({scope} texts):")
    typer.echo(f"{'threshold':<10}{'predicted':>11}{'P':>8}{'R':>8}{'F1':>8}")
    for score in report.sweep:
        mark = "  best F1" if score is best else ""
        typer.echo(
            f"{score.threshold:<10.2f}{score.predicted:>11}{score.precision:>8.3f}"
            f"{score.recall:>8.3f}{score.f1:>8.3f}{mark}"
        )


def calibrate(
    dev: Annotated[
        Path | None,
        typer.Option("--dev", help="Labelled passages to choose the threshold on (default: seed_dev.jsonl)."),
    ] = None,
    test: Annotated[
        Path | None,
        typer.Option("--test", help="Held-out labelled passages to report on (default: seed_test.jsonl)."),
    ] = None,
    claims: Annotated[
        Path | None,
        typer.Option("--claims", help="Claims file the labels refer to (default: the shipped seed claims)."),
    ] = None,
    model: ModelOption = None,
    write: Annotated[
        bool,
        typer.Option(
            "--write/--no-write",
            help="Store the threshold in pipelines/thresholds.json (--from-reviews: the per-claim "
            "thresholds in the database).",
        ),
    ] = False,
    from_reviews: Annotated[
        bool,
        typer.Option(
            "--from-reviews",
            help="Fit per-claim thresholds on the reviewed verdicts instead (docs/review.md); reports "
            "precision on a held-out third of the reviews.",
        ),
    ] = False,
) -> None:
    """Choose a model's default match threshold on labelled passages; report it on held-out ones.

    The threshold is the highest whose F1 on the dev passages (in the model's languages) is within 0.01
    of the best; --write stores it in pipelines/thresholds.json, read by `score` and `match`."""

    settings = state.settings()
    if from_reviews:
        return _calibrate_from_reviews(settings, write)
    with clean_errors():
        from crawler.services.evaluation import LABELLED_DIR, calibrate_model, write_calibration
        from pipelines.claims import ClaimsFileError, default_claims_path, load_claims
        from pipelines.match import THRESHOLDS_FILE

        claim_list = load_claims(claims or default_claims_path())
        dev_path, test_path = dev or LABELLED_DIR / "seed_dev.jsonl", test or LABELLED_DIR / "seed_test.jsonl"
        for path in (dev_path, test_path):
            if not path.is_file():
                raise ClaimsFileError(f"{path}: no such file")
        encoder = _encoder(settings, model)
        result = calibrate_model(encoder, claim_list, dev_path, test_path)
        if write:
            write_calibration(result)
    chosen, held_out = result.chosen, result.held_out
    typer.echo(f"model {result.model} ({result.revision}), languages {result.languages or 'all'}")
    typer.echo(
        f"dev  ({result.dev_passages} passages): threshold {chosen.threshold:.2f}  "
        f"P {chosen.precision:.3f} R {chosen.recall:.3f} F1 {chosen.f1:.3f}"
    )
    typer.echo(
        f"test ({result.test_passages} passages): "
        f"P {held_out.precision:.3f} R {held_out.recall:.3f} F1 {held_out.f1:.3f}"
    )
    for language, (own, test_score) in result.by_language.items():
        typer.echo(
            f"  {language}: dev threshold {own.threshold:.2f} F1 {own.f1:.3f}; "
            f"test P {test_score.precision:.3f} R {test_score.recall:.3f} F1 {test_score.f1:.3f}"
        )
    if write:
        typer.echo(f"written to {THRESHOLDS_FILE}")


def _calibrate_from_reviews(settings: Settings, write: bool) -> None:
    from crawler.services.app import open_sessions
    from crawler.services.review import ReviewError, calibrate_from_reviews

    with clean_errors(ReviewError):
        result = calibrate_from_reviews(open_sessions(settings), settings.review_min_reviews, write)
    held = result.held_out
    typer.echo(f"{result.reviews} reviewed matches; a claim needs {result.min_reviews} for its own threshold")
    typer.echo(
        f"held-out third ({held.reviews} reviews, {held.correct} about their claim): precision "
        f"{held.precision_default:.3f} at the default thresholds -> {held.precision_fitted:.3f} at the "
        f"fitted ones, keeping {held.recall_fitted:.1%} of the correct matches"
    )
    for fit in result.fits.values():
        key = result.claim_keys.get(fit.claim_id, str(fit.claim_id))
        chosen = "default" if fit.threshold is None else f"{fit.threshold:.3f}"
        typer.echo(f"  {key}: {fit.reviews} reviews, threshold {chosen}, precision {fit.precision:.3f}")
    typer.echo("stored in claim_thresholds" if write else "not stored (--write stores them)")


def register(app: typer.Typer) -> None:
    """Add ``eval checkthat``, ``eval labels`` and ``calibrate`` to the ``claimwatch`` app."""
    app.add_typer(eval_app, name="eval")
    app.command("calibrate")(calibrate)
