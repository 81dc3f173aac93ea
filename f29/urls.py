from django.urls import path, register_converter

from f29 import views


class PeriodConverter:
    regex = r"\d{4}-\d{2}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(PeriodConverter, "period")

app_name = "f29"

urlpatterns = [
    path("f29/", views.f29_list, name="f29_list"),
    path("f29/calcular/", views.f29_compute, name="f29_compute_new"),
    path("f29/<period:period>/", views.f29_detail, name="f29_detail"),
    path("f29/<period:period>/calcular/", views.f29_compute, name="f29_compute"),
    path("f29/<period:period>/casilla/<int:code>/", views.f29_box, name="f29_box"),
    path("f29/<period:period>/estado/<str:action>/", views.f29_transition, name="f29_transition"),
    path("f29/<period:period>/conciliacion/", views.reconciliation, name="reconciliation"),
    path("rcv/importar/", views.rcv_import, name="rcv_import"),
    path("rcv/importar/<int:pk>/", views.rcv_import_detail, name="rcv_import_detail"),
]
