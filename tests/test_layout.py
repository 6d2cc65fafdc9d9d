"""The layout's direction (STYLE.md): `core/` is the kernel every app may
import and it imports none of them; the apps do not import the project shell
(`ragsite/`) at module level. Read from the source's import statements."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("ingestion", "retrieval", "generation", "chat")
FIRST_PARTY = ("core", "ragsite", *APPS)


def imports(package: str, *, top_level_only: bool = False) -> dict[str, set[str]]:
    """For each module of `package`: the first-party packages it imports (all
    imports, or only those at module level)."""
    found = {}
    for path in (ROOT / package).rglob("*.py"):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        nodes = tree.body if top_level_only else ast.walk(tree)
        names = set()
        for node in nodes:
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = {name for name in names if name in FIRST_PARTY and name != package}
    return found


def test_the_kernel_imports_no_app_and_not_the_project_shell():
    offending = {module: names for module, names in imports("core").items() if names}
    assert offending == {}


def test_the_apps_do_not_import_the_project_shell_at_module_level():
    offending = {
        module: names
        for app in APPS
        for module, names in imports(app, top_level_only=True).items()
        if "ragsite" in names
    }
    assert offending == {}
