from rest_framework.routers import DefaultRouter

from erp.api import views

COMPANY = r"companies/(?P<company_rut>[0-9.]+-[0-9Kk])"

router = DefaultRouter()
router.register("companies", views.CompanyViewSet, basename="company")
router.register(f"{COMPANY}/partners", views.PartnerViewSet, basename="partner")
router.register(f"{COMPANY}/products", views.ProductViewSet, basename="product")
router.register(f"{COMPANY}/sales-documents", views.SalesDocumentViewSet, basename="sales-document")
router.register(
    f"{COMPANY}/purchase-documents", views.PurchaseDocumentViewSet, basename="purchase-document"
)

urlpatterns = router.urls
