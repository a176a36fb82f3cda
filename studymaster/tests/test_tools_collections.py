import re

import pytest

from studymaster.tools_collections import NOT_DATA_COLLECTION_PATTERN, is_data_collection


@pytest.mark.parametrize(
    "name",
    [
        "accounts_user",
        "migration_tools_migrationrun",
        "migration_tools_syncstate",
        "system.views",
        "my_migration_tools_notes",
        "migration_toolsX",
        "systemic",
    ],
)
def test_the_servers_pattern_is_the_same_rule_as_is_data_collection(name):
    assert (re.search(NOT_DATA_COLLECTION_PATTERN, name) is None) == is_data_collection(name)
