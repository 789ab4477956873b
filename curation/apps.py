from django.apps import AppConfig


class CurationConfig(AppConfig):
    name = "curation"
    verbose_name = "Curation"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save, pre_save

        from curation import signals

        user_model = get_user_model()
        signals.remember_raw_password(user_model)
        pre_save.connect(signals.user_pre_save, sender=user_model, dispatch_uid="q16-tokens-pre")
        post_save.connect(signals.user_post_save, sender=user_model, dispatch_uid="q16-tokens-post")
