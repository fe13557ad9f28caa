"""Collect a sweep's results.json files into the paper's Table 1 layout, with figures.

    python -m mumo.report outputs/multirun/<date>/<time> [--out DIR] [--no-figures]

Writes report.md, report.csv (a table per task: regression, navigation, cheetah_speed, ...),
adaptation_curves.png and figure2a/2b_<M>modes.png for regression (fits of every method on the
same test tasks), adaptation_curves_rl.png (Figure 3: a panel per RL environment) and
adaptation_curves_classification.png into the sweep directory (or --out). Cells are mean ± 95% CI
across seeds (Student t); with one seed, the CI is over test tasks. Missing cells show '—'.
Runs are compared on their whole resolved config (results.json's `config`): runs that differ in
any setting other than the seed (e.g. a sweep over inner_steps) get rows of their own, named by
that setting; runs with the same settings and seed are duplicates, listed and counted once. The
paper's numbers appear beside runs with the paper's settings only.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import math
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from mumo.errors import MumoError, output_directory

# Workshop paper, Table 1: (after modulation, after adaptation) by number of modes.
PAPER_TABLE1: dict[tuple[str, str], dict[int, tuple[float, float]]] = {
    ("maml", "none"): {2: (15.9255, 1.0852), 3: (12.5994, 1.1633)},
    ("multi_maml", "none"): {2: (16.2894, 0.4330), 3: (12.3742, 0.7791)},
    ("mumomaml", "softmax"): {2: (3.9140, 0.4795), 3: (0.6889, 0.4884)},
    ("mumomaml", "sigmoid"): {2: (1.4992, 0.3414), 3: (2.4047, 0.4414)},
    ("mumomaml", "film"): {2: (1.7094, 0.3125), 3: (1.9234, 0.4048)},
}
# The authors' MMAML-Classification README: post-adaptation query accuracy (%) on the meta-test
# classes of Omniglot, mini-ImageNet (2 modes), + FC100 (3), + CUB and Aircraft (5), 3x84x84.
PAPER_CLASSIFICATION: dict[tuple[int, int, int], dict[str, float]] = {
    (2, 5, 1): {"maml": 66.80, "multi_maml": 66.85, "mumomaml": 69.93},
    (2, 5, 5): {"maml": 77.79, "multi_maml": 73.07, "mumomaml": 78.73},
    (2, 20, 1): {"maml": 44.69, "multi_maml": 53.15, "mumomaml": 47.80},
    (3, 5, 1): {"maml": 54.55, "multi_maml": 55.90, "mumomaml": 57.47},
    (3, 5, 5): {"maml": 67.97, "multi_maml": 62.20, "mumomaml": 70.15},
    (3, 20, 1): {"maml": 28.22, "multi_maml": 39.77, "mumomaml": 36.27},
    (5, 5, 1): {"maml": 44.09, "multi_maml": 45.46, "mumomaml": 49.06},
    (5, 5, 5): {"maml": 54.41, "multi_maml": 55.92, "mumomaml": 60.83},
    (5, 20, 1): {"maml": 28.85, "multi_maml": 33.78, "mumomaml": 33.97},
}
ROW_NAMES = {
    ("maml", "none"): "MAML",
    ("multi_maml", "none"): "Multi-MAML (GT)",
    ("mumomaml", "softmax"): "MuMoMAML softmax",
    ("mumomaml", "sigmoid"): "MuMoMAML sigmoid",
    ("mumomaml", "film"): "MuMoMAML FiLM",
}
STAGES = {"pre_modulation": "before modulation", "post_modulation": "after modulation",
          "post_adaptation": "after adaptation"}
# what each metric is (the table of a task says it under the table)
METRICS = {
    "mse": "Query MSE on the fixed test set (lower is better)",
    "return": "Mean return of the fixed test tasks (higher is better)",
    "accuracy": "Query accuracy on the fixed test tasks (higher is better)",
}


def family_of(results: dict) -> tuple[str, str]:
    """(task, what its metric is) of a run: its `task` ('regression', 'navigation',
    'cheetah_speed', ...), one table each."""
    metric = results.get("metric", "mse")
    return results.get("task", "regression"), METRICS.get(metric, metric)


def family(results: dict) -> str:
    return family_of(results)[0]


def column_of(results: dict) -> tuple:
    """A run's table column: its number of modes; for classification also its datasets and its
    N-way K-shot episodes, the columns of the authors' README table."""
    if family(results) != "classification":
        return (results["modes"],)
    data = results["config"]["data"]
    return results["modes"], tuple(results["mode_names"]), data["ways"], data["shots"]


def column_name(column: tuple) -> str:
    """'2 modes', or '2 modes (digits + emoji), 5-way 1-shot'."""
    if len(column) == 1:
        return f"{column[0]} modes"
    modes, names, ways, shots = column
    return f"{modes} modes ({' + '.join(names)}), {ways}-way {shots}-shot"


def stages(runs: list[dict]) -> list[str]:
    """The evaluation stages every run reports (regression: after modulation and adaptation; RL
    also before modulation)."""
    return [s for s in STAGES if all(f"{s}_{r.get('metric', 'mse')}" in r["test"] for r in runs)]
# Two-sided 95% Student t quantiles for 1..30 degrees of freedom.
T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
       2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


@dataclass
class Cell:
    """One table cell: a method in one column (number of modes, episodes), over seeds."""

    runs: list[dict] = field(default_factory=list)

    def stat(self, stage: str) -> tuple[float, float, int]:
        """(mean, 95% CI half-width, number of seeds) of the runs' metric at `stage`."""
        values = [r["test"][f"{stage}_{r.get('metric', 'mse')}"] for r in self.runs]
        n = len(values)
        mean = sum(values) / n
        if n == 1:
            return mean, self.runs[0]["test"][f"{stage}_ci95"], 1
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
        return mean, (T95[n - 2] if n <= 31 else 1.96) * std / math.sqrt(n), n


# Keys of the resolved config that are not settings: the training seed and the seeds derived from
# it (runs that differ in them are seeds of one cell), where a run writes and logs, how often it
# validates, how many threads it used. Runs are compared on every other key.
BOOKKEEPING = ("seed", "data.seed", "model.seed", "paths", "logger", "callbacks", "threads", "ckpt_path", "val_every",
               "data.val_tasks_per_mode", "data.val_seed", "data.eval_batch_size", "trainer.val_check_interval",
               "trainer.log_every_n_steps", "trainer.default_root_dir", "trainer.enable_progress_bar",
               "trainer.enable_model_summary")


def flatten(node: object, prefix: str = "") -> dict[str, str]:
    """{'a.b.c': value as JSON text} for every leaf of a nested dict (lists are leaves)."""
    if isinstance(node, dict):
        return {k: v for key, child in node.items() for k, v in flatten(child, f"{prefix}{key}.").items()}
    return {prefix[:-1]: json.dumps(node)}


def settings(config: dict) -> dict[str, str]:
    """A run's settings: its flattened resolved config without the bookkeeping keys and without
    null values, so that a run stored before an optional key existed (off by default: null)
    compares equal to one that stores it as null."""
    return {k: v for k, v in flatten(config).items()
            if v != "null" and not any(k == b or k.startswith(b + ".") for b in BOOKKEEPING)}


def mark_variants(runs: list[dict]) -> None:
    """Store under '_variant' each run's values of the settings that differ between runs of the
    same method and column (`column_of`), so that such runs never share a table cell. A run is named
    by the keys that vary within its own group (a Multi-MAML-only key never labels MAML's rows).

    Keys that always vary together (`inner_lr` and `model.inner_loop.lr`) are named once, by the
    shortest key.
    """
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in runs:
        groups[r["method"], r["modulation"], column_of(r)].append(r)
    varies_in = {g: {k for r in group for k in r["_settings"] if len({m["_settings"].get(k) for m in group}) > 1}
                 for g, group in groups.items()}
    varying = sorted(set().union(*varies_in.values()))
    shown: dict[tuple, str] = {}
    for key in sorted(varying, key=lambda k: (k.count("."), len(k), k)):
        shown.setdefault(tuple(r["_settings"].get(key) for r in runs), key)
    names = sorted(shown.values(), key=varying.index)
    for g, group in groups.items():
        for r in group:
            r["_variant"] = tuple(f"{k}={_plain(r['_settings'].get(k))}" for k in names if k in varies_in[g])


def _plain(value: str | None) -> str:
    """A JSON value as written on the command line: 5, 0.001, [0], null (None: null or absent)."""
    return "null" if value is None else value.replace('"', "").replace(", ", ",")


def row_key(results: dict) -> tuple[str, ...]:
    """(method, modulation, *settings that differ within the sweep): one table row."""
    return results["method"], results["modulation"], *results.get("_variant", ())


def row_name(key: tuple[str, ...]) -> str:
    name = ROW_NAMES.get(key[:2], f"{key[0]} {key[1]}")
    return f"{name} ({', '.join(key[2:])})" if key[2:] else name


def _read(job: Path) -> dict | str:
    """The run's results with its settings, or why it cannot be reported."""
    path = job / "results.json"
    if not path.exists():
        return "no results.json: the job failed or has not finished"
    try:
        results = json.loads(path.read_text())
        results["test"][f"post_adaptation_{results.get('metric', 'mse')}"]  # noqa: B018 - checks the file has test metrics
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        return f"unreadable results.json ({type(err).__name__})"
    if not isinstance(results.get("config"), dict):
        return "results.json has no config (written by an older mumo): re-run `python -m mumo.evaluate` on it"
    results["_dir"], results["_settings"] = str(job), settings(results["config"])
    return results


def collect(sweep_dir: Path) -> tuple[list[dict], list[tuple[Path, str]]]:
    """Every run's results (with its directory under '_dir'), and the job dirs skipped, with why.

    Of runs with the same settings and seed (a training run, its re-evaluation, the same job in
    two sweeps) one is kept, a trained one before an evaluated one; the others are skipped as
    duplicates.
    """
    if not sweep_dir.is_dir():
        raise MumoError(f"sweep_dir: no such directory: {sweep_dir}")
    job_dirs = {p.parent.parent for p in sweep_dir.rglob(".hydra/config.yaml")}
    job_dirs |= {p.parent for p in sweep_dir.rglob("results.json")}
    runs, skipped = [], []
    for job in sorted(job_dirs):
        results = _read(job)
        (runs.append(results) if isinstance(results, dict) else skipped.append((job, results)))
    kept: dict[tuple, dict] = {}
    for r in sorted(runs, key=lambda r: (r.get("provenance", {}).get("kind") == "evaluated", r["_dir"])):
        key = (r["method"], r["modulation"], r["modes"], r["seed"], tuple(sorted(r["_settings"].items())))
        if key in kept:
            skipped.append((Path(r["_dir"]), f"duplicate: same settings and seed as {kept[key]['_dir']}"))
        else:
            kept[key] = r
    runs = sorted(kept.values(), key=lambda r: r["_dir"])
    for group in by_family(runs).values():  # each family's runs are compared among themselves
        mark_variants(group)
    return runs, skipped


@functools.cache
def paper_settings(method: str, modulation: str, modes: int) -> dict[str, str] | None:
    """The settings of the paper's Table 1 run of a method (what `experiment=table1` composes);
    composed once per process (the markdown and the CSV tables both ask for every cell)."""
    if (method, modulation) not in PAPER_TABLE1:
        return None
    from omegaconf import OmegaConf

    from mumo.config import compose_config

    group = f"mumomaml_{modulation}" if method == "mumomaml" else method
    cfg = compose_config("train", ["experiment=table1", f"method={group}", f"modes={modes}", "paths.output_dir=."])
    return settings(OmegaConf.to_container(cfg, resolve=True))


def paper_differences(cell: Cell, paper: dict[str, str] | None) -> list[str]:
    """The settings in which a cell's runs differ from the paper's ('key (run value, paper value)')."""
    if paper is None:
        return []
    keys = sorted({k for r in cell.runs for k in r["_settings"].keys() | paper.keys()
                   if r["_settings"].get(k) != paper.get(k)})
    return [f"{k} ({', '.join(sorted({_plain(r['_settings'].get(k)) for r in cell.runs}))}; paper "
            f"{_plain(paper.get(k))})" for k in keys]


def paper_order(keys) -> list[tuple[str, ...]]:
    """Rows in Table 1's method order, then by settings; other methods after them."""
    rank = {k: i for i, k in enumerate(PAPER_TABLE1)}
    return sorted(set(keys), key=lambda k: (rank.get(k[:2], len(rank)), k[:2], [_numeric(v) for v in k[2:]]))


def _numeric(setting: str) -> tuple[str, float, str]:
    """'inner_steps=10' sorts after 'inner_steps=5'; values that are not numbers sort by text."""
    name, _, value = setting.partition("=")
    try:
        return name, float(value), ""
    except ValueError:
        return name, math.inf, value


@dataclass
class Table:
    """Rows (paper order first), columns (`column_of`: the numbers of modes the runs have, for
    classification with their datasets and episodes) and cells; the paper's numbers for the cells
    whose runs have the paper's settings, and for the other cells of Table 1 methods, the settings
    in which they differ from the paper's."""

    rows: list[tuple[str, ...]]
    columns: list[tuple]
    cells: dict[tuple, Cell]
    paper: dict[tuple, tuple[float, float]]
    differences: dict[tuple, list[str]]


def table(runs: list[dict]) -> Table:
    cells: dict[tuple, Cell] = defaultdict(Cell)
    for r in runs:
        cells[row_key(r), column_of(r)].runs.append(r)
    paper, differences = {}, {}
    for (key, column), cell in cells.items():
        modes = column[0]
        numbers = PAPER_TABLE1.get(key[:2], {}).get(modes) if family(cell.runs[0]) == "regression" else None
        if numbers is None:
            continue
        differ = paper_differences(cell, paper_settings(*key[:2], modes))
        if differ:
            differences[key, column] = differ
        else:
            paper[key, column] = numbers
    return Table(paper_order({row_key(r) for r in runs}), sorted({column_of(r) for r in runs}), dict(cells), paper,
                 differences)


def fmt(mean: float, ci: float) -> str:
    return f"{mean:.4f} ± {ci:.4f}" if math.isfinite(ci) else f"{mean:.4f}"


def by_family(runs: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in runs:
        groups[family(r)].append(r)
    return dict(groups)


def markdown(runs: list[dict], skipped: list[tuple[Path, str]]) -> str:
    """One table per task family, then what was skipped."""
    lines = []
    for name, group in by_family(runs).items():
        lines += [f"## {name}", "", *family_table(group), ""]
    if skipped:
        lines += ["Skipped (not in the table):"] + [f"- `{path}`: {why}" for path, why in skipped]
    return "\n".join(lines).rstrip("\n") + "\n"


def family_table(runs: list[dict]) -> list[str]:
    t, shown = table(runs), stages(runs)
    with_paper = [m for m in t.columns if any(k[1] == m for k in t.paper)]
    header = ["method"]
    for m in t.columns:
        header += [f"{column_name(m)}: {STAGES[s]}" for s in shown]
        header += [f"paper ({column_name(m)})"] if m in with_paper else []
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key in t.rows:
        line = [row_name(key)]
        for m in t.columns:
            cell = t.cells.get((key, m))
            line += [fmt(*cell.stat(s)[:2]) if cell else "—" for s in shown]
            if m in with_paper:
                paper = t.paper.get((key, m))
                line.append(f"{paper[0]:.4f} / {paper[1]:.4f}" if paper else "—")
        lines.append("| " + " | ".join(line) + " |")
    seeds = sorted({r["seed"] for r in runs})
    steps = sorted({r["steps"] for r in runs})
    name, what = family_of(runs[0])
    lines += ["", f"{what}, mean ± 95% CI over seeds {seeds} "
              "(over test tasks where a cell has one seed); meta-iterations trained: "
              f"{', '.join(map(str, steps))}; {len(runs)} runs."]
    if t.differences:
        differ = sorted({d for ds in t.differences.values() for d in ds})
        lines += ["", "The paper's Table 1 numbers are shown only beside runs with its settings "
                  "(`experiment=table1`). Not shown for "
                  f"{len(t.differences)} cell(s), whose runs differ from the paper in: " + "; ".join(differ) + "."]
    if t.paper:
        lines += ["", "Paper: after modulation / after adaptation, Table 1 of the workshop paper."]
    if name == "classification":
        lines += classification_note(runs)
    return lines


def classification_note(runs: list[dict]) -> list[str]:
    """The authors' README numbers for the (modes, N, K) of these runs, with whether they compare:
    only runs on the paper's datasets (in the paper's order) do."""
    from mumo.classification.data import MIXES

    settings = sorted({(r["modes"], r["config"]["data"]["ways"], r["config"]["data"]["shots"]) for r in runs})
    rows = [f"| {m} modes, {n}-way {k}-shot | " + " | ".join(f"{PAPER_CLASSIFICATION[m, n, k][x]:.2f}"
                                                         for x in ("maml", "multi_maml", "mumomaml")) + " |"
            for m, n, k in settings if (m, n, k) in PAPER_CLASSIFICATION]
    if not rows:
        return []
    paper_data = all(r["mode_names"] == MIXES["paper"].get(r["modes"]) for r in runs)
    comparable = ("These runs use the paper's datasets; the numbers compare (the paper's at 84 px, 15 queries "
                  "per class)." if paper_data else
                  "Not comparable with these runs: other images (the offline benchmark), 32 px, other query sizes.")
    return ["", "The authors' README (post-adaptation accuracy, %, on Omniglot, mini-ImageNet, FC100, CUB, "
            "Aircraft). " + comparable, "", "| setting | MAML | Multi-MAML | MMAML |", "|---|---|---|---|", *rows]


def write_csv(runs: list[dict], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "modulation", "settings", "modes", "column", "metric", "mean", "ci95", "seeds",
                         "paper", "family"])
        for name, group in by_family(runs).items():
            t, metric = table(group), group[0].get("metric", "mse")
            for key in t.rows:
                for m in t.columns:
                    if (key, m) not in t.cells:
                        continue
                    for stage in stages(group):
                        mean, ci, n = t.cells[key, m].stat(stage)
                        paper = t.paper.get((key, m))
                        index = ("post_modulation", "post_adaptation").index(stage) if paper else None
                        writer.writerow([*key[:2], " ".join(key[2:]), m[0], column_name(m), f"{stage}_{metric}", mean,
                                         ci, n, paper[index] if paper else "", name])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mumo.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dir", type=Path, help="a multirun directory (or any folder holding run dirs)")
    parser.add_argument("--out", type=Path, default=None, help="where to write the report (default: sweep_dir)")
    parser.add_argument("--no-figures", action="store_true", help="tables only")
    args = parser.parse_args(argv)
    try:
        runs, skipped = collect(args.sweep_dir)
        if not runs:
            raise MumoError(f"sweep_dir: no run to report under {args.sweep_dir}" + (
                f" ({len(skipped)} skipped; {skipped[0][0]}: {skipped[0][1]})" if skipped else ""))
        out = output_directory(args.out or args.sweep_dir, "--out")
        text = markdown(runs, skipped)
        (out / "report.md").write_text(text)
        write_csv(runs, out / "report.csv")
        print(text)
        if not args.no_figures:
            from mumo.report_figures import comparison_figures, curve_figures

            families = by_family(runs)
            written = curve_figures(families, out)
            if "regression" in families:
                written += comparison_figures(families["regression"], out)
            print("figures:", ", ".join(p.name for p in written))
    except MumoError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
