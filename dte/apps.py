from django.apps import AppConfig


class DteConfig(AppConfig):
    name = "dte"
