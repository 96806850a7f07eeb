"""Public, read-only: the live ticket counters (JSON, SSE, the widget), mounted at the root."""

from django.urls import path

from notifications.counters import views

urlpatterns = [
    path("counter/widget.js", views.counter_widget, name="counter-widget"),
    path("counter/<slug:slug>/", views.counter_json, name="counter-json"),
    path("counter/<slug:slug>/events", views.counter_events, name="counter-events"),
    path("counter/<slug:slug>/page", views.counter_page, name="counter-page"),
]
