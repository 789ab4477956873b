"""A scoring run's start matches the dataset against the banks only when its matches are
stale: never matched since the import, or a bank changed since the last full match."""

from __future__ import annotations

import pytest

from curation.bank_models import BankMatch
from curation.models import Dataset, Image
from curation.services import scoring as scoring_services
from curation.services.banks import (
    bank_create,
    bank_entries_replace,
    bank_match_all_datasets,
    bank_match_dataset,
    bank_match_dataset_task,
    bank_matches_current,
)
from curation.services.clip_config import configured_model_spec
from curation.services.clip_runtime import get_clip
from curation.services.datasets import dataset_create_from_folder, dataset_import
from curation.services.prompt_zero_shot import prompt_version_create_zero_shot
from curation.services.scoring import scoring_run_start
from tests.engine.imagegen import make_two_kind_images

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset_and_version(tiny_model_settings, tmp_path):
    folder = tmp_path / "imgs"
    make_two_kind_images(folder, 3, seed=5)
    dataset = dataset_import(
        dataset_id=dataset_create_from_folder(name="fresh", folder=str(folder), queue=False).pk
    )
    version = prompt_version_create_zero_shot(clip=get_clip(configured_model_spec().key))
    return dataset, version


@pytest.fixture
def match_calls(monkeypatch):
    """The datasets scoring_run_start matched (the real matching still runs)."""
    calls: list[int] = []
    real = scoring_services.bank_match_dataset

    def spy(*, dataset, bank_ids=None):
        calls.append(dataset.pk)
        return real(dataset=dataset, bank_ids=bank_ids)

    monkeypatch.setattr(scoring_services, "bank_match_dataset", spy)
    return calls


def start(dataset, version):
    return scoring_run_start(dataset=dataset, prompt_version=version, threshold=0.5, queue=False)


def test_a_dataset_never_matched_is_matched_when_scoring_starts(dataset_and_version, match_calls):
    dataset, version = dataset_and_version
    assert not bank_matches_current(dataset=dataset)  # the import's task has not run
    start(dataset, version)
    assert match_calls == [dataset.pk]
    assert bank_matches_current(dataset=dataset)
    start(dataset, version)  # nothing changed: no second match in the request
    assert match_calls == [dataset.pk]


def test_the_import_task_makes_the_matches_current(dataset_and_version, match_calls):
    dataset, version = dataset_and_version
    sha = Image.objects.filter(dataset=dataset).order_by("id").values_list("sha256", flat=True)[0]
    bank_create(name="early", data=f"{sha}\n".encode(), kind="sha256")
    assert bank_match_dataset_task(dataset_id=dataset.pk) == 1
    assert bank_matches_current(dataset=dataset)
    start(dataset, version)
    assert match_calls == []
    assert bank_match_dataset_task(dataset_id=10**9) == 0  # a deleted dataset: nothing


def test_a_bank_changed_after_the_match_is_matched_again_before_scoring(
    dataset_and_version, match_calls
):
    dataset, version = dataset_and_version
    bank_match_dataset(dataset=dataset)
    assert bank_matches_current(dataset=dataset)
    shas = list(Image.objects.filter(dataset=dataset).values_list("sha256", flat=True))
    bank, _ = bank_create(name="later", data=f"{shas[0]}\n".encode(), kind="sha256")
    # The bank's own task has not run yet: the dataset's matches are stale.
    assert not bank_matches_current(dataset=dataset)
    start(dataset, version)
    assert match_calls == [dataset.pk]
    assert BankMatch.objects.filter(dataset=dataset).count() == 1
    # Replacing the bank's entries makes them stale again.
    bank_entries_replace(bank=bank, data=f"{shas[1]}\n".encode(), kind="sha256")
    assert not bank_matches_current(dataset=dataset)


def test_a_match_against_one_bank_keeps_the_dataset_current_only_when_the_others_are_unchanged(
    dataset_and_version,
):
    dataset, _ = dataset_and_version
    shas = list(Image.objects.filter(dataset=dataset).values_list("sha256", flat=True))
    first, _ = bank_create(name="one", data=f"{shas[0]}\n".encode(), kind="sha256")
    bank_match_dataset(dataset=dataset)
    assert bank_matches_current(dataset=dataset)
    second, _ = bank_create(name="two", data=f"{shas[1]}\n".encode(), kind="sha256")
    third, _ = bank_create(name="three", data=f"{shas[2]}\n".encode(), kind="sha256")
    bank_match_all_datasets(bank_id=second.pk)  # the third is still unmatched
    assert not bank_matches_current(dataset=dataset)
    bank_match_all_datasets(bank_id=third.pk)  # the second is older than the last match
    assert not bank_matches_current(dataset=dataset)
    bank_match_dataset(dataset=dataset)
    assert bank_matches_current(dataset=dataset)
    assert Dataset.objects.get(pk=dataset.pk).banks_matched_at is not None
