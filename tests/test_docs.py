"""The docs stay honest: commands, options, variables and links they quote all exist."""

import re
from pathlib import Path

import pytest
from django.core.management import get_commands, load_command_class

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
TOOLING_VARIABLES = {
    "MONGODB_TEST_URI",
    "DEMO_SERVE",
    "DEMO_PORT",
    "DEMO_DIR",
    "REQUIRE_BROWSER",
    "REQUIRE_MONGO_TOOLS",
}
SETTINGS_FILES = sorted((ROOT / "studymaster" / "settings").glob("*.py"))
# manage.py <command> [words and --options], up to the end of the line or code span
COMMAND = re.compile(r"manage\.py\s+([a-z_]+)([^\n`|]*)")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _text(path: Path) -> str:
    return path.read_text()


def _quoted_commands():
    for path in DOCS:
        for match in COMMAND.finditer(_text(path)):
            yield path.name, match.group(1), re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", match.group(2))


def test_every_quoted_command_and_option_exists():
    commands = get_commands()
    problems = []
    for doc, name, options in _quoted_commands():
        if name not in commands:
            problems.append(f"{doc}: manage.py {name} does not exist")
            continue
        parser = load_command_class(commands[name], name).create_parser("manage.py", name)
        known = {option for action in parser._actions for option in action.option_strings}
        problems += [
            f"{doc}: manage.py {name} has no option {option}" for option in options if option not in known
        ]
    assert not problems, "\n".join(problems)


def test_docs_quote_the_operator_commands():
    quoted = {name for _, name, _ in _quoted_commands()}
    assert {"export_local", "import_atlas", "verify_migration", "healthcheck", "migrate"} <= quoted


def _settings_variables() -> set[str]:
    pattern = re.compile(r"\b(?:_read|read_[a-z_]+)\(\s*\"([A-Z0-9_]+)\"")
    return {name for path in SETTINGS_FILES for name in pattern.findall(_text(path))}


def _example_variables() -> set[str]:
    """Every variable .env.example sets, or shows commented out (the production ones)."""
    return set(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]*)=", _text(ROOT / ".env.example"), flags=re.MULTILINE))


def test_env_example_and_settings_name_the_same_variables():
    settings_vars, example_vars = _settings_variables(), _example_variables()
    assert settings_vars, "found no variables read in the settings"
    assert example_vars - settings_vars == set(), "in .env.example but never read by the settings"
    assert settings_vars - example_vars == set(), "read by the settings but missing from .env.example"
    assert not (example_vars & TOOLING_VARIABLES), "tooling variables belong in the README, not .env.example"


def test_tooling_variables_are_documented_in_the_readme():
    readme = _text(ROOT / "README.md")
    assert all(f"`{name}`" in readme for name in TOOLING_VARIABLES)


def _anchors(path: Path) -> set[str]:
    anchors = set()
    for heading in re.findall(r"^#+\s+(.+)$", _text(path), flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    anchors |= set(re.findall(r'<a id="([^"]+)"', _text(path)))
    return anchors


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_relative_links_resolve(doc):
    broken = []
    for target in LINK.findall(_text(doc)):
        if re.match(r"[a-z]+:", target) or target.startswith("//"):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (doc.parent / file_part).resolve() if file_part else doc
        missing_anchor = (
            anchor and linked.suffix == ".md" and linked.exists() and anchor not in _anchors(linked)
        )
        if not linked.exists() or missing_anchor:
            broken.append(target)
    assert not broken, f"{doc.name}: broken links {broken}"


def test_configuration_doc_explains_every_variable():
    configuration = _text(ROOT / "docs" / "configuration.md")
    missing = sorted(name for name in _example_variables() if f"`{name}`" not in configuration)
    assert not missing, f"docs/configuration.md does not explain {missing}"
