"""gunicorn settings for production; every value can be overridden from the environment."""

import os
import threading

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
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


def post_worker_init(worker):
    """Warm this worker's PDF renderer as the worker starts, not on the first PDF request.

    Every worker renders in a child process of its own (planner/pdf.py), started from a fork
    server that imports WeasyPrint, and the child registers the bundled fonts on its first
    render: a second or two that would otherwise fall on the first PDF a worker serves. The
    warm-up runs beside the worker, which serves other pages meanwhile; a PDF request that
    comes during it waits for the same child (the renderer's lock) instead of starting another.
    """
    from planner import pdf

    def warm_up():
        try:
            pdf.warm_up()
        except Exception:  # the first PDF request then starts the renderer itself
            worker.log.exception("Warming the PDF renderer failed")

    threading.Thread(target=warm_up, name="pdf-warm-up", daemon=True).start()
