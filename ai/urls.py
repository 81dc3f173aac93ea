from django.urls import path

from ai import views

app_name = "ai"

urlpatterns = [
    path("ia/documentos/<int:pk>/revisar/", views.review_document, name="review_document"),
    path("ia/periodos/<str:period>/revisar/", views.review_period, name="review_period"),
    path("ia/hallazgos/<int:pk>/<str:decision>/", views.decide, name="finding_decide"),
]
