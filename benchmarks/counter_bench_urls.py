"""The portal's URLs plus a bare Django view, for benchmarks/counter_serving.py only."""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path

BODY = b'{"state":"low","unsold":3,"text":"Only 3 tickets left at \\u20ac120.00"}'


def bare(request: HttpRequest) -> HttpResponse:
    """The floor: a Django view that returns a constant JSON through the same middleware."""
    return HttpResponse(BODY, content_type="application/json")


urlpatterns = [path("bench/bare", bare), path("", include("portal.urls"))]
