"""Host memory controls: the cache that keeps large freed buffers (128 KiB and more) for
the next tensor of the same size, so a training step reuses mapped memory instead of
faulting in fresh pages (the host counterpart of ``fg.gpu``'s pool)."""

from __future__ import annotations

from . import _core

__all__ = ["memory_stats", "empty_cache", "cache_limit"]


def memory_stats() -> dict[str, int]:
    """The cache's counters: ``cache_hits`` (large buffers served from it), ``cache_misses``
    (large buffers the system had to provide) and ``cached_bytes`` (held in free buffers
    now). In a steady training loop the misses stop growing after the first steps.

    >>> fg.cpu.memory_stats()["cached_bytes"] >= 0
    True
    """
    hits, misses, cached = _core.host_cache_stats()
    return {"cache_hits": hits, "cache_misses": misses, "cached_bytes": cached}


def empty_cache() -> None:
    """Gives the cache's free buffers back to the system (live tensors keep theirs), as
    ``torch.cuda.empty_cache`` does for the GPU."""
    _core.host_empty_cache()


def cache_limit(limit: int | None = None) -> int:
    """The most bytes of free buffers the cache keeps (default 2 GiB; the oldest go back to
    the system first). Given `limit`, sets it and returns the previous one; 0 turns the
    cache off."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"cache_limit: expected a byte count >= 0, got {limit!r}")
    return _core.host_cache_limit(limit)
