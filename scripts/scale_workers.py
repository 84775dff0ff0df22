"""Scaling of match workers (docs/scaling.md): requeue every document of a PostgreSQL database
(its matches are deleted), run N `claimwatch match --worker --idle-exit 0` processes at once, report
wall time, documents/s and sentences/s.

    BATCH=4 THREADS=1 python scripts/scale_workers.py postgresql+psycopg://user@host/db 1,2 [repeats]

THREADS sets each worker's CLAIMWATCH_ENCODER_THREADS (default 0: one per core).
"""

import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text

url = sys.argv[1]
counts = [int(n) for n in sys.argv[2].split(",")]
repeat = int(sys.argv[3]) if len(sys.argv) > 3 else 1
env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMWATCH_")}
env.update(
    {
        "CLAIMWATCH_DATABASE_URL": url,
        "CLAIMWATCH_MATCH_BATCH_DOCUMENTS": os.environ.get("BATCH", "4"),
        "CLAIMWATCH_LOG_LEVEL": "WARNING",
        "CLAIMWATCH_ENCODER_THREADS": os.environ.get("THREADS", "0"),
    }
)
engine = create_engine(url)


def requeue():
    with engine.begin() as c:
        c.execute(text("DELETE FROM matches"))
        c.execute(
            text(
                "UPDATE documents SET match_status='pending' "
                "WHERE match_status IN ('matched','no_match','not_scored')"
            )
        )
        return c.execute(text("SELECT count(*) FROM documents WHERE match_status='pending'")).scalar()


for n in counts:
    for r in range(repeat):
        pending = requeue()
        with engine.begin() as c:
            first = c.execute(text("SELECT coalesce(max(id),0) FROM crawl_runs")).scalar()
        t0 = time.monotonic()
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "crawler.cli", "match", "--worker", "--idle-exit", "0"],
                env=env,
                cwd=Path(__file__).resolve().parents[1],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(n)
        ]
        errs = [p.communicate()[1] for p in procs]
        wall = time.monotonic() - t0
        assert all(p.returncode == 0 for p in procs), errs
        with engine.begin() as c:
            rows = c.execute(
                text(
                    "SELECT documents_matched, passages_encoded, matches_stored FROM crawl_runs "
                    "WHERE id > :f AND kind='match'"
                ),
                {"f": first},
            ).all()
            span = c.execute(
                text(
                    "SELECT extract(epoch from max(matched_at)-min(matched_at)) FROM documents "
                    "WHERE matched_at IS NOT NULL AND match_status<>'duplicate'"
                )
            ).scalar()
        docs = sum(r[0] for r in rows)
        passages = sum(r[1] for r in rows)
        matches = sum(r[2] for r in rows)
        print(
            f"workers={n} run={r} pending={pending} wall={wall:.1f}s docs={docs} passages={passages} "
            f"matches={matches} "
            f"per-worker docs={[r[0] for r in rows]} first-to-last-batch={float(span or 0):.1f}s "
            f"docs/s(wall)={docs / wall:.2f} sentences/s(wall)={passages / wall:.1f}",
            flush=True,
        )
