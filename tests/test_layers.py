"""The package's layers: imports only run down (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "hr_middleware"

#: Each layer, lowest first, by the top-level name of its modules under hr_middleware.
LAYERS = [
    {"_core"},
    {"_boundary"},
    {"_hello_retail"},
    {"_serving", "_forgotten"},
    {
        "wsgi",
        "asgi",
        "flask",
        "fastapi",
        "django",
        "client",
        "consent",
        "customers",
        "script",
        "templatetags",
        "testing",
        "apps",
        "pytest_plugin",
        "__init__",
    },
]
#: (module, what it imports): the imports that run up on purpose (docs/architecture.md says why).
ALLOWED_UP = {("_serving", "django"), ("_forgotten", "django")}


def layer(top: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if top in names)


def imported(path: Path) -> set[str]:
    """The top-level names under hr_middleware that the module at *path* imports."""
    module = path.relative_to(PACKAGE).with_suffix("").parts
    names = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = list(module[:-1])[: len(module) - node.level]
                target = [*base, *(node.module.split(".") if node.module else [])]
            elif node.module and node.module.startswith("hr_middleware"):
                target = node.module.split(".")[1:]
            else:
                continue
            if target:
                names.add(target[0])
            else:  # "from . import x" at the top
                names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names if a.name.startswith("hr_middleware."))
    return names


def test_imports_only_run_down_the_layers() -> None:
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        top = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if top == "__main__":
            continue
        for name in imported(path):
            if name in ("__init__", top) or (top, name) in ALLOWED_UP:
                continue
            if layer(name) > layer(top):
                upward.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not upward, "imports that run up the layers:\n" + "\n".join(upward)
