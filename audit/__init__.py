"""The audit trail: an append-only record of every admin action (who, when, what, on what,
before and after). Below curation and reviewer, which record into it; it imports neither."""
