"""Table 1 sweep -> report: tables, skipped runs, figures; the W&B logger offline."""

import json
from pathlib import Path

import pytest
from helpers import FAST, run_cli

from mumo.report import collect, main as report_main, markdown, write_csv


def fake_run(root: Path, name: str, method: str, modulation: str, modes: int, seed: int, mod: float, ada: float,
             inner_steps: int = 1):
    job = root / name
    job.mkdir(parents=True)
    (job / "results.json").write_text(json.dumps({
        "method": method, "modulation": modulation, "modes": modes, "seed": seed, "steps": 10, "inner_steps": inner_steps,
        "test": {"post_modulation_mse": mod, "post_adaptation_mse": ada, "post_modulation_ci95": 0.1,
                 "post_adaptation_ci95": 0.01, "mse_by_step": [mod, ada]}}))


def test_table_aggregates_seeds_and_marks_missing_cells_and_skipped_runs(tmp_path: Path):
    fake_run(tmp_path, "0", "maml", "none", 2, 0, 16.0, 1.0)
    fake_run(tmp_path, "1", "maml", "none", 2, 1, 16.2, 1.2)
    fake_run(tmp_path, "2", "mumomaml", "film", 3, 0, 2.0, 0.4)
    (tmp_path / "3" / ".hydra").mkdir(parents=True)
    (tmp_path / "3" / ".hydra" / "config.yaml").write_text("{}")
    runs, skipped = collect(tmp_path)
    assert len(runs) == 3 and [p.name for p, _ in skipped] == ["3"]
    text = markdown(runs, skipped)
    maml = next(line for line in text.splitlines() if line.startswith("| MAML"))
    # mean of two seeds, t-based CI: 12.706 * std / sqrt(2) with std = 0.1414
    assert "| 16.1000 ± 1.2706 | 1.1000 ± 1.2706 | 15.9255 / 1.0852 | — | — | 12.5994 / 1.1633 |" in maml
    film = next(line for line in text.splitlines() if line.startswith("| MuMoMAML FiLM"))
    assert "| — | — | 1.7094 / 0.3125 | 2.0000 ± 0.1000 | 0.4000 ± 0.0100 |" in film
    assert "no results.json" in text


def test_runs_that_differ_in_more_than_the_seed_get_rows_of_their_own(tmp_path: Path):
    for name, inner, seed, mod in [("0", 5, 0, 4.0), ("1", 5, 1, 6.0), ("2", 10, 0, 2.0)]:
        fake_run(tmp_path, name, "mumomaml", "film", 2, seed, mod, 0.5, inner_steps=inner)
    runs, _ = collect(tmp_path)
    rows = [line for line in markdown(runs, []).splitlines() if line.startswith("| MuMoMAML")]
    assert [row.split(" | ")[0:2] for row in rows] == [["| MuMoMAML FiLM (inner_steps=5)", "5.0000 ± 12.7060"],
                                                       ["| MuMoMAML FiLM (inner_steps=10)", "2.0000 ± 0.1000"]]
    write_csv(runs, tmp_path / "report.csv")
    lines = (tmp_path / "report.csv").read_text().splitlines()
    assert lines[0].startswith("method,modulation,settings,modes") and "mumomaml,film,inner_steps=10,2," in lines[-1]


def test_report_cli_fails_cleanly_on_an_empty_directory(tmp_path: Path, capsys):
    with pytest.raises(SystemExit):
        report_main([str(tmp_path)])
    assert capsys.readouterr().err.startswith("error: sweep_dir: no results.json")


def test_table1_sweep_then_report(workdir: Path):
    overrides = [o for o in FAST if not o.startswith("inner_steps")] + ["trainer.max_steps=3", "val_every=3"]
    proc = run_cli("-m", "mumo.train", "-m", "experiment=table1", *overrides, cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep,) = workdir.glob("outputs/multirun/*/*")
    runs = [json.loads(p.read_text()) for p in sweep.glob("*/results.json")]
    assert sorted((r["method"], r["modulation"], r["modes"]) for r in runs) == sorted(
        (m, mod, k) for m, mod in [("maml", "none"), ("multi_maml", "none"), ("mumomaml", "softmax"),
                                   ("mumomaml", "sigmoid"), ("mumomaml", "film")] for k in (2, 3))
    assert all(r["inner_steps"] == 5 and r["meta_batch_size"] == 4 * r["modes"] for r in runs)
    proc = run_cli("-m", "mumo.report", str(sweep), "--no-figures", cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| M")]
    assert len(rows) == 5 and not any("—" in line for line in rows)  # all 20 cells filled
    # one failed job: its results.json is gone; the report lists it and keeps the rest
    failed = sweep / "0" / "results.json"
    failed.unlink()
    proc = run_cli("-m", "mumo.report", str(sweep), cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| M")]
    assert len(rows) == 5
    assert sum(line.count("—") for line in rows) == 2  # the failed job's two cells
    assert "Skipped:" in proc.stdout and str(failed.parent) in proc.stdout
    for name in ["report.md", "report.csv", "adaptation_curves.png", "figure2a_2modes.png", "figure2b_2modes.png",
                 "figure2a_3modes.png", "figure2b_3modes.png"]:
        assert (sweep / name).stat().st_size > 0, name
