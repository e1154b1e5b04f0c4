"""The shape of the code: a pure-data family registry, no import cycle in the core (deferred
imports included: a cycle hidden inside a function is still one), scripts that import the
package without touching sys.path."""

import ast
import subprocess
import sys

from imdb_sentiment.paths import REPO_ROOT

CORE = REPO_ROOT / "imdb_sentiment"


def core_modules() -> dict[str, ast.Module]:
    modules = {}
    for path in CORE.rglob("*.py"):
        parts = path.relative_to(REPO_ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = (path, ast.parse(path.read_text()))
    return modules


def imports_of(name: str, path, tree, known) -> set[str]:
    """The core modules `name` imports anywhere in its file (a module, or a package's __init__)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            submodules = {f"{target}.{alias.name}" for alias in node.names} & known
            # `from . import x` of a submodule imports x, not its package's __init__ again
            found |= submodules or ({target} & known)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names} & known
    return found - {name}


def test_the_core_has_no_import_cycle():
    modules = core_modules()
    graph = {name: imports_of(name, path, tree, set(modules)) for name, (path, tree) in modules.items()}
    state = {}

    def visit(name, trail):
        if state.get(name) == "done":
            return
        assert state.get(name) != "open", "import cycle: " + " -> ".join(trail[trail.index(name):] + [name])
        state[name] = "open"
        for target in sorted(graph[name]):
            visit(target, trail + [name])
        state[name] = "done"

    for name in sorted(graph):
        visit(name, [])
    assert "imdb_sentiment.runs" not in graph["imdb_sentiment.families"]  # the cycle there was


def test_the_family_registry_imports_nothing_of_the_project_but_its_error_type():
    code = ("import sys, imdb_sentiment.families as f; "
            "print(sorted(m for m in sys.modules if m.startswith('imdb_sentiment.')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['imdb_sentiment.errors', 'imdb_sentiment.families']"


def test_no_script_touches_sys_path():
    scripts = [path for folder in ("train", "search", "analysis", "models", "bench")
               for path in (REPO_ROOT / folder).glob("*.py")]
    assert len(scripts) > 40
    touching = [str(path.relative_to(REPO_ROOT)) for path in scripts if "sys.path" in path.read_text()]
    assert not touching
