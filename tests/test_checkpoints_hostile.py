"""Checkpoints are data, never code (issue 11): hostile files are refused with CheckpointError,
saves survive SIGKILL, tied modules stay tied, and only the caller's classes are built."""

from __future__ import annotations

import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

import ferrograd as fg
from ferrograd import nn
from ferrograd.io import CheckpointError, read_safetensors, write_safetensors
from ferrograd.nn.config import REGISTRY, config_state

try:
    import safetensors.numpy as st_numpy
except ImportError:  # the second, independent reader is optional
    st_numpy = None


# ------------------------------------------------------------------------------- helpers


def _model():
    fg.manual_seed(1)
    m = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))
    m.train()
    m(fg.randn(5, 4))  # running statistics away from their initial values
    return m


def _trained(m):
    opt = fg.optim.Adam(m.parameters(), lr=0.01)
    loss = (m(fg.randn(6, 4)) ** 2).mean()
    loss.backward()
    opt.step()
    return opt


def _split(data: bytes) -> tuple[dict, bytes]:
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def _join(header, body: bytes, n: int | None = None, raw: bytes | None = None) -> bytes:
    """A file from a header (dict, or raw bytes) and a body; `n` overrides the length field."""
    hb = raw if raw is not None else json.dumps(header).encode()
    hb += b" " * (-len(hb) % 8)
    return (len(hb) if n is None else n).to_bytes(8, "little") + hb + body


def _with_meta(data: bytes, **changes) -> bytes:
    """`data` with metadata strings replaced (None removes one)."""
    header, body = _split(data)
    meta = header["__metadata__"]
    for k, v in changes.items():
        if v is None:
            meta.pop(k, None)
        else:
            meta[k] = v
    return _join(header, body)


def _with_config(data: bytes, cfg) -> bytes:
    return _with_meta(data, config=cfg if isinstance(cfg, str) else json.dumps(cfg))


def _with_entry(data: bytes, name: str, **fields) -> bytes:
    header, body = _split(data)
    header[name].update(fields)
    return _join(header, body)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _structural_corruptions(good: bytes) -> list[tuple[str, bytes]]:
    """Files that break the safetensors format itself."""
    header, body = _split(good)
    n = int.from_bytes(good[:8], "little")
    names = [k for k in header if k != "__metadata__"]
    first = min(names, key=lambda k: header[k]["data_offsets"][0])
    last = max(names, key=lambda k: header[k]["data_offsets"][1])
    out: list[tuple[str, bytes]] = []
    # truncation at many points, and bytes appended
    for cut in sorted({0, 1, 7, 8, 9, n + 7, n + 8, n + 9, len(good) - 1, len(good) - 4}):
        out.append((f"truncated at {cut}", good[:cut]))
    for cut in range(8, len(good), max(1, len(good) // 40)):
        out.append((f"truncated at {cut}", good[:cut]))
    out.append(("one byte appended", good + b"\0"))
    out.append(("8 bytes appended", good + b"\0" * 8))
    # the length field off by k (into the padding, into the JSON, into the data)
    for k in (1, 2, 3, 7, 8, 16):
        out.append((f"header length n+{k}", (n + k).to_bytes(8, "little") + good[8:]))
        out.append((f"header length n-{k}", (n - k).to_bytes(8, "little") + good[8:]))
    for big in (2**63, 2**64 - 1, 100_000_001, 2**40, len(good)):
        out.append((f"header length {big}", big.to_bytes(8, "little") + good[8:]))
    # header shape and encoding
    raw = json.dumps(header).encode()
    out.append(("header starts with a space", _join(None, body, raw=b" " + raw)))
    out.append(("header is a list", _join(None, body, raw=b"[1, 2]")))
    out.append(("header is not UTF-8", _join(None, body, raw=raw[:-1] + b', "\xff\xfe": 1}')))
    out.append(
        (
            "header has a duplicate key",
            _join(
                None,
                body,
                raw=raw[:-1] + b', "' + first.encode() + b'": ' + json.dumps(header[first]).encode() + b"}",
            ),
        )
    )
    out.append(
        ("header nests 100000 deep", _join(None, body, raw=b'{"x": ' + _nested(100_000).encode() + b"}"))
    )
    out.append(("header nests 200 deep", _join(None, body, raw=b'{"x": ' + _nested(200).encode() + b"}")))
    out.append(("__metadata__ is a string", _join({**header, "__metadata__": "x"}, body)))
    out.append(("__metadata__ is a list", _join({**header, "__metadata__": [1]}, body)))
    out.append(("__metadata__ value not a string", _join({**header, "__metadata__": {"format": 3}}, body)))
    out.append(("NaN in a shape", _join(None, body, raw=raw.replace(b'"shape": [', b'"shape": [NaN, ', 1))))
    out.append(
        (
            "Infinity in offsets",
            _join(None, body, raw=raw.replace(b'"data_offsets": [', b'"data_offsets": [Infinity, ', 1)),
        )
    )
    out.append(
        (
            "1e999 in offsets",
            _join(None, body, raw=raw.replace(b'"data_offsets": [0', b'"data_offsets": [1e999', 1)),
        )
    )
    out.append(
        (
            "huge int in a shape",
            _join(None, body, raw=raw.replace(b'"shape": [', b'"shape": [' + b"9" * 5000 + b", ", 1)),
        )
    )
    # entries: offsets
    (s0, e0) = header[first]["data_offsets"]
    out.append(("offsets start past 0", _with_entry(good, first, data_offsets=[s0 + 4, e0 + 4])))
    out.append(("offsets reversed", _with_entry(good, first, data_offsets=[e0, s0])))
    out.append(("offsets negative", _with_entry(good, first, data_offsets=[-4, e0 - 4])))
    out.append(
        (
            "offsets out of range",
            _with_entry(good, last, data_offsets=[header[last]["data_offsets"][0] + 4, len(body) + 4]),
        )
    )
    out.append(("offsets floats", _with_entry(good, first, data_offsets=[float(s0), float(e0)])))
    out.append(("offsets strings", _with_entry(good, first, data_offsets=[str(s0), str(e0)])))
    out.append(("offsets bools", _with_entry(good, first, data_offsets=[False, True])))
    out.append(("offsets three ints", _with_entry(good, first, data_offsets=[s0, e0, e0])))
    out.append(("offsets missing", _with_entry(good, first, data_offsets=None)))
    same = [k for k in names if header[k]["shape"] == header[first]["shape"] and k != first]
    rm, rv = "1.running_mean", "1.running_var"
    out.append(
        ("two entries alias the same bytes", _with_entry(good, rv, data_offsets=header[rm]["data_offsets"]))
    )
    assert same or header[rm]["shape"] == header[rv]["shape"]
    # overlap: the last entry moved 4 bytes back (its size kept), the data section 4 bytes shorter
    ls, le = header[last]["data_offsets"]
    h2 = json.loads(json.dumps(header))
    h2[last]["data_offsets"] = [ls - 4, le - 4]
    out.append(("entries overlap", _join(h2, body[:-4])))
    # gap: the last entry moved 4 bytes on, 4 unused bytes before it
    h3 = json.loads(json.dumps(header))
    h3[last]["data_offsets"] = [ls + 4, le + 4]
    out.append(("gap between entries", _join(h3, body[:ls] + b"\0" * 4 + body[ls:])))
    out.append(("data section has trailing bytes", _join(header, body + b"\0" * 8)))
    # entries: dtypes, shapes, names
    for bad_dtype in ("F16", "f32", "XYZ", 5, None, "U8", ["F32"], {"F32": 1}):
        out.append((f"dtype {bad_dtype!r}", _with_entry(good, first, dtype=bad_dtype)))
    shape0 = header[first]["shape"]
    for bad_shape in (
        [-3, -4],
        [2**32, 2**32],
        [2**64, 0],
        [1.5, 8],
        ["3", "4"],
        [True, 12],
        None,
        "12",
        [[3, 4]],
    ):
        out.append((f"shape {bad_shape!r}", _with_entry(good, first, shape=bad_shape)))
    out.append(("shape with the wrong product", _with_entry(good, first, shape=[shape0[0] + 1, *shape0[1:]])))
    out.append(("entry with an extra key", _with_entry(good, first, extra=1)))
    out.append(("entry is a list", _join({**header, first: [1, 2]}, body)))
    # huge shapes whose byte count wraps to 0 in int64 arithmetic, with empty offsets
    h4 = json.loads(json.dumps(header))
    h4["wrap"] = {"dtype": "F32", "shape": [2**32, 2**32], "data_offsets": [len(body), len(body)]}
    out.append(("shape product wraps around", _join(h4, body)))
    for dims in ([2**62, 0, 2**62], [2**60, 0], [0, 2**40, 2**30]):  # empty, but no tensor has these dims
        h4["wrap"]["shape"] = dims
        out.append((f"empty tensor of shape {dims}", _join(h4, body)))
    return out


def _semantic_corruptions(good: bytes, good_lin: bytes) -> list[tuple[str, bytes]]:
    """Valid safetensors files whose ferrograd content is hostile or wrong (`good` holds
    `_model()`, `good_lin` a Linear(4, 3))."""
    cfg = json.loads(_split(good)[0]["__metadata__"]["config"])
    lin = {"class": "Linear", "config": {"in_features": 4, "out_features": 3, "bias": True, "init": None}}

    def lin_with(**kw):
        return _with_config(good_lin, {**lin, "config": {**lin["config"], **kw}})

    out: list[tuple[str, bytes]] = [
        ("format missing", _with_meta(good, format=None)),
        ("format wrong", _with_meta(good, format="ferrograd/0")),
        ("config not JSON", _with_config(good, "{not json")),
        ("config NaN", _with_config(good, json.dumps(cfg).replace('"bias": true', '"bias": NaN', 1))),
        (
            "config Infinity arg",
            _with_config(good, json.dumps(cfg).replace('"eps": 1e-05', '"eps": Infinity', 1)),
        ),
        ("config nests 100000 deep", _with_config(good, _nested(100_000))),
        (
            "config nests 500 deep",
            _with_config(good, '{"class": "Sequential", "config": {"layers": ' + _nested(500) + "}}"),
        ),
        ("config is a list", _with_config(good, [1, 2])),
        ("config without class", _with_config(good, {"config": {}})),
        ("config class not a string", _with_config(good, {"class": 3, "config": {}})),
        (
            "config names a user class",
            _with_config(good, {"class": "EvilWriter", "config": {"path": "/tmp/x"}}),
        ),
        ("config names an unknown class", _with_config(good, {"class": "Nope", "config": {}})),
        ("config names Module", _with_config(good, {"class": "Module", "config": {}})),
        ("config names a private class", _with_config(good, {"class": "_Activation", "config": {}})),
        ("config names a dunder", _with_config(good, {"class": "__class__", "config": {}})),
        ("custom Sequential without custom_objects", _with_config(good, {**cfg, "custom": True})),
        ("custom Linear without custom_objects", _with_config(good_lin, {**lin, "custom": True})),
        ("config custom flag not a bool", _with_config(good_lin, {**lin, "custom": "no"})),
        ("config with an extra key", _with_config(good_lin, {**lin, "module": "os"})),
        ("config argument _modules", _with_config(good, {"class": "Sequential", "config": {"_modules": 1}})),
        ("config argument _parameters", lin_with(_parameters={})),
        ("config argument __dict__", lin_with(__dict__={})),
        ("config argument __class__", lin_with(__class__="Linear")),
        (
            "config child named _modules",
            _with_config(good, {**cfg, "config": {**cfg["config"], "names": ["_modules", "a", "b", "c"]}}),
        ),
        (
            "config child named _parameters",
            _with_config(good, {**cfg, "config": {**cfg["config"], "names": ["0", "_parameters", "2", "3"]}}),
        ),
        (
            "config child named forward",
            _with_config(good, {**cfg, "config": {**cfg["config"], "names": ["forward", "1", "2", "3"]}}),
        ),
        (
            "config child name with a dot",
            _with_config(good, {**cfg, "config": {**cfg["config"], "names": ["a.b", "1", "2", "3"]}}),
        ),
        ("config argument unknown", lin_with(colour=1)),
        ("config argument of wrong type", lin_with(in_features="4")),
        ("config argument float width", lin_with(in_features=4.0)),
        ("config argument bool width", lin_with(out_features=True)),
        ("config argument an object", lin_with(init={"a": 1})),
        ("config argument unknown init", lin_with(init="os.system")),
        ("config implies a huge Linear", lin_with(in_features=20000, out_features=20000)),
        ("config implies Linear 2**62", lin_with(in_features=2**62)),
        ("config implies no bias", lin_with(bias=False)),
        (
            "config implies a huge BatchNorm",
            _with_config(good_lin, {"class": "BatchNorm1d", "config": {"num_features": 10**9}}),
        ),
        (
            "config implies other tensors",
            _with_config(good_lin, {"class": "Sequential", "config": {"layers": [lin]}}),
        ),
        (
            "config implies one tensor more",
            _with_config(good, {**cfg, "config": {"layers": [*cfg["config"]["layers"], lin]}}),
        ),
        (
            "config ref to nothing",
            _with_config(good, {"class": "Sequential", "config": {"layers": [{"ref": 0}]}}),
        ),
        (
            "config ref not an int",
            _with_config(
                good, {"class": "Sequential", "config": {"layers": [{**lin, "id": 0}, {"ref": "0"}]}}
            ),
        ),
        (
            "config ref to its ancestor",
            _with_config(good, {"class": "Sequential", "id": 0, "config": {"layers": [{"ref": 0}]}}),
        ),
        (
            "config duplicate ids",
            _with_config(
                good, {"class": "Sequential", "config": {"layers": [{**lin, "id": 0}, {**lin, "id": 0}]}}
            ),
        ),
        (
            "config ModuleDict keys and modules differ",
            _with_config(good, {"class": "ModuleDict", "config": {"modules": [lin], "keys": []}}),
        ),
        (
            "config mixes modules and values",
            _with_config(good, {"class": "Sequential", "config": {"layers": [lin, 3]}}),
        ),
        ("config duplicate keys", _with_config(good, '{"class": "Linear", "class": "Nope", "config": {}}')),
        ("weights only, no config", _with_meta(good, config=None)),
        ("optimizer tensors without optimizer state", _optimizer_tensor_added(good)),
        ("weight stored as I64", _retyped(good, "3.bias", np.int64)),
        ("weight stored as BOOL", _retyped(good, "3.bias", np.bool_)),
    ]
    return out


def _retyped(good: bytes, name: str, dtype) -> bytes:
    arrays, meta = _read_bytes(good)
    arrays[name] = arrays[name].astype(dtype)
    return _written(arrays, meta)


def _optimizer_tensor_added(good: bytes) -> bytes:
    arrays, meta = _read_bytes(good)
    arrays["optimizer.0.exp_avg"] = np.zeros((3, 4), np.float32)
    return _written(arrays, meta)


def _read_bytes(data: bytes):
    """(arrays, metadata) of a file's bytes."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "in.safetensors")
        with open(path, "wb") as f:
            f.write(data)
        return read_safetensors(path)


def _written(arrays, meta) -> bytes:
    """The bytes `write_safetensors` writes for `arrays` and `meta`."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "out.safetensors")
        write_safetensors(path, arrays, meta)
        with open(path, "rb") as f:
            return f.read()


class EvilWriter(nn.Module):
    """A user class with a side effect in its constructor: a file must never trigger it."""

    def __init__(self, path="evil.txt"):
        super().__init__()
        with open(path, "w") as f:
            f.write("a file chose this path")

    def get_config(self):
        return {"path": "evil.txt"}


def _assert_refused(cases, load, tmp_path):
    """Each case must raise CheckpointError: not another exception, not success."""
    wrong = []
    for name, data in cases:
        q = tmp_path / "case.safetensors"
        q.write_bytes(data)
        try:
            load(q)
        except CheckpointError:
            continue
        except Exception as e:  # any other class is the failure reported
            wrong.append(f"{name}: {type(e).__name__}: {str(e)[:120]}")
        else:
            wrong.append(f"{name}: loaded without error")
    assert not wrong, "\n".join(wrong)


# ------------------------------------------------------------------------------- hostile files


def test_hostile_files_are_refused_and_a_good_one_still_loads(tmp_path, monkeypatch):
    m = _model()
    p = tmp_path / "good.safetensors"
    fg.save(m, p)
    good = p.read_bytes()
    fg.save(nn.Linear(4, 3), tmp_path / "lin.safetensors")
    cases = _structural_corruptions(good) + _semantic_corruptions(
        good, (tmp_path / "lin.safetensors").read_bytes()
    )
    assert len(cases) > 150
    monkeypatch.chdir(tmp_path)  # EvilWriter's default path would land here
    start = time.perf_counter()
    _assert_refused(cases, fg.load, tmp_path)
    assert time.perf_counter() - start < 20
    assert not (tmp_path / "evil.txt").exists()
    # the legitimate file loads identically, before and after all that
    back = fg.load(p)
    assert list(back.state_dict()) == list(m.state_dict())
    for (k, a), b in zip(m.state_dict().items(), back.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
    m.eval()
    back.eval()
    x = fg.randn(3, 4)
    np.testing.assert_array_equal(m(x).numpy(), back(x).numpy())


def test_errors_name_what_is_wrong(tmp_path):
    p = tmp_path / "m.safetensors"
    fg.save(_model(), p)
    good = p.read_bytes()
    n = int.from_bytes(good[:8], "little")
    expect = [
        ((n - 1).to_bytes(8, "little") + good[8:], "not a valid safetensors file"),
        (
            _with_entry(
                good, "1.running_var", data_offsets=_split(good)[0]["1.running_mean"]["data_offsets"]
            ),
            "overlaps",
        ),
        (_join({**_split(good)[0], "__metadata__": "x"}, _split(good)[1]), "__metadata__"),
        (_with_entry(good, "0.weight", shape=[2**32, 2**32]), "needs"),
        (_with_config(good, {"class": "EvilWriter", "config": {}}), "EvilWriter"),
        (_with_config(good, {"class": "Sequential", "config": {"_modules": 1}}), "_modules"),
        (_with_config(good, _nested(5000)), "nest"),
        (
            _with_config(good, {"class": "Linear", "config": {"in_features": 20000, "out_features": 20000}}),
            "(20000, 20000)",
        ),
        (_retyped(good, "3.bias", np.int64), "dtype"),
    ]
    for data, words in expect:
        q = tmp_path / "q.safetensors"
        q.write_bytes(data)
        with pytest.raises(CheckpointError, match=re.escape(words)):
            fg.load(q)


def test_a_tiny_file_cannot_make_load_allocate_a_huge_model(tmp_path):
    p = tmp_path / "tiny.safetensors"
    fg.save(nn.Linear(2, 2), p)
    q = tmp_path / "huge.safetensors"
    q.write_bytes(
        _with_config(
            p.read_bytes(), {"class": "Linear", "config": {"in_features": 20000, "out_features": 20000}}
        )
    )
    assert q.stat().st_size < 1000
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match="does not hold the tensors its config implies"):
        fg.load(q)
    assert time.perf_counter() - start < 0.5  # building it would take seconds and 1.6 GB


def test_random_byte_damage_gives_checkpoint_error_or_a_valid_model(tmp_path):
    """Random bit flips in the length field and header, cuts and insertions: any failure is
    a CheckpointError, and (where the safetensors package is installed) every file it refuses
    read_safetensors refuses too."""
    p = tmp_path / "m.safetensors"
    fg.save(_model(), p, optimizer=_trained(_model()))
    good = p.read_bytes()
    n = int.from_bytes(good[:8], "little")
    r = random.Random(11)
    wrong = []
    for trial in range(300):
        b = bytearray(good)
        kind = trial % 3
        if kind == 0:  # flip bytes in the length field or the header (where structure lives)
            for _ in range(r.randint(1, 3)):
                b[r.randrange(0, 8 + n)] ^= 1 << r.randrange(8)
        elif kind == 1:
            b = b[: r.randrange(len(b))]
        else:
            i = r.randrange(len(b))
            b[i:i] = bytes(r.randrange(256) for _ in range(r.randint(1, 9)))
        q = tmp_path / "fuzz.safetensors"
        q.write_bytes(bytes(b))
        ours_refused = False
        try:
            read_safetensors(q)
        except CheckpointError:
            ours_refused = True
        except Exception as e:
            wrong.append(f"trial {trial}: read_safetensors raised {type(e).__name__}: {e}")
            continue
        try:
            fg.load(q)
        except CheckpointError:
            pass
        except Exception as e:
            wrong.append(f"trial {trial}: load raised {type(e).__name__}: {e}")
        if st_numpy is not None and not ours_refused:
            try:
                st_numpy.load(bytes(b))
            except Exception:  # it refuses: we must have too
                wrong.append(f"trial {trial}: safetensors refuses a file read_safetensors accepted")
    assert not wrong, "\n".join(wrong[:10])


@pytest.mark.skipif(st_numpy is None, reason="the safetensors package is not installed")
def test_the_safetensors_package_agrees(tmp_path):
    p = tmp_path / "m.safetensors"
    m = _model()
    fg.save(m, p, optimizer=_trained(m))
    good = p.read_bytes()
    # files we write, it reads to the same arrays (and metadata)
    ours, meta = read_safetensors(p)
    theirs = st_numpy.load(good)
    assert set(ours) == set(theirs)
    for k in ours:
        assert ours[k].dtype == theirs[k].dtype and ours[k].shape == theirs[k].shape
        np.testing.assert_array_equal(ours[k], theirs[k])
    from safetensors import safe_open

    with safe_open(str(p), "np") as f:
        assert f.metadata() == meta
    fg.save(
        {
            "a": fg.tensor(np.arange(6, dtype=np.int64).reshape(2, 3)),
            "b": fg.tensor([True, False]),
            "c": fg.zeros(0, 3),
            "s": fg.tensor(2.5),
        },
        tmp_path / "d.safetensors",
    )
    ours, _ = read_safetensors(tmp_path / "d.safetensors")
    theirs = st_numpy.load((tmp_path / "d.safetensors").read_bytes())
    for k in ours:
        assert ours[k].dtype == theirs[k].dtype and ours[k].shape == theirs[k].shape
        np.testing.assert_array_equal(ours[k], theirs[k])
    # every structural corruption it refuses, we refuse (and we refuse them all anyway)
    disagree = []
    for name, data in _structural_corruptions(good):
        try:
            st_numpy.load(data)
            theirs_ok = True
        except Exception:
            theirs_ok = False
        q = tmp_path / "q.safetensors"
        q.write_bytes(data)
        try:
            read_safetensors(q)
            ours_ok = True
        except CheckpointError:
            ours_ok = False
        if ours_ok and not theirs_ok:
            disagree.append(name)
    assert not disagree, disagree


def test_strict_json_round_trips_non_finite_values_in_saved_dicts(tmp_path):
    p = tmp_path / "d.safetensors"
    fg.save({"loss": float("nan"), "best": float("inf"), "worst": np.float64("-inf"), "ok": 1.5}, p)
    back = fg.load(p)
    assert math.isnan(back["loss"]) and back["best"] == math.inf and back["worst"] == -math.inf
    assert back["ok"] == 1.5
    meta = read_safetensors(p)[1]
    assert "NaN" not in meta["tree"] and "Infinity" not in meta["tree"]
    bn = nn.BatchNorm1d(3)
    bn.eps = float("nan")  # a config JSON cannot hold: refused at save, not written as NaN
    with pytest.raises(ValueError, match="cannot be stored as JSON"):
        fg.save(bn, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()
    # nor is anything else load would refuse written
    deep: list = []
    for _ in range(40):
        deep = [deep]
    with pytest.raises(ValueError, match="nests"):
        fg.save({"deep": deep}, tmp_path / "x.safetensors")
    with pytest.raises(ValueError, match="read back as optimizer state"):
        fg.save(nn.Sequential({"optimizer": nn.Linear(2, 2)}), tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_hostile_saved_dict_structures_are_refused(tmp_path):
    p = tmp_path / "d.safetensors"
    fg.save({"w": fg.ones(2), "n": 3}, p)
    good = p.read_bytes()
    trees = [
        '{"tensor": "t9"}',
        '{"tensor": 0}',
        '{"dict": 3}',
        '{"dict": [[1.5, {"value": 1}]]}',
        '{"dict": [[true, {"value": 1}]]}',
        '{"dict": [["a", {"value": 1}], ["a", {"value": 2}]]}',
        '{"dict": [["a"]]}',
        '{"list": {"value": 1}}',
        '{"value": [1, 2]}',
        '{"value": NaN}',
        '{"float": "1.5"}',
        '{"code": "import os"}',
        '{"value": 1, "list": []}',
        '{"value": 1}',  # its tensor t0 is never used
        _nested(10_000),
        '{"list": ' + '{"list": [' * 300 + "]}" * 300 + "}",
    ]
    cases = [(t[:30], _with_meta(good, tree=t)) for t in trees]
    fg.save({"empty": fg.zeros(0)}, p)
    for dims in ([2**61, 0], [0, 2**40, 2**40]):  # its tensor would be built as is
        cases.append((f"empty tensor {dims}", _with_entry(p.read_bytes(), "t0", shape=dims)))
    _assert_refused(cases, fg.load, tmp_path)


# ------------------------------------------------------------------------------- classes


def test_user_classes_are_built_only_when_passed_as_custom_objects(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    built = []

    class Linear(nn.Module):  # a user class with ferrograd's name: must not replace it
        def __init__(self, *a, **k):
            super().__init__()
            built.append("user Linear")

    assert REGISTRY["Linear"] is nn.Linear
    m = nn.Sequential(nn.Linear(3, 2))
    fg.save(m, tmp_path / "m.safetensors")
    back = fg.load(tmp_path / "m.safetensors")
    assert type(back[0]) is nn.Linear and not built

    class Scaled(nn.Module):
        def __init__(self, width, scale=2.0):
            super().__init__()
            self.fc, self.width, self.scale = nn.Linear(width, width), width, scale

        def forward(self, x):
            return self.fc(x) * self.scale

        def get_config(self):
            return {"width": self.width, "scale": self.scale}

    assert "Scaled" not in REGISTRY
    s = nn.Sequential(Scaled(3, 0.5), nn.ReLU())
    fg.save(s, tmp_path / "s.safetensors")
    with pytest.raises(CheckpointError, match=r"'Scaled' is a custom class.*custom_objects"):
        fg.load(tmp_path / "s.safetensors")
    back = fg.load(tmp_path / "s.safetensors", custom_objects={"Scaled": Scaled})
    assert type(back[0]) is Scaled and back[0].scale == 0.5
    x = fg.randn(2, 3)
    np.testing.assert_array_equal(back(x).numpy(), s(x).numpy())

    class Wide(nn.Linear):  # a subclass of a built-in is still the user's class
        pass

    fg.save(Wide(2, 5), tmp_path / "w.safetensors")
    with pytest.raises(CheckpointError, match="'Wide' is a custom class"):
        fg.load(tmp_path / "w.safetensors")
    assert type(fg.load(tmp_path / "w.safetensors", custom_objects={"Wide": Wide})) is Wide
    with pytest.raises(CheckpointError, match="custom class"):
        nn.from_config(nn.to_config(Wide(2, 3)))
    # the caller's mapping must hold classes; the file cannot name what it holds
    with pytest.raises(TypeError, match="custom_objects"):
        fg.load(tmp_path / "w.safetensors", custom_objects={"Wide": "os.system"})
    with pytest.raises(TypeError, match="custom_objects"):
        fg.load(tmp_path / "w.safetensors", custom_objects=[Wide])


def test_state_shapes_match_what_every_builtin_layer_creates():
    """`state_shapes` (what load checks files against before building) agrees with the
    constructors, for every class a config may name."""
    lin = nn.Linear(4, 3)
    examples = [
        nn.Linear(4, 3),
        nn.Linear(4, 3, bias=False, init="he_normal"),
        nn.BatchNorm1d(3),
        nn.BatchNorm1d(3, affine=False),
        nn.Dropout(0.2),
        nn.AlphaDropout(0.1),
        nn.ReLU(),
        nn.SELU(),
        nn.ELU(0.5),
        nn.Sigmoid(),
        nn.Tanh(),
        nn.Softmax(1),
        nn.Identity(),
        nn.LeakyReLU(0.2),
        nn.GELU("tanh"),
        nn.LogSoftmax(1),
        nn.SiLU(),
        nn.Mish(),
        nn.Hardswish(),
        nn.Hardsigmoid(),
        nn.ReLU6(),
        nn.Hardtanh(-2.0, 0.5),
        nn.LogSigmoid(),
        nn.Softsign(),
        nn.CELU(0.5),
        nn.Softplus(2.0, 10.0),
        nn.Flatten(),
        nn.Unflatten(1, (2, -1)),
        nn.Sequential(lin, nn.ReLU(), lin),
        nn.Sequential({"a": nn.Linear(2, 2), "b": nn.BatchNorm1d(2)}),
        nn.ModuleDict({"enc": nn.Linear(2, 3), "dec": nn.Linear(3, 2)}),
        nn.ModuleList([nn.Linear(2, 2), nn.BatchNorm1d(2)]),
        nn.SyncBatchNorm(3, eps=1e-3, momentum=0.2),
        nn.Conv2d(2, 4, (3, 2), stride=2, padding=1, groups=2, bias=False),
        nn.Conv2d(3, 3, 3, padding="same", padding_mode="reflect"),
        nn.Conv1d(2, 3, 5, dilation=2),
        nn.ConvTranspose2d(4, 6, (3, 2), stride=2, output_padding=1, groups=2, dilation=(2, 1)),
        nn.ConvTranspose2d(3, 2, 3, bias=False),
        nn.MaxPool2d(2),
        nn.MaxPool1d(3, stride=1, padding=1),
        nn.AvgPool2d(3, stride=2, ceil_mode=True, count_include_pad=False),
        nn.AvgPool1d(2),
        nn.AdaptiveAvgPool2d((2, 3)),
        nn.BatchNorm2d(5),
        nn.Dropout2d(0.3),
        nn.LayerNorm([3, 4], eps=1e-6),
        nn.LayerNorm(5, elementwise_affine=False),
        nn.Embedding(7, 3, padding_idx=0),
        nn.KLDivLoss(reduction="batchmean", log_target=True),
        nn.CosineEmbeddingLoss(margin=0.5),
        nn.MarginRankingLoss(margin=0.1),
        nn.Residual(nn.Linear(4, 3), 4, 3),
        nn.Residual(nn.Linear(3, 3)),
        nn.Residual(nn.Linear(4, 3), projection=nn.Linear(4, 3)),
        nn.MSELoss(),
        nn.CrossEntropyLoss(label_smoothing=0.1),
        nn.BCEWithLogitsLoss(),
        nn.BCELoss(),
        nn.HuberLoss(delta=2.0),
        nn.SmoothL1Loss(beta=0.5),
        nn.NLLLoss(),
        nn.L1Loss(),
        nn.Standardizer(4, columns=[0, 2]),
        nn.BatchNorm1d(3, momentum=None, track_running_stats=False),
        nn.Softmin(1),
        nn.GLU(1),
        nn.Threshold(0.1, 2.0),
        nn.Hardshrink(0.3),
        nn.Softshrink(0.2),
        nn.Tanhshrink(),
        nn.PReLU(4, 0.1),
        nn.CosineSimilarity(0, 1e-6),
        nn.PairwiseDistance(1.0, keepdim=True),
        nn.ZeroPad1d(2),
        nn.ZeroPad2d((1, 2, 0, 1)),
        nn.ConstantPad1d((1, 0), 2.5),
        nn.ConstantPad2d(1, -1.0),
        nn.ReflectionPad1d(1),
        nn.ReflectionPad2d((1, 1, 2, 0)),
        nn.ReplicationPad1d(3),
        nn.ReplicationPad2d(1),
        nn.CircularPad1d(1),
        nn.CircularPad2d((0, 1, 1, 0)),
        nn.Upsample(scale_factor=(2.0, 3.0), mode="bilinear", align_corners=False),
        nn.Upsample(size=4),
        nn.UpsamplingNearest2d(size=(3, 4)),
        nn.UpsamplingBilinear2d(scale_factor=2),
        nn.PixelShuffle(2),
        nn.PixelUnshuffle(3),
        nn.GroupNorm(2, 6),
        nn.GroupNorm(3, 3, eps=1e-3, affine=False),
        nn.InstanceNorm1d(4),
        nn.InstanceNorm2d(3, affine=True, track_running_stats=True),
        nn.AdaptiveAvgPool1d(5),
        nn.Dropout1d(0.3),
        nn.ParameterList([fg.ones(2, 3), fg.zeros(4)]),
        nn.ParameterDict({"scale": fg.ones(3), "shift": fg.zeros(1, 2)}),
        nn.RNN(3, 4, 2, nonlinearity="relu", bidirectional=True),
        nn.LSTM(3, 4, batch_first=True, bias=False),
        nn.GRU(2, 3, num_layers=2, dropout=0.1),
        nn.RNNCell(3, 2),
        nn.LSTMCell(3, 2, bias=False),
        nn.GRUCell(2, 5),
        nn.HingeEmbeddingLoss(0.5),
        nn.SoftMarginLoss(),
        nn.MultiLabelSoftMarginLoss(reduction="sum"),
        nn.MultiMarginLoss(2, 0.5),
        nn.TripletMarginLoss(0.3, 1.0, swap=True),
        nn.PoissonNLLLoss(False, True),
        nn.GaussianNLLLoss(full=True, eps=1e-4),
        nn.MultiheadAttention(8, 2),
        nn.MultiheadAttention(6, 3, bias=False, kdim=4, vdim=5, batch_first=True),
        nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, norm_first=True), 2, norm=nn.LayerNorm(8)),
        nn.TransformerEncoder(nn.TransformerEncoderLayer(4, 1, 8, activation="gelu", bias=False), 1),
        nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16, norm_first=True), 2, norm=nn.LayerNorm(8)),
        nn.Transformer(8, 2, 1, 2, 16, batch_first=True),
        nn.MaxPool2d(3, 2, 1, return_indices=True),
        nn.MaxUnpool2d(2),
        nn.MaxUnpool1d(3, stride=2, padding=1),
        nn.Conv3d(2, 4, (3, 2, 1), stride=(1, 2, 1), padding=1, groups=2),
        nn.BatchNorm3d(3),
        nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2),
        nn.MultiheadAttention(8, 2, add_bias_kv=True, add_zero_attn=True),
        nn.CTCLoss(blank=1, zero_infinity=True),
        nn.EmbeddingBag(7, 3, mode="max", include_last_offset=True, padding_idx=1),
    ]
    covered = set()
    for m in examples:
        cfg = json.loads(json.dumps(nn.to_config(m)))
        expected = {k: tuple(v.shape) for k, v in m.state_dict().items()}
        assert config_state(cfg) == expected, type(m).__name__
        assert {k: tuple(v.shape) for k, v in nn.from_config(cfg).state_dict().items()} == expected
        covered |= {type(x).__name__ for x in m.modules()}
    assert set(REGISTRY) <= covered, f"no example for {set(REGISTRY) - covered}"


# ------------------------------------------------------------------------------- tied modules


def test_a_module_used_twice_is_one_set_of_parameters():
    lin = nn.Linear(2, 2)
    bn = nn.BatchNorm1d(2)
    m = nn.Sequential(lin, bn, nn.ReLU(), lin, bn)
    assert [n for n, _ in m.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert len(list(m.parameters())) == 4 and m.num_parameters() == 10
    assert [n for n, _ in m.named_buffers()] == ["1.running_mean", "1.running_var", "1.num_batches_tracked"]
    assert len(list(m.buffers())) == 3
    assert [n for n, _ in m.named_modules()] == ["", "0", "1", "2"]
    assert len(list(m.modules())) == 4 and len(list(m.children())) == 3
    assert [n for n, _ in m.named_children()] == ["0", "1", "2"]
    assert len(list(m.named_parameters(remove_duplicate=False))) == 8
    assert [n for n, _ in m.named_modules(remove_duplicate=False)] == ["", "0", "1", "2", "3", "4"]
    assert [n for n, _ in m.named_parameters(prefix="net")][0] == "net.0.weight"
    assert [n for n, _ in m[0].named_parameters(recurse=False)] == ["weight", "bias"]
    # state_dict keeps every name, as PyTorch's
    assert list(m.state_dict()) == [
        "0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
        "1.num_batches_tracked", "3.weight", "3.bias", "4.weight", "4.bias",
        "4.running_mean", "4.running_var", "4.num_batches_tracked",
    ]  # fmt: skip
    opt = fg.optim.SGD(m.parameters(), lr=0.1)  # raised "appears in more than one group" before
    x = fg.randn(4, 2)
    (m(x) ** 2).mean().backward()
    opt.step()
    assert m[0].weight is m[3].weight
    m.to("cpu")
    assert m[0] is m[3] and m[0].weight is m[3].weight
    # a tensor shared by two distinct modules stays shared through .to()
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    b.weight = a.weight
    pair = nn.Sequential(a, b)
    assert len(list(pair.parameters())) == 3
    pair.to("cpu")
    assert pair[0].weight is pair[1].weight


def test_tied_modules_stay_tied_through_save_and_load(tmp_path):
    lin = nn.Linear(3, 3)
    inner = nn.Sequential(nn.Linear(3, 3), nn.Tanh())
    m = nn.Sequential(lin, nn.ReLU(), lin, nn.Residual(inner), inner, nn.Linear(3, 2))
    opt = fg.optim.Adam(m.parameters(), lr=0.01)
    x = fg.randn(4, 3)
    (m(x) ** 2).mean().backward()
    opt.step()
    p = tmp_path / "tied.safetensors"
    fg.save(m, p, optimizer=opt)
    cfg = json.loads(read_safetensors(p)[1]["config"])
    layers = cfg["config"]["layers"]
    assert layers[2] == {"ref": layers[0]["id"]}
    back = fg.load(p)
    assert back[0] is back[2] and back[0].weight is back[2].weight and back[3].body is back[4]
    assert len(list(back.parameters())) == len(list(m.parameters()))
    np.testing.assert_array_equal(back(x).numpy(), m(x).numpy())
    opt2 = fg.optim.Adam(back.parameters(), lr=0.01)
    fg.load(p, model=back, optimizer=opt2)
    for model, o in ((m, opt), (back, opt2)):
        o.zero_grad()
        (model(x) ** 2).mean().backward()
        o.step()
    for a, b in zip(m.parameters(), back.parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # a ModuleDict and a Residual sharing one module with their parent
    shared = nn.Linear(2, 2)
    d = nn.ModuleDict({"a": shared, "b": nn.Residual(shared), "c": shared})
    fg.save(d, tmp_path / "d.safetensors")
    dback = fg.load(tmp_path / "d.safetensors")
    assert dback["a"] is dback["c"] is dback["b"].body


# ------------------------------------------------------------------------------- optimizer state


def test_optimizer_hyperparameters_and_state_are_checked_at_load(tmp_path):
    m = _model()
    opt = _trained(m)
    p = tmp_path / "ck.safetensors"
    fg.save(m, p, optimizer=opt)
    good = p.read_bytes()
    o = json.loads(read_safetensors(p)[1]["optimizer"])

    def with_opt(**group_changes):
        g = {**o["param_groups"][0], **group_changes}
        return _with_meta(good, optimizer=json.dumps({**o, "param_groups": [g]}))

    raw = json.dumps(o)
    arrays, meta = read_safetensors(p)

    def with_array(name, value):
        a = dict(arrays)
        if value is None:
            a.pop(name)
        else:
            a[name] = value
        return _written(a, meta)

    cases = [
        ("lr NaN", _with_meta(good, optimizer=raw.replace('"lr": 0.01', '"lr": NaN'))),
        ("lr Infinity", _with_meta(good, optimizer=raw.replace('"lr": 0.01', '"lr": Infinity'))),
        ("lr 1e999", _with_meta(good, optimizer=raw.replace('"lr": 0.01', '"lr": 1e999'))),
        ("lr negative", with_opt(lr=-0.1)),
        ("lr zero", with_opt(lr=0)),
        ("lr a string", with_opt(lr="0.1")),
        ("lr a bool", with_opt(lr=True)),
        ("eps negative", with_opt(eps=-1e-8)),
        ("weight_decay negative", with_opt(weight_decay=-1)),
        ("betas out of range", with_opt(betas=[0.9, 1.0])),
        ("betas one value", with_opt(betas=[0.9])),
        ("betas strings", with_opt(betas=["a", "b"])),
        (
            "two groups for one",
            _with_meta(good, optimizer=json.dumps({**o, "param_groups": o["param_groups"] * 2})),
        ),
        ("groups not a list", _with_meta(good, optimizer=json.dumps({**o, "param_groups": {"lr": 1}}))),
        ("class of another optimizer", _with_meta(good, optimizer=json.dumps({**o, "class": "SGD"}))),
        ("class not a string", _with_meta(good, optimizer=json.dumps({**o, "class": 3}))),
        (
            "missing scalars",
            _with_meta(good, optimizer=json.dumps({"class": "Adam", "param_groups": o["param_groups"]})),
        ),
        ("step negative", _with_meta(good, optimizer=json.dumps({**o, "scalars": {"0": {"step": -1}}}))),
        ("step a float", _with_meta(good, optimizer=json.dumps({**o, "scalars": {"0": {"step": 1.5}}}))),
        ("step a list", _with_meta(good, optimizer=json.dumps({**o, "scalars": {"0": {"step": [1]}}}))),
        (
            "unknown state key",
            _with_meta(good, optimizer=json.dumps({**o, "scalars": {"0": {"step": 1, "x": 1}}})),
        ),
        (
            "state index out of range",
            _with_meta(good, optimizer=json.dumps({**o, "scalars": {"99": {"step": 1}}})),
        ),
        (
            "state index negative",
            _with_meta(good, optimizer=json.dumps({**o, "scalars": {"-1": {"step": 1}}})),
        ),
        ("state index padded", _with_meta(good, optimizer=json.dumps({**o, "scalars": {"00": {"step": 1}}}))),
        ("optimizer nests deep", _with_meta(good, optimizer=_nested(3000))),
        ("optimizer state missing", _with_meta(good, optimizer=None)),
        (
            "state of the wrong dtype",
            with_array("optimizer.0.exp_avg", arrays["optimizer.0.exp_avg"].astype(np.float64)),
        ),
        (
            "state of the wrong shape",
            with_array("optimizer.0.exp_avg", arrays["optimizer.0.exp_avg"].T.copy()),
        ),
        ("state of the wrong shape 2", with_array("optimizer.0.exp_avg", np.zeros(12, np.float32))),
        ("state int64", with_array("optimizer.0.exp_avg", arrays["optimizer.0.exp_avg"].astype(np.int64))),
        ("state tensor named badly", with_array("optimizer.x.exp_avg", np.zeros((3, 4), np.float32))),
        ("state tensor with no key", with_array("optimizer.0.", np.zeros((3, 4), np.float32))),
        ("state tensor for an unknown key", with_array("optimizer.0.evil", np.zeros((3, 4), np.float32))),
    ]
    fresh = _model()
    opt2 = fg.optim.Adam(fresh.parameters(), lr=0.5)
    before = [t.numpy().copy() for t in fresh.state_dict().values()]
    _assert_refused(cases, lambda q: fg.load(q, model=fresh, optimizer=opt2), tmp_path)
    # nothing changed: a refused file leaves model and optimizer as they were
    for a, b in zip(before, fresh.state_dict().values()):
        np.testing.assert_array_equal(a, b.numpy())
    assert opt2.lr == 0.5 and opt2.state == {}
    # the dtype message says dtype (it used to fail at step() with "shape (3, 4) does not match (3, 4)")
    q = tmp_path / "dtype.safetensors"
    q.write_bytes(cases[[c[0] for c in cases].index("state of the wrong dtype")][1])
    with pytest.raises(CheckpointError, match="dtype float64"):
        fg.load(q, model=fresh, optimizer=opt2)
    # the good file restores it, and training continues
    fg.load(p, model=fresh, optimizer=opt2)
    assert opt2.lr == 0.01 and opt2.state[0]["step"] == 1
    (fresh(fg.randn(6, 4)) ** 2).mean().backward()
    opt2.step()  # the state fits the kernels
    assert opt2.state[0]["step"] == 2


def test_optimizer_load_state_dict_checks_values_directly():
    m = _model()
    opt = _trained(m)
    sd = opt.state_dict()
    other = fg.optim.Adam(_model().parameters())
    bad = {**sd, "state": {0: {**sd["state"][0], "exp_avg": sd["state"][0]["exp_avg"].double()}}}
    with pytest.raises(ValueError, match="dtype"):
        other.load_state_dict(bad)
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        other.load_state_dict({**sd, "param_groups": [{**sd["param_groups"][0], "lr": float("nan")}]})
    with pytest.raises(ValueError, match="momentum must be"):
        fg.optim.SGD(m.parameters(), lr=0.1, momentum=float("nan"))
    sgd = fg.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    with pytest.raises(ValueError, match="Nesterov"):
        sgd.load_state_dict({**sgd.state_dict(), "param_groups": [{**sgd.param_groups[0], "momentum": 0.0}]})
    assert other.state == {}
    other.load_state_dict(sd)
    other.step()


# ------------------------------------------------------------------------------- kill -9 during save


_CHILD = """
import os, sys, time
import ferrograd as fg
from ferrograd import nn
path, start, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fg.manual_seed(0)
m = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 128))
if mode == "stall":  # stop inside the save, after the temp file is written
    def stall(fd):
        print("stalled", flush=True)
        time.sleep(60)
    os.fsync = stall
print("ready", flush=True)
k = start
while True:
    with fg.no_grad():
        for p in m.parameters():
            p.fill_(float(k))
    fg.save(m, path)
    k += 1
"""


def _temps(folder, target: str) -> list[str]:
    return sorted(
        f for f in os.listdir(folder) if f.startswith(f".{target}.") and f.endswith(".ferrograd-tmp")
    )


def _spawn(script, path, start, mode="loop"):
    proc = subprocess.Popen(
        [sys.executable, str(script), str(path), str(start), mode], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_kill_during_save_leaves_old_or_new_and_next_save_cleans_up(tmp_path):
    script = tmp_path / "saver.py"
    script.write_text(_CHILD)
    folder = tmp_path / "ck"
    folder.mkdir()
    path = folder / "m.safetensors"
    fg.manual_seed(0)
    m = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 128))
    with fg.no_grad():
        for p in m.parameters():
            p.fill_(0.0)
    fg.save(m, path)
    r = random.Random(5)
    last = 0.0
    deadline = time.monotonic() + 30
    for round_ in range(1, 21):
        if time.monotonic() > deadline:
            break
        base = round_ * 1_000_000
        proc = _spawn(script, path, base)
        time.sleep(r.uniform(0.0, 0.08))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        back = fg.load(path)  # never corrupt: complete, old or new
        values = {float(v) for p in back.parameters() for v in np.unique(p.numpy())}
        assert len(values) == 1, values
        (v,) = values
        assert v == last or v >= base, (v, last, base)
        last = v
    # a killed save that surely left its temp file: stopped inside fsync
    proc = _spawn(script, path, 99_000_000, "stall")
    assert proc.stdout.readline().strip() == "stalled"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    dead_pid = proc.pid
    stale = _temps(folder, path.name)  # all from killed writers
    assert any(f"-{dead_pid}-" in f for f in stale), stale
    # temps that must survive: another target's, a live writer's, another host's recent one
    host = fg.io._host()
    other_target = folder / f".other.safetensors.{host}-{dead_pid}-abc.ferrograd-tmp"
    prefix_target = folder / f".m.safetensors.x.{host}-{dead_pid}-abc.ferrograd-tmp"
    live = folder / f".m.safetensors.{host}-{os.getpid()}-live.ferrograd-tmp"
    remote_recent = folder / ".m.safetensors.elsewhere-1-abc.ferrograd-tmp"
    remote_old = folder / ".m.safetensors.elsewhere-2-abc.ferrograd-tmp"
    for f in (other_target, prefix_target, live, remote_recent, remote_old):
        f.write_bytes(b"partial")
    old = time.time() - 2 * fg.io.STALE_TEMP_SECONDS
    os.utime(remote_old, (old, old))
    fg.save(m, path)
    left = set(os.listdir(folder))
    assert not set(stale) & left, left
    for f in (other_target, prefix_target, live, remote_recent):
        assert f.name in left, f
    assert remote_old.name not in left
    assert float(fg.load(path)[0].weight.numpy()[0, 0]) == 0.0


@pytest.mark.parametrize("name", ["_modules", "_parameters", "__dict__", "forward", "training", "a.b", ""])
def test_child_names_from_a_file_cannot_reach_module_internals(tmp_path, name):
    """Sequential names and ModuleDict keys become attribute names: one that is taken
    (`_modules` used to replace the module's own registry, then AttributeError) is refused,
    even when the file's tensors carry the matching names."""
    lin = {"class": "Linear", "config": {"in_features": 2, "out_features": 2, "bias": True, "init": None}}
    for cfg in (
        {"class": "Sequential", "config": {"layers": [lin], "names": [name]}},
        {"class": "ModuleDict", "config": {"modules": [lin], "keys": [name]}},
    ):
        with pytest.raises(CheckpointError):
            nn.from_config(cfg)
        arrays = {f"{name}.weight": np.zeros((2, 2), np.float32), f"{name}.bias": np.zeros(2, np.float32)}
        write_safetensors(
            tmp_path / "n.safetensors", arrays, {"format": "ferrograd/1", "config": json.dumps(cfg)}
        )
        with pytest.raises(CheckpointError):
            fg.load(tmp_path / "n.safetensors")
    ok = {"class": "Sequential", "config": {"layers": [lin], "names": ["fc"]}}
    assert isinstance(nn.from_config(ok).fc, nn.Linear)


def test_batchnorm_counter_in_files(tmp_path):
    """The int64 batch counter round-trips; a file without it (older files) still loads,
    keeping the layer's count; a counter of another dtype or shape is refused."""
    p = tmp_path / "m.safetensors"
    m = _model()
    assert m[1].num_batches_tracked.item() == 1
    fg.save(m, p)
    good = p.read_bytes()
    assert fg.load(p)[1].num_batches_tracked.item() == 1
    arrays, meta = _read_bytes(good)
    del arrays["1.num_batches_tracked"]
    q = tmp_path / "old.safetensors"
    q.write_bytes(_written(arrays, meta))
    old = fg.load(q)
    assert old[1].num_batches_tracked.item() == 0
    np.testing.assert_array_equal(old[1].running_mean.numpy(), m[1].running_mean.numpy())
    for data, words in (
        (_retyped(good, "1.num_batches_tracked", np.float32), "I64"),
        (_with_entry(good, "1.num_batches_tracked", shape=[1]), "shape"),
    ):
        q.write_bytes(data)
        with pytest.raises(CheckpointError, match=words):
            fg.load(q)
