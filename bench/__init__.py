"""Benchmarks of the Q16 Curator engine (``make bench`` / ``python -m bench``); see README.md."""
