from django.apps import AppConfig


class MusicConfig(AppConfig):
    name = "music"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import django_aistemsplitter
        from music.models import Track

        # Every time a track's audio changes, split it into stems (a SplitJob
        # linked to the track is created and enqueued on commit).
        django_aistemsplitter.register(Track, field="audio")
