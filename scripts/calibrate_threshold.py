"""Calibrate a model's default match threshold on the labelled seed passages.

    .venv/bin/python scripts/calibrate_threshold.py [--model NAME] [--write]

Chooses the threshold with the best F1 on crawler/data/labelled/seed_dev.jsonl (passages in the
languages the model covers), reports precision/recall/F1 at that threshold on seed_test.jsonl, and
with --write stores both in pipelines/thresholds.json, which `default_threshold()` reads.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

from pipelines.calibrate import best_matches, choose_threshold, load_labelled, score_threshold, sweep
from pipelines.claims import default_claims_path, load_claims
from pipelines.embed import DEFAULT_MODEL, load_encoder
from pipelines.match import THRESHOLDS_FILE, ClaimIndex

LABELLED = Path(__file__).resolve().parents[1] / "crawler" / "data" / "labelled"


def evaluate(encoder, index, items):  # type: ignore[no-untyped-def]
    vectors = encoder.encode([item.passage for item in items])
    claims, scores = best_matches(vectors @ index.vectors.T, [c.id for c in index.claims])
    return claims, scores, [item.claim_id for item in items]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help="sentence-transformers model name or path")
    parser.add_argument("--write", action="store_true", help="store the result in pipelines/thresholds.json")
    args = parser.parse_args()

    encoder = load_encoder(args.model)
    index = ClaimIndex.build(encoder, load_claims(default_claims_path()))
    languages = sorted(encoder.languages) if encoder.languages else None
    dev = load_labelled(LABELLED / "seed_dev.jsonl", languages)
    test = load_labelled(LABELLED / "seed_test.jsonl", languages)
    chosen = choose_threshold(sweep(*evaluate(encoder, index, dev)))
    held_out = score_threshold(*evaluate(encoder, index, test), chosen.threshold)
    print(f"model {encoder.model_name} ({encoder.revision}), languages {languages or 'all'}")
    print(
        f"dev  ({len(dev)} passages): threshold {chosen.threshold:.2f}  "
        f"P {chosen.precision:.3f} R {chosen.recall:.3f} F1 {chosen.f1:.3f}"
    )
    print(
        f"test ({len(test)} passages): "
        f"P {held_out.precision:.3f} R {held_out.recall:.3f} F1 {held_out.f1:.3f}"
    )
    if args.write:
        table = json.loads(THRESHOLDS_FILE.read_text(encoding="utf-8")) if THRESHOLDS_FILE.exists() else {}
        table.setdefault("models", {})[encoder.model_name] = {
            "threshold": chosen.threshold,
            "revision": encoder.revision,
            "languages": languages,
            "dev_f1": round(chosen.f1, 4),
            "test_precision": round(held_out.precision, 4),
            "test_recall": round(held_out.recall, 4),
            "test_f1": round(held_out.f1, 4),
            "calibrated_on": date.today().isoformat(),
        }
        table["about"] = "Default match thresholds per model, chosen by scripts/calibrate_threshold.py."
        THRESHOLDS_FILE.write_text(json.dumps(table, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(f"written to {THRESHOLDS_FILE}")


if __name__ == "__main__":
    main()
