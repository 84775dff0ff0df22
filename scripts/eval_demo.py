"""Score the matches of a demo database against the demo site's labels.

    claimwatch demo                                   # writes claimwatch-demo.db
    python scripts/eval_demo.py claimwatch-demo.db    # precision / recall of its matches

Each demo article lists the seed-claim labels it was written to restate (crawler/demo/articles.yaml,
`claims`). A stored match (document, claim) is correct when the document's article lists the
claim's label. Two counts: over all 24 seed claims (a match of a claim no demo article was written
for counts as an error, although some articles touch such claims in passing), and over the 12
claims the demo articles restate. Syndicated copies are not matched (their original is), so only
matched or unmatched originals are scored.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def load_truth() -> tuple[dict[str, set[str]], set[str]]:
    site = yaml.safe_load((ROOT / "crawler/demo/articles.yaml").read_text(encoding="utf-8"))
    truth = {a["slug"]: set(a.get("claims") or []) for a in site["articles"]}
    return truth, set(site["claim_labels"])


def load_predictions(database: Path) -> tuple[set[str], dict[str, set[str]]]:
    claims = yaml.safe_load((ROOT / "crawler/data/seed_claims.yaml").read_text(encoding="utf-8"))["claims"]
    label_of = {c["id"]: c["label"] for c in claims}
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        scored = connection.execute(
            "SELECT url FROM documents WHERE match_status IN ('matched', 'no_match')"
        ).fetchall()
        matches = connection.execute(
            "SELECT d.url, c.key FROM matches m JOIN documents d ON d.id = m.document_id "
            "JOIN claims c ON c.id = m.claim_id"
        ).fetchall()
    predicted: dict[str, set[str]] = {}
    for url, key in matches:
        predicted.setdefault(slug_of(url), set()).add(label_of[key])
    return {slug_of(url) for (url,) in scored}, predicted


def slug_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".html")


def score(
    documents: set[str], truth: dict[str, set[str]], predicted: dict[str, set[str]], only: set[str] | None
) -> dict[str, float]:
    tp = fp = fn = 0
    for slug in documents:
        expected = truth.get(slug, set())
        found = predicted.get(slug, set())
        if only is not None:
            expected, found = expected & only, found & only
        tp += len(expected & found)
        fp += len(found - expected)
        fn += len(expected - found)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"matches": tp + fp, "precision": precision, "recall": recall, "f1": f1}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("database", type=Path, help="SQLite file written by `claimwatch demo`.")
    args = parser.parse_args(argv)
    if not args.database.exists():
        parser.error(f"{args.database} does not exist (run `claimwatch demo` first)")
    truth, labelled = load_truth()
    documents, predicted = load_predictions(args.database)
    print(f"{len(documents)} scored demo articles")
    for name, only in (("all 24 seed claims", None), (f"the {len(labelled)} labelled claims", labelled)):
        result = score(documents, truth, predicted, only)
        print(
            f"{name}: {result['matches']:.0f} matches, precision {result['precision']:.2f}, "
            f"recall {result['recall']:.2f}, F1 {result['f1']:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
