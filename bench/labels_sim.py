"""A simulated labelling loop through the real services, for bench.labels and its test.

Synthetic CLIP-like embeddings (unit vectors, two overlapping classes, a few per cent
offensive, clusters of near-copies) are stored as a dataset's cached embeddings and scored
by a weak "zero-shot" prompt version. An oracle reviewer (wrong with a set probability)
then takes items from a queue mode and records verdicts; the dataset's auto-retrain policy
trains a candidate every N verdicts, activates it unless held-out verdicts show it
worse, and the activation rescores the dataset, so the queue follows the new scores.
Everything runs through the services (review_item_next, review_decision_record, the prompt
job, prompt_policy_apply, prompt_version_activate, the rescore tasks), with Celery eager:
in production the training runs on a worker and the reviewer does not wait for it.

Strategies: "random" (the audit queue of a run whose threshold flags nothing: a uniform
random sample of the whole dataset), "score" (highest score first over the whole dataset:
the score queue of a run whose threshold flags every image), "uncertain" (nearest the
boundary, over the whole dataset) and "learn" (the two interleaved at the dataset's
learn_uncertain_share). Random order gets its own, larger budget and stops once it reaches
the target, so that the verdicts it needs are measured rather than bounded.

Requires Django set up with a migrated database and CELERY_TASK_ALWAYS_EAGER.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

STRATEGIES = ("random", "score", "uncertain", "learn")
CHECKPOINTS = (50, 100, 200, 500, 1000)
# The lowest threshold a run accepts, in effect "flag every image" (p is never exactly 0 for
# these embeddings).
FLAG_EVERYTHING = 1e-30


@dataclass(frozen=True)
class SimConfig:
    images: int = 12_000
    test_images: int = 4_000
    dim: int = 512
    positive_share: float = 0.05
    # How far apart the class means are (per class, along its own direction): 0.05 gives
    # all-labels F1 about 0.65, as in issue 14's experiment.
    separation: float = 0.05
    # Images in clusters of near-copies, and the copies per cluster.
    clustered_share: float = 0.3
    cluster_size: int = 8
    error_rate: float = 0.02
    # Verdicts per strategy: past the last checkpoint, so that the verdicts to the target
    # are measured where a strategy needs more than 1,000.
    budget: int = 1_500
    # Random order needs several times the others' verdicts: measured up to this many.
    random_budget: int = 6_000
    retrain_every: int = 50
    learn_uncertain_share: float = 0.5
    seed: int = 16
    checkpoints: tuple[int, ...] = CHECKPOINTS


@dataclass(frozen=True)
class SyntheticData:
    train: np.ndarray  # (N, D) float32 unit vectors, the dataset
    train_labels: np.ndarray  # (N,) 1 = offensive
    test: np.ndarray  # (M, D) the held-out set the strategies are measured on
    test_labels: np.ndarray
    init_prompts: np.ndarray  # (2, D) the weak starting ("zero-shot") prompts


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def synthetic_data(config: SimConfig) -> SyntheticData:
    """Two overlapping classes around a shared direction (CLIP embeddings share a large
    common component), a few per cent offensive, and clusters of near-copies."""
    rng = np.random.default_rng(config.seed)
    d = config.dim
    common, benign, offensive = _unit(rng.normal(size=(3, d)))
    # Class means: mostly the common direction, a little of each class's own.
    means = np.stack(
        [_unit(common + config.separation * benign), _unit(common + config.separation * offensive)]
    )

    def draw(n: int, *, clustered: float) -> tuple[np.ndarray, np.ndarray]:
        labels = (rng.random(n) < config.positive_share).astype(np.int64)
        x = means[labels] + rng.normal(size=(n, d)) * (0.5 / np.sqrt(d))
        n_clustered = int(n * clustered) // config.cluster_size * config.cluster_size
        for start in range(0, n_clustered, config.cluster_size):
            stop = start + config.cluster_size
            x[start:stop] = x[start] + rng.normal(size=(stop - start, d)) * (0.05 / np.sqrt(d))
            labels[start:stop] = labels[start]
        order = rng.permutation(n)
        return _unit(x[order]), labels[order]

    train, train_labels = draw(config.images, clustered=config.clustered_share)
    test, test_labels = draw(config.test_images, clustered=0.0)
    # A weak zero-shot guess: the class means seen through a lot of noise.
    init = means + rng.normal(size=(2, d)) * (0.12 / np.sqrt(d)) + 0.2 * common
    return SyntheticData(train, train_labels, test, test_labels, _unit(init))


def f1_and_ap(
    prompts: np.ndarray, x: np.ndarray, y: np.ndarray, threshold: float
) -> tuple[float, float]:
    """Held-out F1 of the offensive class at the threshold, and its average precision."""
    from sklearn.metrics import average_precision_score, f1_score

    from worker.engine.scoring import inappropriate_probability

    p = inappropriate_probability(x, prompts)
    return float(f1_score(y, p >= threshold, zero_division=0.0)), float(
        average_precision_score(y, p)
    )


def all_labels_f1(data: SyntheticData, threshold: float = 0.5) -> tuple[float, float]:
    """F1 and AP of the project's trainer (default settings) on every dataset label."""
    from worker.engine.tuning import TuningConfig, train_prompts

    result = train_prompts(
        data.train, data.train_labels, init_prompts=data.init_prompts, config=TuningConfig()
    )
    return f1_and_ap(result.prompts, data.test, data.test_labels, threshold)


@dataclass
class StrategyResult:
    strategy: str
    verdicts: int = 0
    curve: list[tuple[int, float, float]] = field(default_factory=list)  # (verdicts, F1, AP)
    retrains: int = 0
    activations: int = 0
    uncertain_items: int = 0
    seconds: float = 0.0
    stopped: str = ""

    def at(self, n: int) -> tuple[float | None, float | None]:
        """F1 and AP of the version active after n verdicts (None past the run's end)."""
        if n > self.verdicts:
            return None, None
        best = None
        for verdicts, f1, ap in self.curve:
            if verdicts <= n:
                best = (f1, ap)
        return best if best is not None else (None, None)

    def verdicts_to(self, target: float) -> int | None:
        for verdicts, f1, _ in self.curve:
            if f1 >= target:
                return verdicts
        return None


def _dataset_with_embeddings(
    data: SyntheticData, *, name: str, model_key: str, threshold: float
) -> tuple[Any, Any]:
    """A ready dataset whose images have the synthetic embeddings cached under model_key, an
    active weak prompt version of that model, and a succeeded run of it (the review items of
    the flagged images made by the rescore path)."""
    from django.db import connection, transaction
    from django.utils import timezone

    from curation.bulk import insert_rows
    from curation.models import Dataset, Image, PromptVersion, ScoringRun
    from curation.services.chunks import scoring_run_rescore
    from curation.services.embeddings import embeddings_store
    from curation.services.scoring import scoring_run_start
    from worker.engine.store import prompts_to_bytes

    n, dim = data.train.shape
    dataset = Dataset.objects.create(
        name=name, source_kind=Dataset.SourceKind.FOLDER, source="/nonexistent",
        root_path="/nonexistent", state=Dataset.State.READY, total=n, processed=n,
    )  # fmt: skip
    shas = [f"{dataset.pk:08x}{i:056x}" for i in range(n)]
    added = connection.ops.adapt_datetimefield_value(timezone.now())
    with transaction.atomic():
        insert_rows(
            table=Image._meta.db_table,
            columns=[
                "dataset_id", "relative_path", "source_url", "sha256", "phash", "format",
                "status", "error", "created_at", "sample_key", "metadata", "container",
                "class_label",
            ],
            pg_types=[
                "bigint", "text", "text", "text", "text", "text", "text", "text",
                "timestamptz", "text", "jsonb", "text", "text",
            ],
            rows=[
                (dataset.pk, f"{i}.jpg", "", sha, "", "JPEG", Image.Status.OK, "", added,
                 "", "{}", "", "")
                for i, sha in enumerate(shas)
            ],
            on_conflict="",
        )  # fmt: skip
        embeddings_store(model_key=model_key, hashes=shas, matrix=data.train)
    version = PromptVersion.objects.create(
        name=f"{name} zero-shot", model_key=model_key, dim=dim,
        vectors=prompts_to_bytes(data.init_prompts), source=PromptVersion.Source.IMPORTED,
        is_active=True, activated_at=timezone.now(),
    )  # fmt: skip
    run = scoring_run_start(
        dataset=dataset, prompt_version=version, threshold=threshold,
        kind=ScoringRun.Kind.RESCORE, queue=False,
    )  # fmt: skip
    run = scoring_run_rescore(run_id=run.pk)
    if run.state != ScoringRun.State.SUCCEEDED:
        raise RuntimeError(f"the first scoring run ended {run.state}")
    truth = dict(
        zip(
            Image.objects.filter(dataset=dataset).order_by("id").values_list("id", flat=True),
            data.train_labels.tolist(),
            strict=True,
        )
    )
    return dataset, truth


def run_strategy(
    strategy: str,
    data: SyntheticData,
    config: SimConfig,
    *,
    reviewer: Any,
    threshold: float = 0.5,
    stop_at_f1: float | None = None,
) -> StrategyResult:
    """Label up to config.budget items (random order: config.random_budget) of a fresh
    dataset in one queue mode (see the module docstring); the curve holds the active
    version's held-out F1 and AP after every retrain. Random order stops early once the
    held-out F1 reaches stop_at_f1 (the target), so that its cost is measured, not bounded."""
    from curation.models import PromptJob, PromptVersion
    from reviewer.models import ReviewItem
    from reviewer.services import queue as queue_services
    from reviewer.services.decisions import review_decision_record
    from reviewer.services.queue import QueueFilters, review_item_next
    from reviewer.services.settings import review_settings_update

    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    stamp = time.time_ns()
    model_key = f"bench-labels-{strategy}-{stamp}/synthetic"
    # Random: a run that flags nothing, so that the audit queue samples the whole dataset;
    # score: one that flags everything, so that the score queue is the whole dataset in
    # descending score order (rescored after every activation). Measured at `threshold`.
    run_threshold = {"random": 1.0, "score": FLAG_EVERYTHING}.get(strategy, threshold)
    dataset, truth = _dataset_with_embeddings(
        data, name=f"bench labels {strategy} {stamp}", model_key=model_key,
        threshold=run_threshold,
    )  # fmt: skip
    review_settings_update(
        dataset=dataset, auto_retrain_every=config.retrain_every,
        learn_uncertain_share=config.learn_uncertain_share,
    )  # fmt: skip
    mode = {"random": "audit", "score": "score", "uncertain": "uncertain", "learn": "learn"}[
        strategy
    ]
    rng = np.random.default_rng(config.seed + 1)
    queue_services.audit_random.seed(config.seed)
    result = StrategyResult(strategy)

    def measure() -> None:
        active = PromptVersion.objects.get(model_key=model_key, is_active=True)
        prompts = np.frombuffer(active.vectors, dtype=np.float32).reshape(2, -1)
        f1, ap = f1_and_ap(prompts, data.test, data.test_labels, threshold)
        result.curve.append((result.verdicts, f1, ap))

    started = time.perf_counter()
    measure()
    filters = QueueFilters(dataset=dataset)
    budget = config.random_budget if strategy == "random" else config.budget
    while result.verdicts < budget:
        item = review_item_next(reviewer=reviewer, mode=mode, filters=filters)
        if item is None:
            result.stopped = f"the {mode} queue ran dry"
            break
        truth_label = truth[item.image_id]
        wrong = rng.random() < config.error_rate
        offensive = bool(truth_label) != wrong
        review_decision_record(
            item_id=item.pk, reviewer=reviewer,
            verdict="inappropriate" if offensive else "appropriate",
        )  # fmt: skip
        result.verdicts += 1
        if result.verdicts % config.retrain_every == 0:
            measure()
            reached = stop_at_f1 is not None and result.curve[-1][1] >= stop_at_f1
            if strategy == "random" and reached and result.verdicts >= config.budget:
                result.stopped = "reached the target"
                break
    result.seconds = time.perf_counter() - started
    jobs = PromptJob.objects.filter(dataset=dataset, kind=PromptJob.Kind.TRAIN)
    result.retrains = jobs.count()
    result.activations = sum(
        1 for options in jobs.values_list("options", flat=True)
        if (options or {}).get("policy", {}).get("activated")
    )  # fmt: skip
    result.uncertain_items = ReviewItem.objects.filter(dataset=dataset, is_uncertain=True).count()
    return result
