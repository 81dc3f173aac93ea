from django.urls import path
from django.views.generic import RedirectView

from erp import views

app_name = "erp"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("empresa/cambiar/", views.company_switch, name="company_switch"),
    path("cuenta/token/", views.api_token, name="api_token"),
    path("clientes/", views.partner_list, name="partner_list"),
    path("clientes/nuevo/", views.partner_create, name="partner_create"),
    path("clientes/<int:pk>/", views.partner_edit, name="partner_edit"),
    path("productos/", views.product_list, name="product_list"),
    path("productos/nuevo/", views.product_create, name="product_create"),
    path("productos/<int:pk>/", views.product_edit, name="product_edit"),
    # Served by dte.list_views (the list shows the SII's state, which erp cannot import): dte's
    # URLs come first in the root URLconf, so this entry is never reached; it keeps the name
    # erp:document_list for the links that use it (tests/dte/test_document_list.py checks it).
    path(
        "documentos/",
        RedirectView.as_view(pattern_name="dte:document_list", query_string=True),
        name="document_list",
    ),
    path("documentos/nuevo/", views.document_create, name="document_create"),
    path("documentos/totales/", views.document_preview, name="document_preview"),
    path("documentos/<int:pk>/", views.document_detail, name="document_detail"),
    path("documentos/<int:pk>/editar/", views.document_edit, name="document_edit"),
    path("documentos/<int:pk>/eliminar/", views.document_delete, name="document_delete"),
    path("compras/", views.purchase_list, name="purchase_list"),
    path("compras/nuevo/", views.purchase_create, name="purchase_create"),
    path("compras/<int:pk>/", views.purchase_edit, name="purchase_edit"),
    path("compras/<int:pk>/eliminar/", views.purchase_delete, name="purchase_delete"),
]
