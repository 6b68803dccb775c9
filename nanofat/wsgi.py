"""WSGI entry point for gunicorn."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nanofat.settings")

application = get_wsgi_application()

from planner import jinja  # noqa: E402  (the app registry must be ready first)

jinja.warm_up()
