from django.urls import path

from dte import views

app_name = "dte"

urlpatterns = [
    path("documentos/<int:pk>/emitir/", views.issue, name="issue"),
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
]
