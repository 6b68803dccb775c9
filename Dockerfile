# The nanofat planner for a clinic server; docker-compose.yml runs it beside PostgreSQL 15.
FROM python:3.12-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The Pango/HarfBuzz stack WeasyPrint draws the consent PDF with (the same packages as the
# Makefile's DEB_PACKAGES, minus chromium and poppler-utils, which only the tests need).
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# Settings refuse to load without a SECRET_KEY when DEBUG is off; this one exists only for
# collectstatic during the build and is never part of the running container's environment.
RUN SECRET_KEY=build-only-collectstatic-key DEBUG=0 python manage.py collectstatic --noinput

# Runs unprivileged; the code and static files stay root-owned and read-only to it.
RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent nanofat
# Clinical photos (planner/photos.py): the one folder the app writes, owned by it and readable by
# nobody else; docker-compose.yml mounts a named volume here so photos outlive the container.
RUN mkdir -p /var/lib/nanofat/photos && chown -R nanofat /var/lib/nanofat \
    && chmod 700 /var/lib/nanofat/photos
ENV PHOTO_ROOT=/var/lib/nanofat/photos
USER nanofat

EXPOSE 8000
# The same start as `make serve`: migrate, load the reference data (idempotent), gunicorn.
CMD ["sh", "-c", "python manage.py migrate --noinput && python manage.py createcachetable && python manage.py load_reference_data && exec gunicorn --config gunicorn.conf.py nanofat.wsgi"]
