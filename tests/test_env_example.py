""".env.example lists every environment variable that the settings modules
(ragsite/settings.py and ragsite/rag_settings.py) read, and nothing else:
they are parsed (their calls of the core.env helpers and of os.environ /
os.getenv), not imported."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = (ROOT / "ragsite" / "settings.py", ROOT / "ragsite" / "rag_settings.py")
EXAMPLE = ROOT / ".env.example"


def _is_os_environ(node) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "environ"
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def _first_name(call: ast.Call) -> str | None:
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


def settings_variables(source: str) -> set[str]:
    """Names read through the helpers imported from core.env (envstr, envint, ...),
    os.environ.get / os.environ[...] / os.getenv."""
    tree = ast.parse(source)
    helpers = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "core.env"
        for alias in node.names
        if alias.name.startswith("env")  # envstr, envint, ... (not data_dir, package_file)
    }
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            reads = (
                isinstance(func, ast.Name)
                and func.id in helpers
                or isinstance(func, ast.Attribute)
                and func.attr == "get"
                and _is_os_environ(func.value)
                or isinstance(func, ast.Attribute)
                and func.attr == "getenv"
                and isinstance(func.value, ast.Name)
                and func.value.id == "os"
            )
            if reads and _first_name(node):
                names.add(_first_name(node))
        elif isinstance(node, ast.Subscript) and _is_os_environ(node.value):
            if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
                names.add(node.slice.value)
    return names


def example_variables(text: str) -> set[str]:
    """`NAME=value` and `# NAME=value` lines (a commented line keeps the default)."""
    return set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def test_it_finds_every_way_settings_read_the_environment():
    source = (
        "import os\nfrom core.env import envbool as flag, envstr\n"
        "A = envstr('A')\nB = flag('B', True)\nC = os.environ.get('C')\nD = os.environ['D']\nE = os.getenv('E')\n"
        "F = os.environ.setdefault('X', 'y')\n"
    )
    assert settings_variables(source) == {"A", "B", "C", "D", "E"}


def test_it_reads_commented_and_set_lines_but_not_prose():
    text = "# Debug pages.\n# DEBUG=false\nSECRET_KEY=\n# Set the URL (RAG_GENERATOR_ENGINE=auto then serves).\n"
    assert example_variables(text) == {"DEBUG", "SECRET_KEY"}


def test_it_lists_every_setting_and_no_stale_one():
    in_settings = set().union(*(settings_variables(path.read_text()) for path in SETTINGS))
    in_example = example_variables(EXAMPLE.read_text())
    assert len(in_settings) > 50  # the parser found the settings at all
    assert sorted(in_settings - in_example) == [], "read by the settings but missing from .env.example"
    assert sorted(in_example - in_settings) == [], "in .env.example but no longer read by the settings"
