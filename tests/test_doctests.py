"""Every docstring example (``>>>``) in the packages runs, one test per docstring.

Examples that need files, devices or a trained model carry ``# doctest: +SKIP``.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

PACKAGES = (
    "guitarlab.corpus",
    "guitarlab.synth",
    "guitarlab.recorder",
    "guitarlab.augment",
    "guitarlab.datasets",
    "guitarlab.train",
    "guitarlab",
    "guitarlab.commands",
    "guitarlab.review",
)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        names.append(package)
        path = importlib.import_module(package).__path__
        names += [
            f"{package}.{m.name}"
            for m in pkgutil.iter_modules(path)
            if not m.ispkg and m.name != "__main__"
        ]
    return sorted(set(names))


def _examples() -> list:
    finder = doctest.DocTestFinder(exclude_empty=True)
    found = []
    for name in _modules():
        module = importlib.import_module(name)
        for test in finder.find(module, name):
            if test.examples and test.name.startswith(name):
                found.append(pytest.param(test, id=test.name))
    return found


@pytest.mark.parametrize("example", _examples())
def test_docstring_example(example: doctest.DocTest) -> None:
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    runner.run(example, out=print)
    assert runner.failures == 0, f"{example.name} failed (its output is above)"
