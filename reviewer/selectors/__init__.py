"""Read-side queries of the review domain: verdicts, settings, duplicates, item details,
statistics (one module each)."""
