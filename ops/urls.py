from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from ops import errors, health, metrics

# The error answers every operation can give, documented once (erp.api.schema).

admin.site.site_header = "Facturación electrónica · administración"
admin.site.site_title = "Facturación electrónica"

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    # dte first: its sales-documents/issue-batch/ would otherwise read as the id "issue-batch"
    # of erp's sales-documents/{id}/.
    path("api/v1/", include("dte.api_urls")),
    path("api/v1/", include("erp.api.urls")),
    path("api/v1/", include("f29.api_urls")),
    path("api/v1/", include("ai.api_urls")),
    path(
        "api/schema/",
        SpectacularAPIView.as_view(),
        name="api-schema",
    ),
    # The split view serves Swagger UI's start-up script as a file: no inline script (CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("favicon.ico", errors.favicon, name="favicon"),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    # Internal: Traefik does not route it; Prometheus scrapes the containers directly.
    path("metrics", metrics.metrics, name="metrics"),
    path("", include("dte.urls")),
    path("", include("f29.urls")),
    path("", include("ai.urls")),
    path("", include("erp.urls")),
]
# A URL under /api/ that no route matches answers in the API's error shape, as documented.
handler404 = "erp.api.errors.not_found"
# 403 and 500: Spanish pages (templates/403.html, 500.html); JSON under /api/ (ops/errors.py).
handler403 = "ops.errors.permission_denied"
handler500 = "ops.errors.server_error"

if settings.SII_SANDBOX_SERVE:
    urlpatterns.insert(0, path("_sii/", include("dte.sandbox.urls")))
if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
