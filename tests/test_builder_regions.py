"""The Jinja2 environment of the builder's regions: escaping, strictness, links and labels."""

import pytest
from django.template import engines
from django.urls import reverse, set_script_prefix
from jinja2 import UndefinedError

from planner import jinja


def _render(source: str, **context) -> str:
    return engines["jinja2"].env.from_string(source).render(**context)


def test_it_escapes_every_value():
    assert _render("{{ name }}", name='<img src="x">') == "&lt;img src=&#34;x&#34;&gt;"


def test_a_misspelt_variable_is_an_error_not_an_empty_string():
    with pytest.raises(UndefinedError):
        _render("{{ plan.pk }}")


def test_url_matches_reverse_and_follows_the_script_prefix():
    assert jinja.url("injection_edit", 3, 7) == reverse("injection_edit", args=(3, 7))
    try:
        set_script_prefix("/clinic/")
        assert jinja.url("injection_edit", 3, 7) == "/clinic/plans/3/injections/7/edit/"
    finally:
        set_script_prefix("/")
    assert jinja.url("injection_edit", 3, 7) == "/plans/3/injections/7/edit/"


def test_choice_labels_are_the_models_display_values():
    assert _render('{{ "cannula"|label("instrument") }}') == "Cannula"
    assert _render('{{ "subdermis"|label("depth") }}') == "Immediate subdermis"
    assert _render('{{ "unknown"|label("technique") }}') == "unknown"


@pytest.mark.django_db
def test_dates_are_shown_in_the_clinics_time_zone(settings):
    import datetime

    settings.TIME_ZONE = "Europe/Berlin"
    at = datetime.datetime(2026, 1, 1, 23, 30, tzinfo=datetime.UTC)
    assert _render('{{ at|date("j M Y H:i") }}', at=at) == "2 Jan 2026 00:30"


def test_a_block_renders_alone_with_its_own_imports(rf, surgeon):
    request = rf.get("/")
    request.user = surgeon
    html = jinja.render_block(
        "planner/builder.jinja",
        "live_feedback",
        {"prefix": "new", "fields": [("volume_ml", [("error", "", "Enter <b>", "")])]},
        request,
    )
    assert 'id="feedback-new-volume_ml"' in html
    assert "Enter &lt;b&gt;" in html


def _normalised(html: str) -> str:
    """Django's template engine and Jinja2 escape quotes differently; the markup is the same."""
    html = html.replace("&#34;", "&quot;").replace("&#39;", "&#x27;")
    return " ".join(html.split()).replace("> <", "><")


@pytest.mark.django_db
@pytest.mark.parametrize("form_name", ["InjectionForm", "PlanDetailsForm"])
def test_the_builder_forms_draw_what_djangos_own_renderer_draws(form_name, plan):
    from django.forms.renderers import DjangoTemplates

    from planner import forms

    form_class = getattr(forms, form_name)
    kwargs = {"prefix": "new", "data": {"new-volume_ml": "x"}}
    if form_name == "PlanDetailsForm":
        kwargs["instance"] = plan
    fast = form_class(**kwargs)
    slow = form_class(**kwargs, renderer=DjangoTemplates())
    assert fast.renderer is forms.BUILDER_FORM_RENDERER
    for name in fast.fields:
        assert _normalised(str(fast[name])) == _normalised(str(slow[name])), name
        assert _normalised(fast[name].label_tag()) == _normalised(slow[name].label_tag())
        assert _normalised(str(fast[name].errors)) == _normalised(str(slow[name].errors))


def test_warm_up_compiles_the_builder_templates_without_the_database():
    # No database fixture: a query here (in gunicorn's master, before forking) would fail.
    env = engines["jinja2"].env
    env.cache.clear()
    jinja.warm_up()
    cached = {name for _, name in env.cache}
    assert {"planner/builder.jinja", "planner/builder_macros.jinja"} <= cached
