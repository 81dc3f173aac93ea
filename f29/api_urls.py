from rest_framework.routers import SimpleRouter

from f29 import api

COMPANY = r"companies/(?P<company_rut>[0-9.]+-[0-9Kk])"

router = SimpleRouter()
router.register(f"{COMPANY}/rcv-imports", api.RcvImportViewSet, basename="rcv-import")
router.register(f"{COMPANY}/f29", api.F29ViewSet, basename="f29")

urlpatterns = router.urls
