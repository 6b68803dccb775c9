"""The Jinja2 environment of the plan builder's regions (templates/planner/builder.jinja).

The builder re-renders its rows, face map and forms on every saved change and its findings on
every keystroke; Jinja2 compiles a template to Python code and renders these several times
faster than the Django template language (bench/README.md). Every other page stays a Django
template.
"""

import functools

from django.template import engines
from django.template.backends.utils import csrf_input
from django.template.defaultfilters import date as date_filter
from django.template.defaultfilters import pluralize
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.functional import SimpleLazyObject
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import template_localtime
from jinja2 import Environment, StrictUndefined

from .choices import Depth, Indication, Instrument, Technique
from .templatetags.planner_tags import ml, severity_label, severity_symbol

# What ``get_FOO_display()`` says, without rebuilding the choices dictionary on every call.
CHOICE_LABELS = {
    "depth": dict(Depth.choices),
    "indication": dict(Indication.choices),
    "instrument": dict(Instrument.choices),
    "technique": dict(Technique.choices),
}


def url(name: str, *args) -> str:
    return _reverse(get_script_prefix(), get_urlconf(), name, args)


# A 40-injection page links each row twice: reverse() costs tens of microseconds a call, and a
# process's URL patterns and prefix do not change while it runs (both are part of the key).
@functools.lru_cache(maxsize=8192)
def _reverse(prefix: str, urlconf: str | None, name: str, args: tuple) -> str:
    return reverse(name, args=args, urlconf=urlconf)


def choice_label(value: str, vocabulary: str) -> str:
    return CHOICE_LABELS[vocabulary].get(value, value)


def local_date(value, format_string: str) -> str:
    """Django's ``date`` filter on the value in the current time zone, as in a Django template."""
    return date_filter(template_localtime(value), format_string)


def environment(**options) -> Environment:
    # Patient-typed text must never become markup, whatever the settings say.
    options.pop("autoescape", None)
    # A misspelt variable is an error, not a silently empty attribute or link.
    options["undefined"] = StrictUndefined
    env = Environment(autoescape=True, **options)
    env.globals["url"] = url
    env.filters.update(
        date=local_date,
        label=choice_label,
        ml=ml,
        pluralize=pluralize,
        severity_label=severity_label,
        severity_symbol=severity_symbol,
    )
    return env


def render_block(template_name: str, block: str, context: dict, request=None) -> SafeString:
    """One block of a Jinja2 template, rendered alone: a region of the page or an htmx swap."""
    template = engines["jinja2"].env.get_template(template_name)
    context = dict(context)
    if request is not None:
        context["request"] = request
        # One token for every form of the block, made only if a form asks for it.
        context["csrf_input"] = SimpleLazyObject(lambda: csrf_input(request))
    return mark_safe("".join(template.blocks[block](template.new_context(context))))  # noqa: S308


def warm_up() -> None:
    """Compiles the builder's templates and its forms' widget templates (about 0.13 s of CPU)
    in the process that loads the app: gunicorn's master, which preloads it, so each worker it
    forks (and re-forks every max_requests) starts with them compiled."""
    from .forms import BUILDER_FORM_RENDERER, InjectionForm, PlanDetailsForm

    env = engines["jinja2"].env
    for name in ("planner/builder.jinja", "planner/builder_macros.jinja"):
        env.get_template(name)
    names = {"django/forms/label.html", "django/forms/errors/list/default.html"}
    for form in (InjectionForm, PlanDetailsForm):
        for field in form.base_fields.values():
            names.add(field.widget.template_name)
            names.add(getattr(field.widget, "option_template_name", None))
    for name in sorted(names - {None}):
        BUILDER_FORM_RENDERER.get_template(name)
