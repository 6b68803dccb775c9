from decimal import Decimal

from django import template

from ..rules import format_decimal

register = template.Library()

SEVERITY_SYMBOL = {"error": "✖", "warning": "!", "info": "i"}
SEVERITY_LABEL = {"error": "Error", "warning": "Warning", "info": "Information"}


@register.filter
def ml(value: Decimal | None) -> str:
    """0.50 -> "0.5"; volumes read as surgeons write them."""
    return "" if value is None else format_decimal(value)


@register.filter
def severity_symbol(severity) -> str:
    return SEVERITY_SYMBOL.get(str(severity), "")


@register.filter
def severity_label(severity) -> str:
    return SEVERITY_LABEL.get(str(severity), "No finding")


@register.filter
def feedback_for(form, name: str) -> str:
    return form.feedback_id(name)


@register.filter
def get_item(mapping: dict, key: str):
    return mapping.get(key, "") if mapping else ""
