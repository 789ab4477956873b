"""What each figure on the admin pages counts: one definition per figure, in one place.

The pages show these as tooltips (the `define` tag of curation/templatetags/figures.py; the
statistics page gets them through a data attribute), docs/figures.md explains them at
length, and the selectors that compute the figures point here. A figure with the same name means the same thing on every page and
in the API: the dataset list, the dataset page, the run table, the statistics page and the
API's dataset `summary`.
"""

from __future__ import annotations

FIGURES: dict[str, str] = {
    # --- A dataset (dataset list, dataset page, API dataset `summary`) ---------------------
    "images": (
        "Images: files of the import that were read as images and can be scored. "
        "Failed files are not counted."
    ),
    "failed": "Failed files: files of the import that could not be read as images.",
    "files": "Files: every file the import found, images and failed files together.",
    "flagged": (
        "Flagged: images whose current score is at or above the threshold of the run that "
        "gave it, audit-sample images included when they score that high. Once the latest run "
        "has finished this is that run's Flagged count; while a run is in progress it counts "
        "the images scored so far with the new score and the rest with the previous one."
    ),
    "pending_review": (
        "Pending review: review items still waiting for a verdict (flagged images and "
        "audit-sample images)."
    ),
    "confirmed": (
        "Confirmed: images whose latest settled verdict is inappropriate (flagged or audit "
        "sample; verdicts copied to duplicates included)."
    ),
    "rejected": "Rejected: images whose latest settled verdict is appropriate.",
    "matched_to_banks": (
        "Matched to banks: images that match an entry of a hash bank (SHA-256 exactly, pHash "
        "or PDQ within the configured distance). They are known-bad and never queued for "
        "review; exports count them as blocked."
    ),
    # --- A scoring run (run table, API run) ----------------------------------------------
    "run_threshold": "Threshold: images scoring at or above it are flagged by this run.",
    "run_progress": "Progress: images this run has processed out of the images it scores.",
    "run_failed": (
        "Failed: images this run could not score (unreadable now, or no cached embedding in "
        "a rescore)."
    ),
    "run_flagged": "Flagged: images this run scored at or above its threshold.",
    "run_encoded": (
        "Encoded: images whose embedding this run computed; the others came from the cache."
    ),
    "run_images_per_second": (
        "Images/s: images processed per second of the run's wall-clock time so far."
    ),
    "run_workers": (
        "Workers: which worker (host) took which chunks, how many it finished and its rate "
        "(images per second from its first chunk's start to its last chunk's end)."
    ),
    # --- The statistics page (the review statistics API's `counts`) ------------------------
    "scored": "Scored: images with a score under the latest finished run.",
    "reviewed": "Reviewed: images with a settled verdict (confirmed or rejected).",
    "audited": (
        "Audited: images of the audit sample (below the threshold) with a settled verdict."
    ),
    "pending": "Pending: review items waiting for a verdict (flagged and audit sample).",
    "decided": "Decided: review items whose verdicts are settled.",
    "disputed": "Disputed: review items whose reviewers disagree; an admin adjudicates.",
    "withdrawn": (
        "Withdrawn: review items that fell below the threshold in a rescore before anyone "
        "decided them; they are not in the queue."
    ),
    # --- The threshold preview (dataset page) --------------------------------------------
    "would_flag": (
        "Would be flagged: images of the latest finished run scoring at or above the "
        "threshold typed in; a new run at that threshold flags them (rounded to 0.001)."
    ),
    # --- Prompt versions ------------------------------------------------------------------
    "worse": (
        "Worse: this trained version's held-out accuracy is below its parent's or the active "
        "version's on the same held-out verdicts."
    ),
}


def define(name: str) -> str:
    """The definition of a figure; empty for a name with none (a tooltip then says nothing)."""
    return FIGURES.get(name, "")
