"""Thin DRF views of the game: ledger, badges, quests, achievements, leaderboard."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from gamification import selectors
from studymaster.api import paginated_response


class PointsEntryOutput(serializers.Serializer):
    id = serializers.CharField()
    amount = serializers.IntegerField()
    reason = serializers.CharField()
    reference = serializers.CharField()
    created_at = serializers.DateTimeField()
    studied_at = serializers.DateTimeField()


class PointsListApi(APIView):
    @extend_schema(responses=PointsEntryOutput(many=True))
    def get(self, request):
        rows = selectors.points_entry_list(user=request.user)
        return paginated_response(request, self, rows, PointsEntryOutput)


class BadgeOutput(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    earned = serializers.BooleanField()
    earned_at = serializers.DateTimeField(allow_null=True)


class BadgeListApi(APIView):
    @extend_schema(responses=BadgeOutput(many=True))
    def get(self, request):
        return Response(BadgeOutput(selectors.badge_catalog_for_user(user=request.user), many=True).data)


class QuestOutput(serializers.Serializer):
    code = serializers.CharField()
    title = serializers.CharField()
    period = serializers.CharField()
    target = serializers.IntegerField()
    progress = serializers.IntegerField()
    completed = serializers.BooleanField()
    reward_points = serializers.IntegerField()
    period_ends_at = serializers.DateTimeField()


class QuestListApi(APIView):
    @extend_schema(responses=QuestOutput(many=True))
    def get(self, request):
        return Response(QuestOutput(selectors.quest_list_for_user(user=request.user), many=True).data)


class AchievementOutput(serializers.Serializer):
    id = serializers.CharField()
    kind = serializers.CharField()
    title = serializers.CharField()
    reference = serializers.CharField()
    created_at = serializers.DateTimeField()


class AchievementListApi(APIView):
    @extend_schema(responses=AchievementOutput(many=True))
    def get(self, request):
        rows = selectors.achievement_list(user=request.user)
        return paginated_response(request, self, rows, AchievementOutput)


class LeaderboardInput(serializers.Serializer):
    period = serializers.ChoiceField(choices=["week", "all"], default="week")


class LeaderboardRowOutput(serializers.Serializer):
    rank = serializers.IntegerField()
    username = serializers.CharField()
    points = serializers.IntegerField()


class LeaderboardApi(APIView):
    @extend_schema(parameters=[LeaderboardInput], responses=LeaderboardRowOutput(many=True))
    def get(self, request):
        data = LeaderboardInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        rows = selectors.leaderboard_list(period=data.validated_data["period"])
        return paginated_response(request, self, rows, LeaderboardRowOutput, position_field="rank")
