"""Collect a sweep's results.json files into the paper's Table 1 layout, with figures.

    python -m mumo.report outputs/multirun/<date>/<time> [--out DIR] [--no-figures]

Writes report.md, report.csv, adaptation_curves.png and figure2a/2b_<M>modes.png (fits of every
method on the same test tasks) into the sweep directory (or --out). Cells are mean ± 95% CI
across seeds (Student t); with one seed, the CI is over test tasks. Missing cells show '—'.
Runs that differ in a setting other than the seed (e.g. a sweep over inner_steps) get rows of
their own, named by that setting.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from mumo.errors import MumoError

# Workshop paper, Table 1 (spec §7): (after modulation, after adaptation) by number of modes.
PAPER_TABLE1: dict[tuple[str, str], dict[int, tuple[float, float]]] = {
    ("maml", "none"): {2: (15.9255, 1.0852), 3: (12.5994, 1.1633)},
    ("multi_maml", "none"): {2: (16.2894, 0.4330), 3: (12.3742, 0.7791)},
    ("mumomaml", "softmax"): {2: (3.9140, 0.4795), 3: (0.6889, 0.4884)},
    ("mumomaml", "sigmoid"): {2: (1.4992, 0.3414), 3: (2.4047, 0.4414)},
    ("mumomaml", "film"): {2: (1.7094, 0.3125), 3: (1.9234, 0.4048)},
}
ROW_NAMES = {
    ("maml", "none"): "MAML",
    ("multi_maml", "none"): "Multi-MAML (GT)",
    ("mumomaml", "softmax"): "MuMoMAML softmax",
    ("mumomaml", "sigmoid"): "MuMoMAML sigmoid",
    ("mumomaml", "film"): "MuMoMAML FiLM",
}
METRICS = ("post_modulation", "post_adaptation")
# Two-sided 95% Student t quantiles for 1..30 degrees of freedom.
T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
       2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


@dataclass
class Cell:
    """One table cell: a method at one number of modes, over seeds."""

    runs: list[dict] = field(default_factory=list)

    def stat(self, metric: str) -> tuple[float, float, int]:
        """(mean, 95% CI half-width, number of seeds) of `metric`_mse."""
        values = [r["test"][f"{metric}_mse"] for r in self.runs]
        n = len(values)
        mean = sum(values) / n
        if n == 1:
            return mean, self.runs[0]["test"][f"{metric}_ci95"], 1
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
        return mean, (T95[n - 2] if n <= 31 else 1.96) * std / math.sqrt(n), n


# Run settings besides the seed; runs that differ in any of them never share a table cell.
SETTINGS = ("tasks_per_mode", "inner_steps", "inner_lr", "first_order", "meta_lr", "lr_schedule", "steps")


def _setting(results: dict, name: str) -> object:
    if name == "tasks_per_mode" and "meta_batch_size" in results:
        return results["meta_batch_size"] // results["modes"]
    return results.get(name)


def mark_variants(runs: list[dict]) -> None:
    """Store under '_variant' each run's values of the settings that differ across `runs`."""
    varying = [name for name in SETTINGS if len({repr(_setting(r, name)) for r in runs}) > 1]
    for r in runs:
        r["_variant"] = tuple(f"{name}={_setting(r, name)}" for name in varying)


def row_key(results: dict) -> tuple[str, ...]:
    """(method, modulation, *settings that differ within the sweep): one table row."""
    return results["method"], results["modulation"], *results.get("_variant", ())


def row_name(key: tuple[str, ...]) -> str:
    name = ROW_NAMES.get(key[:2], f"{key[0]} {key[1]}")
    return f"{name} ({', '.join(key[2:])})" if key[2:] else name


def collect(sweep_dir: Path) -> tuple[list[dict], list[tuple[Path, str]]]:
    """Every run's results (with its directory under '_dir'), and the job dirs skipped, with why."""
    if not sweep_dir.is_dir():
        raise MumoError(f"sweep_dir: no such directory: {sweep_dir}")
    job_dirs = {p.parent.parent for p in sweep_dir.rglob(".hydra/config.yaml")}
    job_dirs |= {p.parent for p in sweep_dir.rglob("results.json")}
    runs, skipped = [], []
    for job in sorted(job_dirs):
        path = job / "results.json"
        if not path.exists():
            skipped.append((job, "no results.json: the job failed or has not finished"))
            continue
        try:
            results = json.loads(path.read_text())
            results["test"]["post_adaptation_mse"]  # noqa: B018 - checks the file has test metrics
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            skipped.append((job, f"unreadable results.json ({type(err).__name__})"))
            continue
        results["_dir"] = str(job)
        runs.append(results)
    mark_variants(runs)
    return runs, skipped


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


def table(runs: list[dict]) -> tuple[list[tuple[str, ...]], list[int], dict[tuple, Cell]]:
    """Rows (paper order first), columns (numbers of modes) and cells."""
    cells: dict[tuple, Cell] = defaultdict(Cell)
    for r in runs:
        cells[row_key(r), r["modes"]].runs.append(r)
    keys = {row_key(r) for r in runs}
    rows = paper_order(keys)
    in_paper = any(k[:2] in PAPER_TABLE1 for k in keys)
    columns = sorted({r["modes"] for r in runs} | ({2, 3} if in_paper else set()))
    return rows, columns, cells


def fmt(mean: float, ci: float) -> str:
    return f"{mean:.4f} ± {ci:.4f}" if math.isfinite(ci) else f"{mean:.4f}"


def markdown(runs: list[dict], skipped: list[tuple[Path, str]]) -> str:
    rows, columns, cells = table(runs)
    header = ["method"]
    for m in columns:
        header += [f"{m} modes: after modulation", f"{m} modes: after adaptation", f"paper ({m} modes)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key in rows:
        line = [row_name(key)]
        for m in columns:
            cell = cells.get((key, m))
            line += [fmt(*cell.stat(x)[:2]) if cell else "—" for x in METRICS]
            paper = PAPER_TABLE1.get(key[:2], {}).get(m)
            line.append(f"{paper[0]:.4f} / {paper[1]:.4f}" if paper else "—")
        lines.append("| " + " | ".join(line) + " |")
    seeds = sorted({r["seed"] for r in runs})
    steps = sorted({r["steps"] for r in runs})
    lines += ["", f"Query MSE on the fixed test set, mean ± 95% CI over seeds {seeds} "
              "(over test tasks where a cell has one seed); meta-iterations trained: "
              f"{', '.join(map(str, steps))}; {len(runs)} runs."]
    if skipped:
        lines += ["", "Skipped:"] + [f"- `{path}`: {why}" for path, why in skipped]
    return "\n".join(lines) + "\n"


def write_csv(runs: list[dict], path: Path) -> None:
    rows, columns, cells = table(runs)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "modulation", "settings", "modes", "metric", "mean", "ci95", "seeds", "paper"])
        for key in rows:
            for m in columns:
                if (key, m) not in cells:
                    continue
                for i, metric in enumerate(METRICS):
                    mean, ci, n = cells[key, m].stat(metric)
                    paper = PAPER_TABLE1.get(key[:2], {}).get(m)
                    writer.writerow([*key[:2], " ".join(key[2:]), m, f"{metric}_mse", mean, ci, n,
                                     paper[i] if paper else ""])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mumo.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dir", type=Path, help="a multirun directory (or any folder holding run dirs)")
    parser.add_argument("--out", type=Path, default=None, help="where to write the report (default: sweep_dir)")
    parser.add_argument("--no-figures", action="store_true", help="tables only")
    args = parser.parse_args(argv)
    try:
        runs, skipped = collect(args.sweep_dir)
        if not runs:
            raise MumoError(f"sweep_dir: no results.json under {args.sweep_dir}")
        out = args.out or args.sweep_dir
        out.mkdir(parents=True, exist_ok=True)
        text = markdown(runs, skipped)
        (out / "report.md").write_text(text)
        write_csv(runs, out / "report.csv")
        print(text)
        if not args.no_figures:
            from mumo.report_figures import comparison_figures, plot_adaptation_curves

            plot_adaptation_curves(runs, out / "adaptation_curves.png")
            written = comparison_figures(runs, out)
            print("figures:", ", ".join(p.name for p in [out / "adaptation_curves.png", *written]))
    except MumoError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
