"""Query filters that refuse what they cannot read, as the schema says they do: django-filter
would take `?is_customer=null` or `?folio=0.5` or `?periodo=` as "no filter" (or as a decimal)
and answer the whole list. Here such a value is a 400 `invalid_input` naming the parameter."""

import django_filters
from django import forms
from django.db import models
from django_filters import rest_framework as filters
from rest_framework.filters import OrderingFilter, SearchFilter

EMPTY = "Indique un valor o quite el parámetro."


class StrictBooleanField(forms.Field):
    """true/false (also True/False, 1/0); anything else is an error, not "no filter"."""

    VALUES = {"true": True, "1": True, "false": False, "0": False}

    def to_python(self, value):
        if value is None:
            return None
        try:
            return self.VALUES[str(value).lower()]
        except KeyError:
            raise forms.ValidationError("Use true o false.", code="invalid") from None


class StrictBooleanFilter(django_filters.BooleanFilter):
    """Not DRF's BooleanFilter: its widget reads an unknown value as "no filter" before the
    field sees it."""

    field_class = StrictBooleanField


class IntegerFilter(filters.NumberFilter):
    field_class = forms.IntegerField


INTEGER_FIELDS = (
    models.IntegerField,
    models.SmallIntegerField,
    models.BigIntegerField,
    models.PositiveIntegerField,
    models.PositiveSmallIntegerField,
    models.PositiveBigIntegerField,
)


class StrictFilterSet(filters.FilterSet):
    FILTER_DEFAULTS = {
        **filters.FilterSet.FILTER_DEFAULTS,
        models.BooleanField: {"filter_class": StrictBooleanFilter},
        **{field: {"filter_class": IntegerFilter} for field in INTEGER_FIELDS},
    }

    def is_valid(self):
        valid = super().is_valid()
        for name in self.filters:
            if name in self.data and self.data.get(name) == "":
                self.form.add_error(name, EMPTY)
                valid = False
        return valid


class StrictFilterBackend(filters.DjangoFilterBackend):
    """For views that list `filterset_fields`: their filter set is a StrictFilterSet."""

    filterset_base = StrictFilterSet


FILTER_BACKENDS = [StrictFilterBackend, SearchFilter, OrderingFilter]
