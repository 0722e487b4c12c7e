"""The type stubs (python/ferrograd/_core.pyi) name exactly what the compiled module has:
every function, class, method and property of `_core`, and nothing it lacks, so editors and
mypy see the real API."""

import ast
import pathlib

import ferrograd._core as core

STUB = pathlib.Path(__file__).resolve().parent.parent / "python" / "ferrograd" / "_core.pyi"


def _stub_tree() -> ast.Module:
    return ast.parse(STUB.read_text())


def _defined(body) -> set[str]:
    """Functions and classes defined in a stub body (type aliases and `__all__` aside)."""
    return {n.name for n in body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}


def _public(obj) -> set[str]:
    """Names a user can reach: no dunders (the stub may declare those it implements)."""
    return {n for n in dir(obj) if not (n.startswith("__") and n.endswith("__"))}


def test_module_level_names_match():
    stub = _defined(_stub_tree().body)
    real = _public(core)
    classes_and_functions = {n for n in real if callable(getattr(core, n))}
    assert sorted(classes_and_functions - stub) == [], "in _core but not in the stub"
    assert sorted(stub - real) == [], "in the stub but not in _core"


def test_class_members_match():
    classes = {n.name: n for n in _stub_tree().body if isinstance(n, ast.ClassDef)}
    for name, node in classes.items():
        cls = getattr(core, name)
        stub = _defined(node.body) | {
            n.target.id for n in node.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
        }
        real = _public(cls) - set(dir(BaseException if issubclass(cls, BaseException) else object))
        stub_public = {n for n in stub if not (n.startswith("__") and n.endswith("__"))}
        assert sorted(real - stub) == [], f"{name}: members missing from the stub"
        assert sorted(stub_public - real) == [], f"{name}: stub members that do not exist"
        for dunder in stub - stub_public:
            assert hasattr(cls, dunder), f"{name}.{dunder} is in the stub but not implemented"
