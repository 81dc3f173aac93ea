"""The sandbox SII's endpoints, relative to its mount point (/_sii/ in ops/urls.py)."""

from django.urls import path

from dte.sandbox import views

app_name = "sii_sandbox"

urlpatterns = [
    *(
        path(f"DTEWS/{service}.jws", views.soap_service, {"service": service}, name=service)
        for service in views.SOAP_SERVICES
    ),
    path("cgi_dte/UPL/DTEUpload", views.dte_upload, name="dte_upload"),
    # The RCV's path on ws1.sii.cl (production); certification's on ws2 ends in …CERT.
    path("WSREGISTRORECLAMODTE/registroreclamodteservice", views.rcv_service, name="rcv_service"),
    path("recursos/v1/boleta.electronica.semilla", views.boleta_seed, name="boleta_seed"),
    path("recursos/v1/boleta.electronica.token", views.boleta_token, name="boleta_token"),
    path("recursos/v1/boleta.electronica.envio", views.boleta_envio, name="boleta_envio"),
    path(
        "recursos/v1/boleta.electronica.envio/<str:envio_id>",
        views.boleta_envio_status,
        name="boleta_envio_status",
    ),
    path(
        "recursos/v1/boleta.electronica/<str:boleta_id>/estado",
        views.boleta_estado,
        name="boleta_estado",
    ),
    path("_control/faults", views.control_faults, name="control_faults"),
    path("_control/reset", views.control_reset, name="control_reset"),
    path("_control/process", views.control_process, name="control_process"),
    path("_control/reception", views.control_reception, name="control_reception"),
]
