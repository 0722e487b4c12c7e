"""Captured GPU steps: ``fg.gpu.Graph`` and ``fg.gpu.graph``, as ``torch.cuda.CUDAGraph`` and
``torch.cuda.graph``.

A capture records the GPU work of a block of Python (a training step: forward, loss,
backward, optimizer) without running it; ``Graph.replay()`` then queues the recorded
kernels again with no Python, autograd or kernel selection in between, so a step's host
time becomes the time to encode its dispatches. As with CUDA graphs:

- inputs are *static*: capture with tensors you then refill in place before each replay
  (``static_x.copy_(batch)``); the graph's outputs (the loss, ``p.grad``) are the tensors
  the capture produced, overwritten by each replay;
- run a warm-up step first (optimizer state is created on the first step, and creating it
  inside a capture is refused);
- hyperparameters (the learning rate) are those at capture time: capture again after
  changing them;
- nothing may read GPU values back inside the capture (``item()``, printing), and host
  computations on data are not replayed (reading integer indices is refused; the class
  targets of ``cross_entropy`` are the exception: each replay reads them again).

What moves from replay to replay is handled: dropout draws from the global generator where
it stands at each replay and moves it on, each replay counts an optimizer step (Adam's bias
corrections follow the count), and the labels of ``cross_entropy`` are read again, so a
replay gives the bits of the eager step it stands for, and eager steps may come between
replays.

>>> g = fg.gpu.Graph()
>>> with fg.gpu.graph(g):                    # doctest: +SKIP
...     loss = train_step(static_x, static_y)
>>> for x, y in batches:                     # doctest: +SKIP
...     static_x.copy_(x); static_y.copy_(y)
...     g.replay()
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from . import _core

# the graph whose capture is recording (one at a time), for the layers that must know
capturing: Graph | None = None


class Graph:
    """A captured sequence of GPU work, replayed by :meth:`replay` (``torch.cuda.CUDAGraph``)."""

    def __init__(self) -> None:
        self._graph: Any = None
        # (optimizer state dict, the step its captured update performs)
        self._counted: list[tuple[dict, int]] = []
        # host counters the captured step advances (BatchNorm's num_batches_tracked)
        self._counters: list[Any] = []

    def capture_begin(self) -> None:
        """Starts recording GPU work into this graph (prefer ``with fg.gpu.graph(g):``)."""
        global capturing
        if capturing is not None:
            raise RuntimeError("Graph.capture_begin: another capture is recording")
        _core.gpu_capture_begin()
        self._graph = None
        self._counted = []
        self._counters = []
        capturing = self

    def capture_end(self) -> None:
        """Ends the capture; raises (and keeps nothing) if the captured work cannot be replayed."""
        global capturing
        capturing = None
        self._uncount()  # nothing ran: each replay counts its step
        self._graph = _core.gpu_capture_end()

    def _abort(self) -> None:
        global capturing
        capturing = None
        self._uncount()
        self._counted = []
        self._counters = []
        _core.gpu_capture_abort()

    def _uncount(self) -> None:
        for st, step in self._counted:
            st["step"] = step - 1
        for t in self._counters:
            t.sub_(1)

    def replay(self) -> None:
        """Submits the captured work again (queued after anything before it; like any GPU
        work it runs while Python goes on: read results as usual, e.g. ``loss.item()``)."""
        if self._graph is None:
            raise RuntimeError("Graph.replay: nothing has been captured (use `with fg.gpu.graph(g):`)")
        # the step this replay performs, past the captured one: the same for every state
        # the capture counted, or eager steps updated some parameters and not others
        advances = {st["step"] + 1 - step for st, step in self._counted}
        if len(advances) > 1 or min(advances, default=0) < 0:
            raise RuntimeError(
                "Graph.replay: the optimizer's step counts moved unevenly (or back) since the "
                "capture, so the captured update no longer fits; capture again"
            )
        self._graph.replay(advances.pop() if advances else 0)
        for st, _ in self._counted:
            st["step"] += 1
        for t in self._counters:
            t.add_(1)

    def reset(self) -> None:
        """Drops the captured work (its buffers go back to the pool once no tensor holds them)."""
        self._graph = None
        self._counted = []
        self._counters = []

    @property
    def dispatches(self) -> int:
        """The number of kernel dispatches one replay submits (0 before a capture)."""
        return 0 if self._graph is None else self._graph.dispatches

    def _count_counter(self, counter: Any) -> None:
        """A host counter (an int64 tensor) the captured step advanced by one: each replay
        advances it instead."""
        self._counters.append(counter)

    def _count_steps(self, states: list[dict]) -> None:
        """An optimizer's step inside the capture counted these states' steps: each replay
        counts them instead."""
        self._counted += [(st, st["step"]) for st in states]

    def __repr__(self) -> str:
        state = "empty" if self._graph is None else f"{self.dispatches} dispatches"
        return f"Graph({state})"


class graph:
    """Context manager capturing the GPU work of its block into ``cuda_graph``
    (``torch.cuda.graph``). Queued work is submitted first; on an exception the capture is
    discarded. ``pool``, ``stream`` and ``capture_error_mode`` are accepted for PyTorch
    scripts and must keep their defaults (one device queue, one private pool per graph)."""

    def __init__(
        self,
        cuda_graph: Graph,
        pool: Any = None,
        stream: Any = None,
        capture_error_mode: str = "global",
    ) -> None:
        if not isinstance(cuda_graph, Graph):
            raise TypeError(f"graph: expected a fg.gpu.Graph, got {type(cuda_graph).__name__}")
        if pool is not None or stream is not None:
            raise ValueError("graph: pool and stream are not supported (one private pool a graph, one queue)")
        if capture_error_mode not in ("global", "thread_local", "relaxed"):
            raise ValueError(f"graph: unknown capture_error_mode {capture_error_mode!r}")
        self.cuda_graph = cuda_graph

    def __enter__(self) -> None:
        self.cuda_graph.capture_begin()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.cuda_graph._abort()
            return
        self.cuda_graph.capture_end()
