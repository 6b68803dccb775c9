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


#: Seconds a worker runs before it warms its PDF renderer (see post_worker_init).
PDF_WARM_UP_DELAY_SECONDS = float(os.environ.get("PDF_WARM_UP_DELAY_SECONDS", "20"))


def post_worker_init(worker):
    """Warm this worker's PDF renderer once the worker has settled, not on its first PDF request.

    Every worker renders in a child process of its own (planner/pdf.py), started from a fork
    server that imports WeasyPrint, and the child registers the bundled fonts on its first
    render: about 1.3 s of CPU that would otherwise fall on the first PDF a worker serves. The
    warm-up waits PDF_WARM_UP_DELAY_SECONDS first: a worker that lives for minutes is warm long
    before its first PDF, while workers replaced within seconds (``max_requests`` under a burst
    of requests) do not each spend that CPU on a renderer they never use. It runs beside the
    worker, which serves other pages meanwhile; a PDF request that comes earlier starts the
    renderer itself, and one that comes during the warm-up waits for the same child (the
    renderer's lock) instead of starting another.
    """
    from planner import pdf

    def warm_up():
        try:
            pdf.warm_up()
        except Exception:  # the first PDF request then starts the renderer itself
            worker.log.exception("Warming the PDF renderer failed")

    timer = threading.Timer(PDF_WARM_UP_DELAY_SECONDS, warm_up)
    timer.name = "pdf-warm-up"
    timer.daemon = True
    timer.start()
