from django.urls import path

from dte import certification_views, list_views, views

app_name = "dte"

urlpatterns = [
    # The sales document list (it shows the SII's state): before erp's URLs in the root URLconf,
    # so /documentos/ is this page; erp:document_list is kept as its alias (erp/urls.py).
    path("documentos/", list_views.document_list, name="document_list"),
    path("documentos/exportar/<slug:fmt>/", list_views.document_export, name="document_export"),
    path("documentos/enviar-al-sii/", list_views.bulk_send, name="document_bulk_send"),
    path("documentos/enviar-por-correo/", list_views.bulk_email, name="document_bulk_email"),
    path("documentos/imprimir/", list_views.bulk_print, name="document_bulk_print"),
    path("documentos/<int:pk>/emitir/", views.issue, name="issue"),
    path("documentos/<int:pk>/nota/", views.note_create, name="note_create"),
    path("documentos/facturar-guias/", views.guias_invoice, name="guias_invoice"),
    path("dte/<int:pk>/xml/", views.dte_xml, name="dte_xml"),
    path("dte/<int:pk>/pdf/", views.dte_pdf, name="dte_pdf"),
    path("dte/<int:pk>/correo/", views.email, name="email"),
    path("v/<str:token>/", views.public, name="public"),
    path("dte/<int:pk>/actualizar/", views.refresh, name="refresh"),
    path("dte/<int:pk>/reintentar/", views.retry, name="retry"),
    path("dte/<int:pk>/reemitir/", views.reissue, name="reissue"),
    path("dte/<int:pk>/reensobrar/", views.reenvelope, name="reenvelope"),
    path("sobres/<int:pk>/xml/", views.envelope_xml, name="envelope_xml"),
    path("folios-y-certificados/", views.signing_material, name="signing_material"),
    path("certificacion/", certification_views.certification_page, name="certification"),
    path(
        "certificacion/intercambio/",
        certification_views.certification_exchange_upload,
        name="certification_exchange",
    ),
    path(
        "certificacion/intercambio/<int:envelope>/respuestas.zip",
        certification_views.certification_exchange_zip,
        name="certification_exchange_zip",
    ),
    path(
        "certificacion/<int:pk>/",
        certification_views.certification_page,
        name="certification_run",
    ),
    path(
        "certificacion/<int:pk>/muestras.zip",
        certification_views.certification_samples,
        name="certification_samples",
    ),
    path(
        "certificacion/<int:pk>/libros/",
        certification_views.certification_libros,
        name="certification_libros",
    ),
    path(
        "certificacion/<int:pk>/libros/<int:libro>/xml/",
        certification_views.certification_libro_xml,
        name="certification_libro_xml",
    ),
    path(
        "certificacion/<int:pk>/simulacion/proponer/",
        certification_views.certification_simulation_propose,
        name="certification_simulation_propose",
    ),
    path(
        "certificacion/<int:pk>/simulacion/emitir/",
        certification_views.certification_simulation_start,
        name="certification_simulation_start",
    ),
    path(
        "certificacion/<int:pk>/emitir/",
        certification_views.certification_start,
        name="certification_start",
    ),
    # Suppliers' DTEs
    path("recibidos/", views.received_list, name="received_list"),
    path("recibidos/subir/", views.received_upload, name="received_upload"),
    path("recibidos/aceptar/", views.received_bulk_accept, name="received_bulk_accept"),
    path("recibidos/casilla/", views.received_mailbox, name="received_mailbox"),
    path("recibidos/cargas/<int:pk>/", views.received_batch, name="received_batch"),
    path("recibidos/<int:pk>/", views.received_detail, name="received_detail"),
    path("recibidos/<int:pk>/pdf/", views.received_pdf, name="received_pdf"),
    path("recibidos/<int:pk>/xml/", views.received_xml, name="received_xml"),
    path("recibidos/<int:pk>/archivos/<slug:kind>/", views.received_answer, name="received_answer"),
    path("recibidos/<int:pk>/aceptar/", views.received_accept, name="received_accept"),
    path("recibidos/<int:pk>/reclamar/", views.received_claim, name="received_claim"),
    path("recibidos/<int:pk>/mercaderias/", views.received_goods, name="received_goods"),
    path("recibidos/<int:pk>/consultar-sii/", views.received_check_sii, name="received_check_sii"),
]
