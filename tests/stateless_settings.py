"""The production settings for the app servers tests/test_stateless.py starts, with one change:
static files are served without the collectstatic manifest (the suite never runs collectstatic).
Sessions, the cache and the database pool stay exactly as in nanofat.settings."""

from nanofat.settings import *  # noqa: F403
from nanofat.settings import STORAGES

STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
