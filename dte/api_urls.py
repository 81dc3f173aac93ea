from rest_framework.routers import SimpleRouter

from dte import api, certification_api

COMPANY = r"companies/(?P<company_rut>[0-9.]+-[0-9Kk])"

router = SimpleRouter()
router.register(f"{COMPANY}/sales-documents", api.IssueViewSet, basename="sales-document-issue")
router.register(f"{COMPANY}/dtes", api.DteViewSet, basename="dte")
router.register(f"{COMPANY}/envelopes", api.EnvelopeViewSet, basename="envelope")
router.register(f"{COMPANY}/cafs", api.CafViewSet, basename="caf")
router.register(f"{COMPANY}/certificates", api.CertificateViewSet, basename="certificate")
router.register(f"{COMPANY}/dte-warnings", api.WarningViewSet, basename="dte-warning")
router.register(f"{COMPANY}/received-dtes", api.ReceivedDteViewSet, basename="received-dte")
router.register(
    f"{COMPANY}/received-dte-batches", api.ReceivedBatchViewSet, basename="received-dte-batch"
)

router.register(
    f"{COMPANY}/certification-runs",
    certification_api.CertificationRunViewSet,
    basename="certification-run",
)

urlpatterns = router.urls
