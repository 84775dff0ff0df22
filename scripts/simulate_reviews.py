"""Measure `claimwatch calibrate --from-reviews` with the real matcher and simulated reviews.

The shipped labelled passages (crawler/data/labelled/seed_dev.jsonl and seed_test.jsonl: passages
restating one seed claim, hard negatives, on-topic and off-topic news, English and Russian) become
documents of a scratch SQLite database; `claimwatch match` stores their matches at the default
thresholds (each match with its predicted stance); a simulated reviewer then gives every match the
verdict its label implies — `restates` when the passage restates the matched claim, else `wrong` — and
`calibrate --from-reviews` fits per-claim thresholds on two thirds of each claim's reviews and reports
precision on the held-out third. Run from the repository:

    .venv/bin/python scripts/simulate_reviews.py [--min-reviews 8] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LABELLED = ROOT / "crawler" / "data" / "labelled"


def claimwatch(url: str, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMWATCH_")}
    subprocess.run(
        [sys.executable, "-m", "crawler.cli", "--database-url", url, *args], cwd=ROOT, env=env, check=True
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--min-reviews", type=int, default=8, help="reviews a claim needs for its own threshold (default 8)"
    )
    parser.add_argument("--keep", type=Path, help="directory for the database (default: a temporary one)")
    options = parser.parse_args()

    from sqlalchemy import select

    from crawler.services.review import calibrate_from_reviews
    from db.models import Claim, Document, Match
    from db.queries import store_documents
    from db.reviews import ReviewInput, add_reviews
    from db.session import make_engine, make_sessionmaker, session_scope
    from pipelines.dedup import content_hash

    directory = options.keep or Path(tempfile.mkdtemp(prefix="claimwatch-reviews-"))
    directory.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{directory / 'reviews.db'}"
    claimwatch(url, "init")
    gold: dict[str, str | None] = {}
    records = []
    for name in ("seed_dev.jsonl", "seed_test.jsonl"):
        for number, line in enumerate((LABELLED / name).read_text(encoding="utf-8").splitlines()):
            item = json.loads(line)
            address = f"https://labelled.example/{name}/{number}"
            gold[address] = item.get("claim_id")
            records.append(
                {"url": address, "status": "ok", "title": f"{name} {number}", "text": item["passage"],
                 "language": item.get("language", "en"), "outlet": f"outlet{number % 7}.example",
                 "content_hash": content_hash(f"{name}{number}{item['passage']}"), "match_status": "pending"}
            )  # fmt: skip
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    with session_scope(sessions) as session:
        store_documents(session, records)
    claimwatch(url, "match")
    with session_scope(sessions) as session:
        rows = session.execute(select(Match.id, Claim.key, Document.url).join(Claim).join(Document)).all()
        reviews = [
            ReviewInput(i, "restates" if gold[address] == key else "wrong") for i, key, address in rows
        ]
        add_reviews(session, reviews, "simulated", "import")
    result = calibrate_from_reviews(sessions, options.min_reviews, write=True)
    held = result.held_out
    wrong = sum(r.verdict == "wrong" for r in reviews)
    print(f"documents {len(records)}, matches {len(rows)} ({wrong} wrong by their labels)")
    print(f"claims with a fitted threshold: {sum(f.threshold is not None for f in result.fits.values())} "
          f"of {len(result.fits)} (min {options.min_reviews} reviews)")  # fmt: skip
    print(f"held-out third: {held.reviews} matches, {held.correct} correct; precision "
          f"{held.precision_default:.3f} at the default thresholds -> {held.precision_fitted:.3f} with the "
          f"per-claim thresholds fitted on the other two thirds; {held.recall_fitted:.1%} of the correct "
          "ones kept")  # fmt: skip
    engine.dispose()
    print(f"database: {directory / 'reviews.db'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
