from django.urls import path

from sessions_app import apis

urlpatterns = [
    path("sessions/", apis.StudySessionListCreateApi.as_view(), name="study-session-list"),
    path("sessions/<str:session_id>/", apis.StudySessionDetailApi.as_view(), name="study-session-detail"),
    path("stats/", apis.StatsApi.as_view(), name="study-stats"),
]
