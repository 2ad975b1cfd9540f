"""Pictures of an evaluation and of a training run (matplotlib PNGs, written next to the data they show).

- ``tokens_per_mode.png``: mean response tokens per data source in non-thinking, auto and thinking
  mode (R-4B Fig. 7 style); ``think_rate.png``: the auto-mode think rate per data source;
- ``training_curves.png``: from a training run's metrics, the auto-mode think rate per data source over
  steps (Fig. 8 style), reward and accuracy per forced mode, response length per mode, the reward gap.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on cluster nodes
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from r4b_verl.think import AUTO, NO_THINK, THINK  # noqa: E402

SIZE, DPI = (8.0, 4.5), 100  # 800 x 450 pixels
MODE_ORDER = (NO_THINK, AUTO, THINK)
MODE_COLOURS = {NO_THINK: "#4c72b0", AUTO: "#55a868", THINK: "#c44e52"}


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def evaluation_plots(rows: list[dict], out_dir: str | Path) -> dict[str, Path]:
    """The two evaluation pictures from report rows (``report.build_report``)."""
    out = Path(out_dir)
    sources = list(dict.fromkeys(r["data_source"] for r in rows))
    cell = {(r["data_source"], r["mode"]): r for r in rows}

    fig, ax = plt.subplots(figsize=SIZE)
    width = 0.8 / len(MODE_ORDER)
    for i, mode in enumerate(MODE_ORDER):
        xs = [k + (i - 1) * width for k, s in enumerate(sources) if (s, mode) in cell]
        ys = [cell[(s, mode)]["tokens_mean"] for s in sources if (s, mode) in cell]
        ax.bar(xs, ys, width, label=mode, color=MODE_COLOURS[mode])
    ax.set_xticks(range(len(sources)), sources, rotation=20, ha="right")
    ax.set_ylabel("mean response tokens")
    ax.set_title("Tokens per mode")
    ax.legend()
    fig.tight_layout()
    paths = {"tokens_per_mode": _save(fig, out / "tokens_per_mode.png")}

    fig, ax = plt.subplots(figsize=SIZE)
    auto = [s for s in sources if (s, AUTO) in cell]
    ax.bar(range(len(auto)), [cell[(s, AUTO)]["think_rate"] for s in auto], color=MODE_COLOURS[AUTO])
    ax.set_xticks(range(len(auto)), auto, rotation=20, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("auto-mode think rate")
    ax.set_title("How often the model chooses to think")
    fig.tight_layout()
    paths["think_rate"] = _save(fig, out / "think_rate.png")
    return paths


def training_plots(curves: dict[str, dict[int, float]], think_rates: dict[str, dict[int, float]],
                   out_dir: str | Path) -> Path:
    """``training_curves.png``: four panels from the ``bpo/`` series of a run (``curves.read_curves``)."""
    fig, axes = plt.subplots(2, 2, figsize=(SIZE[0] * 1.5, SIZE[1] * 1.6))
    panels = [
        (axes[0, 0], "auto-mode think rate (validation)", think_rates),
        (axes[0, 1], "reward / accuracy per forced mode",
         {k: curves[k] for k in ("bpo/think/reward/mean", "bpo/no_think/reward/mean",
                                 "bpo/think/acc/mean", "bpo/no_think/acc/mean") if k in curves}),
        (axes[1, 0], "response length per mode",
         {k: curves[k] for k in ("bpo/think/response_length/mean", "bpo/no_think/response_length/mean")
          if k in curves}),
        (axes[1, 1], "reward gap (think - no_think)", {k: curves[k] for k in ("bpo/reward_gap/mean",) if k in curves}),
    ]
    for ax, title, series in panels:
        for name, points in series.items():
            steps = sorted(points)
            ax.plot(steps, [points[s] for s in steps], marker="o", label=name.removeprefix("bpo/"))
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if series:
            ax.legend(fontsize="small")
        else:
            ax.text(0.5, 0.5, "no data in this run", ha="center", va="center", transform=ax.transAxes)
    axes[0, 0].set_ylim(-0.05, 1.05)
    fig.tight_layout()
    return _save(fig, Path(out_dir) / "training_curves.png")
