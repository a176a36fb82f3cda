from django.urls import path

from gamification import apis

urlpatterns = [
    path("points/", apis.PointsListApi.as_view(), name="points-list"),
    path("badges/", apis.BadgeListApi.as_view(), name="badge-list"),
    path("quests/", apis.QuestListApi.as_view(), name="quest-list"),
    path("achievements/", apis.AchievementListApi.as_view(), name="achievement-list"),
    path("leaderboard/", apis.LeaderboardApi.as_view(), name="leaderboard"),
]
