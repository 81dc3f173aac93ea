from rest_framework.routers import SimpleRouter

from ai import api

COMPANY = r"companies/(?P<company_rut>[0-9.]+-[0-9Kk])"

router = SimpleRouter()
router.register(f"{COMPANY}/ai-reviews", api.AiReviewViewSet, basename="ai-review")
router.register(f"{COMPANY}/ai-findings", api.AiFindingViewSet, basename="ai-finding")

urlpatterns = router.urls
