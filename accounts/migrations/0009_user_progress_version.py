"""The version of a user's progress (accounts.models.User.progress_version): 0 on every existing
user, set by AddField's default."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0008_user_time_zone_changed_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="progress_version",
            field=models.PositiveBigIntegerField(default=0, editable=False),
        ),
    ]
