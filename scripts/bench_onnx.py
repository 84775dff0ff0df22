"""Agreement and throughput of the ONNX encoder backends against the torch fp32 model.

On the sentences of the labelled seed passages (segmented as the matcher does): mean and minimum
cosine of each backend's vectors to torch fp32, sentences/s timed in alternating rounds in one run
(so load from other processes hits every backend alike: compare the ratios, not the rates), and
the F1 of `claimwatch eval labels` at the model's calibrated threshold per backend.

    .venv/bin/python scripts/bench_onnx.py [--rounds 3] [--labels crawler/data/labelled/seed_dev.jsonl]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler.services.evaluation import best_claims_of, evaluate_labels, read_labels  # noqa: E402
from pipelines.claims import default_claims_path, load_claims  # noqa: E402
from pipelines.embed import load_encoder  # noqa: E402
from pipelines.matcher import ClaimMatcher  # noqa: E402
from pipelines.onnx_backend import measure_agreement  # noqa: E402
from pipelines.segment import split_sentences  # noqa: E402


def labelled_sentences(path: Path) -> list[str]:
    sentences: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            sentences += [p.text for p in split_sentences(record.get("text", record.get("passage", "")))]
    return list(dict.fromkeys(sentences))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=ROOT / "crawler/data/labelled/seed_dev.jsonl")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: a temporary directory")
    args = parser.parse_args()
    cache = args.cache_dir or Path(tempfile.mkdtemp(prefix="claimwatch-onnx-"))
    reference = load_encoder()
    backends = {name: load_encoder(backend=name, cache_dir=cache) for name in ("onnx", "onnx-int8")}
    texts = labelled_sentences(args.labels)
    claims = load_claims(default_claims_path())
    items = read_labels(args.labels, {claim.id for claim in claims})
    texts_of = [item.text for item in items]
    languages = [item.language for item in items]
    result: dict[str, object] = {"labels": str(args.labels), "sentences": len(texts)}
    predictions: dict[str, list[str]] = {}
    for name, encoder in {"torch": reference, **backends}.items():
        matcher = ClaimMatcher(claims, threshold=-1.0)  # as `eval labels`: every candidate kept
        matcher.add_route(encoder)
        report = evaluate_labels(matcher, items, None)  # each text's calibrated threshold
        entry: dict[str, object] = {f"f1_{lang}": round(s.f1, 4) for lang, s in report.languages.items()}
        best, scores, cutoffs, _ = best_claims_of(matcher, texts_of, languages)
        predictions[name] = [
            claim if score >= cutoff else ""
            for claim, score, cutoff in zip(best, scores, cutoffs, strict=True)
        ]
        if name != "torch":
            entry["predictions_changed"] = sum(
                a != b for a, b in zip(predictions["torch"], predictions[name], strict=True)
            )
            agreement = measure_agreement(reference, encoder, texts, rounds=args.rounds)
            entry |= {
                "mean_cosine": round(agreement.mean_cosine, 4),
                "min_cosine": round(agreement.min_cosine, 4),
                "torch_sentences_per_s": round(agreement.reference_rate, 1),
                "sentences_per_s": round(agreement.candidate_rate, 1),
                "speedup": round(agreement.speedup, 2),
            }
        result[name] = entry
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
