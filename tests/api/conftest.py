import pytest

from reviewer.selectors.duplicates import phash_cache_clear


@pytest.fixture(autouse=True)
def _fresh_phash_cache():
    phash_cache_clear()
    yield
    phash_cache_clear()


@pytest.fixture(autouse=True)
def _reviewers_assigned(reviewers_assigned_everywhere):
    """These tests are about the queue and pages, not access: reviewers are assigned to the
    datasets the test creates (access is tested in tests/security)."""
    return reviewers_assigned_everywhere
