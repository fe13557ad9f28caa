"""Table 1 sweep -> report: tables, skipped runs, figures; the W&B logger offline."""

import json
from pathlib import Path

import pytest
import torch
from helpers import FAST, run_cli
from omegaconf import OmegaConf

from mumo.config import compose_config
from mumo.regression.functions import RegressionTasks
from mumo.plots import metric_axis, plt
from mumo.regression.plots import input_grid
from mumo.report import PAPER_TABLE1, collect, main as report_main, markdown, table, write_csv
from mumo.report_figures import figure2, mean_curve, plot_validation_curves, validation_history


def paper_config(method: str, modes: int, seed: int = 0, *overrides: str) -> dict:
    """The resolved config `experiment=table1` gives a Table 1 method (the paper's settings)."""
    cfg = compose_config("train", ["experiment=table1", f"method={method}", f"modes={modes}", f"seed={seed}",
                                   "paths.output_dir=.", *overrides])
    return OmegaConf.to_container(cfg, resolve=True)


def fake_run(root: Path, name: str, method: str, modes: int, seed: int, mod: float, ada: float, *overrides: str,
             kind: str = "trained") -> Path:
    """A results.json as mumo.train writes it, with made-up metrics (`method`: a method= choice)."""
    config = paper_config(method, modes, seed, *overrides)
    job = root / name
    job.mkdir(parents=True)
    (job / "results.json").write_text(json.dumps({
        "method": method.split("_")[0] if method.startswith("mumomaml") else method,
        "modulation": method.split("_")[1] if method.startswith("mumomaml") else "none",
        "modes": modes, "seed": seed, "steps": config["trainer"]["max_steps"], "inner_steps": config["inner_steps"],
        "provenance": {"kind": kind}, "config": config,
        "test": {"post_modulation_mse": mod, "post_adaptation_mse": ada, "post_modulation_ci95": 0.1,
                 "post_adaptation_ci95": 0.01, "mse_by_step": [mod, ada]}}))
    return job


def rows_of(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| M")]


def test_table_aggregates_seeds_and_marks_missing_cells_and_skipped_runs(tmp_path: Path):
    fake_run(tmp_path, "0", "maml", 2, 0, 16.0, 1.0, "trainer.max_steps=10")
    fake_run(tmp_path, "1", "maml", 2, 1, 16.2, 1.2, "trainer.max_steps=10")
    fake_run(tmp_path, "2", "mumomaml_film", 3, 0, 2.0, 0.4, "trainer.max_steps=10")
    (tmp_path / "3" / ".hydra").mkdir(parents=True)
    (tmp_path / "3" / ".hydra" / "config.yaml").write_text("{}")
    runs, skipped = collect(tmp_path)
    assert len(runs) == 3 and [p.name for p, _ in skipped] == ["3"]
    text = markdown(runs, skipped)
    maml, film = rows_of(text)
    # mean of two seeds, t-based CI: 12.706 * std / sqrt(2) with std = 0.1414; no paper column:
    # 10 meta-iterations are not the paper's settings
    assert maml == "| MAML | 16.1000 ± 1.2706 | 1.1000 ± 1.2706 | — | — |"
    assert film == "| MuMoMAML FiLM | — | — | 2.0000 ± 0.1000 | 0.4000 ± 0.0100 |"
    assert "paper" not in text.splitlines()[0]
    assert "differ from the paper in: trainer.max_steps (10; paper 70000)" in text
    assert "no results.json" in text


def test_paper_numbers_appear_only_beside_runs_with_the_papers_settings(tmp_path: Path):
    fake_run(tmp_path, "0", "maml", 2, 0, 16.0, 1.0)  # experiment=table1 as it is
    fake_run(tmp_path, "1", "mumomaml_film", 2, 0, 2.0, 0.4, "inner_lr=0.01")
    t = table(collect(tmp_path)[0])
    assert t.columns == [(2,)]  # no empty 3-mode columns
    assert t.paper == {(("maml", "none"), (2,)): PAPER_TABLE1["maml", "none"][2]}
    assert any(d.startswith("inner_lr (0.01; paper 0.001)") for d in t.differences[("mumomaml", "film"), (2,)])
    maml, film = rows_of(markdown(collect(tmp_path)[0], []))
    assert maml.endswith("| 15.9255 / 1.0852 |") and film.endswith("| — |")


def test_runs_that_differ_in_any_setting_but_the_seed_get_rows_of_their_own(tmp_path: Path):
    # modulation.layers is in no hand-picked list: the full configs tell the runs apart
    fake_run(tmp_path, "0", "mumomaml_film", 2, 0, 4.0, 0.5, "modulation.layers=[0]")
    fake_run(tmp_path, "1", "mumomaml_film", 2, 1, 6.0, 0.5, "modulation.layers=[0]")
    fake_run(tmp_path, "2", "mumomaml_film", 2, 0, 2.0, 0.5, "modulation.layers=null")
    fake_run(tmp_path, "3", "mumomaml_film", 2, 0, 3.0, 0.5, "modulation.layers=null", "inner_steps=10")
    runs, _ = collect(tmp_path)
    names = [row.split(" | ")[0:2] for row in rows_of(markdown(runs, []))]
    assert names == [["| MuMoMAML FiLM (inner_steps=5, modulation.layers=[0])", "5.0000 ± 12.7060"],
                     ["| MuMoMAML FiLM (inner_steps=5, modulation.layers=null)", "2.0000 ± 0.1000"],
                     ["| MuMoMAML FiLM (inner_steps=10, modulation.layers=null)", "3.0000 ± 0.1000"]]
    write_csv(runs, tmp_path / "report.csv")
    lines = (tmp_path / "report.csv").read_text().splitlines()
    assert lines[0].startswith("method,modulation,settings,modes")
    assert "mumomaml,film,inner_steps=10 modulation.layers=null,2," in lines[-1]


def test_a_run_stored_before_an_optional_key_existed_shares_the_cell_of_runs_that_store_it_null(tmp_path: Path):
    fake_run(tmp_path, "0", "maml", 2, 0, 4.0, 1.0)
    older = fake_run(tmp_path, "1", "maml", 2, 1, 6.0, 3.0)
    results = json.loads((older / "results.json").read_text())
    assert results["config"].pop("inner_lr_per_mode") is None  # the key did not exist yet
    (older / "results.json").write_text(json.dumps(results))
    assert [row.split(" | ")[0:2] for row in rows_of(markdown(collect(tmp_path)[0], []))] == [
        ["| MAML", "5.0000 ± 12.7060"]]


def test_a_row_is_named_by_the_settings_that_vary_within_its_own_method(tmp_path: Path):
    """A sweep over the number of steps with Multi-MAML's per-mode rates following it: the rates
    label only Multi-MAML's rows."""
    for i, steps in enumerate((5, 10)):
        fake_run(tmp_path, f"maml{i}", "maml", 2, 0, 4.0, 1.0, f"inner_steps={steps}")
        fake_run(tmp_path, f"multi{i}", "multi_maml", 2, 0, 4.0, 1.0, f"inner_steps={steps}",
                 f"inner_lr_per_mode=[{0.4 if steps == 5 else 0.1},0.01]")
    names = [row.split(" | ")[0] for row in rows_of(markdown(collect(tmp_path)[0], []))]
    assert names == ["| MAML (inner_steps=5)", "| MAML (inner_steps=10)",
                     "| Multi-MAML (GT) (inner_lr_per_mode=[0.1,0.01], inner_steps=10)",
                     "| Multi-MAML (GT) (inner_lr_per_mode=[0.4,0.01], inner_steps=5)"]


def test_same_settings_and_seed_are_duplicates_counted_once(tmp_path: Path):
    trained = fake_run(tmp_path, "sweep/0", "maml", 2, 0, 16.0, 1.0, "trainer.max_steps=10")
    fake_run(tmp_path, "evaluate/0", "maml", 2, 0, 16.0, 1.0, "trainer.max_steps=10", kind="evaluated")
    fake_run(tmp_path, "sweep2/0", "maml", 2, 0, 16.5, 1.0, "trainer.max_steps=10")
    fake_run(tmp_path, "sweep2/1", "maml", 2, 1, 16.2, 1.2, "trainer.max_steps=10")
    runs, skipped = collect(tmp_path)
    assert sorted(r["_dir"] for r in runs) == [str(trained), str(tmp_path / "sweep2/1")]
    assert sorted(p.relative_to(tmp_path).as_posix() for p, _ in skipped) == ["evaluate/0", "sweep2/0"]
    assert all(why == f"duplicate: same settings and seed as {trained}" for _, why in skipped)
    text = markdown(runs, skipped)
    assert rows_of(text) == ["| MAML | 16.1000 ± 1.2706 | 1.1000 ± 1.2706 |"]
    assert "2 runs." in text and "duplicate: same settings and seed" in text


def test_validation_curves_average_seeds_where_all_were_validated(tmp_path: Path):
    runs = [json.loads((fake_run(tmp_path, str(seed), "maml", 2, seed, 16.0, 1.0) / "results.json").read_text())
            for seed in range(3)]
    runs[0]["history"] = {"train": [], "val": [[25, 9.0, 3.0], [50, 8.0, 2.0], [75, 7.0, 1.0]]}
    runs[1]["history"] = {"train": [], "val": [[25, 9.0, 5.0], [50, 8.0, 4.0]]}  # stopped early
    assert validation_history(runs[2]) == {}  # no history recorded: left out of the mean
    assert mean_curve([c for r in runs if (c := validation_history(r))]) == ([25, 50], [4.0, 3.0])
    plot_validation_curves({"2 modes": runs, "3 modes": runs[2:]}, tmp_path / "validation_curves.png")
    assert (tmp_path / "validation_curves.png").stat().st_size > 10_000  # the 3-mode panel is empty, labelled


def test_figure2_panels_are_titled_by_their_own_stage():
    tasks = RegressionTasks(2)
    shown = tasks.sample(2, torch.Generator().manual_seed(0))
    grid, truth = input_grid(tasks, shown)
    curves = {("maml", "none"): (truth, truth)}
    titles = {}
    for panel in ("2a", "2b"):
        fig = figure2(panel, tasks.mode_names, shown, grid, truth, curves)
        titles[panel] = fig._suptitle.get_text()
        plt.close(fig)
    assert titles == {"2a": "Figure 2a: 2 modes, after modulation (MAML / Multi-MAML: their priors)",
                      "2b": "Figure 2b: 2 modes, after adaptation"}


@pytest.mark.parametrize("values", [[16.66, 16.675, 16.69], [0.3, 2.0, 16.7]], ids=["narrow", "decades"])
def test_mse_axes_label_ticks_in_plain_numbers(values):
    fig, ax = plt.subplots()
    ax.plot(range(len(values)), values)
    metric_axis(ax, values)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() + ax.get_yticklabels(minor=True) if t.get_text()]
    plt.close(fig)
    assert labels and not any("times" in x or "^" in x or "e+" in x for x in labels), labels


def test_report_cli_fails_cleanly_on_an_empty_directory_and_says_why_runs_were_skipped(tmp_path: Path, capsys):
    with pytest.raises(SystemExit):
        report_main([str(tmp_path)])
    assert capsys.readouterr().err == f"error: sweep_dir: no run to report under {tmp_path}\n"
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "results.json").write_text("{cut short")
    with pytest.raises(SystemExit):
        report_main([str(tmp_path)])
    assert capsys.readouterr().err == (f"error: sweep_dir: no run to report under {tmp_path} (1 skipped; "
                                       f"{tmp_path / 'job'}: unreadable results.json (JSONDecodeError))\n")


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
    assert "Skipped (not in the table):" in proc.stdout and str(failed.parent) in proc.stdout
    for name in ["report.md", "report.csv", "adaptation_curves.png", "validation_curves.png", "figure2a_2modes.png", "figure2b_2modes.png",
                 "figure2a_3modes.png", "figure2b_3modes.png"]:
        assert (sweep / name).stat().st_size > 0, name


def test_classification_columns_are_datasets_and_episodes_as_in_the_authors_table(tmp_path: Path):
    """Runs with the same number of modes but other datasets or N-way K-shot episodes get columns of
    their own, named by them, in the table and the figures; their rows are not split."""
    for name, method, overrides, accuracy in [
            ("a", "maml", [], 0.70), ("b", "mumomaml_film", [], 0.80),
            ("c", "maml", ["data.datasets=[emoji,flags]", "episodes=20w1s"], 0.50),
            ("d", "mumomaml_film", ["data.datasets=[emoji,flags]", "episodes=20w1s"], 0.55)]:
        config = OmegaConf.to_container(compose_config("train", ["task=classification", f"method={method}",
                                                                 "paths.output_dir=.", *overrides]), resolve=True)
        job = tmp_path / name
        job.mkdir()
        (job / "results.json").write_text(json.dumps({
            "method": method.split("_")[0], "modulation": "film" if "film" in method else "none", "modes": 2,
            "mode_names": config["data"]["datasets"] or ["digits", "emoji"], "seed": 0, "steps": 10,
            "task": "classification", "metric": "accuracy", "config": config,
            "test": {"post_modulation_accuracy": 0.2, "post_adaptation_accuracy": accuracy, "post_modulation_ci95": 0.01,
                     "post_adaptation_ci95": 0.02, "accuracy_by_step": [0.2, accuracy]}}))
    runs, _ = collect(tmp_path)
    text = markdown(runs, [])
    assert "| 2 modes (digits + emoji), 5-way 1-shot: after adaptation |" in text
    assert "| 2 modes (emoji + flags), 20-way 1-shot: after adaptation |" in text
    maml, film = rows_of(text)
    assert maml == "| MAML | 0.2000 ± 0.0100 | 0.7000 ± 0.0200 | 0.2000 ± 0.0100 | 0.5000 ± 0.0200 |"
    assert film.startswith("| MuMoMAML FiLM | ") and film.endswith(" | 0.5500 ± 0.0200 |")
    write_csv(runs, tmp_path / "report.csv")
    assert "maml,none,,2,\"2 modes (emoji + flags), 20-way 1-shot\",post_adaptation_accuracy,0.5," in (
        tmp_path / "report.csv").read_text()
    assert report_main([str(tmp_path)]) is None and (tmp_path / "adaptation_curves_classification.png").exists()
