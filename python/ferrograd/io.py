"""Saving and loading models in the safetensors format.

A file holds the weights (and buffers) as safetensors tensors, the architecture config and
optionally the optimizer state (tensors under `optimizer.<param>.<key>`, hyperparameters in
the metadata), so `ferrograd.load` rebuilds the model and training resumes identically.

PyTorch's way works too: `save` takes any nested dict/list/tuple of tensors and plain values
(a `state_dict()`, or `{"model": ..., "optimizer": ..., "epoch": 3}`), and `load` gives it
back with its tensors on the CPU. The tensors are stored as safetensors entries, the
structure as JSON in the metadata.

A file is data, never code. Loading applies the safetensors rules exactly (header length,
a JSON object header of at most 100 MB, offsets sorted, contiguous and covering the data
section, each entry's size equal to its dtype size times its shape), parses JSON strictly
(no NaN or Infinity, no duplicate keys, nesting at most `MAX_JSON_DEPTH` deep), builds only
ferrograd's own layers (other classes only when the caller passes them as
`custom_objects`), checks that the file holds exactly the tensors the config implies before
building anything, and validates optimizer hyperparameters and state. Whatever is wrong is
refused with `CheckpointError` (a `ValueError`) naming it.

Writes go to a temporary file in the target's folder, which is fsynced and renamed over the
target, so a failed or killed save never destroys the previous checkpoint. The temporary
file is named `.<target>.<host>-<pid>-<random>.ferrograd-tmp`. A process killed mid-save
leaves it behind; the next save of the same target removes the ones whose writer is gone:
written on this host by a process that no longer exists, or untouched for `STALE_TEMP_SECONDS`
(the fallback for other hosts sharing the folder, and for reused pids). A temp of a live
writer (a concurrent save of the same target) is left alone, and so are other targets' temps.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import socket
import struct
import tempfile
import time
from collections import OrderedDict
from typing import Any

import numpy as np

from . import _core
from ._core import Tensor
from ._device import device as _device
from .errors import CheckpointError as CheckpointError  # (its home is ferrograd.errors)
from .nn.config import config_state, from_config, to_config
from .nn.module import Module
from .optim import OPTIMIZERS

_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "BOOL": np.bool_}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}
# the other dtype names of the safetensors spec: valid files, but not ones ferrograd reads
_SPEC_ONLY = {"F16", "BF16", "F8_E4M3", "F8_E5M2", "I8", "I16", "I32", "U8", "U16", "U32", "U64"}
FORMAT = "ferrograd/1"
MAX_HEADER_BYTES = 100_000_000  # the safetensors package refuses larger headers
MAX_JSON_DEPTH = 64  # real configs nest a few levels per module; Python's parser recurses
STALE_TEMP_SECONDS = 3600
# ferrograd's limit on a shape's dims multiplied (zeros counted as ones); below it NumPy can
# hold the array too, whatever its dtype
_MAX_EXTENT = 2**60
_TMP_SUFFIX = ".ferrograd-tmp"


# ---------------------------------------------------------------------------------- JSON


def _depth(obj) -> int:
    """How deeply `obj`'s lists, tuples and dicts nest, counted up to `MAX_JSON_DEPTH` + 1
    (iteratively, as the point is to bound recursion; the cap also ends cycles)."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, (list, tuple, dict)):
            deepest = max(deepest, d)
            if d > MAX_JSON_DEPTH:
                break
            stack.extend((v, d + 1) for v in (o.values() if isinstance(o, dict) else o))
    return deepest


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _finite_float(s: str) -> float:
    v = float(s)
    if not math.isfinite(v):  # 1e999 parses as inf
        raise ValueError(f"number {s} is out of range")
    return v


def parse_json(text: str | bytes, what: str) -> Any:
    """`text` parsed as strict JSON (RFC 8259: no NaN/Infinity, finite numbers, no duplicate
    keys), nested at most `MAX_JSON_DEPTH` deep; CheckpointError naming `what` otherwise."""
    if isinstance(text, bytes):  # strictly UTF-8, as the format says
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise CheckpointError(f"{what} is not UTF-8 ({e})") from None
    try:
        obj = json.loads(
            text, object_pairs_hook=_unique_keys, parse_constant=_no_constant, parse_float=_finite_float
        )
    except RecursionError:  # the parser recurses per level and stops at the interpreter's limit
        raise CheckpointError(f"{what} nests more than {MAX_JSON_DEPTH} levels deep") from None
    except ValueError as e:  # JSONDecodeError is a ValueError
        raise CheckpointError(f"{what} is not valid JSON ({e})") from None
    if _depth(obj) > MAX_JSON_DEPTH:
        raise CheckpointError(f"{what} nests more than {MAX_JSON_DEPTH} levels deep")
    return obj


def _dumps(obj, what: str) -> str:
    """`obj` as JSON that `parse_json` accepts: a file `load` would refuse is never written."""
    if _depth(obj) > MAX_JSON_DEPTH:
        raise ValueError(f"save: {what} nests more than {MAX_JSON_DEPTH} levels deep, more than load reads")
    try:
        return json.dumps(obj, allow_nan=False)
    except ValueError as e:  # NaN or infinity (JSON has neither), or a circular reference
        raise ValueError(f"save: {what} cannot be stored as JSON ({e})") from None


# ---------------------------------------------------------------------------------- safetensors


def _stem(name: str) -> str:
    # long names are shortened (with a hash, to stay distinct) so the temp name fits the
    # usual 255-byte limit
    if len(name) <= 100:
        return name
    return name[:80] + "~" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]", "-", socket.gethostname())[:40] or "host"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: checks existence, sends nothing
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process, or a pid we cannot ask about: assume alive
    return True


def _remove_stale_temps(folder: str, name: str) -> None:
    """Removes temps that earlier saves of `folder/name` left behind when killed (see the
    module docstring for which ones count as stale). Best effort: errors are ignored."""
    # .<stem>.<host>-<pid>-<random>.ferrograd-tmp; host and random hold no dots, so another
    # target whose name starts with this one's cannot match
    pattern = re.compile(
        re.escape(f".{_stem(name)}.") + r"([A-Za-z0-9-]+)-([0-9]+)-[A-Za-z0-9_]+" + re.escape(_TMP_SUFFIX)
    )
    host, now = _host(), time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for e in entries:
        m = pattern.fullmatch(e.name)
        if m is None:
            continue
        try:
            st = e.stat(follow_symlinks=False)
            if not e.is_file(follow_symlinks=False):
                continue
            dead = os.name == "posix" and m[1] == host and not _pid_alive(int(m[2]))
            if dead or now - st.st_mtime > STALE_TEMP_SECONDS:
                os.remove(e.path)
        except OSError:
            pass


def write_safetensors(path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """Writes arrays to `path` in safetensors format, atomically (temp file + rename).

    The temp file and the cleanup of temps left by killed saves are described in the
    module docstring."""
    header: dict = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    blobs = []
    for name, a in tensors.items():
        if name == "__metadata__":
            raise ValueError("save: '__metadata__' is reserved by the format and cannot name a tensor")
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
    hb = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    hb += b" " * (-len(hb) % 8)  # the spec pads the header to 8 bytes with spaces
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    _remove_stale_temps(folder, name)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{_stem(name)}.{_host()}-{os.getpid()}-", suffix=_TMP_SUFFIX, dir=folder
    )
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
    _sync_folder(folder)


def _sync_folder(folder: str) -> None:
    # makes the rename itself durable; not every platform can open a folder
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def read_safetensors(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Reads a safetensors file, applying the format's rules exactly; returns (arrays,
    metadata). Anything the rules refuse raises CheckpointError."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()

    def bad(why: str) -> CheckpointError:
        return CheckpointError(f"load: {path} is not a valid safetensors file: {why}")

    if len(data) < 8:
        raise bad(f"only {len(data)} bytes")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES:
        raise bad(f"header length {n} is over the {MAX_HEADER_BYTES}-byte limit")
    if n > len(data) - 8:
        raise bad(f"header of {n} bytes does not fit in a {len(data)}-byte file (truncated?)")
    if data[8:9] != b"{":
        raise bad("header does not start with '{'")
    try:
        header = parse_json(data[8 : 8 + n], "header")
    except CheckpointError as e:
        raise bad(str(e)) from None
    if not isinstance(header, dict):
        raise bad("header is not a JSON object")
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise bad("'__metadata__' is not an object of strings")
    size = len(data) - 8 - n
    entries = []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise bad(f"entry '{name}' is not an object of dtype, shape and data_offsets")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(dtype, str) or dtype not in _DTYPES:
            spec_only = isinstance(dtype, str) and dtype in _SPEC_ONLY
            known = "a safetensors dtype ferrograd does not read" if spec_only else "unknown"
            raise bad(f"entry '{name}' has dtype {dtype!r:.40} ({known}; ferrograd reads {sorted(_DTYPES)})")
        if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
            raise bad(f"entry '{name}' has shape {shape!r:.60}, not a list of non-negative ints")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(v) for v in offsets)):
            raise bad(f"entry '{name}' has data_offsets {offsets!r:.60}, not two ints")
        start, end = offsets
        if not 0 <= start <= end <= size:
            raise bad(f"entry '{name}' has offsets {start}..{end} outside the {size}-byte data section")
        itemsize = np.dtype(_DTYPES[dtype]).itemsize
        nbytes = itemsize * math.prod(shape)  # Python ints: a huge shape cannot wrap around
        if end - start != nbytes:
            raise bad(
                f"entry '{name}' spans {end - start} bytes, but {dtype} of shape {shape} needs {nbytes}"
            )
        if math.prod(d or 1 for d in shape) >= _MAX_EXTENT:
            # an empty tensor may claim any other dims, but no tensor can have these
            raise bad(f"entry '{name}' has shape {shape}, too large for a tensor")
        entries.append((start, end, name))
    # the data section is the entries laid end to end, without gaps or overlaps: no byte
    # is unaccounted for, and no two tensors share bytes
    at = 0
    for start, end, name in sorted(entries):
        if start != at:
            what = "overlaps the one before it" if start < at else f"leaves a gap of {start - at} bytes"
            raise bad(f"entry '{name}' at {start}..{end} {what}")
        at = end
    if at != size:
        raise bad(f"the entries cover {at} bytes of a {size}-byte data section")
    body = memoryview(data)[8 + n :]
    arrays = {}
    for start, end, name in entries:
        info = header[name]
        dt = np.dtype(_DTYPES[info["dtype"]])
        if start == end:
            arrays[name] = np.zeros(info["shape"], dt)
        else:
            a = np.frombuffer(body[start:end], dtype=dt.newbyteorder("<"))
            arrays[name] = a.astype(dt).reshape(info["shape"])
    return arrays, meta


# ---------------------------------------------------------------------------------- dicts saved PyTorch's way


def _encode(obj, tensors: dict[str, np.ndarray]):
    """`obj` as JSON, its tensors moved into `tensors` (named t0, t1, ...). Dicts keep their
    keys' types (optimizer states are keyed by int), tuples stay tuples, and non-finite
    floats are spelled out (JSON has no NaN)."""
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
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"float": repr(obj)}  # 'nan', 'inf' or '-inf'
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    raise TypeError(
        f"save: cannot store a {type(obj).__name__}; give tensors, numbers, strings, None, and "
        "dicts, lists or tuples of them (or a Module)"
    )


def _decode(node, arrays: dict[str, np.ndarray], path, used: set[str]):
    """The inverse of `_encode`, with tensors from `arrays` (their names added to `used`)."""

    def bad(why: str) -> CheckpointError:
        return CheckpointError(f"load: {path} has a malformed structure: {why}")

    if not isinstance(node, dict) or len(node) != 1:
        raise bad(f"entry {node!r:.60}")
    ((kind, v),) = node.items()
    if kind == "tensor":
        if not isinstance(v, str) or v not in arrays:
            raise bad(f"it refers to a missing tensor {v!r:.60}")
        used.add(v)
        return _core.from_numpy(np.require(arrays[v], requirements="C"))
    if kind == "dict":
        if not isinstance(v, list):
            raise bad("a dict entry is not a list of pairs")
        out: OrderedDict = OrderedDict()  # state dicts are ordered
        for pair in v:
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], (str, int))):
                raise bad(f"dict item {pair!r:.60} is not a [key, value] pair")
            k = pair[0]
            if isinstance(k, bool) or k in out:
                raise bad(f"dict key {k!r:.60} is not a str or int, or is repeated")
            out[k] = _decode(pair[1], arrays, path, used)
        return out
    if kind in ("list", "tuple"):
        if not isinstance(v, list):
            raise bad(f"a {kind} entry is not a list")
        items = [_decode(x, arrays, path, used) for x in v]
        return tuple(items) if kind == "tuple" else items
    if kind == "value":
        if not (v is None or isinstance(v, (bool, int, float, str))):
            raise bad(f"value {v!r:.60} is not a number, string, bool or null")
        return v
    if kind == "float":
        if v not in ("nan", "inf", "-inf"):
            raise bad(f"float {v!r:.60} is not 'nan', 'inf' or '-inf'")
        return float(v)
    raise bad(f"unknown entry kind {kind!r:.60}")


# ---------------------------------------------------------------------------------- save / load


def save(model, path, optimizer=None) -> None:
    """Saves `model` (weights, buffers, architecture) and optionally `optimizer` state.

    `model` may also be what PyTorch scripts save: a `state_dict()`, or any dict, list or
    tuple of tensors and plain values (`{"model": m.state_dict(), "epoch": 3}`); `load`
    returns it as it was, its tensors on the CPU. A module used in two places is stored
    once in the config and comes back tied (its weights appear under both names)."""
    if not isinstance(model, Module):
        if optimizer is not None:
            raise TypeError("save: optimizer= goes with a Module; put its state_dict() in the dict instead")
        tensors: dict[str, np.ndarray] = {}
        try:
            encoded = _encode(model, tensors)
        except RecursionError:
            raise ValueError("save: the structure nests too deeply to store") from None
        tree = _dumps(encoded, "the saved structure")
        write_safetensors(path, tensors, {"format": FORMAT, "tree": tree})
        return
    tensors = {k: t.numpy() for k, t in model.state_dict().items()}
    clash = [k for k in tensors if k.startswith("optimizer.")]
    if clash:
        raise ValueError(
            f"save: weight '{clash[0]}' would be read back as optimizer state; rename the module "
            "called 'optimizer'"
        )
    meta = {"format": FORMAT}
    try:
        meta["config"] = _dumps(to_config(model), "the model's config")
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
        meta["optimizer"] = _dumps(
            {"class": sd["class"], "param_groups": sd["param_groups"], "scalars": scalars},
            "the optimizer's state",
        )
    meta["rng_state"] = json.dumps(list(_core.get_rng_state()))
    write_safetensors(path, tensors, meta)


def load(
    path,
    model=None,
    optimizer=None,
    restore_rng: bool = False,
    map_location=None,
    weights_only=None,
    custom_objects: dict[str, type] | None = None,
):
    """Loads a file written by `save`.

    Without `model`, rebuilds the architecture from the stored config; with one, loads the
    weights into it (strictly: missing, unexpected or mis-shaped weights are refused).
    With `optimizer`, restores its state too. Returns the model. A file saved from a dict
    (PyTorch's way: `fg.save(model.state_dict(), path)`) gives the dict back.

    Only ferrograd's own layers are built from a file; pass your own classes as
    `custom_objects={"Name": cls}` (as Keras does) to let a config name them.

    `map_location` (a device name, as PyTorch's) puts the loaded tensors, or the rebuilt
    model, on that device. `weights_only` is accepted for PyTorch's scripts: the file
    format holds tensors and JSON only, so loading never runs code either way.

    Any defect of the file raises `CheckpointError` naming it, before the model or the
    optimizer is changed.

    >>> model = fg.load("model.safetensors")
    """
    device = None
    if map_location is not None:
        if not isinstance(map_location, str):
            raise TypeError(
                f"load: map_location must be a device name such as 'cpu' or 'cuda', got "
                f"{type(map_location).__name__}"
            )
        device = _device(map_location)
    out = _load(path, model, optimizer, restore_rng, custom_objects)
    return out if device is None else _moved(out, device)


def _moved(obj, device: str):
    """`obj` (a tensor, a model, or dicts/lists/tuples of them) with its tensors on `device`."""
    if isinstance(obj, (Tensor, Module)):
        return obj.to(device)
    if isinstance(obj, dict):
        return type(obj)((k, _moved(v, device)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_moved(v, device) for v in obj)
    return obj


_FLOAT_NAMES = ("F32", "F64")
_INDEX = re.compile(r"0|[1-9][0-9]{0,17}")  # a parameter index: plain decimal, no sign or padding


def _dtype_name(t: Tensor) -> str:
    """`t`'s dtype as the format names it (F32, F64, I64, BOOL)."""
    return {"float32": "F32", "float64": "F64", "int64": "I64", "bool": "BOOL"}.get(
        str(t.dtype).rsplit(".", 1)[-1], str(t.dtype)
    )


def _fits(file_dtype: str, own_dtype: str) -> bool:
    # float weights may change precision (a model saved after .double()); nothing else converts
    return file_dtype == own_dtype or (file_dtype in _FLOAT_NAMES and own_dtype in _FLOAT_NAMES)


# Layer state kept as an int64 count, by its last name component (BatchNorm's batch
# counter): such an entry is I64, and a file may lack it (older files, as PyTorch's own
# pre-1.0 BatchNorm checkpoints), the layer then keeping its count.
_COUNTERS = ("num_batches_tracked",)


def _check_against_config(path, weights: dict[str, np.ndarray], expected: dict[str, tuple]) -> None:
    """Refuses a file whose tensors are not exactly those its config implies (names, shapes,
    float dtypes, or I64 for a counter), before anything is built: a tiny file cannot make
    us allocate a huge model."""
    problems = []
    for k, shape in expected.items():
        counter = k.rsplit(".", 1)[-1] in _COUNTERS
        if k not in weights:
            if not counter:
                problems.append(f"'{k}' of shape {tuple(shape)} is missing")
        elif tuple(weights[k].shape) != tuple(shape):
            problems.append(f"'{k}' should have shape {tuple(shape)}, the file's has {weights[k].shape}")
        elif counter and _NAMES[weights[k].dtype] != "I64":
            problems.append(f"'{k}' should have dtype I64, the file's has {_NAMES[weights[k].dtype]}")
        elif not counter and _NAMES[weights[k].dtype] not in _FLOAT_NAMES:
            problems.append(f"'{k}' should have dtype F32 or F64, the file's has {_NAMES[weights[k].dtype]}")
    problems += [f"'{k}' is not part of the architecture" for k in weights if k not in expected]
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise CheckpointError(f"load: {path} does not hold the tensors its config implies: {shown}")


def _optimizer_state(path, meta: dict, arrays: dict[str, np.ndarray]) -> dict:
    """The optimizer state dict the file holds, its structure checked (values are checked by
    the optimizer's `load_state_dict`)."""

    def bad(why: str) -> CheckpointError:
        return CheckpointError(f"load: {path} has a malformed optimizer state: {why}")

    if "optimizer" not in meta:
        raise CheckpointError(f"load: {path} holds no optimizer state")
    o = parse_json(meta["optimizer"], f"load: {path}: the optimizer state")
    if not isinstance(o, dict) or set(o) != {"class", "param_groups", "scalars"}:
        raise bad("it is not an object of class, param_groups and scalars")
    if not isinstance(o["class"], str):
        raise bad("its class is not a string")
    groups = o["param_groups"]
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise bad("param_groups is not a list of objects")
    if not isinstance(o["scalars"], dict):
        raise bad("scalars is not an object")
    state: dict[int, dict] = {}
    for i, st in o["scalars"].items():
        if not _INDEX.fullmatch(i) or not isinstance(st, dict):
            raise bad(f"scalars entry {i!r:.40} is not a parameter index with an object")
        state[int(i)] = dict(st)
    for k, v in arrays.items():
        if k.startswith("optimizer."):
            parts = k.split(".", 2)
            if len(parts) != 3 or not _INDEX.fullmatch(parts[1]) or not parts[2]:
                raise bad(f"tensor '{k}' is not named optimizer.<index>.<key>")
            st = state.setdefault(int(parts[1]), {})
            if parts[2] in st:
                raise bad(f"'{k}' is given twice")
            st[parts[2]] = _core.from_numpy(np.require(v, requirements="C"))
    groups = [{**g, "betas": tuple(g["betas"])} if isinstance(g.get("betas"), list) else g for g in groups]
    return {"class": o["class"], "param_groups": groups, "state": state}


def _load(path, model, optimizer, restore_rng: bool, custom_objects):
    arrays, meta = read_safetensors(path)
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"load: {path} was not written by ferrograd (format {meta.get('format')!r:.40})"
        )
    if "tree" in meta:
        # a dict/list saved PyTorch's way
        if model is not None or optimizer is not None:
            raise CheckpointError(
                f"load: {path} holds a saved dict, not a model; load it and call load_state_dict"
            )
        tree = parse_json(meta["tree"], f"load: {path}: the saved structure")
        used: set[str] = set()
        out = _decode(tree, arrays, path, used)
        if len(used) != len(arrays):
            stray = sorted(set(arrays) - used)[:3]
            raise CheckpointError(f"load: {path} holds tensors its structure does not use: {stray}")
        return out
    weights = {k: v for k, v in arrays.items() if not k.startswith("optimizer.")}
    if "optimizer" not in meta and len(weights) != len(arrays):
        raise CheckpointError(f"load: {path} holds optimizer tensors but no optimizer state")

    # read and check everything the file says before changing the model or the optimizer
    opt_state = None
    if optimizer is not None:
        opt_state = _optimizer_state(path, meta, arrays)
        if opt_state["class"] != type(optimizer).__name__ and OPTIMIZERS.get(
            opt_state["class"].lower()
        ) is not type(optimizer):
            raise CheckpointError(
                f"load: {path} holds {opt_state['class']:.40} state, not {type(optimizer).__name__}"
            )
    rng = None
    if restore_rng and "rng_state" in meta:
        rng = parse_json(meta["rng_state"], f"load: {path}: the RNG state")
        if not (isinstance(rng, list) and len(rng) == 2 and all(_is_int(v) and 0 <= v < 2**64 for v in rng)):
            raise CheckpointError(f"load: {path} has a malformed RNG state: {rng!r:.60}")
    if model is None:
        if "config" not in meta:
            raise CheckpointError(f"load: {path} holds weights only; build the model and pass it as model=")
        cfg = parse_json(meta["config"], f"load: {path}: the config")
        try:
            expected = config_state(cfg, custom_objects)
            if expected is not None:  # None: a custom class the caller vouched for
                _check_against_config(path, weights, expected)
            model = from_config(cfg, custom_objects)
        except CheckpointError as e:
            msg = str(e)
            raise CheckpointError(msg if msg.startswith("load:") else f"load: {path}: {msg}") from None
    own = model.state_dict()
    wrong = [
        f"'{k}' has dtype {_NAMES[v.dtype]}, the model's {_dtype_name(own[k])}"
        for k, v in weights.items()
        if k in own and not _fits(_NAMES[v.dtype], _dtype_name(own[k]))
    ]
    if wrong:
        raise CheckpointError(f"load: {path} does not fit this architecture: " + "; ".join(wrong[:5]))
    checked_opt = None
    if optimizer is not None:
        try:
            checked_opt = optimizer._checked_state(opt_state)
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"load: {path} has an optimizer state that does not fit: {e}") from None
    try:
        model.load_state_dict(
            {k: _core.from_numpy(np.require(v, requirements="C")) for k, v in weights.items()}
        )
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"load: {path} does not fit this architecture: {e}") from None
    if checked_opt is not None:
        optimizer._apply_state(*checked_opt)
    if rng is not None:
        _core.set_rng_state(tuple(rng))
    return model
