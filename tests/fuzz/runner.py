"""The parent side: a worker process fed batches of calls, restarted when it dies, and the
failures it reports, deduplicated, shrunk and printed as Python reproductions."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .ops import OPS
from .spec import LITERAL_NUMEL, desc_size, desc_tensors, layout, numel, tensor_code, value_code

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# One call may take this long (a first GPU kernel compiles on lavapipe) before it counts as hung.
CALL_TIMEOUT_S = float(os.environ.get("FERROGRAD_FUZZ_CALL_TIMEOUT", "60"))


# ---------------------------------------------------------------------------- rendering


def render(desc: dict) -> str:
    """Python source that makes the call of ``desc`` (``out`` holds its result)."""
    op = OPS[desc["op"]]
    tensors = desc_tensors(desc)
    names = {id(t): f"x{i}" for i, t in enumerate(tensors)}
    lines = ["import numpy as np", "import ferrograd as fg", "import ferrograd.nn.functional as F"]
    lines.append('nan, inf = float("nan"), float("inf")  # as NumPy prints them')
    arrays = [layout(t["T"])[1] for t in tensors] + [layout(v)[1] for v in _nd_specs(desc["args"])]
    if any(numel(shape) > LITERAL_NUMEL for shape in arrays):
        lines.append("import sys; sys.path.insert(0, 'tests'); from fuzz.spec import make_array")
    if op.target in ("pickle", "deepcopy"):
        lines.append("import pickle, copy")
    for t in tensors:
        lines.append(f"{names[id(t)]} = {tensor_code(t['T'])}")
    args = [value_code(a, names) for a in desc["args"]]
    kws = [f"{k}={value_code(v, names)}" for k, v in desc["kw"].items()]
    allargs = ", ".join(args[1:] + kws)
    form, target = op.form, op.target
    if form in ("method", "inplace"):
        code = f"{args[0]}.{target}({allargs})"
    elif form == "func":
        code = f"{target}({', '.join(args + kws)})"
    elif form == "binop":
        code = f"{args[0]} {target} {args[1]}"
    elif form == "unop":
        code = f"{target}{args[0]}"
    elif form == "getitem":
        code = f"{args[0]}[{_key_code(desc['args'][1], names)}]"
    elif form == "setitem":
        lines.append(f"{args[0]}[{_key_code(desc['args'][1], names)}] = {args[2]}")
        code = args[0]
    elif form == "attr":
        code = f"{args[0]}.{target}"
    elif target == "pickle":
        code = f"pickle.loads(pickle.dumps({args[0]}))"
    elif target == "deepcopy":
        code = f"copy.deepcopy({args[0]})"
    else:
        code = f"{target}({', '.join(args + kws)})"
    lines.append(f"out = {code}")
    if form != "builtin":
        lines.append("print(out)")
    return "\n".join(lines)


def _nd_specs(v: Any) -> list:
    """The specs of NumPy-array arguments (``{"nd": spec}``) inside an encoded value."""
    if isinstance(v, list):
        return [s for x in v for s in _nd_specs(x)]
    if isinstance(v, dict):
        ((tag, body),) = v.items()
        if tag == "nd":
            return [body]
        if tag in ("list", "tuple"):
            return _nd_specs(body)
    return []


def _item_code(item: Any, names: dict) -> str:
    """One index item as written between brackets (a slice as ``a:b:c``)."""
    if isinstance(item, dict) and "slice" in item:
        parts = ["" if v is None else value_code(v, names) for v in item["slice"]]
        return ":".join(parts[:2]) + (f":{parts[2]}" if parts[2] else "")
    return value_code(item, names)


def _key_code(key: Any, names: dict) -> str:
    """An index key as it is written between brackets (a tuple without parentheses)."""
    if isinstance(key, dict) and "tuple" in key:
        items = [_item_code(x, names) for x in key["tuple"]]
        return ", ".join(items) + ("," if len(items) == 1 else "") if items else "()"
    return _item_code(key, names)


# ---------------------------------------------------------------------------- failures


@dataclass
class Failure:
    """One distinct failure: its signature, the smallest description that shows it, and
    how often it was hit."""

    sig: str
    dev: str
    op: str
    kind: str
    sub: str
    detail: str
    desc: dict
    count: int = 1
    prefix: list = field(default_factory=list)
    shrunk: bool = False

    def report(self) -> str:
        """A readable entry: what, how often, and the reproduction."""
        head = f"[{self.dev}] {self.op}: {self.kind}" + (f" ({self.sub})" if self.sub else "")
        lines = [f"{head} -- {self.count} hit(s)", f"  {self.detail.strip()[:600]}"]
        if self.prefix:
            lines.append(f"  only after these {len(self.prefix)} earlier call(s) in the same process:")
            for d in self.prefix:
                lines += [
                    "    " + line for line in render(d).splitlines()[3:] if "make_array" not in line[:12]
                ]
        lines += ["    " + line for line in render(self.desc).splitlines()]
        return "\n".join(lines)


def _norm(text: str) -> str:
    """A message with numbers and addresses taken out, for signatures."""
    return re.sub(r"0x[0-9a-f]+|\d+", "N", text)[:120]


def crash_message(stderr_tail: str, rc: int | None) -> str:
    """The telling line of a dead worker's stderr (a panic location, an allocation
    failure, a fatal Python error), or the signal that killed it."""
    keys = ("panicked at", "memory allocation of", "Fatal Python error", "Segmentation fault", "Aborted")
    for line in stderr_tail.splitlines():
        if any(k in line for k in keys):
            return line.strip()[:300]
    if rc is not None and rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exited with status {rc}"


# ---------------------------------------------------------------------------- the worker


class Worker:
    """A ``python -m fuzz.worker`` child with a line reader thread."""

    def __init__(self):
        self.proc: subprocess.Popen | None = None
        self.lines: queue.Queue = queue.Queue()
        self.stderr = None
        self.starts = 0

    def start(self) -> None:
        """Starts a fresh child."""
        self.stop()
        env = dict(os.environ)
        env["PYTHONPATH"] = TESTS_DIR + os.pathsep + env.get("PYTHONPATH", "")
        env.setdefault("RUST_BACKTRACE", "0")
        env["RUST_BACKTRACE"] = "0"  # one line per panic is enough; the repro gives the rest
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fuzz.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            env=env,
            cwd=TESTS_DIR,
            text=True,
            bufsize=1,
        )
        self.lines = queue.Queue()
        threading.Thread(target=self._read, args=(self.proc, self.lines), daemon=True).start()
        self.starts += 1

    @staticmethod
    def _read(proc: subprocess.Popen, q: queue.Queue) -> None:
        for line in proc.stdout:
            q.put(line)
        q.put(None)

    def stop(self) -> None:
        """Ends the child (by its own handle) if it runs."""
        if self.proc is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def stderr_tail(self, n: int = 4000) -> str:
        """The end of the child's stderr."""
        if self.stderr is None:
            return ""
        self.stderr.flush()
        self.stderr.seek(0, os.SEEK_END)
        size = self.stderr.tell()
        self.stderr.seek(max(0, size - n))
        return self.stderr.read().decode("utf-8", "replace")

    def run(self, descs: list[dict]) -> tuple[list[list], int | None, str]:
        """Sends ``descs``; returns (the problems of each answered call, the index of the
        call that killed or hung the child or None, what happened to it)."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        try:
            for i, d in enumerate(descs):
                self.proc.stdin.write(json.dumps({"i": i, "d": d}) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the child died; reading tells which call
        results: list[list] = []
        while len(results) < len(descs):
            try:
                line = self.lines.get(timeout=CALL_TIMEOUT_S)
            except queue.Empty:
                self.proc.kill()
                self.proc.wait()
                self.proc = None
                return results, len(results), f"hung for more than {CALL_TIMEOUT_S:.0f} s"
            if line is None:
                rc = self.proc.wait()
                what = crash_message(self.stderr_tail(), rc)
                self.proc = None
                return results, len(results), what
            results.append(json.loads(line)["problems"])
        return results, None, ""


# ---------------------------------------------------------------------------- the fuzzer


class Fuzzer:
    """Runs batches of call descriptions and collects distinct failures."""

    def __init__(self):
        self.worker = Worker()
        self.failures: dict[str, Failure] = {}
        self.calls = 0
        self.batches = 0
        self.started = time.monotonic()

    def close(self) -> None:
        """Stops the worker."""
        self.worker.stop()

    def _record(self, dev, desc, kind, sub, detail, prefix=None) -> None:
        sig = signature(dev, desc, kind, sub)
        f = self.failures.get(sig)
        if f is None:
            self.failures[sig] = Failure(sig, dev, desc["op"], kind, sub, detail, desc, prefix=prefix or [])
            return
        f.count += 1
        if not prefix and (f.prefix or desc_size(desc) < desc_size(f.desc)):
            f.desc, f.detail, f.prefix = desc, detail, []

    def run_batch(self, descs: list[dict]) -> None:
        """Runs descriptions, records their problems, and on a crash or hang records the
        call that caused it (checked alone in a fresh process) and goes on after it."""
        self.batches += 1
        todo = list(descs)
        done_before: list[dict] = []
        while todo:
            results, dead, what = self.worker.run(todo)
            self.calls += len(results)
            for d, probs in zip(todo, results):
                for p in probs:
                    self._record(p["dev"], d, p["kind"], p["sub"], p["detail"])
            if dead is None:
                return
            culprit = todo[dead]
            self.calls += 1
            kind = "hang" if what.startswith("hung") else "crash"
            sub = _norm(what)
            sig = f"{'gpu' if _gpu(culprit) else 'cpu'}|{culprit['op']}|{kind}|{sub}"
            known = sig in self.failures and not self.failures[sig].prefix
            if known:
                self._record(sig.split("|")[0], culprit, kind, sub, what)
            else:
                alone = self.probe_dead(culprit)
                if alone is not None:
                    kind = "hang" if alone.startswith("hung") else "crash"
                    self._record(sig.split("|")[0], culprit, kind, _norm(alone), alone)
                else:
                    prefix = done_before + todo[:dead]
                    self._record(sig.split("|")[0], culprit, kind, sub, what, prefix=prefix[-20:])
            done_before += todo[: dead + 1]
            todo = todo[dead + 1 :]

    def probe_dead(self, desc: dict) -> str | None:
        """Runs one description in a fresh worker: what killed it, or None if it survives."""
        self.worker.start()
        results, dead, what = self.worker.run([desc])
        if dead is None:
            return None
        return what

    def check_one(self, desc: dict) -> dict[str, str]:
        """The signatures one description fails with, each with its detail."""
        results, dead, what = self.worker.run([desc])
        if dead is not None:
            kind = "hang" if what.startswith("hung") else "crash"
            return {f"{'gpu' if _gpu(desc) else 'cpu'}|{desc['op']}|{kind}|{_norm(what)}": what}
        return {signature(p["dev"], desc, p["kind"], p["sub"]): p["detail"] for p in results[0]}

    def shrink_all(self, budget_s: float) -> None:
        """Greedily simplifies each failure's description while it keeps its signature."""
        deadline = time.monotonic() + budget_s
        for f in sorted(self.failures.values(), key=lambda f: f.kind in ("crash", "hang")):
            if time.monotonic() > deadline or f.prefix or f.kind == "hang":
                continue
            tries = 0
            limit = 10 if f.kind == "crash" else 40
            improved = True
            while improved and tries < limit and time.monotonic() < deadline:
                improved = False
                for cand in simplifications(f.desc):
                    if tries >= limit or time.monotonic() > deadline:
                        break
                    tries += 1
                    found = self.check_one(cand)
                    if f.sig in found:
                        f.desc, f.detail, improved = cand, found[f.sig], True
                        break
            f.shrunk = True

    def summary(self) -> str:
        """The report of every distinct failure."""
        took = time.monotonic() - self.started
        head = (
            f"ferrograd fuzz: {self.calls} calls in {self.batches} batches, {took:.0f} s, "
            f"{self.worker.starts} worker start(s), {len(self.failures)} distinct failure(s)"
        )
        order = sorted(self.failures.values(), key=lambda f: (f.op, f.dev, f.kind, f.sub))
        return "\n\n".join([head] + [f.report() for f in order])

    def dump(self, path: str) -> None:
        """Writes each failure (signature, detail, description) as a JSON line, for
        ``python -m fuzz.runner recheck``."""
        with open(path, "w") as f:
            for fl in self.failures.values():
                row = {"sig": fl.sig, "detail": fl.detail, "desc": fl.desc, "prefix": fl.prefix}
                f.write(json.dumps(row) + "\n")


def recheck(path: str) -> int:
    """Runs the failures saved by ``Fuzzer.dump`` again; prints which still fail.
    Returns the number that do."""
    fz = Fuzzer()
    still = 0
    try:
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        for row in rows:
            for d in row["prefix"]:
                fz.worker.run([d])
            found = fz.check_one(row["desc"])
            fz.worker.start()  # a fresh process for the next one
            hit = row["sig"] in found
            still += hit
            print(("STILL FAILS  " if hit else "fixed        ") + row["sig"])
            if hit:
                print("    " + found[row["sig"]].strip()[:300])
    finally:
        fz.close()
    return still


def signature(dev: str, desc: dict, kind: str, sub: str) -> str:
    """The key that makes failures distinct: device, op, kind (the NaN/inf/value flavours of
    a mismatch count as one) and the kind's detail (exception class, input dtypes...)."""
    if kind.startswith("mismatch-"):
        kind = "mismatch"
    return f"{dev}|{desc['op']}|{kind}|{sub}"


def _gpu(desc: dict) -> bool:
    return any(t["T"]["dev"] == "gpu" for t in desc_tensors(desc)) or desc["kw"].get("device") == "gpu"


def simplifications(desc: dict):
    """Smaller variants of a description, simplest first: plainer tensors (contiguous,
    ordinary data, fewer and smaller dims), fewer keywords, shorter lists."""
    base = json.dumps(desc)
    n_t = len(desc_tensors(desc))
    for i in range(n_t):
        for change in ("view", "fill", "drop_first", "drop_last", "ones", "halve"):
            d = json.loads(base)
            t = desc_tensors(d)[i]["T"]
            shape = t["shape"]
            if change == "view" and t["view"] != "contig":
                t["view"] = "contig"
            elif change == "fill" and t["fill"] not in ("normal",) and not isinstance(t["fill"], list):
                t["fill"] = "normal"
            elif change == "drop_first" and shape:
                t["shape"] = shape[1:]
            elif change == "drop_last" and shape:
                t["shape"] = shape[:-1]
            elif change == "ones" and any(s > 1 for s in shape):
                t["shape"] = [min(s, 1) for s in shape]
            elif change == "halve" and any(s > 2 for s in shape):
                t["shape"] = [s // 2 if s > 2 else s for s in shape]
            else:
                continue
            yield d
    for k in list(desc["kw"]):
        d = json.loads(base)
        del d["kw"][k]
        yield d
    for i, a in enumerate(desc["args"]):
        if isinstance(a, dict) and "list" in a and len(a["list"]) > 1:
            for j in range(len(a["list"])):
                d = json.loads(base)
                del d["args"][i]["list"][j]
                yield d


if __name__ == "__main__":
    # python -m fuzz.runner recheck REPORT.json   (from tests/, or with tests/ on PYTHONPATH)
    if len(sys.argv) != 3 or sys.argv[1] != "recheck":
        sys.exit("usage: python -m fuzz.runner recheck FAILURES.json")
    sys.exit(1 if recheck(sys.argv[2]) else 0)
