from django.apps import AppConfig


class F29Config(AppConfig):
    name = "f29"
