"""DESIGN §1: who may import whom."""

import ast
import pathlib

import crashsweep

PACKAGE = pathlib.Path(crashsweep.__file__).parent
ALLOWED = {
    "reference": set(),
    "disk_model": set(),
    "store": {"disk_model"},
    "scenarios": {"reference"},
    "engines": {"disk_model", "store"},
    "reports": set(),
    "crash_explorer": {"reference", "disk_model", "store", "scenarios", "engines"},
}


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def test_each_part_imports_only_what_design_allows():
    problems = []
    for part, allowed in ALLOWED.items():
        for path in (PACKAGE / part).rglob("*.py"):
            for module in _imports(path):
                if not module.startswith("crashsweep."):
                    continue
                target = module.split(".")[1]
                if target != part and target not in allowed and target != "__init__":
                    problems.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert problems == []


def test_every_subpackage_declares_its_public_names():
    for part in ALLOWED:
        init = PACKAGE / part / "__init__.py"
        if init.exists():
            assert "__all__" in init.read_text(), part
