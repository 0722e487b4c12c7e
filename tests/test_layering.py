"""The package's layering (issue 12): `nn` sits below the training layer, `io` below `train`,
no module imports a module that imports it back, and the Keras methods come from the
training layer (`ferrograd.train.Model`), deprecated on a plain `nn.Module`.

The import graph is read from the source with `ast`, not from a running interpreter, so an
import inside a function counts as much as one at the top of a module. Run this file as a
script (`python tests/test_layering.py [PACKAGE_DIR]`) to print the graph's cycles.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

import ferrograd as fg
from ferrograd import nn

PACKAGE = Path(__file__).resolve().parent.parent / "python" / "ferrograd"


# ---------------------------------------------------------------------------- the graph


class Edge(NamedTuple):
    src: str
    dst: str
    when: str  # "top" (runs at import), "function" (when called) or "typing" (never runs)
    line: int
    implicit: bool  # importing `a.b.c` imports the package `a.b` first


def module_names(package: Path) -> dict[str, Path]:
    """Dotted name -> file, for every module of `package` (stubs too: `_core` is compiled)."""
    out: dict[str, Path] = {}
    for path in sorted(package.rglob("*.py*")):
        if path.suffix not in (".py", ".pyi"):
            continue
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join(parts)
        if path.suffix == ".py" or name not in out:
            out[name] = path
    return out


def _is_package(name: str, modules: dict[str, Path]) -> bool:
    return modules[name].name.startswith("__init__.")


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _imports(tree: ast.Module):
    """(node, when) for every import statement, `when` as in `Edge`."""

    def visit(node: ast.AST, when: str):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, when
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                yield from visit(child, "function" if when == "top" else when)
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for stmt in child.body:
                    yield from visit(ast.Module(body=[stmt], type_ignores=[]), "typing")
                for stmt in child.orelse:
                    yield from visit(ast.Module(body=[stmt], type_ignores=[]), when)
            else:
                yield from visit(child, when)

    yield from visit(tree, "top")


def import_graph(package: Path = PACKAGE) -> tuple[dict[str, Path], list[Edge]]:
    """The modules of `package` and every import among them."""
    modules = module_names(package)
    root = package.name
    edges: list[Edge] = []
    for src, path in modules.items():
        if path.suffix != ".py":
            continue
        here = src if _is_package(src, modules) else src.rpartition(".")[0]
        for node, when in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                for alias in node.names:
                    name = alias.name
                    while name and name not in modules:
                        name = name.rpartition(".")[0]
                    targets.append(name)
            else:
                if node.level:
                    parts = here.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1])
                    base = f"{base}.{node.module}" if node.module else base
                else:
                    base = node.module or ""
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            for dst in targets:
                if dst != root and not dst.startswith(root + "."):
                    continue
                if dst not in modules:
                    continue
                edges.append(Edge(src, dst, when, node.lineno, False))
                # the packages importing `dst` imports first, unless they are already being
                # imported (those of `src` itself)
                mine = {src, *_ancestors(src)}
                for pkg in _ancestors(dst):
                    if pkg not in mine:
                        edges.append(Edge(src, pkg, when, node.lineno, True))
    return modules, edges


def cycles(edges: list[Edge], limit: int = 500) -> list[list[str]]:
    """The graph's simple cycles (each from its smallest module name), at most `limit`."""
    succ: dict[str, set[str]] = {}
    for e in edges:
        if e.src != e.dst:
            succ.setdefault(e.src, set()).add(e.dst)
    found: list[list[str]] = []
    for start in sorted(succ):
        stack = [(start, [start])]
        while stack and len(found) < limit:
            node, path = stack.pop()
            for nxt in sorted(succ.get(node, ()), reverse=True):
                if nxt == start:
                    found.append([*path, start])
                elif nxt > start and nxt not in path:
                    stack.append((nxt, [*path, nxt]))
    return found


def namespace_imports(modules: dict[str, Path], edges: list[Edge]) -> list[Edge]:
    """Imports of names from an enclosing package's `__init__` (`from . import tensor`): they
    work only if that `__init__` defined the name before importing the module."""
    return [e for e in edges if not e.implicit and e.dst in _ancestors(e.src) and e.when != "typing"]


def _edges(when: tuple[str, ...] = ("top", "function", "typing")) -> list[Edge]:
    return [e for e in import_graph()[1] if e.when in when]


def _shown(edges) -> str:
    return "; ".join(f"{e.src}:{e.line} -> {e.dst} ({e.when})" for e in edges)


# ---------------------------------------------------------------------------- layering


def test_the_graph_sees_the_imports():
    """A check of the checker: known imports of each kind are found."""
    edges = _edges()
    assert Edge("ferrograd.train", "ferrograd.nn", "top", 0, False)[:3] in {e[:3] for e in edges}
    assert ("ferrograd.nn.module", "ferrograd.nn.config", "function") in {e[:3] for e in edges}
    assert ("ferrograd.nn._registry", "ferrograd.nn.module", "typing") in {e[:3] for e in edges}
    # importing ferrograd.nn.module from io imports the package ferrograd.nn first
    assert ("ferrograd.io", "ferrograd.nn", "top") in {e[:3] for e in edges if e.implicit}


def test_nn_module_imports_no_training_io_losses_or_optim():
    """nn/module.py is PyTorch's plain module: not even a function imports these."""
    text = (PACKAGE / "nn" / "module.py").read_text(encoding="utf-8")
    banned = re.compile(
        r"^\s*from \.\.?(train|io)\b|import ferrograd\.(train|io)|from \.\. import (train|io)", re.M
    )
    assert not banned.search(text), banned.search(text)
    bad = {"ferrograd.train", "ferrograd.io", "ferrograd.losses", "ferrograd.optim"}
    assert not [e for e in _edges() if e.src == "ferrograd.nn.module" and e.dst in bad]


# What the layer below training may not import (at any level, type-checking imports too).
ABOVE_NN = (
    "ferrograd.train",
    "ferrograd.io",
    "ferrograd.callbacks",
    "ferrograd.models",
    "ferrograd.losses",
    "ferrograd.optim",
    "ferrograd.data",
    "ferrograd.utils",
    "ferrograd.cli",
    "ferrograd.__main__",
)


def _reaches(dst: str, names: tuple[str, ...]) -> bool:
    return any(dst == n or dst.startswith(n + ".") for n in names)


def test_nn_is_below_the_training_layer():
    inside = [e for e in _edges() if e.src == "ferrograd.nn" or e.src.startswith("ferrograd.nn.")]
    up = [e for e in inside if _reaches(e.dst, ABOVE_NN) or e.dst == "ferrograd"]
    assert not up, f"nn imports from above it: {_shown(up)}"


def test_io_is_below_train():
    up = [
        e
        for e in _edges()
        if e.src == "ferrograd.io"
        and _reaches(e.dst, ("ferrograd.train", "ferrograd.callbacks", "ferrograd.models"))
    ]
    assert not up, _shown(up)


def test_no_import_cycles():
    """No module imports (at import time) one that imports it back, through any chain. A
    package's `__init__` importing its submodules is no cycle: they do not import it back."""
    found = cycles(_edges(("top",)))
    assert not found, "import cycles: " + "; ".join(" -> ".join(c) for c in found[:10])


def test_no_cycles_through_imports_in_functions_either():
    """Deferring an import into a function hides a cycle from the interpreter, not from the
    design. The one allowed: `nn.module`'s `__getattr__` still hands out `to_config`,
    `from_config` and `config_state` (their home before `nn.config`)."""
    allowed = [["ferrograd.nn.config", "ferrograd.nn.module", "ferrograd.nn.config"]]
    found = cycles(_edges(("top", "function")))
    assert found == allowed, "import cycles: " + "; ".join(" -> ".join(c) for c in found[:10])


def test_no_module_takes_names_from_the_package_init():
    """`from . import tensor` in a submodule needs ferrograd/__init__ to have defined it before
    importing that submodule; the functions live in private modules to import from instead."""
    modules, edges = import_graph()
    bad = namespace_imports(modules, edges)
    assert not bad, _shown(bad)


def test_init_only_reexports():
    """ferrograd/__init__.py defines no function or class, and assigns only `__all__`."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        assert not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)), node.name
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            assert [ast.unparse(t) for t in targets] == ["__all__"], ast.unparse(node)


def test_every_exported_name_exists():
    assert len(fg.__all__) == len(set(fg.__all__))
    missing = [n for n in fg.__all__ if not hasattr(fg, n)]
    assert not missing
    for mod in (nn, nn.functional):
        assert not [n for n in mod.__all__ if not hasattr(mod, n)]


def test_elementwise_table_is_exported_with_docstrings():
    """`_ops` is star-imported: its public names are exactly its functions, each exported."""
    from ferrograd import _ops

    public = sorted(n for n in vars(_ops) if not n.startswith("_"))
    assert public == sorted(_ops._NAMES)
    for name in _ops._NAMES:
        fn = getattr(fg, name)
        assert fn is getattr(_ops, name) and name in fg.__all__
        assert callable(fn) and fn.__doc__ and fn.__name__ in (name, "clamp")


def test_every_table_row_reaches_a_method_or_the_engine_table():
    from ferrograd import _ops

    engine = {row[0] for row in fg._core.unary_ops()}
    hand_written = {"clip", "neg", "logical_not"}
    for name in set(_ops._NAMES) - hand_written:
        assert hasattr(fg.Tensor, name) or name in engine, name


def test_a_row_without_a_tensor_method_calls_the_engine_table():
    """What a new row (`sin = _elementwise("sin", ...)`) makes: `_core.unary(x, "sin")`."""
    from ferrograd import _ops

    x = fg.tensor([-30.0, -1.0, 0.0, 0.5, 3.0])
    sin = _ops._make("sin", "Sine.", {})
    np.testing.assert_allclose(sin(x).numpy(), np.sin(x.numpy()), rtol=1e-6, atol=1e-7)
    softplus = _ops._make("softplus", "Softplus.", {"beta": 1.0, "threshold": 20.0})
    assert str(inspect.signature(softplus)) == "(x: 'Tensor', beta=1.0, threshold=20.0) -> 'Tensor'"
    want = np.log1p(np.exp(2.0 * x.numpy())) / 2.0
    np.testing.assert_allclose(softplus(x, beta=2.0).numpy(), want, rtol=1e-5, atol=1e-7)


def test_elementwise_functions_behave_as_the_methods():
    x = fg.tensor([-2.0, -0.5, 0.0, 0.5, 2.0])
    np.testing.assert_array_equal(fg.exp(x).numpy(), x.exp().numpy())
    np.testing.assert_array_equal(fg.elu(x, 0.5).numpy(), x.elu(0.5).numpy())
    np.testing.assert_array_equal(fg.elu(x, alpha=0.5).numpy(), x.elu(0.5).numpy())
    np.testing.assert_array_equal(fg.leaky_relu(x).numpy(), x.leaky_relu(0.01).numpy())
    np.testing.assert_array_equal(fg.clamp(x, max=1.0).numpy(), x.clamp(None, 1.0).numpy())
    np.testing.assert_array_equal(fg.clip(x, -1.0, 1.0).numpy(), x.clamp(-1.0, 1.0).numpy())
    assert str(inspect.signature(fg.gelu)) == "(x: 'Tensor', approximate='none') -> 'Tensor'"
    with pytest.raises(TypeError, match=r"elu\(\) got multiple values for argument 'alpha'"):
        fg.elu(x, 1.0, alpha=2.0)
    with pytest.raises(TypeError, match=r"elu\(\) got an unexpected keyword argument 'beta'"):
        fg.elu(x, beta=1.0)
    with pytest.raises(TypeError, match=r"elu\(\) takes from 1 to 2 positional arguments but 3"):
        fg.elu(x, 1.0, 2.0)
    with pytest.raises(AttributeError):  # as `[1.0].exp()`: the function adds no conversion
        fg.exp([1.0])


# ---------------------------------------------------------------------------- homes


def test_losses_have_one_home():
    """Every loss is defined in ferrograd.nn.loss; nn, nn.functional and ferrograd.losses
    re-export the same objects."""
    home = nn.loss
    for name in [n for n in nn.__all__ if n.endswith("Loss")]:
        assert getattr(nn, name) is getattr(home, name) and getattr(home, name).__module__ == home.__name__
    for name in ("cross_entropy", "nll_loss", "mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss"):
        assert getattr(nn.functional, name) is getattr(home, name)
    for name in ("binary_cross_entropy", "binary_cross_entropy_with_logits"):
        assert getattr(nn.functional, name) is getattr(home, name)
    assert fg.losses.mse is home.mse
    assert fg.losses.cross_entropy is home.softmax_cross_entropy
    assert fg.losses.binary_cross_entropy is home.sigmoid_binary_cross_entropy
    assert fg.losses.get("sparse_categorical_crossentropy")[0] == "cross_entropy"
    assert fg.losses.get(nn.MSELoss())[0] == "mse"
    defs = [
        p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*.py")
        if re.search(
            r"^(def \w*(loss|entropy|mse)\w*\(|class \w+Loss\()", p.read_text(encoding="utf-8"), re.M
        )
    ]
    assert defs == ["nn/loss.py"], defs


def test_configs_and_checkpoint_error_have_one_home():
    from ferrograd import errors, io
    from ferrograd.nn import config, module

    assert nn.to_config is config.to_config and nn.from_config is config.from_config
    assert module.to_config is config.to_config and module.config_state is config.config_state
    assert module.REGISTRY is config.REGISTRY and config.REGISTRY["Linear"] is nn.Linear
    assert io.CheckpointError is errors.CheckpointError is config.CheckpointError is module.CheckpointError
    assert "Model" not in config.REGISTRY  # the training layer's class is no layer
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018


# ---------------------------------------------------------------------------- Keras's methods

KERAS = ("compile", "fit", "evaluate", "predict", "save")


class _Net(fg.train.Model):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(x)


class _Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(x)


def _data():
    r = np.random.default_rng(0)
    x = r.standard_normal((64, 3)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64)


@pytest.mark.parametrize(
    "build",
    [
        lambda: nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2)),
        lambda: fg.models.standard(3, 2, width=8, depth=1),
        lambda: fg.models.residual(3, 2, width=8, blocks=1),
        lambda: fg.models.self_normalizing(3, 2, width=8, depth=2),
        _Net,
    ],
    ids=["Sequential", "standard", "residual", "self_normalizing", "Model subclass"],
)
def test_training_layer_classes_have_keras_methods(build, tmp_path):
    """nn.Sequential, the builders' models and Model subclasses train without a warning."""
    x, y = _data()
    fg.manual_seed(0)
    model = build()
    for name in KERAS:
        assert callable(getattr(model, name))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.compile(optimizer="adam", loss="cross_entropy", lr=0.01)
        h = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
        assert h.history["loss"][-1] < h.history["loss"][0]
        assert set(model.evaluate(x, y)) == {"loss", "acc"}
        assert model.predict(x[:5]).shape == (5, 2)
        model.save(tmp_path / "m.safetensors")
    assert model.history is h and model.optimizer is not None


def test_model_is_documented_and_plain_module_is_not_keras():
    assert "fit" in fg.train.Model.__doc__ and issubclass(fg.train.Model, nn.Module)
    for name in KERAS:
        assert name in vars(fg.train.Model) and vars(nn.Sequential)[name] is vars(fg.train.Model)[name]
        assert "Deprecated" in vars(nn.Module)[name].__doc__


@pytest.mark.parametrize("name", KERAS)
def test_keras_methods_on_a_plain_module_warn_and_still_work(name, tmp_path):
    x, y = _data()
    m = _Plain()
    args = {
        "compile": ((), {"optimizer": "sgd", "lr": 0.1}),
        "fit": ((x, y), {"epochs": 2, "verbose": 0}),
        "evaluate": ((x, y), {}),
        "predict": ((x[:4],), {}),
        "save": ((tmp_path / "p.safetensors",), {}),
    }[name]
    with pytest.warns(
        DeprecationWarning, match=r"subclass ferrograd\.train\.Model or call ferrograd\."
    ) as rec:
        out = getattr(m, name)(*args[0], **args[1])
    assert rec[0].filename == __file__  # it points at the caller
    if name == "fit":
        assert "ferrograd.train.fit(model, ...)" in str(rec[0].message)
        assert len(out.history["loss"]) == 2
    elif name == "predict":
        assert out.shape == (4, 2)
    elif name == "save":
        np.testing.assert_array_equal(
            fg.load(tmp_path / "p.safetensors", model=_Plain()).fc.weight.numpy(), m.fc.weight.numpy()
        )


def test_plain_module_compile_then_fit_still_uses_the_compiled_optimizer():
    x, y = _data()
    m = _Plain()
    with pytest.warns(DeprecationWarning):
        m.compile(optimizer="sgd", lr=0.1)
    with pytest.warns(DeprecationWarning):
        m.fit(x, y, epochs=1, verbose=0)
    assert isinstance(m.optimizer, fg.optim.SGD) and m.optimizer.lr == 0.1


def test_functional_training_of_a_plain_module_does_not_warn(tmp_path):
    x, y = _data()
    m = _Plain()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = fg.train.fit(m, x, y, epochs=2, verbose=0)
        fg.train.evaluate(m, x, y)
        fg.train.predict(m, x)
        fg.save(m, tmp_path / "w.safetensors")
    assert m.history is h


# ---------------------------------------------------------------------------- the report


def _report(package: Path) -> str:
    modules, edges = import_graph(package)
    lines = [f"{package}: {len(modules)} modules, {len(edges)} import edges"]
    for label, kinds in (("import time", ("top",)), ("any level (functions too)", ("top", "function"))):
        found = cycles([e for e in edges if e.when in kinds])
        lines.append(f"cycles at {label}: {len(found)}")
        lines += ["  " + " -> ".join(c) for c in found]
    lines.append("names imported from an enclosing package's __init__:")
    lines += [f"  {e.src}:{e.line} -> {e.dst} ({e.when})" for e in namespace_imports(modules, edges)]
    return "\n".join(lines)


if __name__ == "__main__":
    print(_report(Path(sys.argv[1]) if len(sys.argv) > 1 else PACKAGE))


def test_the_bindings_never_import_the_package_back():
    """_core gets the Python callables it needs (tensor, repr, return types) from
    `import ferrograd` through `_core._set_hooks`, so the Rust bindings import no ferrograd
    module (issue 12)."""
    import re
    from pathlib import Path

    src = Path(__file__).resolve().parent.parent / "rust" / "python" / "src"
    imports = [
        (f.name, m)
        for f in sorted(src.glob("*.rs"))
        for m in re.findall(r'import\(\s*"([^"]+)"', f.read_text())
    ]
    assert imports, "the scan found no import at all: it would pass vacuously"
    assert [i for i in imports if i[1].split(".")[0] == "ferrograd"] == []
