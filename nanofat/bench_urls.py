"""The benchmark's baseline view, mounted only when NANOFAT_BENCH=1 (bench/load.py sets it).

It does no work of its own: every request still passes the full middleware stack, so its
throughput is the limit of gunicorn + Django on the machine, and bench/load.py reports every
other page as a fraction of it. Production never sets the variable, so the URL does not exist.
"""

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.http import require_GET


@require_GET
@login_not_required
def bare(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [path("bench/bare", bare, name="bench_bare")]
