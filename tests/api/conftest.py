import pytest

from reviewer.selectors import phash_cache_clear


@pytest.fixture(autouse=True)
def _fresh_phash_cache():
    phash_cache_clear()
    yield
    phash_cache_clear()
