"""The labelling benchmark's small version: the simulated loop runs through the real services
(queue modes, verdicts, auto-retrain, activation, rescoring) and measures what it should."""

from __future__ import annotations

import pytest

from bench.labels import summarise, table
from bench.labels_sim import SimConfig, run_strategy, synthetic_data
from curation.models import PromptJob, PromptVersion

# Verdicts queue training on commit: the transactions must really commit.
pytestmark = pytest.mark.django_db(transaction=True)

SMALL = SimConfig(
    images=400, test_images=300, dim=64, positive_share=0.1, separation=0.15, budget=40,
    random_budget=40, retrain_every=20, checkpoints=(20, 40),
)  # fmt: skip


@pytest.fixture
def eager(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from config.celery import app

    app.conf.task_always_eager = True
    yield settings
    app.conf.task_always_eager = False


def test_the_simulated_loop_runs_through_the_services(eager, admin_user):
    data = synthetic_data(SMALL)
    assert data.train.shape == (400, 64) and 0.05 < data.train_labels.mean() < 0.16
    results = [run_strategy(name, data, SMALL, reviewer=admin_user) for name in ("random", "learn")]
    for result in results:
        assert result.verdicts == SMALL.budget, result.stopped
        # A candidate every 20 verdicts, through the policy's jobs.
        assert result.retrains == 2
        assert [v for v, _, _ in result.curve] == [0, 20, 40]
        assert all(0.0 <= f1 <= 1.0 and 0.0 <= ap <= 1.0 for _, f1, ap in result.curve)
    random, learn = results
    # Only the uncertain and learn queues reach below the threshold.
    assert random.uncertain_items == 0 and learn.uncertain_items > 0
    # Training ran on the verdicts: every job succeeded and was judged by the policy.
    jobs = PromptJob.objects.filter(kind=PromptJob.Kind.TRAIN)
    assert jobs.count() == 4
    assert all(job.state == PromptJob.State.SUCCEEDED for job in jobs)
    assert all(job.options["policy"]["decided"] for job in jobs)
    activated = sum(r.activations for r in results)
    assert (
        activated
        == PromptVersion.objects.filter(
            source=PromptVersion.Source.TRAINED, activated_at__isnull=False
        ).count()
    )
    summary = summarise(results, all_f1=0.8, budget=SMALL.budget)
    assert (
        summary["verdicts_needed"]["random"] is None or summary["verdicts_needed"]["random"] <= 40
    )
    assert set(summary["verdicts_needed"]) == {"random", "learn"}
    assert "random" in table(results, summary, SMALL.checkpoints)


def test_highest_score_first_covers_the_whole_dataset_in_score_order(eager, admin_user):
    """The score strategy's run flags every image (each is a review item), and the queue
    serves them highest score first."""
    from reviewer.models import Decision, ReviewItem

    config = SimConfig(
        images=200, test_images=100, dim=32, positive_share=0.1, separation=0.15, budget=30,
        retrain_every=1000, checkpoints=(30,),
    )  # fmt: skip
    result = run_strategy("score", synthetic_data(config), config, reviewer=admin_user)
    assert result.verdicts == 30 and not result.stopped
    assert ReviewItem.objects.count() == 200
    scores = list(Decision.objects.order_by("id").values_list("item__score", flat=True))
    assert scores == sorted(scores, reverse=True)


def test_random_order_stops_once_it_reaches_the_target(eager, admin_user):
    config = SimConfig(
        images=300, test_images=100, dim=32, positive_share=0.1, separation=0.15, budget=20,
        random_budget=200, retrain_every=20, checkpoints=(20,),
    )  # fmt: skip
    result = run_strategy(
        "random", synthetic_data(config), config, reviewer=admin_user, stop_at_f1=0.0
    )
    # Measured at the first retrain at or after the others' budget, then stopped.
    assert result.verdicts == 20 and result.stopped == "reached the target"
