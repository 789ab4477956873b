"""Extension points: curation announces what happened (or asks), the layers above answer.

Curation sits below the review app and never imports it; the review app connects its
receivers in its AppConfig.ready (reviewer/apps.py). Receivers run synchronously inside
the sender's transaction, so their writes commit or roll back with it, and an exception
in one rolls the sender's work back too.
"""

from __future__ import annotations

from django.dispatch import Signal

# A chunk's scores were written. Sent inside the chunk's final transaction with
# run=<ScoringRun>, the chunk's first_image_id and last_image_id (its id range) and
# image_ids / probabilities (aligned numpy arrays, int64 and float64: the scores just
# stored); the review app creates, updates and withdraws review items from them.
chunk_scored = Signal()

# A reviewer lost access to a dataset. Sent inside the unassignment's transaction with
# dataset_id=<int> and user_ids=<list of int>; the review app releases their leases there.
reviewers_unassigned = Signal()

# A user lost access to datasets: all of them (deactivated), or all but the ones they are
# assigned to (an admin made a reviewer). Sent inside that change's transaction with
# user_id=<int> and kept_dataset_ids=<list of int>; the review app releases their leases
# outside kept_dataset_ids there and answers how many it released.
user_access_revoked = Signal()

# The dataset page and API ask for a dataset's review counts. Sent with dataset=<Dataset>;
# the review app answers {"flagged", "pending_review", "confirmed", "rejected"}.
dataset_review_counts = Signal()

# Images newly matched a hash bank. Sent inside the match's transaction with
# dataset_id=<int> and image_ids=<list of int>; the review app retires their pending items
# there (known-bad content is not reviewed again).
images_bank_matched = Signal()

# Images no longer match any bank (a bank was deleted or its entries replaced). Sent inside
# that transaction with dataset_id=<int> and image_ids=<list of int>; the review app puts
# back in the queue the items it retired that are still flagged.
images_bank_unmatched = Signal()
