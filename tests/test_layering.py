"""The house reads one way: each room imports only the rooms below it (docs/architecture.md).

corpus <- synth, recorder, augment, datasets <- train <- guitarlab (the review app, live
prediction, the workflows) <- the command line (guitarlab/cli.py, guitarlab/commands/).
Every import counts: at module level, inside functions, relative ones, and
``importlib.import_module`` of a literal name. The checker is tested on a fixture package
where a lower room imports a higher one, so a checker that sees nothing cannot pass.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("corpus", "synth", "recorder", "augment", "datasets", "train")
# room -> the rooms it may import (its own is always allowed)
ALLOWED: dict[str, set[str]] = {
    "corpus": set(),
    "synth": {"corpus"},
    "recorder": {"corpus"},
    "augment": {"corpus"},
    "datasets": {"corpus"},
    "train": {"corpus", "datasets"},
    "guitarlab": set(STAGES),
    "cli": {*STAGES, "guitarlab"},
}
NOT_PRODUCT = {"tests", "benchmarks", "build", "demo", "docs"}
CLI_MODULES = ("guitarlab.commands", "guitarlab.cli", "guitarlab.__main__")


def module_of(path: Path, root: Path) -> str:
    """The installed name of a source file: ``corpus/manifest.py`` -> ``guitarlab.corpus.manifest``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    if parts and parts[0] in STAGES:
        parts.insert(0, "guitarlab")
    return ".".join(parts)


def room_of(module: str) -> str | None:
    """The room of an installed module name; None outside guitarlab (numpy, click, ...)."""
    if module != "guitarlab" and not module.startswith("guitarlab."):
        return None
    if any(module == m or module.startswith(m + ".") for m in CLI_MODULES):
        return "cli"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else "guitarlab"


def imported_modules(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """``(line, module)`` for every import in ``tree``, wherever it sits."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            # "from guitarlab import train" imports the room named, not guitarlab itself
            found += [
                (node.lineno, f"{base}.{alias.name}" if base == "guitarlab" else base)
                for alias in node.names
            ]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
        ):
            name = node.args[0]
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                found.append((node.lineno, name.value))
            elif (
                isinstance(name, ast.JoinedStr)
                and name.values
                and isinstance(name.values[0], ast.Constant)
            ):
                found.append((node.lineno, str(name.values[0].value).rstrip(".")))
    return found


def product_files(root: Path) -> list[Path]:
    rooms = [
        d
        for d in sorted(root.iterdir())
        if (d / "__init__.py").is_file() and d.name not in NOT_PRODUCT
    ]
    return [f for d in rooms for f in sorted(d.rglob("*.py"))]


def layering_violations(root: Path) -> list[str]:
    """``file:line: room -> room (module)`` for each import the one-way rule forbids."""
    out = []
    for path in product_files(root):
        rel = path.relative_to(root)
        if rel.parts[0] not in (*STAGES, "guitarlab"):
            out.append(f"{rel}:1: folder {rel.parts[0]!r} is in no room; add it to ALLOWED")
            continue
        module = module_of(path, root)
        here = room_of(module)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(rel))
        for line, name in imported_modules(tree, module, path.name == "__init__.py"):
            there = room_of(name)
            if there and there != here and there not in ALLOWED[here]:
                out.append(f"{rel}:{line}: {here} -> {there} ({name})")
    return out


def test_the_product_imports_only_downwards() -> None:
    problems = layering_violations(ROOT)
    assert not problems, "imports against the one-way rule:\n" + "\n".join(problems)
    assert len(product_files(ROOT)) > 50  # it read the product, not an empty folder


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_the_checker_reports_a_lower_room_importing_a_higher_one(tmp_path: Path) -> None:
    for room in (*STAGES, "guitarlab", "guitarlab/commands"):
        write(tmp_path / room / "__init__.py", "")
    write(tmp_path / "datasets" / "fine.py", "from guitarlab.corpus.errors import DatasetError\n")
    write(tmp_path / "train" / "fine.py", "import guitarlab.datasets.select\n")
    write(tmp_path / "guitarlab" / "commands" / "fine.py", "from guitarlab import live\n")
    write(
        tmp_path / "corpus" / "bad.py",
        "import numpy as np\n"
        "\n"
        "\n"
        "def helper():\n"
        "    from guitarlab.datasets.build import build_dataset  # inside a function\n"
        "    return build_dataset\n"
        "\n"
        "\n"
        "from ..train import fit  # relative, at the bottom\n",
    )
    write(tmp_path / "augment" / "bad.py", "from guitarlab import synth\n")  # across
    write(
        tmp_path / "guitarlab" / "live.py",
        "import importlib\n\nimportlib.import_module('guitarlab.commands.train')\n",
    )
    write(tmp_path / "plugins" / "__init__.py", "")

    assert sorted(layering_violations(tmp_path)) == [
        "augment/bad.py:1: augment -> synth (guitarlab.synth)",
        "corpus/bad.py:5: corpus -> datasets (guitarlab.datasets.build)",
        "corpus/bad.py:9: corpus -> train (guitarlab.train)",
        "guitarlab/live.py:3: guitarlab -> cli (guitarlab.commands.train)",
        "plugins/__init__.py:1: folder 'plugins' is in no room; add it to ALLOWED",
    ]
