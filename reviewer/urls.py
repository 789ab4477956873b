"""Browser pages of the review app, included at /review/."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.ReviewView.as_view(), name="review"),
]
