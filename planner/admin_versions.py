"""What the admins of versioned records (reference values, consent wording) share."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse


class ContinueOnNewVersionMixin(admin.ModelAdmin):
    """Saving a versioned record writes a new row (``save_model`` points ``obj`` at it).
    Django's "Save and continue editing" would go back to the URL it came from, the version
    just replaced; this goes on to the new one."""

    def response_change(self, request: HttpRequest, obj) -> HttpResponse:
        response = super().response_change(request, obj)
        if "_continue" not in request.POST:
            return response
        opts = obj._meta
        return HttpResponseRedirect(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        )
