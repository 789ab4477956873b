"""``python -m bench.labels`` (make bench-labels): verdicts needed for the same accuracy, by
queue strategy, through the real services (see bench/labels_sim.py).

Prints, per strategy, the held-out F1 of the offensive class and its average precision
after 50, 100, 200, 500 and 1,000 verdicts, and the verdicts needed to reach 95 % of the F1
that all labels give; checks issue 14's target (the best strategy needs at most a quarter
of random order's verdicts, "learn" no more than highest score first); writes
bench/results/labels-<time>.json and .png (the curves). The embeddings are synthetic.

    python -m bench.labels                       # 12,000 embeddings, 1,500 verdicts each
                                                 # (random order: up to 6,000)
    python -m bench.labels --images 4000 --budget 300 --retrain-every 25
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
TARGET_SHARE_OF_ALL = 0.95
TARGET_RATIO = 0.25


def summarise(results: list[Any], *, all_f1: float, budget: int) -> dict[str, Any]:
    """Verdicts to 95 % of the all-labels F1 per strategy and the target's verdict.

    A strategy that never gets there within its budget counts as needing more than it:
    then "at most a quarter" holds only when the best needs at most a quarter of random
    order's budget (`budget`: the verdicts random order was given).
    """
    target = TARGET_SHARE_OF_ALL * all_f1
    needed = {r.strategy: r.verdicts_to(target) for r in results}
    by_name = {r.strategy: r for r in results}

    def cost(name: str) -> float:
        n = needed.get(name)
        return float(n) if n is not None else float("inf")

    others = [name for name in needed if name != "random"]
    best = min(others, key=cost) if others else None
    checks: dict[str, Any] = {}
    if best is not None and "random" in needed:
        random_cost = cost("random")
        best_cost = cost(best)
        bound = random_cost if random_cost != float("inf") else float(budget)
        checks["best_strategy"] = best
        checks["best_le_quarter_of_random"] = best_cost <= TARGET_RATIO * bound and (
            best_cost != float("inf")
        )
        checks["best_over_random"] = best_cost / bound if best_cost != float("inf") else None
        checks["random_reached"] = needed["random"] is not None
    if "learn" in needed and "score" in needed:
        checks["learn_le_score"] = cost("learn") <= cost("score")
    return {
        "all_labels_f1": all_f1,
        "target_f1": target,
        "verdicts_needed": needed,
        "checks": checks,
        "stopped": {name: r.stopped for name, r in by_name.items() if r.stopped},
    }


def table(results: list[Any], summary: dict[str, Any], checkpoints: tuple[int, ...]) -> str:
    head = ["strategy", *[f"F1@{n}" for n in checkpoints], *[f"AP@{n}" for n in checkpoints]]
    head += ["to 95 %", "retrains", "activated"]
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in results:
        f1s = [r.at(n)[0] for n in checkpoints]
        aps = [r.at(n)[1] for n in checkpoints]
        needed = summary["verdicts_needed"][r.strategy]
        cells = [r.strategy]
        cells += ["—" if v is None else f"{v:.3f}" for v in f1s]
        cells += ["—" if v is None else f"{v:.3f}" for v in aps]
        cells += [f"> {r.verdicts}" if needed is None else str(needed)]
        cells += [str(r.retrains), str(r.activations)]
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def plot(results: list[Any], summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for r in results:
        xs = [v for v, _, _ in r.curve]
        axes[0].step(xs, [f for _, f, _ in r.curve], where="post", label=r.strategy)
        axes[1].step(xs, [a for _, _, a in r.curve], where="post", label=r.strategy)
    axes[0].axhline(summary["all_labels_f1"], color="grey", lw=0.8, ls=":", label="all labels")
    axes[0].axhline(summary["target_f1"], color="grey", lw=0.8, ls="--", label="95 % of it")
    axes[0].set(xlabel="verdicts", ylabel="held-out F1 (offensive)", ylim=(0, 1))
    axes[1].set(xlabel="verdicts", ylabel="held-out average precision", ylim=(0, 1))
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    fig.suptitle("Learning curves by queue strategy (synthetic CLIP-like embeddings)")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    from bench.labels_sim import STRATEGIES, SimConfig

    defaults = SimConfig()
    parser = argparse.ArgumentParser(prog="python -m bench.labels", description=__doc__)
    parser.add_argument("--images", type=int, default=defaults.images)
    parser.add_argument("--budget", type=int, default=defaults.budget)
    parser.add_argument("--random-budget", type=int, default=defaults.random_budget)
    parser.add_argument("--retrain-every", type=int, default=defaults.retrain_every)
    parser.add_argument("--error-rate", type=float, default=defaults.error_rate)
    parser.add_argument("--positive-share", type=float, default=defaults.positive_share)
    parser.add_argument("--learn-share", type=float, default=defaults.learn_uncertain_share)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--work", type=Path, default=REPO_ROOT / "var" / "bench_labels")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"
    from bench import djangoenv

    djangoenv.setup(args.work, fresh=True)
    from config.celery import app

    app.conf.task_always_eager = True
    # The services log every job and chunk at INFO: the table is what this prints.
    logging.disable(logging.INFO)
    from django.contrib.auth.models import User

    from bench.labels_sim import all_labels_f1, run_strategy, synthetic_data

    config = replace(
        defaults, images=args.images, budget=args.budget,
        random_budget=max(args.random_budget, args.budget), retrain_every=args.retrain_every,
        error_rate=args.error_rate, positive_share=args.positive_share,
        learn_uncertain_share=args.learn_share, seed=args.seed,
        checkpoints=tuple(n for n in defaults.checkpoints if n <= args.budget),
    )  # fmt: skip
    data = synthetic_data(config)
    all_f1, all_ap = all_labels_f1(data)
    print(f"all {config.images} labels: held-out F1 {all_f1:.3f}, AP {all_ap:.3f}", flush=True)
    reviewer = User.objects.create_user("bench-oracle", is_staff=True)
    results = []
    for strategy in args.strategies.split(","):
        result = run_strategy(
            strategy.strip(), data, config, reviewer=reviewer,
            stop_at_f1=TARGET_SHARE_OF_ALL * all_f1,
        )  # fmt: skip
        print(
            f"{result.strategy}: {result.verdicts} verdicts in {result.seconds:.0f} s, "
            f"{result.retrains} retrains, {result.activations} activated, "
            f"final F1 {result.curve[-1][1]:.3f}"
            + (f" ({result.stopped})" if result.stopped else ""),
            flush=True,
        )
        results.append(result)
    summary = summarise(results, all_f1=all_f1, budget=config.random_budget)
    print()
    print(table(results, summary, config.checkpoints))
    print()
    print(
        f"target F1 (95 % of all labels): {summary['target_f1']:.3f}; checks: {summary['checks']}"
    )
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    png = RESULTS_DIR / f"labels-{stamp}.png"
    plot(results, summary, png)
    (RESULTS_DIR / f"labels-{stamp}.json").write_text(
        json.dumps(
            {
                "config": asdict(config),
                "all_labels_ap": all_ap,
                "summary": summary,
                "results": [asdict(r) for r in results],
                "synthetic": True,
            },
            indent=2,
            default=str,
        )
    )
    print(f"wrote {png} and its .json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
