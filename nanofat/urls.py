import os

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from planner.views.health import healthz

admin.site.site_header = "Nanofat planner administration"
admin.site.site_title = "Nanofat planner admin"

urlpatterns = [
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("", include("planner.urls")),
]

# --- benchmark baseline (bench/load.py only) ---
if os.environ.get("NANOFAT_BENCH") == "1":
    from .bench_urls import urlpatterns as bench_urlpatterns

    urlpatterns += bench_urlpatterns
# --- end benchmark baseline ---
