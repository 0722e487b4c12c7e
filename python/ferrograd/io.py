"""Saving and loading models in the safetensors format.

A file holds the weights (and buffers) as safetensors tensors, the architecture config and
optionally the optimizer state (tensors under `optimizer.<param>.<key>`, hyperparameters in
the metadata), so `ferrograd.load` rebuilds the model and training resumes identically.

PyTorch's way works too: `save` takes any nested dict/list/tuple of tensors and plain values
(a `state_dict()`, or `{"model": ..., "optimizer": ..., "epoch": 3}`), and `load` gives it
back with its tensors on the CPU. The tensors are stored as safetensors entries, the
structure as JSON in the metadata.
Writes go to a temporary file that is renamed over the target, so a failed save never
destroys the previous checkpoint; a truncated or corrupt file is refused with a clear error.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile

import numpy as np

from . import _core
from ._core import Tensor

_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "BOOL": np.bool_}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}
FORMAT = "ferrograd/1"


class CheckpointError(ValueError):
    """A file that is not a valid ferrograd/safetensors checkpoint, or does not fit the model."""


def write_safetensors(path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """Writes arrays to `path` in safetensors format, atomically (temp file + rename)."""
    header: dict = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    blobs = []
    for name, a in tensors.items():
        a = np.require(a, requirements="C")  # (ascontiguousarray makes a 0-d array 1-d)
        if a.dtype not in _NAMES:
            raise TypeError(f"save: tensor '{name}' has unsupported dtype {a.dtype}")
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {
            "dtype": _NAMES[a.dtype],
            "shape": list(a.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        blobs.append(raw)
        offset += len(raw)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)  # the spec pads the header to 8 bytes with spaces
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(hb)))
            f.write(hb)
            for raw in blobs:
                f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def read_safetensors(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Reads a safetensors file, checking every offset; returns (arrays, metadata)."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()

    def bad(why: str) -> CheckpointError:
        return CheckpointError(f"load: {path} is not a valid safetensors file: {why}")

    if len(data) < 8:
        raise bad(f"only {len(data)} bytes")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise bad(f"header of {n} bytes does not fit in a {len(data)}-byte file (truncated?)")
    try:
        header = json.loads(data[8 : 8 + n].decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad(f"header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise bad("header is not a JSON object")
    meta = header.pop("__metadata__", {}) or {}
    body = memoryview(data)[8 + n :]
    arrays = {}
    for name, info in header.items():
        try:
            dt = np.dtype(_DTYPES[info["dtype"]])
            shape = [int(d) for d in info["shape"]]
            start, end = (int(v) for v in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise bad(f"entry '{name}' is malformed or has an unsupported dtype") from None
        count = int(np.prod(shape, dtype=np.int64))
        if (
            min(shape, default=0) < 0
            or not 0 <= start <= end <= len(body)
            or end - start != count * dt.itemsize
        ):
            raise bad(
                f"tensor '{name}' has offsets {start}..{end} that do not match its shape or the file size"
            )
        arrays[name] = np.frombuffer(body[start:end], dtype=dt.newbyteorder("<")).astype(dt).reshape(shape)
    return arrays, meta


def _encode(obj, tensors: dict[str, np.ndarray]):
    """`obj` as JSON, its tensors moved into `tensors` (named t0, t1, ...). Dicts keep their
    keys' types (optimizer states are keyed by int), tuples stay tuples."""
    if isinstance(obj, Tensor):
        name = f"t{len(tensors)}"
        tensors[name] = obj.detach().numpy()
        return {"tensor": name}
    if isinstance(obj, dict):
        for k in obj:
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(f"save: dict keys must be str or int, got {type(k).__name__}")
        return {"dict": [[k, _encode(v, tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {"tuple" if isinstance(obj, tuple) else "list": [_encode(v, tensors) for v in obj]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    if isinstance(obj, np.generic):
        return {"value": obj.item()}
    raise TypeError(
        f"save: cannot store a {type(obj).__name__}; give tensors, numbers, strings, None, and "
        "dicts, lists or tuples of them (or a Module)"
    )


def _decode(node, arrays: dict[str, np.ndarray], path):
    """The inverse of `_encode`, with tensors from `arrays`."""
    if not isinstance(node, dict) or len(node) != 1:
        raise CheckpointError(f"load: {path} has a malformed structure entry: {node!r:.60}")
    ((kind, v),) = node.items()
    if kind == "tensor":
        if v not in arrays:
            raise CheckpointError(f"load: {path} refers to a missing tensor '{v}'")
        return _core.from_numpy(np.require(arrays[v], requirements="C"))
    if kind == "dict":
        from collections import OrderedDict  # noqa: PLC0415  (state dicts are ordered)

        return OrderedDict((k, _decode(x, arrays, path)) for k, x in v)
    if kind in ("list", "tuple"):
        items = [_decode(x, arrays, path) for x in v]
        return tuple(items) if kind == "tuple" else items
    if kind == "value":
        return v
    raise CheckpointError(f"load: {path} has an unknown structure entry '{kind}'")


def save(model, path, optimizer=None) -> None:
    """Saves `model` (weights, buffers, architecture) and optionally `optimizer` state.

    `model` may also be what PyTorch scripts save: a `state_dict()`, or any dict, list or
    tuple of tensors and plain values (`{"model": m.state_dict(), "epoch": 3}`); `load`
    returns it as it was, its tensors on the CPU."""
    from .nn.module import Module, to_config  # noqa: PLC0415

    if not isinstance(model, Module):
        if optimizer is not None:
            raise TypeError("save: optimizer= goes with a Module; put its state_dict() in the dict instead")
        tensors: dict[str, np.ndarray] = {}
        tree = json.dumps(_encode(model, tensors))
        write_safetensors(path, tensors, {"format": FORMAT, "tree": tree})
        return
    tensors = {k: t.numpy() for k, t in model.state_dict().items()}
    meta = {"format": FORMAT}
    try:
        meta["config"] = json.dumps(to_config(model))
    except NotImplementedError:
        pass  # custom modules: weights only; rebuild the model in code and load_state_dict
    if optimizer is not None:
        sd = optimizer.state_dict()
        for i, st in sd["state"].items():
            for key, v in st.items():
                if isinstance(v, Tensor):
                    tensors[f"optimizer.{i}.{key}"] = v.numpy()
        scalars = {
            str(i): {k: v for k, v in st.items() if not isinstance(v, Tensor)}
            for i, st in sd["state"].items()
        }
        meta["optimizer"] = json.dumps(
            {"class": sd["class"], "param_groups": sd["param_groups"], "scalars": scalars}
        )
    meta["rng_state"] = json.dumps(list(_core.get_rng_state()))
    write_safetensors(path, tensors, meta)


def load(path, model=None, optimizer=None, restore_rng: bool = False, map_location=None, weights_only=None):
    """Loads a file written by `save`.

    Without `model`, rebuilds the architecture from the stored config; with one, loads the
    weights into it (strictly: missing, unexpected or mis-shaped weights are refused).
    With `optimizer`, restores its state too. Returns the model. A file saved from a dict
    (PyTorch's way: `fg.save(model.state_dict(), path)`) gives the dict back.

    `map_location` (a device name, as PyTorch's) puts the loaded tensors, or the rebuilt
    model, on that device. `weights_only` is accepted for PyTorch's scripts: the file
    format holds tensors and JSON only, so loading never runs code either way.

    >>> model = fg.load("model.safetensors")
    """
    device = None
    if map_location is not None:
        if not isinstance(map_location, str):
            raise TypeError(
                f"load: map_location must be a device name such as 'cpu' or 'cuda', got "
                f"{type(map_location).__name__}"
            )
        from . import device as _device  # noqa: PLC0415

        device = _device(map_location)
    out = _load(path, model, optimizer, restore_rng)
    return out if device is None else _moved(out, device)


def _moved(obj, device: str):
    """`obj` (a tensor, a model, or dicts/lists/tuples of them) with its tensors on `device`."""
    from .nn.module import Module  # noqa: PLC0415

    if isinstance(obj, (Tensor, Module)):
        return obj.to(device)
    if isinstance(obj, dict):
        return type(obj)((k, _moved(v, device)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_moved(v, device) for v in obj)
    return obj


def _load(path, model, optimizer, restore_rng: bool):
    from .nn.module import from_config  # noqa: PLC0415
    from .optim import OPTIMIZERS  # noqa: PLC0415

    arrays, meta = read_safetensors(path)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"load: {path} was not written by ferrograd (format {meta.get('format')!r})")
    if "tree" in meta:
        # a dict/list saved PyTorch's way
        if model is not None or optimizer is not None:
            raise CheckpointError(
                f"load: {path} holds a saved dict, not a model; load it and call load_state_dict"
            )
        try:
            tree = json.loads(meta["tree"])
        except json.JSONDecodeError as e:
            raise CheckpointError(f"load: {path} has a corrupt structure ({e})") from None
        return _decode(tree, arrays, path)
    weights = {k: v for k, v in arrays.items() if not k.startswith("optimizer.")}
    if model is None:
        if "config" not in meta:
            raise CheckpointError(f"load: {path} holds weights only; build the model and pass it as model=")
        model = from_config(json.loads(meta["config"]))
    try:
        model.load_state_dict(
            {k: _core.from_numpy(np.require(v, requirements="C")) for k, v in weights.items()}
        )
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"load: {path} does not fit this architecture: {e}") from None
    if optimizer is not None:
        if "optimizer" not in meta:
            raise CheckpointError(f"load: {path} holds no optimizer state")
        o = json.loads(meta["optimizer"])
        if o["class"] != type(optimizer).__name__ and OPTIMIZERS.get(o["class"].lower()) is not type(
            optimizer
        ):
            raise CheckpointError(f"load: {path} holds {o['class']} state, not {type(optimizer).__name__}")
        state: dict[int, dict] = {int(i): dict(s) for i, s in o["scalars"].items()}
        for k, v in arrays.items():
            if k.startswith("optimizer."):
                _, i, key = k.split(".", 2)
                state.setdefault(int(i), {})[key] = _core.from_numpy(np.require(v, requirements="C"))
        groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in o["param_groups"]]
        optimizer.load_state_dict({"class": o["class"], "param_groups": groups, "state": state})
    if restore_rng and "rng_state" in meta:
        _core.set_rng_state(tuple(json.loads(meta["rng_state"])))
    return model
