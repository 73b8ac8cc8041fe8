"""The domain is pure: stdlib and msgspec only, no clock, no randomness, no float money."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import msgspec
import pytest

import odted.domain

DOMAIN = Path(odted.domain.__file__).parent
MODULES = sorted(DOMAIN.glob("*.py"))
FORBIDDEN = {"trio", "asyncpg", "quart", "quart_trio", "hypercorn", "trio_asyncio", "asyncio"}
ALLOWED_THIRD_PARTY = {"msgspec"}
CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter", "uuid1", "uuid4"}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_the_domain_has_modules_to_check():
    assert {p.stem for p in MODULES} >= {
        "chain", "instruments", "ticks", "orders", "tickets", "validation", "pricing", "fills",
        "fees", "buying_power", "ledger", "positions", "settlement", "ids",
    }


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_domain_module_imports_neither_trio_nor_io_libraries(path: Path):
    for name in _imports(path):
        top = name.split(".")[0]
        assert top not in FORBIDDEN, f"{path.name} imports {name}"
        assert (
            top in sys.stdlib_module_names
            or top in ALLOWED_THIRD_PARTY
            or name.startswith("odted.domain")
        ), f"{path.name} imports {name}, which is neither stdlib, msgspec nor odted.domain"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_domain_module_reads_no_clock_and_draws_no_randomness(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            assert name not in CLOCK_CALLS, f"{path.name}:{node.lineno} calls {name}()"
    assert "random" not in _imports(path), f"{path.name} imports random"


def _structs():
    import importlib

    for path in MODULES:
        module = importlib.import_module(f"odted.domain.{path.stem}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, msgspec.Struct)
                and value.__module__ == module.__name__
            ):
                yield value


def test_no_struct_field_but_a_delta_is_a_float():
    for struct in _structs():
        for field in msgspec.structs.fields(struct):
            if "float" in repr(field.type):
                assert field.name == "delta", f"{struct.__name__}.{field.name} is a float"
