# Load the Celery app with Django so shared tasks use its configuration.
from example_project.celery import app as celery_app

__all__ = ["celery_app"]
