"""The dtypes by name (`fg.float32`, ...) and PyTorch's aliases (`fg.float`, `fg.double`,
`fg.long`)."""

from __future__ import annotations

from . import _core

float32 = _core.dtype.float32
float64 = _core.dtype.float64
int64 = _core.dtype.int64
bool_ = _core.dtype.bool
float = float32  # noqa: A001  (PyTorch's aliases)
double = float64
long = int64
uint8 = _core.dtype.uint8
int32 = _core.dtype.int32
float16 = _core.dtype.float16
bfloat16 = _core.dtype.bfloat16
half = float16  # PyTorch's aliases
int = int32  # noqa: A001
bool = bool_  # noqa: A001  (torch.bool; `bool_` is the name that does not shadow the builtin)
