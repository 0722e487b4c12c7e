"""`load_model`, `model_from_json`, `model_from_config` and `clone_model`: models rebuilt
from their saved form (see `ferrograd.keras.models`; `save_model` writes it)."""

from __future__ import annotations

import numpy as np

from .. import _core
from .. import io as _io
from . import _scope
from . import losses as _losses
from . import metrics as _metrics
from . import optimizers as _optimizers
from ._model import _KERAS_FORMAT, Functional, Model, Sequential, _class_name
from .layers import BUILD


def load_model(
    filepath,
    custom_objects: dict | None = None,
    compile: bool = True,  # noqa: A002  (Keras's name)
    safe_mode: bool = True,
):
    """Reads a model written by `model.save`: rebuilds the architecture from ferrograd.keras's
    classes (others only from `custom_objects`), checks that the file holds exactly the
    weights it implies before creating any, loads them, and (with `compile`) restores the
    compile settings and optimizer state. Refuses anything else with a `CheckpointError`
    (a ValueError) naming it."""
    arrays, meta = _io.read_safetensors(filepath)
    if meta.get("format") != _io.FORMAT or "keras" not in meta:
        raise _io.CheckpointError(f"load_model: {filepath} is not a model saved by ferrograd.keras")
    doc = _io.parse_json(meta["keras"], f"load_model: {filepath}: the model config")
    if (
        not isinstance(doc, dict)
        or doc.get("format") != _KERAS_FORMAT
        or not isinstance(doc.get("model"), dict)
    ):
        raise _io.CheckpointError(f"load_model: {filepath} has an unknown keras config format")
    weights = {k: v for k, v in arrays.items() if not k.startswith("optimizer.")}
    token = BUILD.defer
    BUILD.defer = True  # layers record their shapes; weights wait for the check below
    try:
        with _scope.custom_object_scope(custom_objects):
            model = _model_from_dict(doc["model"])
    except (ValueError, TypeError, KeyError) as e:
        raise _io.CheckpointError(f"load_model: {filepath}: {e}") from None
    finally:
        BUILD.defer = token
    expected = model._expected_shapes()
    if expected is None:
        raise _io.CheckpointError(f"load_model: {filepath}: the model's input shape is unknown")
    problems = []
    for k, shape in expected.items():
        if k not in weights:
            problems.append(f"'{k}' of shape {tuple(shape)} is missing")
        elif tuple(weights[k].shape) != tuple(shape):
            problems.append(f"'{k}' should have shape {tuple(shape)}, the file's has {weights[k].shape}")
        elif weights[k].dtype not in (np.float32, np.float64):
            problems.append(f"'{k}' should be a float tensor, the file's is {weights[k].dtype}")
    problems += [f"'{k}' is not part of the architecture" for k in weights if k not in expected]
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise _io.CheckpointError(
            f"load_model: {filepath} does not hold the weights its config implies: {shown}"
        )
    model._build_now()
    model.load_state_dict(
        {k: _core.from_numpy(np.require(v.astype(np.float32), requirements="C")) for k, v in weights.items()}
    )
    if compile and "keras_compile" in meta:
        cfg = _io.parse_json(meta["keras_compile"], f"load_model: {filepath}: the compile settings")
        try:
            with _scope.custom_object_scope(custom_objects):
                _compile_from(model, cfg)
        except (ValueError, TypeError) as e:
            raise _io.CheckpointError(
                f"load_model: {filepath}: the compile settings cannot be restored ({e}); pass the custom "
                "objects "
                "they name, or compile=False"
            ) from None
        if "optimizer" in meta:
            _restore_optimizer(model, filepath, meta, arrays)
    return model


def _model_from_dict(d: dict) -> Model:
    name = d.get("class_name")
    if name == "Sequential":
        return Sequential.from_config(_scope.check_arguments("Sequential", d.get("config", {})))
    if name in ("Functional", "Model"):
        return Functional.from_config(_scope.check_arguments("Functional", d.get("config", {})))
    custom = _scope.lookup(name)
    if isinstance(custom, type) and issubclass(custom, Model):
        model = custom.from_config(_scope.check_arguments(str(name), d.get("config", {})))
        return model
    raise ValueError(f"unknown model class {name!r}; pass custom_objects={{{name!r}: cls}}")


def _compile_from(model: Model, cfg) -> None:
    if not isinstance(cfg, dict):
        raise ValueError("malformed compile settings")
    opt = _optimizers.get(cfg.get("optimizer"))
    loss = cfg.get("loss")
    if isinstance(loss, str) and loss not in _losses._BY_NAME:
        custom = _scope.lookup(loss)
        if custom is None:
            raise ValueError(f"the loss {loss!r} is a custom function; pass custom_objects={{{loss!r}: fn}}")
        loss = custom
    elif isinstance(loss, dict):
        loss = _losses.get(loss)
    metrics = []
    for m in (cfg.get("metrics") or []) + (cfg.get("weighted_metrics") or []):
        if isinstance(m, str) and m.lower() not in ("accuracy", "acc") and _scope.lookup(m) is None:
            _metrics.get(m)
    metrics = [_metrics.get(m) if isinstance(m, dict) else m for m in cfg.get("metrics") or []]
    weighted = [_metrics.get(m) if isinstance(m, dict) else m for m in cfg.get("weighted_metrics") or []]
    model.compile(
        optimizer=opt,
        loss=loss,
        metrics=metrics or None,
        weighted_metrics=weighted or None,
        loss_weights=cfg.get("loss_weights"),
    )


def _restore_optimizer(model: Model, filepath, meta: dict, arrays: dict) -> None:
    o = _io.parse_json(meta["optimizer"], f"load_model: {filepath}: the optimizer state")
    if not isinstance(o, dict) or not isinstance(o.get("param_groups"), list):
        raise _io.CheckpointError(f"load_model: {filepath} has a malformed optimizer state")
    state: dict[int, dict] = {}
    for k, v in arrays.items():
        if k.startswith("optimizer."):
            parts = k.split(".", 2)
            if len(parts) != 3 or not parts[1].isdigit() or not parts[2]:
                raise _io.CheckpointError(
                    f"load_model: {filepath}: tensor '{k}' is not named optimizer.<index>.<slot>"
                )
            state.setdefault(int(parts[1]), {})[parts[2]] = _core.from_numpy(np.require(v, requirements="C"))
    opt = model.optimizer
    opt._bind(list(model.parameters()))
    try:
        opt.load_state_dict({"class": o.get("class"), "param_groups": o["param_groups"], "state": state})
    except ValueError as e:
        raise _io.CheckpointError(f"load_model: {filepath}: the optimizer state does not fit: {e}") from None


def model_from_json(json_string: str, custom_objects: dict | None = None) -> Model:
    """A model (fresh weights) from `model.to_json()`'s architecture."""
    doc = _io.parse_json(json_string, "model_from_json")
    if not isinstance(doc, dict):
        raise ValueError("model_from_json: not a model description")
    with _scope.custom_object_scope(custom_objects):
        return _model_from_dict(doc)


def model_from_config(config: dict, custom_objects: dict | None = None) -> Model:
    """A model (fresh weights) from `{"class_name": ..., "config": model.get_config()}`."""
    with _scope.custom_object_scope(custom_objects):
        return _model_from_dict(config)


def clone_model(model: Model, input_tensors=None, clone_function=None) -> Model:
    """A new model with the same architecture and freshly initialized weights."""
    if input_tensors is not None or clone_function is not None:
        raise ValueError("clone_model: input_tensors and clone_function are not supported")
    return model_from_config({"class_name": _class_name(model), "config": model.get_config()})
