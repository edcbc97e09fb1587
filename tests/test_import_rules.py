"""The architecture's import rules, read from the source with ``ast`` (nothing is imported).

- ``hw/`` (what becomes gates) imports only ``hw`` and the core (``edgetrain.errors``,
  ``edgetrain.tomlfile``, ...), never ``sim``, ``firmware``, ``boards`` or the command line.
- The top-level packages import each other without a cycle.
- A relative import stays inside its own top-level folder; anything else is named
  absolutely (``edgetrain.hw...``).
"""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("hw", "sim", "firmware", "boards", "edgetrain")
CLI = ("cli", "commands")     # the command line: cli.py and the commands/ package
HW_MAY_IMPORT = {"hw", "core"}


def package_of(module):
    """The top-level package a dotted ``edgetrain`` module belongs to."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in CLI:
        return "cli"
    if len(parts) > 1 and parts[1] in FOLDERS[:4]:
        return parts[1]
    return "core"


def folder_of(module):
    """The top-level folder holding ``module``: hw, sim, firmware, boards or edgetrain."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in FOLDERS[:4] else "edgetrain"


def module_of(root, path):
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts if parts[0] == "edgetrain" else ["edgetrain", *parts])


def imports_of(root, path):
    """Yield (line, imported module, relative?) for every ``edgetrain`` import of ``path``."""
    here = module_of(root, path).split(".")
    if path.name != "__init__.py":
        here = here[:-1]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("edgetrain"):
                    yield node.lineno, alias.name, False
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("edgetrain"):
                yield node.lineno, target, bool(node.level)


def import_violations(root):
    """Return one message per broken rule in the tree at ``root`` (empty when all hold)."""
    root = Path(root)
    problems, edges = [], {}
    for folder in FOLDERS:
        for path in sorted((root / folder).rglob("*.py")):
            module = module_of(root, path)
            source = package_of(module)
            where = path.relative_to(root)
            for line, target, relative in imports_of(root, path):
                dest = package_of(target)
                if relative and folder_of(target) != folder_of(module):
                    problems.append(f"{where}:{line}: relative import of {target} leaves "
                                    f"{folder_of(module)}/; name it absolutely")
                if source == "hw" and dest not in HW_MAY_IMPORT:
                    problems.append(f"{where}:{line}: hw/ imports {target} ({dest})")
                if dest != source:
                    edges.setdefault(source, {}).setdefault(dest, f"{where}:{line}")
    problems += [f"import cycle: {cycle}" for cycle in _cycles(edges)]
    return problems


def _cycles(edges):
    """Each cycle between packages, as 'a -> b (file:line) -> a (file:line)'."""
    found = []

    def walk(node, path):
        for nxt, where in sorted(edges.get(node, {}).items()):
            if nxt == path[0][0]:
                steps = [p for p, _ in path[1:]] + [nxt]
                whys = [w for _, w in path[1:]] + [where]
                if path[0][0] == min(p for p, _ in path):
                    found.append(path[0][0] + "".join(f" -> {s} ({w})"
                                                      for s, w in zip(steps, whys)))
            elif nxt not in (p for p, _ in path):
                walk(nxt, path + [(nxt, where)])

    for start in sorted(edges):
        walk(start, [(start, None)])
    return found


def test_the_tree_keeps_the_import_rules():
    problems = import_violations(REPO)
    assert not problems, "\n".join(problems)


def _plant(tmp_path, files):
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for folder in FOLDERS:
        (tmp_path / folder).mkdir(exist_ok=True)
    return tmp_path


@pytest.mark.parametrize("files, expected", [
    ({"hw/engine/conv.py": "from edgetrain.sim.golden import numerics\n"},
     "hw/engine/conv.py:1: hw/ imports edgetrain.sim.golden (sim)"),
    ({"hw/config.py": "from ..errors import ConfigError\n"},
     "hw/config.py:1: relative import of edgetrain.errors leaves hw/"),
    ({"hw/x.py": "def f():\n    import edgetrain.boards.top\n"},
     "hw/x.py:2: hw/ imports edgetrain.boards.top (boards)"),
    ({"firmware/a.py": "from edgetrain.sim.tb import runner\n",
      "sim/tb/runner.py": "from edgetrain.firmware.a import f\n"},
     "import cycle: firmware -> sim (firmware/a.py:1) -> firmware (sim/tb/runner.py:1)"),
])
def test_a_planted_import_is_caught(tmp_path, files, expected):
    problems = import_violations(_plant(tmp_path, files))
    assert any(p.startswith(expected) for p in problems), problems
