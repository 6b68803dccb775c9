"""gunicorn settings for production; every value can be overridden from the environment."""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
# Three threads: a PDF request holds its thread for the whole render, and a worker serves only
# the connections it accepted. With two threads, two staff downloading PDFs through one worker
# left its planning requests queued behind the renders (the builder at 14% of its throughput).
threads = int(os.environ.get("GUNICORN_THREADS", "3"))
worker_class = "gthread" if threads > 1 else "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = 200
# Import the app (and WeasyPrint with it) in the master, so workers start warm.
preload_app = True
accesslog = "-"
# The access log carries method, path and status only: %(U)s is the path without the query
# string, so a patient search (?q=<name>) never reaches the log.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def when_ready(server):
    """Starts the app server's PDF render service before the workers are forked, so every
    worker inherits its address and sends its renders there (planner/render_service.py)."""
    from django.conf import settings

    from planner import pdf, render_service

    render_service.start(pdf.static_roots(), processes=settings.PDF_RENDER_PROCESSES)


def on_exit(server):
    from planner import render_service

    render_service.stop()
