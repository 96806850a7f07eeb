"""Rebuild an admin change form's POST data from its GET response, as a browser would send it."""

from __future__ import annotations

from typing import Any

from django.forms import BaseForm


def _form_values(form: BaseForm) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if value is None or value is False:
            continue
        key = form.add_prefix(name)
        if isinstance(value, list | tuple):
            data[key] = [str(v) for v in value]
        elif value is True:
            data[key] = "on"
        else:
            data[key] = field.prepare_value(value) if hasattr(field, "prepare_value") else value
    return data


def change_form_data(response: Any) -> dict[str, Any]:
    data = _form_values(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        data.update({management.add_prefix(k): v for k, v in management.initial.items()})
        data[management.add_prefix("TOTAL_FORMS")] = str(len(formset.forms))
        for form in formset.forms:
            if form.instance.pk is not None:
                data.update(_form_values(form))
        data[management.add_prefix("TOTAL_FORMS")] = str(
            sum(1 for form in formset.forms if form.instance.pk is not None)
        )
    return data


def add_inline_row(data: dict[str, Any], prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    index = int(data[f"{prefix}-TOTAL_FORMS"])
    data = {**data, f"{prefix}-TOTAL_FORMS": str(index + 1)}
    data.update({f"{prefix}-{index}-{k}": v for k, v in values.items()})
    return data
