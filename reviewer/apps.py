from django.apps import AppConfig


class ReviewerConfig(AppConfig):
    name = "reviewer"
    verbose_name = "Review"

    def ready(self) -> None:
        from curation import hooks
        from reviewer import receivers

        hooks.chunk_scored.connect(receivers.on_chunk_scored, dispatch_uid="q16-review-items")
        hooks.reviewers_unassigned.connect(
            receivers.on_reviewers_unassigned, dispatch_uid="q16-release-leases"
        )
        hooks.user_access_revoked.connect(
            receivers.on_user_access_revoked, dispatch_uid="q16-release-user-leases"
        )
        hooks.dataset_review_counts.connect(
            receivers.on_dataset_review_counts, dispatch_uid="q16-review-counts"
        )
        hooks.images_bank_matched.connect(
            receivers.on_images_bank_matched, dispatch_uid="q16-retire-matched"
        )
        hooks.images_bank_unmatched.connect(
            receivers.on_images_bank_unmatched, dispatch_uid="q16-restore-unmatched"
        )
