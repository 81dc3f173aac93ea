"""A URLconf with two stand-ins for the SII, one per environment (the sandbox mounted twice),
whose views record which one each request reached."""

import functools

from django.urls import include, path

from dte.sandbox import urls as sandbox_urls
from ops.urls import urlpatterns as project_urlpatterns

HITS: list[str] = []


def _recorded(view):
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        HITS.append(request.path)
        return view(request, *args, **kwargs)

    return wrapper


def _patterns():
    return [
        path(str(p.pattern), _recorded(p.callback), p.default_args, name=p.name)
        for p in sandbox_urls.urlpatterns
    ]


urlpatterns = [
    path("_sii_cert/", include((_patterns(), "sii_sandbox"), namespace="cert")),
    path("_sii_prod/", include((_patterns(), "sii_sandbox"), namespace="prod")),
    *project_urlpatterns,
]
