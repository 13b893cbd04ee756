"""Ratings storage, CSV/JSONL export and import, and the ``llmeval blind``/``annotate`` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from human_helpers import rate

from pytest_llmeval.cli import main
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.human.blindset import load_blind_set, load_mapping
from pytest_llmeval.human.storage import Rating, RatingStore, export_ratings, load_ratings
from pytest_llmeval.results import CaseResult, RunResult, SuiteResult


def _results(path: Path, n: int = 12) -> Path:
    cases = [CaseResult(id=f"c{i:02d}", prompt=[{"role": "user", "content": f"q{i}"}], output=f"good {i}",
                        baseline_output=f"bad {i}", category="x" if i % 3 else "y") for i in range(n)]
    run = RunResult(suites=[SuiteResult(name="s", file="s.eval.yaml", model="ft", baseline="base", cases=cases)])
    run.save(path)
    return path


@pytest.fixture
def blind_dir(tmp_path: Path) -> Path:
    rc = main(["blind", "create", "--llmeval-json", str(_results(tmp_path / "r.json")), "--out",
               str(tmp_path / "set"), "--raters", "alice,bob,carol,dave", "--per-item", "2", "--seed", "3"])
    assert rc == 0
    return tmp_path / "set"


def test_blind_create_writes_the_set_and_prints_loads(blind_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blind = load_blind_set(blind_dir)
    assert len(blind.items) == 12 and blind.per_item == 2
    assert sorted(len(q) for q in blind.queues.values()) == [6, 6, 6, 6]
    assert load_mapping(blind_dir, blind).model == "ft"


def test_blind_create_errors_name_the_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = _results(tmp_path / "r.json")
    assert main(["blind", "create", "--llmeval-json", str(res), "--out", str(tmp_path / "o"),
                 "--raters", "a,b", "--per-item", "3"]) == 2
    assert "--per-item 3 is more than the 2 rater(s)" in capsys.readouterr().err
    assert main(["blind", "create", "--out", str(tmp_path / "o"), "--raters", "a"]) == 2
    assert "--llmeval-json" in capsys.readouterr().err
    assert main(["blind", "create", "--llmeval-json", str(tmp_path / "missing.json"), "--out",
                 str(tmp_path / "o"), "--raters", "a", "--per-item", "1"]) == 2
    assert "not found" in capsys.readouterr().err
    (tmp_path / "rubric.yaml").write_text("criteria: [{name: helpful, low: 1, high: 3}]\n")
    assert main(["blind", "create", "--llmeval-json", str(res), "--out", str(tmp_path / "o2"), "--raters",
                 "a", "--per-item", "1", "--rubric", str(tmp_path / "rubric.yaml"), "--sample", "6"]) == 0
    blind = load_blind_set(tmp_path / "o2")
    assert [c.name for c in blind.rubric.criteria] == ["helpful"] and len(blind.items) == 6
    # Stratified: categories x (8 of 12) and y (4 of 12) keep their 2:1 share.
    assert sorted(it.category for it in blind.items) == ["x"] * 4 + ["y"] * 2


def test_store_upserts_and_survives_reopening(blind_dir: Path) -> None:
    blind = load_blind_set(blind_dir)
    store = RatingStore(blind_dir / "ratings.db", blind.set_id)
    item = blind.queues["alice"][0]
    scores = {s: {c.name: 3 for c in blind.rubric.criteria} for s in "AB"}
    first = store.save(Rating("alice", item, scores, "A", "hm"))
    second = store.save(Rating("alice", item, scores, "tie", "changed"))
    assert second.revisions == 2 and second.created_at == first.created_at and second.preference == "tie"
    again = RatingStore(blind_dir / "ratings.db", blind.set_id)
    assert [r.preference for r in again.all()] == ["tie"]
    with pytest.raises(ConfigError, match="holds ratings of blind set"):
        RatingStore(blind_dir / "ratings.db", "another-set")


def test_export_csv_and_jsonl_round_trip(blind_dir: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    blind = load_blind_set(blind_dir)
    ratings = rate(blind, load_mapping(blind_dir, blind), model_wins=0.7, keep=0.8)
    ratings[0] = Rating(ratings[0].rater, ratings[0].item_id, ratings[0].scores, ratings[0].preference,
                        'quote " comma , newline\nand <b>tags</b>')
    store = RatingStore(blind_dir / "ratings.db", blind.set_id)
    for r in ratings:
        store.save(r)
    for fmt in ("csv", "jsonl"):
        out = tmp_path / f"export.{fmt}"
        assert main(["annotate", "export", "--blind-set", str(blind_dir), "--out", str(out)]) == 0
        assert f"{len(ratings)} ratings written" in capsys.readouterr().out
        back = load_ratings(out, blind)
        key = {(r.rater, r.item_id): (r.scores, r.preference, r.comment) for r in ratings}
        assert {(r.rater, r.item_id): (r.scores, r.preference, r.comment) for r in back} == key
    header = (tmp_path / "export.csv").read_text().splitlines()[0]
    assert header.startswith("rater,item_id,A.accuracy,A.relevance,A.format_compliance,A.fluency,B.accuracy")
    first = json.loads((tmp_path / "export.jsonl").read_text().splitlines()[0])
    assert set(first) >= {"rater", "item_id", "scores", "preference", "comment", "updated_at"}


def test_bad_ratings_files_name_file_and_line(blind_dir: Path, tmp_path: Path) -> None:
    blind = load_blind_set(blind_dir)
    good = rate(blind, load_mapping(blind_dir, blind), model_wins=1, keep=1)
    export_ratings(good, tmp_path / "r.jsonl", blind)
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    cases = {
        "not json": "not a rating",
        json.dumps({**json.loads(lines[1]), "item_id": "nope"}): "item 'nope' is not in blind set",
        json.dumps({**json.loads(lines[1]), "rater": "mallory"}): "rater 'mallory' is not a rater",
        lines[0]: "rated item",
    }
    for bad, msg in cases.items():
        (tmp_path / "bad.jsonl").write_text(lines[0] + "\n" + bad + "\n")
        with pytest.raises(ConfigError, match=msg) as exc:
            load_ratings(tmp_path / "bad.jsonl", blind)
        assert "bad.jsonl:2" in str(exc.value)
    (tmp_path / "bad.csv").write_text("rater,item_id\nalice,c00\n")
    with pytest.raises(ConfigError, match="missing column"):
        load_ratings(tmp_path / "bad.csv", blind)
    with pytest.raises(ConfigError, match=r"\.db .*\.csv/\.jsonl"):
        load_ratings(_touch(tmp_path / "r.txt"), blind)


def _touch(p: Path) -> Path:
    p.write_text("")
    return p


def test_report_prints_agreement_and_the_unblinded_win_rate(blind_dir: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    blind = load_blind_set(blind_dir)
    export_ratings(rate(blind, load_mapping(blind_dir, blind), model_wins=1.0, keep=1.0),
                   tmp_path / "r.csv", blind)
    assert main(["annotate", "report", "--blind-set", str(blind_dir), "--ratings", str(tmp_path / "r.csv"),
                 "--json", str(tmp_path / "rep.json")]) == 0
    out = capsys.readouterr().out
    assert "human evaluation: ft vs base" in out
    assert "win rate (item majority) = 1.000" in out and "W/L/T 12/0/0" in out
    assert "preference           alpha 1.000 (nominal)" in out
    data = json.loads((tmp_path / "rep.json").read_text())
    assert data["wins"] == 12 and data["agreement"]["preference"]["alpha"] == 1.0
    assert main(["annotate", "report", "--blind-set", str(blind_dir)]) == 2  # no ratings yet
    assert "ratings not found" in capsys.readouterr().err


def test_the_llmeval_command_does_not_import_the_human_modules_until_used() -> None:
    """Every `llmeval` command builds its parser from the subcommands' modules; the human
    package's exports load on first use, not with the parser."""
    import subprocess
    import sys

    code = ("import sys; from pytest_llmeval.cli import build_parser; build_parser(); "
            "print(sorted(m for m in sys.modules if m.startswith('pytest_llmeval.human.') "
            "and m != 'pytest_llmeval.human.cli')); "
            "from pytest_llmeval.human import analyse, RatingStore; print(callable(analyse))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "True"], out.stdout + out.stderr
