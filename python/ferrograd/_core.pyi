"""Type stub for ``ferrograd._core``, the PyO3 extension module (rust/python/src/lib.rs).

Keep in step with the ``#[pymethods]`` / ``#[pyfunction]`` definitions there: every name the
module exports and every public attribute of ``Tensor`` is declared here, and nothing else.
"""

import builtins
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar, SupportsIndex, final, overload

import numpy as np
import numpy.typing as npt
from typing_extensions import TypeAlias

from . import return_types as _return_types

if sys.version_info >= (3, 10):
    from types import EllipsisType as _EllipsisType
else:
    _EllipsisType: TypeAlias = builtins.ellipsis

# As the module's own ``__all__``: PyO3 lists every name the module adds, private ones too,
# in the order rust/python/src/lib.rs adds them (stubtest compares the two).
__all__ = [
    "InternalError",
    "RemovableHandle",
    "queue_callback",
    "_custom_grad_fn",
    "_backward_many",
    "_grad",
    "unfold2d",
    "conv2d",
    "fold2d",
    "max_pool2d",
    "_PanicProbe",
    "_panic_probe",
    "Tensor",
    "dtype",
    "GradFn",
    "ShapeError",
    "DTypeError",
    "ArgumentError",
    "OutOfRangeError",
    "EmptyReductionError",
    "DeviceError",
    "from_numpy",
    "zeros",
    "full",
    "arange",
    "eye",
    "rand",
    "randn",
    "randint",
    "randperm",
    "manual_seed",
    "get_rng_state",
    "set_rng_state",
    "cat",
    "stack",
    "where",
    "unary",
    "unary_ops",
    "_shader_source",
    "_set_hooks",
    "_from_dlpack_shared",
    "linear",
    "one_hot",
    "set_grad_enabled",
    "is_grad_enabled",
    "set_num_threads",
    "get_num_threads",
    "host_cache_stats",
    "host_empty_cache",
    "host_cache_limit",
    "devices",
    "gpu_info",
    "gpu_buffers_created",
    "gpu_stats",
    "gpu_matmul_split_k",
    "_gpu_matmul_split_k_fixup",
    "gpu_profile",
    "gpu_matmul_kernel",
    "gpu_matmul_kernels",
    "gpu_matmul_tuning",
    "gpu_synchronize",
    "gpu_memory",
    "GpuGraph",
    "gpu_flush",
    "gpu_capture_begin",
    "gpu_capture_end",
    "gpu_capture_abort",
    "gpu_empty_cache",
    "gpu_pool_limit",
    "_gpu_record_invalid_command",
    "batch_norm",
    "dropout",
    "alpha_dropout",
    "cross_entropy",
    "correct_count",
    "binary_cross_entropy_with_logits",
    "sgd_step",
    "adam_step",
    "_unscale_grads",
    "_diagonal",
    "_unfold",
    "_amp_update_scale",
    "rmsprop_step",
    "set_autocast",
    "autocast_dtype",
    "adadelta_step",
]

# ---------------------------------------------------------------------------- helper aliases

# A right-hand operand of arithmetic and comparisons: a tensor or a Python number (bool, int,
# float, or anything with ``__float__``/``__index__``). Numbers become 0-d tensors: a float keeps
# a float tensor's dtype (int/bool tensors get float32), an int keeps the tensor's dtype (bool
# tensors get int64), a bool keeps the tensor's dtype.
_Operand: TypeAlias = Tensor | builtins.float

# A shape given as ``f(2, 3)`` or ``f((2, 3))`` / ``f([2, 3])``: only a tuple or a list is
# unpacked when it is the sole argument.
_ShapeSeq: TypeAlias = tuple[SupportsIndex, ...] | list[SupportsIndex]

# A reduction's ``dim``: None (all dims), one int, or a sequence of ints.
_Dims: TypeAlias = SupportsIndex | Sequence[SupportsIndex] | None

# One item of a basic index.
_IndexItem: TypeAlias = SupportsIndex | slice | _EllipsisType | None

# ``tensor[key]``: basic indexing (ints, slices, None, ...), integer-array indexing along the
# first dim with an int64 Tensor, a list of ints, or a NumPy integer array, or a boolean mask
# over the leading dims (a bool Tensor, list or NumPy array).
_Index: TypeAlias = (
    _IndexItem
    | tuple[_IndexItem, ...]
    | Tensor
    | list[Any]
    | npt.NDArray[np.integer[Any]]
    | npt.NDArray[np.bool_]
)

# ---------------------------------------------------------------------------- exceptions

class ShapeError(ValueError, RuntimeError):
    """Shapes that do not fit an operation."""

class DTypeError(TypeError, NotImplementedError):
    """A dtype an operation does not accept."""

class ArgumentError(ValueError, RuntimeError):
    """A value an operation does not accept."""

class OutOfRangeError(IndexError, RuntimeError):
    """An index or count outside the range of a dimension."""

class EmptyReductionError(ArgumentError, IndexError):
    """A max, min or arg-reduction over a zero-size dimension (no identity): a ValueError as
    NumPy's and an IndexError as PyTorch's."""

class DeviceError(RuntimeError):
    """A device that is missing or cannot be used."""

class InternalError(RuntimeError):
    """A panic inside ferrograd (a bug): PyO3's PanicException, rebased onto RuntimeError."""

@final
class _PanicProbe:
    """Test-only: every entry point family panics on purpose."""
    def __init__(self) -> None: ...
    def method(self) -> None: ...
    @property
    def getter(self) -> int: ...
    def released(self) -> None: ...
    def __add__(self, other: object, /) -> None: ...
    def __getitem__(self, key: object, /) -> None: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> _PanicProbe: ...
    def __next__(self) -> int: ...

def _panic_probe() -> None: ...

# ---------------------------------------------------------------------------- dtype

@final
class dtype:
    """Element types, exposed as ``ferrograd.float32`` and friends.

    A PyO3 enum: it has no constructor, members compare equal to their integer value
    (``int(dtype.float32) == 2``) and are hashable.
    """

    bool: ClassVar[dtype]
    int64: ClassVar[dtype]
    float32: ClassVar[dtype]
    float64: ClassVar[dtype]
    uint8: ClassVar[dtype]
    int32: ClassVar[dtype]
    float16: ClassVar[dtype]
    bfloat16: ClassVar[dtype]

    @property
    def is_floating_point(self) -> builtins.bool:
        """Whether this is a floating-point dtype (float16, bfloat16, float32, float64)."""

    @property
    def is_signed(self) -> builtins.bool:
        """Whether the dtype holds negative numbers (PyTorch's ``is_signed``)."""

    @property
    def itemsize(self) -> int:
        """Bytes per element."""

    def __int__(self) -> int: ...
    def __eq__(self, other: object, /) -> builtins.bool: ...
    def __ne__(self, other: object, /) -> builtins.bool: ...
    def __hash__(self) -> int: ...
    def __repr__(self) -> str: ...

# ``Tensor`` has a ``dtype`` property, which would shadow the class in its body.
_DType: TypeAlias = dtype

# ---------------------------------------------------------------------------- GradFn

@final
class GradFn:
    """A node of the autograd graph (``tensor.grad_fn``); not constructible from Python."""

    def name(self) -> str:
        """The op's name, e.g. ``MulBackward``."""

    def __repr__(self) -> str: ...

# ---------------------------------------------------------------------------- Tensor

@final
class Tensor:
    """An n-dimensional array with reverse-mode autograd.

    Not constructible directly (``Tensor()`` raises TypeError); use ``ferrograd.tensor`` or
    the creation functions.
    """

    # -------------------------------------------------------------- properties
    @property
    def shape(self) -> tuple[builtins.int, ...]:
        """Size of each dimension."""

    @property
    def dtype(self) -> _DType:
        """Element type."""

    @property
    def device(self) -> str:
        """Device name (``"cpu"`` or ``"gpu"``)."""

    @property
    def is_gpu(self) -> builtins.bool:
        """Whether the tensor lives in GPU memory."""

    @property
    def ndim(self) -> builtins.int:
        """Number of dimensions."""

    def ndimension(self) -> builtins.int:
        """The number of dimensions (PyTorch's older name for `ndim`)."""

    @property
    def is_cuda(self) -> builtins.bool:
        """PyTorch's name for "lives on the GPU"."""

    @property
    def requires_grad(self) -> builtins.bool:
        """Whether autograd tracks this tensor."""

    @requires_grad.setter
    def requires_grad(self, on: builtins.bool) -> None: ...
    @property
    def grad(self) -> Tensor | None:
        """The accumulated gradient, or None."""

    @grad.setter
    def grad(self, g: Tensor | None) -> None: ...
    @property
    def grad_fn(self) -> GradFn | None:
        """The op that produced this tensor, or None for leaves."""

    @property
    def is_leaf(self) -> builtins.bool:
        """Whether the tensor is a leaf of the graph."""

    @property
    def _version(self) -> builtins.int:
        """How many in-place writes the tensor's memory has seen (PyTorch's `_version`)."""

    @property
    def _base(self) -> Tensor | None:
        """The tensor this one is a view of, or None (PyTorch's `_base`)."""

    @property
    def T(self) -> Tensor:
        """The transpose of a matrix (all dims reversed for other ranks, as NumPy's ``.T``)."""

    # -------------------------------------------------------------- layout queries
    @overload
    def size(self, dim: None = None) -> tuple[builtins.int, ...]:
        """Size of all dims, or of one."""

    @overload
    def size(self, dim: SupportsIndex) -> builtins.int: ...
    def dim(self) -> builtins.int:
        """Number of dimensions."""

    def numel(self) -> builtins.int:
        """Number of elements."""

    @overload
    def stride(self, dim: None = None) -> tuple[builtins.int, ...]: ...
    @overload
    def stride(self, dim: builtins.int) -> builtins.int:
        """Strides in elements (all dims, or one)."""

    def storage_offset(self) -> builtins.int:
        """Offset of the first element in the shared storage."""

    def is_contiguous(self) -> builtins.bool:
        """Whether the elements are laid out in C order without gaps."""

    def shares_storage(self, other: Tensor) -> builtins.bool:
        """Whether both tensors view the same storage."""

    def requires_grad_(self, requires_grad: builtins.bool = True) -> Tensor:
        """Sets ``requires_grad`` in place and returns the tensor."""

    # -------------------------------------------------------------- conversion
    def numpy(self, *, force: builtins.bool = False) -> npt.NDArray[Any]:
        """The data as a NumPy array; a host tensor's shares its memory (PyTorch's rule)."""

    def __dlpack__(
        self,
        *,
        stream: Any = None,
        max_version: tuple[int, int] | None = None,
        dl_device: tuple[int, int] | None = None,
        copy: bool | None = None,
    ) -> Any:
        """The DLPack capsule of this host tensor: the consumer views its memory
        (np.from_dlpack, torch.from_dlpack)."""

    def __dlpack_device__(self) -> tuple[int, int]:
        """(device type, device id) in DLPack's terms: (1, 0) on the host."""

    def _view_dtype(self, dtype: _DType) -> Tensor | None:
        """This host tensor's bits as ``dtype`` over the same memory, or None (copy instead)."""

    def __array__(
        self, dtype: npt.DTypeLike | None = None, copy: builtins.bool | None = None
    ) -> npt.NDArray[Any]:
        """NumPy array protocol; always returns a fresh copy."""

    def item(self) -> builtins.float | builtins.int | builtins.bool:
        """The value of a one-element tensor as a Python number (float, int or bool by dtype)."""

    def tolist(self) -> Any:
        """The data as nested Python lists (a bare number for a 0-d tensor)."""

    def __float__(self) -> builtins.float: ...
    def __int__(self) -> builtins.int: ...
    def __index__(self) -> builtins.int: ...
    def __bool__(self) -> builtins.bool: ...
    def __len__(self) -> builtins.int: ...
    def __iter__(self) -> Iterator[Tensor]: ...
    def __hash__(self) -> builtins.int:
        """Identity hash (``==`` is elementwise)."""

    def __repr__(self) -> str: ...
    def __format__(self, spec: str) -> str:
        """``format(t, spec)``: a one-element tensor formats its value (``f"{loss:.4f}"``);
        others format their repr."""

    def to(
        self,
        *args: _DType | str | Tensor | None,
        device: str | None = None,
        dtype: _DType | None = None,
        non_blocking: builtins.bool = False,
        copy: builtins.bool = False,
    ) -> Tensor:
        """Converts to a dtype and/or moves to a device, in PyTorch's forms: ``to(device)``,
        ``to(dtype)``, ``to(device, dtype)``, ``to(other)``, ``to(device=, dtype=)``.

        A move copies the data (gradients flow back across it); DeviceError when the device is
        unusable. On "gpu", float32 and bool move; int64 tensors (labels, indices) stay on the
        cpu, where the GPU kernels read them, so ``y.to(device)`` works as in PyTorch; float64
        is refused (the GPU backend is float32: call ``.float()`` first). ``non_blocking`` is
        accepted and changes nothing; ``copy`` copies even when nothing changes.
        """

    @overload
    def type(self, dtype: _DType) -> Tensor:
        """The tensor converted to `dtype`."""
    @overload
    def type(self, dtype: None = None) -> str:
        """The type name, e.g. ``"ferrograd.FloatTensor"``."""

    def repeat(self, *sizes: SupportsIndex | Sequence[SupportsIndex]) -> Tensor:
        """The tensor tiled ``sizes[i]`` times along dim i (a copy; ``expand`` is the view)."""

    def sort(
        self,
        dim: builtins.int = -1,
        descending: builtins.bool = False,
        stable: builtins.bool = False,
        *,
        axis: builtins.int | None = None,
    ) -> _return_types.sort:
        """``(values, indices)`` sorted along ``dim``; stable; NaN above every number."""

    def argsort(
        self,
        dim: builtins.int = -1,
        descending: builtins.bool = False,
        stable: builtins.bool = False,
        *,
        axis: builtins.int | None = None,
    ) -> Tensor:
        """The indices (int64) that sort along ``dim``."""

    def topk(
        self,
        k: builtins.int,
        dim: builtins.int = -1,
        largest: builtins.bool = True,
        sorted: builtins.bool = True,
        *,
        axis: builtins.int | None = None,
    ) -> _return_types.topk:
        """``(values, indices)`` of the ``k`` largest (or smallest) entries along ``dim``."""

    def take_along_dim(self, indices: Tensor, dim: builtins.int) -> Tensor:
        """The entries at ``indices`` along ``dim`` (differentiable)."""

    def gather(self, dim: builtins.int, index: Tensor) -> Tensor:
        """PyTorch's ``gather``: the entries at ``index`` along ``dim`` (differentiable)."""

    def float(self) -> Tensor:
        """Converts to float32."""

    def double(self) -> Tensor:
        """Converts to float64."""

    def long(self) -> Tensor:
        """Converts to int64 (truncating toward zero)."""

    def bool(self) -> Tensor:
        """Converts to bool (nonzero is true)."""

    def int(self) -> Tensor:
        """Converts to int32 (floats truncated toward zero; wider integers wrap)."""

    def short(self) -> Tensor:
        """PyTorch's int16 conversion: a DTypeError (no int16 here; use ``long()``)."""

    def byte(self) -> Tensor:
        """Converts to uint8 (values wrap modulo 256, as PyTorch's)."""

    def char(self) -> Tensor:
        """PyTorch's int8 conversion: a DTypeError (no int8 here; use ``long()``)."""

    def half(self) -> Tensor:
        """Converts to float16 (stored in half precision; ops compute in float32 and round)."""

    def bfloat16(self) -> Tensor:
        """Converts to bfloat16 (stored so; ops compute in float32 and round)."""

    # -------------------------------------------------------------- autograd
    def backward(
        self,
        gradient: Tensor | None = None,
        retain_graph: builtins.bool | None = None,
        create_graph: builtins.bool = False,
        inputs: Tensor | Sequence[Tensor] | None = None,
    ) -> None:
        """Computes gradients of this tensor with respect to the leaves that require them
        (only into the ``.grad`` of ``inputs`` when given)."""

    # ---- ferrograd/_statistics.py, attached at import
    def nansum(self, dim: _Dims = None, keepdim: builtins.bool = False, *, dtype: Any = None) -> Tensor:
        """The sum over ``dim`` with NaN counted as zero."""
    def nanmean(self, dim: _Dims = None, keepdim: builtins.bool = False, *, dtype: Any = None) -> Tensor:
        """The mean of the entries that are not NaN."""
    def nanmedian(self, dim: builtins.int | None = None, keepdim: builtins.bool = False) -> Any:
        """The lower median ignoring NaN (``(values, indices)`` with ``dim``)."""
    def quantile(
        self,
        q: Any,
        dim: builtins.int | None = None,
        keepdim: builtins.bool = False,
        *,
        interpolation: str = "linear",
    ) -> Tensor:
        """The q-th quantiles over ``dim``."""
    def nanquantile(
        self,
        q: Any,
        dim: builtins.int | None = None,
        keepdim: builtins.bool = False,
        *,
        interpolation: str = "linear",
    ) -> Tensor:
        """``quantile`` ignoring NaN."""
    def cov(self, *, correction: builtins.int = 1, fweights: Any = None, aweights: Any = None) -> Tensor:
        """The covariance matrix of the rows' variables."""
    def corrcoef(self) -> Tensor:
        """The Pearson correlation coefficients of the rows."""
    def histc(self, bins: builtins.int = 100, min: builtins.float = 0.0, max: builtins.float = 0.0) -> Tensor:
        """Counts in equal-width bins over [min, max]."""
    def kron(self, other: Tensor) -> Tensor:
        """The Kronecker product."""
    def diag_embed(
        self, offset: builtins.int = 0, dim1: builtins.int = -2, dim2: builtins.int = -1
    ) -> Tensor:
        """Matrices with the last dim on their ``offset`` diagonal."""
    def diagflat(self, offset: builtins.int = 0) -> Tensor:
        """The flattened tensor on a diagonal of a square matrix."""
    def heaviside(self, values: Tensor) -> Tensor:
        """0 below zero, 1 above, ``values`` at zero."""
    def gcd(self, other: Any) -> Tensor:
        """The greatest common divisor of integers."""
    def lcm(self, other: Any) -> Tensor:
        """The least common multiple of integers."""

    # ---- ferrograd/_sampling.py, attached at import
    def bernoulli(self, p: builtins.float | None = None, *, generator: None = None) -> Tensor:
        """1 with probability ``self`` (or ``p``), else 0."""
    def multinomial(
        self, num_samples: builtins.int, replacement: builtins.bool = False, *, generator: None = None
    ) -> Tensor:
        """Indices drawn from each row of weights."""
    def poisson(self, generator: None = None) -> Tensor:
        """Poisson counts with rates ``self``."""
    def bernoulli_(self, p: _Operand = 0.5, *, generator: None = None) -> Tensor:
        """In place: 1 with probability ``p``, else 0."""
    def exponential_(self, lambd: builtins.float = 1.0, *, generator: None = None) -> Tensor:
        """In place: exponential samples with rate ``lambd``."""
    def random_(
        self, from_: builtins.int = 0, to: builtins.int | None = None, *, generator: None = None
    ) -> Tensor:
        """In place: integers uniform in [from_, to)."""

    # ---- ferrograd/linalg.py, attached at import
    def det(self) -> Tensor:
        """The determinant of each square matrix."""
    def logdet(self) -> Tensor:
        """log det of each square matrix (NaN where negative)."""
    def slogdet(self) -> Any:
        """``(sign, logabsdet)`` of each square matrix."""
    def inverse(self) -> Tensor:
        """The inverse of each square matrix."""
    def pinverse(self, rcond: builtins.float = 1e-15) -> Tensor:
        """The Moore-Penrose pseudo-inverse."""
    def matrix_power(self, n: builtins.int) -> Tensor:
        """A^n (the inverse's for n < 0)."""
    def cholesky(self, upper: builtins.bool = False) -> Tensor:
        """The Cholesky factor of symmetric positive-definite matrices."""
    def svd(self, some: builtins.bool = True, compute_uv: builtins.bool = True) -> Any:
        """``(U, S, V)`` with A = U diag(S) V^T."""
    def qr(self, some: builtins.bool = True) -> Any:
        """``(Q, R)``."""

    # ---- composed in Python (ferrograd/_surface.py), attached at import
    def multiply(self, other: _Operand) -> Tensor:
        """self * other."""
    def subtract(self, other: _Operand, *, alpha: builtins.float = 1) -> Tensor:
        """self - alpha * other."""
    def negative(self) -> Tensor:
        """-self."""
    def greater(self, other: _Operand) -> Tensor:
        """self > other (bool)."""
    def greater_equal(self, other: _Operand) -> Tensor:
        """self >= other (bool)."""
    def less(self, other: _Operand) -> Tensor:
        """self < other (bool)."""
    def less_equal(self, other: _Operand) -> Tensor:
        """self <= other (bool)."""
    def not_equal(self, other: _Operand) -> Tensor:
        """self != other (bool)."""
    def atan2(self, other: _Operand) -> Tensor:
        """The angle of the point (other, self), in (-pi, pi]."""
    def arctan2(self, other: _Operand) -> Tensor:
        """``atan2``."""
    def hypot(self, other: _Operand) -> Tensor:
        """sqrt(self^2 + other^2), without overflow in the squares."""
    def xlogy(self, other: _Operand) -> Tensor:
        """self * log(other), 0 where self is 0."""
    def logit(self, eps: builtins.float | None = None) -> Tensor:
        """log(p / (1 - p)), p clamped to [eps, 1 - eps] when given."""
    def nan_to_num(
        self,
        nan: builtins.float = 0.0,
        posinf: builtins.float | None = None,
        neginf: builtins.float | None = None,
    ) -> Tensor:
        """NaN and infinities replaced by finite values."""
    def sgn(self) -> Tensor:
        """The sign (-1, 0 or 1)."""
    def clamp_min(self, min: _Operand) -> Tensor:
        """max(self, min)."""
    def clamp_max(self, max: _Operand) -> Tensor:
        """min(self, max)."""
    def fmax(self, other: _Operand) -> Tensor:
        """The elementwise maximum, ignoring NaN."""
    def fmin(self, other: _Operand) -> Tensor:
        """The elementwise minimum, ignoring NaN."""
    def deg2rad(self) -> Tensor:
        """Degrees to radians."""
    def rad2deg(self) -> Tensor:
        """Radians to degrees."""
    def addcmul(self, tensor1: Tensor, tensor2: Tensor, *, value: builtins.float = 1) -> Tensor:
        """self + value * tensor1 * tensor2."""
    def addcdiv(self, tensor1: Tensor, tensor2: Tensor, *, value: builtins.float = 1) -> Tensor:
        """self + value * tensor1 / tensor2."""
    def addmm(
        self, mat1: Tensor, mat2: Tensor, *, beta: builtins.float = 1, alpha: builtins.float = 1
    ) -> Tensor:
        """beta * self + alpha * (mat1 @ mat2)."""
    def addmv(
        self, mat: Tensor, vec: Tensor, *, beta: builtins.float = 1, alpha: builtins.float = 1
    ) -> Tensor:
        """beta * self + alpha * (mat @ vec)."""
    def baddbmm(
        self, batch1: Tensor, batch2: Tensor, *, beta: builtins.float = 1, alpha: builtins.float = 1
    ) -> Tensor:
        """beta * self + alpha * (batch1 @ batch2) per batch."""
    def bitwise_and(self, other: _Operand) -> Tensor:
        """Elementwise and of integer or bool tensors (``&``)."""
    def bitwise_or(self, other: _Operand) -> Tensor:
        """Elementwise or of integer or bool tensors (``|``)."""
    def bitwise_xor(self, other: _Operand) -> Tensor:
        """Elementwise exclusive or of integer or bool tensors (``^``)."""
    def positive(self) -> Tensor:
        """self (a bool tensor is refused)."""
    def signbit(self) -> Tensor:
        """Whether the sign bit is set (-0.0 included)."""
    def float_power(self, exponent: _Operand) -> Tensor:
        """self ** exponent in float64."""
    def take(self, index: Tensor) -> Tensor:
        """The elements of the flattened tensor at `index`."""
    def is_complex(self) -> builtins.bool:
        """False: ferrograd has no complex dtypes."""
    def isreal(self) -> Tensor:
        """True everywhere (no complex dtypes)."""
    def is_nonzero(self) -> builtins.bool:
        """The truth of a one-element tensor."""
    def trace(self) -> Tensor:
        """The sum of the main diagonal (2-D)."""
    def diff(
        self,
        n: builtins.int = 1,
        dim: builtins.int = -1,
        prepend: Tensor | None = None,
        append: Tensor | None = None,
    ) -> Tensor:
        """The n-th forward difference along ``dim``."""
    def cross(self, other: Tensor, dim: builtins.int | None = None) -> Tensor:
        """The cross product of 3-vectors along ``dim``."""
    def inner(self, other: Tensor) -> Tensor:
        """The sum of products over the last dims."""
    def dist(self, other: Tensor, p: builtins.float = 2) -> Tensor:
        """The p-norm of self - other."""
    def aminmax(self, *, dim: builtins.int | None = None, keepdim: builtins.bool = False) -> Any:
        """``(min, max)``, over everything or along ``dim``."""
    def mode(self, dim: builtins.int = -1, keepdim: builtins.bool = False) -> Any:
        """``(values, indices)``: the most frequent value along ``dim`` and its last index."""
    def ravel(self) -> Tensor:
        """The elements as one dim."""
    def argwhere(self) -> Tensor:
        """The indices of the nonzero elements, one row each."""
    def select(self, dim: builtins.int, index: builtins.int) -> Tensor:
        """The slice at ``index`` of ``dim``, that dim removed (a view)."""
    def tensor_split(
        self, indices_or_sections: builtins.int | Sequence[builtins.int] | Tensor, dim: builtins.int = 0
    ) -> tuple[Tensor, ...]:
        """Views split along ``dim`` into n near-equal parts, or at the given indices."""
    def index_fill(self, dim: builtins.int, index: Tensor, value: _Operand) -> Tensor:
        """``value`` at positions ``index`` of ``dim``."""
    def rot90(self, k: builtins.int = 1, dims: Sequence[builtins.int] = (0, 1)) -> Tensor:
        """Rotated k quarter turns from dims[0] towards dims[1]."""
    def exp_(self) -> Tensor:
        """In place: exp."""
    def log_(self) -> Tensor:
        """In place: log."""
    def sqrt_(self) -> Tensor:
        """In place: sqrt."""
    def abs_(self) -> Tensor:
        """In place: abs."""
    def neg_(self) -> Tensor:
        """In place: negation."""
    def sigmoid_(self) -> Tensor:
        """In place: sigmoid."""
    def tanh_(self) -> Tensor:
        """In place: tanh."""
    def relu_(self) -> Tensor:
        """In place: relu."""
    def square_(self) -> Tensor:
        """In place: square."""
    def pow_(self, other: _Operand) -> Tensor:
        """In place: self ** other."""
    def clamp_min_(self, min: _Operand) -> Tensor:
        """In place: clamp_min."""
    def clamp_max_(self, max: _Operand) -> Tensor:
        """In place: clamp_max."""
    def addcmul_(self, tensor1: Tensor, tensor2: Tensor, *, value: builtins.float = 1) -> Tensor:
        """In place: addcmul."""
    def addcdiv_(self, tensor1: Tensor, tensor2: Tensor, *, value: builtins.float = 1) -> Tensor:
        """In place: addcdiv."""
    def lerp_(self, end: _Operand, weight: _Operand) -> Tensor:
        """In place: lerp."""
    def index_fill_(self, dim: builtins.int, index: Tensor, value: _Operand) -> Tensor:
        """In place: index_fill."""
    def index_put(
        self, indices: Sequence[Tensor], values: _Operand, accumulate: builtins.bool = False
    ) -> Tensor:
        """A copy with ``values`` at ``self[indices]`` (summed with ``accumulate``)."""
    def index_put_(
        self, indices: Sequence[Tensor], values: _Operand, accumulate: builtins.bool = False
    ) -> Tensor:
        """In place: index_put."""
    def index_add_(
        self, dim: builtins.int, index: Tensor, source: Tensor, alpha: builtins.float = 1.0
    ) -> Tensor:
        """In place: index_add."""
    def scatter_(
        self,
        dim: builtins.int,
        index: Tensor,
        src: Tensor | None = None,
        value: _Operand | None = None,
        *,
        reduce: str | None = None,
    ) -> Tensor:
        """In place: scatter."""
    def scatter_add_(self, dim: builtins.int, index: Tensor, src: Tensor) -> Tensor:
        """In place: scatter_add."""
    def nan_to_num_(
        self,
        nan: builtins.float = 0.0,
        posinf: builtins.float | None = None,
        neginf: builtins.float | None = None,
    ) -> Tensor:
        """In place: nan_to_num."""
    def fill_diagonal_(self, fill_value: _Operand, wrap: builtins.bool = False) -> Tensor:
        """In place: the main diagonal set to ``fill_value``."""
    def uniform_(self, a: builtins.float = 0.0, b: builtins.float = 1.0, *, generator: None = None) -> Tensor:
        """In place: values drawn uniformly from [a, b)."""
    def normal_(
        self, mean: builtins.float = 0.0, std: builtins.float = 1.0, *, generator: None = None
    ) -> Tensor:
        """In place: values drawn from N(mean, std^2)."""
    def new_tensor(
        self,
        data: Any,
        dtype: _DType | None = None,
        device: str | None = None,
        requires_grad: builtins.bool = False,
    ) -> Tensor:
        """A new tensor of ``data``, with this tensor's dtype and device unless given."""
    def new_empty(
        self,
        *size: Any,
        dtype: _DType | None = None,
        device: str | None = None,
        requires_grad: builtins.bool = False,
    ) -> Tensor:
        """A new tensor of ``size`` (zeros)."""
    def new_full(
        self,
        size: Sequence[builtins.int],
        fill_value: builtins.float,
        dtype: _DType | None = None,
        device: str | None = None,
        requires_grad: builtins.bool = False,
    ) -> Tensor:
        """A new tensor of ``size`` filled with ``fill_value``."""
    def nelement(self) -> builtins.int:
        """The number of elements (``numel``)."""
    def is_floating_point(self) -> builtins.bool:
        """Whether the dtype is a floating-point one."""
    @property
    def mT(self) -> Tensor:
        """The last two dims transposed (a view)."""
    @property
    def mH(self) -> Tensor:
        """The last two dims transposed (real tensors: as mT)."""
    @property
    def H(self) -> Tensor:
        """The transpose of a 2-D tensor."""

    # ---- composed in Python (ferrograd/_composite.py), attached at import
    def flip(self, *args: builtins.int | Sequence[builtins.int], dims: _Dims = None) -> Tensor:
        """The entries reversed along each of ``dims`` (a copy); a sequence, the dims one
        by one, or ``dims=``."""
    def fliplr(self) -> Tensor:
        """``flip(x, [1])``."""
    def flipud(self) -> Tensor:
        """``flip(x, [0])``."""
    def roll(self, shifts: builtins.int | Sequence[builtins.int], dims: _Dims = None) -> Tensor:
        """Entries shifted along ``dims`` with wraparound."""
    def tril(self, diagonal: builtins.int = 0) -> Tensor:
        """The lower triangle of the last two dims."""
    def triu(self, diagonal: builtins.int = 0) -> Tensor:
        """The upper triangle of the last two dims."""
    def diagonal(self, offset: builtins.int = 0, dim1: builtins.int = 0, dim2: builtins.int = 1) -> Tensor:
        """The diagonal of (dim1, dim2) as a new last dim."""
    def diag(self, diagonal: builtins.int = 0) -> Tensor:
        """A vector as a diagonal matrix, or a matrix's diagonal."""
    def movedim(self, source: _Dims, destination: _Dims) -> Tensor:
        """``source`` dims moved to ``destination`` (a view)."""
    def moveaxis(self, source: _Dims, destination: _Dims) -> Tensor:
        """``movedim`` (NumPy's name)."""
    def swapaxes(self, axis0: builtins.int, axis1: builtins.int) -> Tensor:
        """``transpose(axis0, axis1)``."""
    def swapdims(self, axis0: builtins.int, axis1: builtins.int) -> Tensor:
        """``transpose(axis0, axis1)``."""
    def broadcast_to(self, shape: Sequence[builtins.int]) -> Tensor:
        """Broadcast to ``shape`` (a view)."""
    def tile(self, dims: Sequence[builtins.int]) -> Tensor:
        """Repeated ``dims[i]`` times along each dim."""
    def unflatten(self, dim: builtins.int, sizes: Sequence[builtins.int]) -> Tensor:
        """Dim ``dim`` split into ``sizes``."""
    def repeat_interleave(
        self,
        repeats: builtins.int | Sequence[builtins.int] | Tensor | None = None,
        dim: builtins.int | None = None,
        *,
        output_size: builtins.int | None = None,
    ) -> Tensor:
        """Each entry repeated ``repeats`` times along ``dim``."""
    def prod(
        self, dim: builtins.int | None = None, keepdim: builtins.bool = False, *, dtype: Any = None
    ) -> Tensor:
        """The product over ``dim`` (``dtype`` casts first)."""
    def cumsum(self, dim: builtins.int, *, dtype: Any = None) -> Tensor:
        """Running sums along ``dim`` (integers as int64; ``dtype`` casts first)."""
    def cumprod(self, dim: builtins.int, *, dtype: Any = None) -> Tensor:
        """Running products along ``dim`` (integers as int64; ``dtype`` casts first)."""
    def logcumsumexp(self, dim: builtins.int) -> Tensor:
        """log(cumsum(exp(x))) along ``dim``, stably."""
    def std_mean(
        self, dim: _Dims = None, correction: builtins.float = 1, keepdim: builtins.bool = False
    ) -> tuple[Tensor, Tensor]:
        """(std, mean) over ``dim``."""
    def var_mean(
        self, dim: _Dims = None, correction: builtins.float = 1, keepdim: builtins.bool = False
    ) -> tuple[Tensor, Tensor]:
        """(var, mean) over ``dim``."""
    def count_nonzero(self, dim: _Dims = None) -> Tensor:
        """The number of nonzero entries over ``dim``."""
    def lerp(self, end: _Operand, weight: _Operand) -> Tensor:
        """x + weight (end - x)."""
    def logaddexp(self, other: _Operand) -> Tensor:
        """log(exp(x) + exp(other)), stably."""
    def remainder(self, other: _Operand) -> Tensor:
        """The remainder with the divisor's sign (Python's %)."""
    def fmod(self, other: _Operand) -> Tensor:
        """The remainder with the dividend's sign (C's fmod)."""
    def floor_divide(self, other: _Operand) -> Tensor:
        """floor(x / other) (Python's //)."""
    def isclose(
        self,
        other: _Operand,
        rtol: builtins.float = 1e-5,
        atol: builtins.float = 1e-8,
        equal_nan: builtins.bool = False,
    ) -> Tensor:
        """|x - other| <= atol + rtol |other|, elementwise."""
    def copysign(self, other: _Operand) -> Tensor:
        """|x| with the sign of ``other``."""
    def masked_select(self, mask: Tensor) -> Tensor:
        """The entries where ``mask`` is true, 1-D."""
    def masked_scatter(self, mask: Tensor, source: Tensor) -> Tensor:
        """The entries where ``mask`` is true replaced, in order, by source's first entries."""
    def divide(self, other: _Operand, *, rounding_mode: str | None = None) -> Tensor:
        """``div``'s PyTorch alias."""
    def true_divide(self, other: _Operand) -> Tensor:
        """Elementwise true division."""
    def nonzero(self, as_tuple: builtins.bool = False) -> Any:
        """The indices of the nonzero entries."""
    def scatter_add(self, dim: builtins.int, index: Tensor, src: Tensor) -> Tensor:
        """``self`` plus src's entries added at the positions ``index`` names along ``dim``."""
    def scatter(
        self,
        dim: builtins.int,
        index: Tensor,
        src: Any = None,
        value: Any = None,
        *,
        reduce: str | None = None,
    ) -> Tensor:
        """``self`` with the positions ``index`` names replaced by src's entries (or ``value``)."""
    def scatter_reduce(
        self, dim: builtins.int, index: Tensor, src: Tensor, reduce: str, include_self: builtins.bool = True
    ) -> Tensor:
        """``scatter_reduce`` with reduce "sum" or "mean"."""
    def index_add(
        self, dim: builtins.int, index: Tensor, source: Tensor, alpha: builtins.float = 1.0
    ) -> Tensor:
        """``self`` plus ``alpha`` times source's slices added into the slices ``index`` names."""
    def index_copy(self, dim: builtins.int, index: Tensor, source: Tensor) -> Tensor:
        """``self`` with the slices ``index`` names replaced by source's."""
    def median(self, dim: builtins.int | None = None, keepdim: builtins.bool = False) -> Any:
        """The lower median (with ``dim``: values and indices)."""
    def kthvalue(self, k: builtins.int, dim: builtins.int = -1, keepdim: builtins.bool = False) -> Any:
        """The k-th smallest entry along ``dim`` and its index."""
    def bincount(self, weights: Tensor | None = None, minlength: builtins.int = 0) -> Tensor:
        """Counts of each value of a 1-D int64 tensor."""
    def unique(
        self,
        sorted: builtins.bool = True,
        return_inverse: builtins.bool = False,
        return_counts: builtins.bool = False,
        dim: builtins.int | None = None,
    ) -> Any:
        """The distinct values, with inverse indices and counts when asked."""
    def unique_consecutive(
        self,
        return_inverse: builtins.bool = False,
        return_counts: builtins.bool = False,
        dim: builtins.int | None = None,
    ) -> Any:
        """Runs of equal consecutive entries collapsed to one."""
    def _index_add_rows(self, dim: builtins.int, index: Tensor, size: builtins.int) -> Tensor:
        """index_select's adjoint: slices added into a zero tensor of length ``size`` along ``dim``."""
    def cummax(self, dim: builtins.int) -> Any:
        """Running maxima along ``dim`` and their indices."""
    def cummin(self, dim: builtins.int) -> Any:
        """Running minima along ``dim`` and their indices."""
    def unfold(self, dimension: builtins.int, size: builtins.int, step: builtins.int) -> Tensor:
        """Every slice of length ``size`` along ``dimension``, ``step`` apart, as a new last dim."""
    def bitwise_left_shift(self, other: _Operand) -> Tensor:
        """x << other for integers."""
    def bitwise_right_shift(self, other: _Operand) -> Tensor:
        """x >> other for integers."""
    def bitwise_not(self) -> Tensor:
        """~x."""
    def cdist(self, x2: Tensor, p: builtins.float = 2.0) -> Tensor:
        """p-norm distances between rows."""
    def __lshift__(self, other: _Operand) -> Tensor: ...
    def __rshift__(self, other: _Operand) -> Tensor: ...
    def __mod__(self, other: _Operand) -> Tensor: ...
    def __rmod__(self, other: _Operand) -> Tensor: ...
    def __floordiv__(self, other: _Operand) -> Tensor: ...
    def __rfloordiv__(self, other: _Operand) -> Tensor: ...
    def register_post_accumulate_grad_hook(self, hook: Callable[[Tensor], object]) -> RemovableHandle:
        """Calls ``hook(tensor)`` once this leaf's gradient is final in each backward pass."""

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> RemovableHandle:
        """Calls ``hook(grad)`` on this tensor's gradient in each backward pass; a Tensor it
        returns replaces the gradient."""

    def retain_grad(self) -> None:
        """Keeps this non-leaf tensor's gradient in ``.grad`` in later backward passes."""

    @property
    def retains_grad(self) -> builtins.bool:
        """Whether backward passes fill this non-leaf tensor's ``.grad``."""

    def detach(self) -> Tensor:
        """The same data, cut from the graph."""

    @property
    def data(self) -> Tensor:
        """The same data cut from the graph (PyTorch's ``.data``; prefer ``detach()``)."""

    def cpu(self) -> Tensor:
        """This tensor on the host (itself when already there)."""

    def cuda(self, device: builtins.int | str | None = None) -> Tensor:
        """This tensor on the GPU; ``device`` must name the one GPU (None, 0, "cuda", "cuda:0", "gpu")."""

    def element_size(self) -> builtins.int:
        """Bytes per element."""

    @property
    def itemsize(self) -> builtins.int:
        """Bytes per element."""

    @property
    def nbytes(self) -> builtins.int:
        """Bytes of all the elements."""

    def new_zeros(self, *size: SupportsIndex | _ShapeSeq) -> Tensor:
        """Zeros of ``size`` with this tensor's dtype and device."""

    def new_ones(self, *size: SupportsIndex | _ShapeSeq) -> Tensor:
        """Ones of ``size`` with this tensor's dtype and device."""

    # -------------------------------------------------------------- views and copies
    @overload
    def reshape(self, shape: _ShapeSeq, /) -> Tensor:
        """A tensor with a new shape (a view when possible); one dim may be -1."""

    @overload
    def reshape(self, *shape: SupportsIndex) -> Tensor: ...
    @overload
    def view(self, dtype: _DType, /) -> Tensor:
        """The bits read as ``dtype`` (a copy here; the last dim rescales with the size)."""
    @overload
    def view(self, shape: _ShapeSeq, /) -> Tensor:
        """A view with a new shape; refuses when the strides do not allow one."""

    @overload
    def view(self, *shape: SupportsIndex) -> Tensor: ...
    def transpose(self, dim0: builtins.int, dim1: builtins.int) -> Tensor:
        """Swaps two dims (a view)."""

    @overload
    def permute(self, dims: _ShapeSeq, /) -> Tensor:
        """Reorders the dims (a view)."""

    @overload
    def permute(self, *dims: SupportsIndex) -> Tensor: ...
    @overload
    def expand(self, shape: _ShapeSeq, /) -> Tensor:
        """Broadcasts to a larger shape without copying; -1 keeps a dim."""

    @overload
    def expand(self, *shape: SupportsIndex) -> Tensor: ...
    def unsqueeze(self, dim: builtins.int) -> Tensor:
        """Inserts a size-1 dim."""

    def squeeze(
        self, dim: builtins.int | Sequence[builtins.int] | None = None, *, axis: builtins.int | None = None
    ) -> Tensor:
        """Removes size-1 dims (all, just ``dim``, or those of a tuple of dims that have size 1)."""

    def flatten(self, start_dim: builtins.int = 0, end_dim: builtins.int = -1) -> Tensor:
        """Flattens dims start_dim..=end_dim into one."""

    def narrow(self, dim: builtins.int, start: builtins.int, length: builtins.int) -> Tensor:
        """``length`` entries of ``dim`` from ``start`` (a view); start and length must be >= 0."""

    def contiguous(self) -> Tensor:
        """A C-contiguous tensor (itself when already contiguous)."""

    def clone(self) -> Tensor:
        """A copy with its own storage; gradients flow back to the source."""

    def __deepcopy__(self, memo: dict[builtins.int, Any]) -> Tensor:
        """``copy.deepcopy``: a leaf with its own copy of the data and grad, on the same
        device; tensors computed by the graph are refused (RuntimeError)."""

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickling: rebuilt by ``ferrograd.tensor`` with the dtype, requires_grad and device."""

    def t(self) -> Tensor:
        """The transpose of a matrix (a view); 0-D and 1-D tensors come back as they are."""

    def view_as(self, other: Tensor) -> Tensor:
        """``view(other.shape)``."""

    def reshape_as(self, other: Tensor) -> Tensor:
        """``reshape(other.shape)``."""

    def expand_as(self, other: Tensor) -> Tensor:
        """``expand(other.shape)``."""

    def type_as(self, other: Tensor) -> Tensor:
        """This tensor with ``other``'s dtype, on ``other``'s device (as PyTorch's)."""

    def split(
        self,
        split_size_or_sections: builtins.int | list[builtins.int],
        dim: builtins.int = 0,
        *,
        axis: builtins.int | None = None,
    ) -> tuple[Tensor, ...]:
        """Views of ``split_size`` entries along ``dim`` (the last may be shorter), or of the listed sizes."""

    def chunk(
        self, chunks: builtins.int, dim: builtins.int = 0, *, axis: builtins.int | None = None
    ) -> tuple[Tensor, ...]:
        """At most ``chunks`` equal views along ``dim`` (the last may be shorter)."""

    def unbind(self, dim: builtins.int = 0, *, axis: builtins.int | None = None) -> tuple[Tensor, ...]:
        """The slices along ``dim``, each without that dim."""

    def __getitem__(self, key: _Index, /) -> Tensor: ...
    def __setitem__(self, key: _Index, value: _Operand | Sequence[Any] | npt.NDArray[Any], /) -> None:
        """``x[key] = value``, as PyTorch: basic indices (ints, slices, None, ...) write into the
        view; a bool mask sets the entries where it is true; an int64 index tensor or list sets
        those rows. ``value`` is a number or a tensor (or what ``ferrograd.tensor`` takes)
        broadcast to the selected shape. In place, so refused on a tensor that requires grad
        while grad mode is on."""

    # -------------------------------------------------------------- arithmetic operators
    def __add__(self, other: _Operand, /) -> Tensor: ...
    def __radd__(self, other: _Operand, /) -> Tensor: ...
    def __iadd__(self, other: _Operand, /) -> Tensor: ...
    def __isub__(self, other: _Operand, /) -> Tensor: ...
    def __imul__(self, other: _Operand, /) -> Tensor: ...
    def __itruediv__(self, other: _Operand, /) -> Tensor: ...
    def __sub__(self, other: _Operand, /) -> Tensor: ...
    def __rsub__(self, other: _Operand, /) -> Tensor: ...
    def __mul__(self, other: _Operand, /) -> Tensor: ...
    def __rmul__(self, other: _Operand, /) -> Tensor: ...
    def __truediv__(self, other: _Operand, /) -> Tensor: ...
    def __rtruediv__(self, other: _Operand, /) -> Tensor: ...
    def __pow__(self, other: _Operand, mod: None = None, /) -> Tensor: ...
    def __rpow__(self, other: _Operand, mod: None = None, /) -> Tensor: ...
    def __matmul__(self, other: Tensor, /) -> Tensor: ...
    def __rmatmul__(self, other: Tensor, /) -> Tensor: ...
    def __neg__(self) -> Tensor: ...
    def __pos__(self) -> Tensor: ...
    def __abs__(self) -> Tensor: ...
    def __invert__(self) -> Tensor:
        """Logical not of a bool tensor, bitwise not of an int64 one (floats are refused)."""

    def __and__(self, other: _Operand, /) -> Tensor: ...
    def __rand__(self, other: _Operand, /) -> Tensor: ...
    def __or__(self, other: _Operand, /) -> Tensor: ...
    def __ror__(self, other: _Operand, /) -> Tensor: ...
    def __xor__(self, other: _Operand, /) -> Tensor: ...
    def __rxor__(self, other: _Operand, /) -> Tensor: ...

    # -------------------------------------------------------------- comparisons (elementwise, bool tensors)
    def __eq__(self, other: object, /) -> Tensor: ...  # type: ignore[override]
    def __ne__(self, other: object, /) -> Tensor: ...  # type: ignore[override]
    def __lt__(self, other: _Operand, /) -> Tensor: ...
    def __le__(self, other: _Operand, /) -> Tensor: ...
    def __gt__(self, other: _Operand, /) -> Tensor: ...
    def __ge__(self, other: _Operand, /) -> Tensor: ...

    # -------------------------------------------------------------- elementwise methods
    def add(self, other: _Operand, *, alpha: builtins.float = 1) -> Tensor:
        """Elementwise sum with ``alpha * other`` (a tensor or number)."""

    def sub(self, other: _Operand, *, alpha: builtins.float = 1) -> Tensor:
        """Elementwise difference with ``alpha * other``."""

    def mul(self, other: _Operand) -> Tensor:
        """Elementwise product."""

    def div(self, other: _Operand, *, rounding_mode: str | None = None) -> Tensor:
        """Elementwise division: true, or rounded ("trunc", "floor")."""

    def pow(self, other: _Operand) -> Tensor:
        """Elementwise power."""

    def maximum(self, other: _Operand) -> Tensor:
        """Elementwise maximum (NaN propagates)."""

    def minimum(self, other: _Operand) -> Tensor:
        """Elementwise minimum (NaN propagates)."""

    def matmul(self, other: Tensor) -> Tensor:
        """Matrix product (NumPy's matmul rules)."""

    def square(self) -> Tensor:
        """x * x, elementwise."""

    def reciprocal(self) -> Tensor:
        """1 / x, elementwise (float32 for integer tensors)."""

    def rsqrt(self) -> Tensor:
        """1 / sqrt(x), elementwise."""

    def sign(self) -> Tensor:
        """-1, 0 or 1 by each element's sign (0 for NaN, as PyTorch); not differentiable."""

    def isnan(self) -> Tensor:
        """Whether each element is NaN: a bool tensor."""

    def isinf(self) -> Tensor:
        """Whether each element is +-infinity: a bool tensor."""

    def isfinite(self) -> Tensor:
        """Whether each element is finite: a bool tensor."""

    def mm(self, other: Tensor) -> Tensor:
        """Matrix times matrix (both 2-D)."""

    def bmm(self, other: Tensor) -> Tensor:
        """Batched matrix product of (b, n, k) and (b, k, m)."""

    def mv(self, other: Tensor) -> Tensor:
        """Matrix times vector."""

    def dot(self, other: Tensor) -> Tensor:
        """Inner product of two 1-D tensors."""

    def outer(self, other: Tensor) -> Tensor:
        """Outer product of two 1-D tensors."""

    def eq(self, other: _Operand) -> Tensor:
        """``self == other`` elementwise: a bool tensor."""

    def ne(self, other: _Operand) -> Tensor:
        """``self != other`` elementwise: a bool tensor."""

    def lt(self, other: _Operand) -> Tensor:
        """``self < other`` elementwise: a bool tensor."""

    def le(self, other: _Operand) -> Tensor:
        """``self <= other`` elementwise: a bool tensor."""

    def gt(self, other: _Operand) -> Tensor:
        """``self > other`` elementwise: a bool tensor."""

    def ge(self, other: _Operand) -> Tensor:
        """``self >= other`` elementwise: a bool tensor."""

    def logical_and(self, other: _Operand) -> Tensor:
        """Logical and of truth values (nonzero is true): a bool tensor."""

    def logical_or(self, other: _Operand) -> Tensor:
        """Logical or of truth values: a bool tensor."""

    def logical_xor(self, other: _Operand) -> Tensor:
        """Logical xor of truth values: a bool tensor."""

    def logical_not(self) -> Tensor:
        """Logical not (zero is true): a bool tensor."""

    def masked_fill(self, mask: Tensor, value: _Operand) -> Tensor:
        """``value`` where the bool ``mask`` (broadcast to this shape) is true, this tensor elsewhere."""

    def masked_fill_(self, mask: Tensor, value: _Operand) -> Tensor:
        """``masked_fill`` in place; returns the tensor."""

    def exp(self) -> Tensor:
        """e ** x, elementwise."""

    def log(self) -> Tensor:
        """Natural logarithm, elementwise."""

    def sqrt(self) -> Tensor:
        """Square root, elementwise."""

    def abs(self) -> Tensor:
        """Absolute value, elementwise."""

    def tanh(self) -> Tensor:
        """Hyperbolic tangent, elementwise."""

    def sigmoid(self) -> Tensor:
        """Logistic sigmoid 1 / (1 + e ** -x), elementwise."""

    def relu(self) -> Tensor:
        """max(x, 0), elementwise."""

    def selu(self) -> Tensor:
        """Scaled exponential linear unit, elementwise."""

    def neg(self) -> Tensor:
        """-x, elementwise."""

    def elu(self, alpha: builtins.float = 1.0) -> Tensor:
        """ELU: x if x > 0 else alpha * (exp(x) - 1)."""

    def leaky_relu(self, negative_slope: builtins.float = 0.01) -> Tensor:
        """Leaky ReLU: x if x > 0 else negative_slope * x."""

    def gelu(self, approximate: str = "none") -> Tensor:
        """GELU, exact (``"none"``) or tanh-approximated (``"tanh"``); other values raise ValueError."""

    def clamp(
        self, min: builtins.float | Tensor | None = None, max: builtins.float | Tensor | None = None
    ) -> Tensor:
        """Clamps into [min, max]; either bound may be None, but not both (ValueError).
        Bounds may be numbers or tensors (broadcast); integer tensors with integer bounds
        stay integers, as PyTorch's."""

    def clip(
        self, min: builtins.float | Tensor | None = None, max: builtins.float | Tensor | None = None
    ) -> Tensor:
        """``clamp``'s other name (PyTorch's and NumPy's)."""

    # ------------------------------------- the op table's rows (set by ferrograd._ops)
    # Python functions, not engine methods: ferrograd._ops gives Tensor one for each row
    # of `unary_ops()` it lacks, and PyTorch's aliases (arcsin, ..., fix).
    def sin(self) -> Tensor:
        """Sine, elementwise."""

    def cos(self) -> Tensor:
        """Cosine, elementwise."""

    def tan(self) -> Tensor:
        """Tangent, elementwise."""

    def asin(self) -> Tensor:
        """Arcsine, elementwise (NaN outside [-1, 1])."""

    def acos(self) -> Tensor:
        """Arccosine, elementwise (NaN outside [-1, 1])."""

    def atan(self) -> Tensor:
        """Arctangent, elementwise."""

    def sinh(self) -> Tensor:
        """Hyperbolic sine, elementwise."""

    def cosh(self) -> Tensor:
        """Hyperbolic cosine, elementwise."""

    def asinh(self) -> Tensor:
        """Inverse hyperbolic sine, elementwise."""

    def acosh(self) -> Tensor:
        """Inverse hyperbolic cosine, elementwise (NaN below 1)."""

    def atanh(self) -> Tensor:
        """Inverse hyperbolic tangent, elementwise (NaN outside [-1, 1])."""

    def arcsin(self) -> Tensor:
        """Alias of ``asin``."""

    def arccos(self) -> Tensor:
        """Alias of ``acos``."""

    def arctan(self) -> Tensor:
        """Alias of ``atan``."""

    def arcsinh(self) -> Tensor:
        """Alias of ``asinh``."""

    def arccosh(self) -> Tensor:
        """Alias of ``acosh``."""

    def arctanh(self) -> Tensor:
        """Alias of ``atanh``."""

    def erf(self) -> Tensor:
        """The error function, elementwise."""

    def exp2(self) -> Tensor:
        """2 ** x, elementwise."""

    def log2(self) -> Tensor:
        """Logarithm base 2, elementwise."""

    def log10(self) -> Tensor:
        """Logarithm base 10, elementwise."""

    def log1p(self) -> Tensor:
        """log(1 + x), elementwise, accurate for small x."""

    def expm1(self) -> Tensor:
        """e ** x - 1, elementwise, accurate for small x."""

    def floor(self) -> Tensor:
        """Rounds down (zero gradient; an int64 tensor gives an int64 copy)."""

    def ceil(self) -> Tensor:
        """Rounds up (zero gradient; an int64 tensor gives an int64 copy)."""

    def round(self, decimals: builtins.int = 0) -> Tensor:
        """Rounds half to even, to ``decimals`` places (zero gradient; int64 stays int64)."""

    def trunc(self) -> Tensor:
        """Rounds toward zero (zero gradient; an int64 tensor gives an int64 copy)."""

    def fix(self) -> Tensor:
        """Alias of ``trunc``."""

    def frac(self) -> Tensor:
        """x - trunc(x), elementwise (gradient 1)."""

    def softplus(self, beta: builtins.float = 1.0, threshold: builtins.float = 20.0) -> Tensor:
        """log(1 + e^(beta x)) / beta; x itself where beta x > threshold."""

    def silu(self) -> Tensor:
        """x * sigmoid(x), elementwise."""

    def mish(self) -> Tensor:
        """x * tanh(softplus(x)), elementwise."""

    def hardswish(self) -> Tensor:
        """x * relu6(x + 3) / 6, elementwise."""

    def hardsigmoid(self) -> Tensor:
        """relu6(x + 3) / 6, elementwise."""

    def relu6(self) -> Tensor:
        """min(max(x, 0), 6), elementwise."""

    def hardtanh(self, min_val: builtins.float = -1.0, max_val: builtins.float = 1.0) -> Tensor:
        """x clamped into [min_val, max_val] (min_val > max_val: ValueError)."""

    def logsigmoid(self) -> Tensor:
        """log(sigmoid(x)), elementwise, computed stably."""

    def softsign(self) -> Tensor:
        """x / (1 + |x|), elementwise."""

    def celu(self, alpha: builtins.float = 1.0) -> Tensor:
        """max(0, x) + min(0, alpha (e^(x / alpha) - 1)); alpha 0: ValueError."""

    # -------------------------------------------------------------- reductions
    def sum(
        self,
        dim: _Dims = None,
        keepdim: builtins.bool = False,
        *,
        dtype: _DType | None = None,
        axis: _Dims = None,
        keepdims: builtins.bool | None = None,
    ) -> Tensor:
        """Sum over ``dim`` (an int, a sequence, or None for all)."""

    def norm(
        self,
        p: builtins.float | str | None = None,
        dim: _Dims = None,
        keepdim: builtins.bool = False,
        *,
        axis: _Dims = None,
        keepdims: builtins.bool | None = None,
    ) -> Tensor:
        """The p-norm over ``dim`` (all when None): 2 or "fro" (default), 1, inf, -inf, 0, or any p."""

    def any(
        self,
        dim: _Dims = None,
        keepdim: builtins.bool = False,
        *,
        axis: _Dims = None,
        keepdims: builtins.bool | None = None,
    ) -> Tensor:
        """Whether any element over ``dim`` (all when None) is true: a bool tensor."""

    def all(
        self,
        dim: _Dims = None,
        keepdim: builtins.bool = False,
        *,
        axis: _Dims = None,
        keepdims: builtins.bool | None = None,
    ) -> Tensor:
        """Whether every element over ``dim`` (all when None) is true: a bool tensor."""

    def mean(
        self,
        dim: _Dims = None,
        keepdim: builtins.bool = False,
        *,
        dtype: _DType | None = None,
        axis: _Dims = None,
        keepdims: builtins.bool | None = None,
    ) -> Tensor:
        """Mean over ``dim``."""

    def var(
        self,
        dim: _Dims = None,
        unbiased: builtins.bool | builtins.float | None = None,
        keepdim: builtins.bool = False,
        *,
        correction: builtins.float | None = None,
        axis: _Dims = None,
        keepdims: builtins.bool | None = None,
    ) -> Tensor:
        """Variance over ``dim`` with ``correction`` (1 = unbiased)."""

    def std(
        self,
        dim: _Dims = None,
        unbiased: builtins.bool | builtins.float | None = None,
        keepdim: builtins.bool = False,
        *,
        correction: builtins.float | None = None,
        axis: _Dims = None,
        keepdims: builtins.bool | None = None,
    ) -> Tensor:
        """Standard deviation over ``dim``."""

    @overload
    def max(self, dim: Tensor) -> Tensor:  # type: ignore[overload-overlap]
        """``x.max(other)``: the elementwise maximum, as PyTorch's overload."""
    @overload
    def max(
        self,
        dim: SupportsIndex,
        keepdim: builtins.bool = False,
        *,
        axis: None = None,
        keepdims: builtins.bool | None = None,
    ) -> _return_types.max:
        """As PyTorch: ``(values, indices)`` along one dim."""
    @overload
    def max(
        self,
        dim: None = None,
        keepdim: builtins.bool = False,
        *,
        axis: SupportsIndex,
        keepdims: builtins.bool | None = None,
    ) -> _return_types.max:
        """``axis`` is NumPy's name for ``dim``."""
    @overload
    def max(
        self,
        dim: Sequence[SupportsIndex] | None = None,
        keepdim: builtins.bool = False,
        *,
        axis: Sequence[SupportsIndex] | None = None,
        keepdims: builtins.bool | None = None,
    ) -> Tensor:
        """The maximum of all elements, or the values over a tuple of dims (as ``amax``)."""

    @overload
    def min(self, dim: Tensor) -> Tensor:  # type: ignore[overload-overlap]
        """``x.min(other)``: the elementwise minimum, as PyTorch's overload."""
    @overload
    def min(
        self,
        dim: SupportsIndex,
        keepdim: builtins.bool = False,
        *,
        axis: None = None,
        keepdims: builtins.bool | None = None,
    ) -> _return_types.min:
        """As PyTorch: ``(values, indices)`` along one dim."""
    @overload
    def min(
        self,
        dim: None = None,
        keepdim: builtins.bool = False,
        *,
        axis: SupportsIndex,
        keepdims: builtins.bool | None = None,
    ) -> _return_types.min:
        """``axis`` is NumPy's name for ``dim``."""
    @overload
    def min(
        self,
        dim: Sequence[SupportsIndex] | None = None,
        keepdim: builtins.bool = False,
        *,
        axis: Sequence[SupportsIndex] | None = None,
        keepdims: builtins.bool | None = None,
    ) -> Tensor:
        """The minimum of all elements, or the values over a tuple of dims (as ``amin``)."""

    def amax(
        self,
        dim: _Dims = None,
        keepdim: builtins.bool = False,
        *,
        axis: _Dims = None,
        keepdims: builtins.bool | None = None,
    ) -> Tensor:
        """Maximum values over ``dim``."""

    def amin(
        self,
        dim: _Dims = None,
        keepdim: builtins.bool = False,
        *,
        axis: _Dims = None,
        keepdims: builtins.bool | None = None,
    ) -> Tensor:
        """Minimum values over ``dim``."""

    def argmax(
        self,
        dim: builtins.int | None = None,
        keepdim: builtins.bool = False,
        *,
        axis: builtins.int | None = None,
        keepdims: builtins.bool | None = None,
    ) -> Tensor:
        """Index of the maximum along ``dim`` (of the flattened tensor when None); int64, no grad."""

    def argmin(
        self,
        dim: builtins.int | None = None,
        keepdim: builtins.bool = False,
        *,
        axis: builtins.int | None = None,
        keepdims: builtins.bool | None = None,
    ) -> Tensor:
        """Index of the minimum along ``dim``; int64, no grad."""

    def logsumexp(
        self,
        dim: _Dims = None,
        keepdim: builtins.bool = False,
        *,
        axis: _Dims = None,
        keepdims: builtins.bool | None = None,
    ) -> Tensor:
        """log(sum(exp(x))) over ``dim``, computed stably."""

    def softmax(self, dim: builtins.int = -1, *, axis: builtins.int | None = None) -> Tensor:
        """Softmax along ``dim``, computed stably."""

    def log_softmax(self, dim: builtins.int = -1, *, axis: builtins.int | None = None) -> Tensor:
        """log(softmax(x)) along ``dim``, computed stably."""

    def index_select(self, dim: builtins.int, index: Tensor) -> Tensor:
        """Entries ``index`` (int64, 1-D) along ``dim``."""

    # -------------------------------------------------------------- in place (no autograd)
    def zero_(self) -> Tensor:
        """Sets every element to zero; returns the tensor."""

    def fill_(self, value: builtins.float) -> Tensor:
        """Sets every element to ``value``; returns the tensor."""

    def copy_(self, src: Tensor) -> Tensor:
        """Copies ``src`` (broadcast) into this tensor; returns the tensor."""

    def add_(self, other: _Operand, alpha: builtins.float = 1.0) -> Tensor:
        """``self += alpha * other`` in place; returns the tensor."""

    def mul_(self, value: _Operand) -> Tensor:
        """``self *= value`` in place (a number or a broadcastable tensor); returns the tensor."""

    def sub_(self, other: _Operand, alpha: builtins.float = 1.0) -> Tensor:
        """``self -= alpha * other`` in place; returns the tensor."""

    def div_(self, value: _Operand) -> Tensor:
        """``self /= value`` in place; returns the tensor."""

    def clamp_(
        self, min: builtins.float | Tensor | None = None, max: builtins.float | Tensor | None = None
    ) -> Tensor:  # noqa: A002
        """Clamps in place; returns the tensor."""

# ---------------------------------------------------------------------------- module functions

def from_numpy(a: npt.NDArray[Any]) -> Tensor:
    """A tensor copied from a NumPy array of float32, float64, int64 or bool (else DTypeError)."""

def _from_dlpack_shared(obj: Any) -> Tensor | None:
    """A host tensor sharing ``obj``'s DLPack memory, or None when it cannot be shared."""

def zeros(shape: Sequence[int], dtype: dtype | None = None) -> Tensor:
    """Zeros of ``shape`` (float32 by default)."""

def full(shape: Sequence[int], value: float, dtype: dtype | None = None) -> Tensor:
    """``shape`` filled with ``value``."""

def arange(start: float, end: float, step: float, dtype: dtype | None = None) -> Tensor:
    """Evenly spaced values in [start, end)."""

def eye(n: int, m: int, dtype: dtype | None = None) -> Tensor:
    """The identity matrix (n x m)."""

def rand(shape: Sequence[int], dtype: dtype | None = None) -> Tensor:
    """Uniform samples in [0, 1) from the global generator."""

def randn(shape: Sequence[int], dtype: dtype | None = None) -> Tensor:
    """Standard normal samples from the global generator."""

def randint(low: int, high: int, shape: Sequence[int]) -> Tensor:
    """int64 integers uniform in [low, high)."""

def randperm(n: int) -> Tensor:
    """A random permutation of 0..n (int64)."""

def manual_seed(seed: int) -> None:
    """Reseeds the global generator (the seed is taken modulo 2**64)."""

def get_rng_state() -> tuple[int, int]:
    """The global generator's state as (seed, offset)."""

def set_rng_state(state: tuple[int, int]) -> None:
    """Restores the global generator's state from ``get_rng_state()``."""

@final
class RemovableHandle:
    """What ``Tensor.register_hook`` and ``register_post_accumulate_grad_hook`` return."""

    def remove(self) -> None:
        """Unregisters the hook (a second call does nothing)."""

    def __enter__(self) -> RemovableHandle: ...
    def __exit__(self, _a: object, _b: object, _c: object) -> None: ...

def queue_callback(callback: Callable[[], object]) -> None:
    """Queues ``callback()`` for the end of the backward pass in progress (only from a hook)."""

def _backward_many(
    tensors: list[Tensor],
    gradients: list[Tensor | None],
    retain_graph: bool,
    inputs: list[Tensor] | None = None,
    create_graph: bool = False,
) -> None:
    """One backward pass from several tensors (into the ``.grad`` of ``inputs`` when given)."""

def _grad(
    outputs: list[Tensor],
    grad_outputs: list[Tensor | None],
    inputs: list[Tensor],
    retain_graph: bool,
    allow_unused: bool,
    create_graph: bool = False,
) -> list[Tensor | None]:
    """The gradients of ``outputs`` with respect to ``inputs`` (None where unused)."""

def _custom_grad_fn(
    output: Tensor,
    inputs: list[Tensor],
    backward: Callable[[Tensor], Any],
    name: str,
    differentiable: bool = True,
) -> Tensor:
    """Gives ``output`` the derivative rule ``backward(grad)`` (one gradient or None per input)."""

def conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
) -> tuple[Tensor, tuple[int, int]]:
    """A 2-D convolution: the (N, OC, OH, OW) output, with (OH, OW)."""

def unfold2d(
    x: Tensor,
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    ceil_mode: bool = False,
    pad_value: float = 0.0,
    outside: float = 0.0,
) -> tuple[Tensor, tuple[int, int]]:
    """The windows of an (N, C, H, W) tensor as an (N * OH * OW, C * KH * KW) matrix, and (OH, OW)."""

def max_pool2d(
    x: Tensor,
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    ceil_mode: bool = False,
) -> Tensor:
    """Max pooling of each channel of an (N, C, H, W) float tensor: (N, C, OH, OW); padding
    is -inf, the gradient goes to each window's first maximum."""

def fold2d(
    cols: Tensor,
    shape: list[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
) -> Tensor:
    """unfold2d's adjoint: the matrix summed back into an (N, C, H, W) tensor of ``shape``."""

def cat(tensors: Sequence[Tensor], dim: int = 0, *, axis: int | None = None) -> Tensor:
    """Joins tensors along an existing dim."""

def stack(tensors: Sequence[Tensor], dim: int = 0, *, axis: int | None = None) -> Tensor:
    """Joins same-shaped tensors along a new dim."""

def where(cond: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """Elementwise choice: ``a`` where ``cond``, else ``b``."""

def linear(
    x: Tensor,
    w: Tensor,
    b: Tensor | None = None,
    activation: str | None = None,
    alpha: builtins.float | None = None,
    *,
    dropout: builtins.float | None = None,
    alpha_dropout: bool = False,
) -> Tensor:
    """``x @ w.T + b``, with the bias fused into the matrix product; ``activation`` ("relu",
    "selu", "tanh", "sigmoid", "elu" or "leaky_relu", with ``alpha``) runs in the same GPU
    kernel, and its backward needs only the output. ``dropout`` (a probability; SELU's
    alpha dropout with ``alpha_dropout``) follows in training, with the mask the separate
    op would draw; one graph node."""

def unary(x: Tensor, name: str, p0: builtins.float | None = None, p1: builtins.float | None = None) -> Tensor:
    """Applies the op table's elementwise op ``name`` (parameters in the table's order; None
    takes the default)."""

def unary_ops() -> list[tuple[str, int, list[tuple[str, builtins.float | None]]]]:
    """The op table's rows: (name, WGSL code, [(parameter, default or None)])."""

def _shader_source(name: str) -> str | None:
    """A shader's WGSL source as the runtime compiles it; None for an unknown name."""

def _set_hooks(tensor: Any, repr: Any, return_types: Any, advanced: Any) -> None:
    """Registers the Python layer's callables (once; `import ferrograd` does it)."""

def one_hot(labels: Tensor, num_classes: int = -1) -> Tensor:
    """One-hot encoding of int64 labels (num_classes < 0: max label + 1)."""

def set_grad_enabled(on: bool) -> bool:
    """Turns graph recording on or off on this thread; returns the previous setting."""

def is_grad_enabled() -> bool:
    """Whether ops record the autograd graph on this thread."""

def set_num_threads(n: int) -> None:
    """Sets the number of threads kernels use (n >= 1, else ValueError)."""

def get_num_threads() -> int:
    """The number of threads kernels use."""

def host_cache_stats() -> tuple[int, int, int]:
    """The host buffer cache's (hits, misses, bytes held in free blocks)."""

def host_empty_cache() -> None:
    """Returns the host buffer cache's free blocks to the system."""

def host_cache_limit(limit: int | None = None) -> int:
    """The host buffer cache's byte limit; with ``limit``, sets it and returns the old one."""

def devices() -> list[tuple[str, str, str]]:
    """The compute devices as (name, backend, type): the CPU, then every GPU adapter wgpu finds."""

def gpu_buffers_created() -> int:
    """GPU tensor buffers created so far (the pool reuses freed ones)."""

def gpu_profile(reset: bool = True) -> list[tuple[str, int, float]] | None:
    """Per-kernel GPU time when the process started with FERROGRAD_GPU_PROFILE=1: a list of
    (kernel, dispatches, total microseconds), slowest first, with "(gaps)" the idle time
    between kernels; None when profiling is off."""

def gpu_stats() -> dict[str, Any]:
    """GPU runtime counters: ``buffers_created``, ``dispatches``, ``submits``, ``bytes_read``
    (copied back to the host),
    ``bind_groups_created`` (ints; a steady count over a loop means the caches hit),
    ``pipelines`` (the compiled kernel variants, sorted) and ``max_binding`` (the largest
    storage binding in bytes, the size limit of one tensor); DeviceError when there is no GPU."""

def gpu_matmul_kernel(name: str | None = None, tune_min_flops: float | None = None) -> str:
    """How the GPU matmul kernel is chosen: with `name` (one of ``gpu_matmul_kernels()`` or
    "auto", which times every kernel on the first product of each shape of at least
    `tune_min_flops` (2mnk; default a 1024-cube) and keeps the fastest), sets it. Returns
    the setting in force before the call; ValueError for an unknown name."""

def gpu_matmul_split_k(max_splits: int | None = None) -> int:
    """The most parts a GPU matmul splits its inner dimension into when its output has too
    few tiles to fill the GPU (1: never; default 16); with `max_splits`, sets it and returns
    the previous setting."""

def _gpu_matmul_split_k_fixup(on: bool) -> bool:
    """Whether a split GPU matmul sums its parts in its own dispatch (True) or in a second
    pass; sets it and returns the setting before (for tests: both give the same bits)."""

def gpu_matmul_kernels() -> list[str]:
    """The GPU matmul kernels by name, the default first."""

def gpu_matmul_tuning() -> list[tuple[tuple[str, int, int, int], str, list[tuple[str, float]]]]:
    """What "auto" measured: ((layout, m, n, k), chosen kernel, [(kernel, seconds per product)]);
    NaN seconds mark a kernel rejected because its output differed from the default kernel's."""

def gpu_synchronize() -> None:
    """Submits the queued GPU work and waits for it to finish (for timing)."""

def gpu_memory() -> tuple[int, int]: ...

@final
class GpuGraph:
    """A captured GPU step (``fg.gpu.Graph`` holds one); not constructible from Python."""

    def replay(self, advance: int = 0) -> None:
        """Submits the captured dispatches again (after the work queued before it); `advance`:
        optimizer steps past the captured one (Adam's bias corrections follow it)."""
    @property
    def dispatches(self) -> int:
        """Dispatches one replay submits."""
    @property
    def replays(self) -> int:
        """Replays made so far."""

def gpu_flush() -> None:
    """Submits the queued GPU work without waiting for it (benchmarks: a step's host time
    including its submission)."""

def gpu_capture_begin() -> None:
    """Starts capturing GPU work into a graph (nothing runs until it is replayed)."""

def gpu_capture_end() -> GpuGraph:
    """Ends the capture: the graph, or an error saying why it cannot be replayed."""

def gpu_capture_abort() -> None:
    """Discards a capture that failed part way (no-op when none records)."""

def gpu_empty_cache() -> None: ...
def gpu_pool_limit(limit: int | None = None) -> int: ...
def _gpu_record_invalid_command() -> None:
    """Test hook: records a command the GPU must reject (the next wait raises DeviceError)."""

def gpu_info() -> tuple[str, str, str, list[str]]:
    """The GPU adapter that tensors on "gpu" use, as (name, backend, type, features);
    DeviceError when none."""

# ---------------------------------------------------------------------------- fused nn ops

def batch_norm(
    x: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    training: bool,
    momentum: float = 0.1,
    eps: float = 1e-5,
    activation: str | None = None,
    dropout: float = 0.0,
    residual: Tensor | None = None,
) -> Tensor:
    """Batch normalization of a (N, C) input (updates the running stats in place when training);
    ``activation="relu"`` applies relu, and ``dropout`` > 0 then inverted dropout with that
    probability, in the same kernels (the mask ``dropout`` would draw next); ``residual``
    (a residual block's shortcut, (N, C)) is added last: ``residual + y``."""

def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout with probability ``p`` (identity when not training)."""

def alpha_dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Alpha dropout for SELU networks (identity when not training)."""

def correct_count(scores: Tensor, labels: Tensor) -> Tensor:
    """Rows of (N, C) scores whose argmax equals the int64 label (N,), as a float32 scalar
    on the scores' device: accuracy without a read-back per batch. Ties go to the lower
    index, as argmax."""

def cross_entropy(
    logits: Tensor, target: Tensor, label_smoothing: float = 0.0, reduction: str = "mean"
) -> Tensor:
    """Fused log-softmax + negative log-likelihood of int64 class targets.

    ``reduction`` is ``"mean"``, ``"sum"`` or ``"none"`` (else ValueError).
    """

def binary_cross_entropy_with_logits(logits: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy computed stably from logits; ``reduction`` as in ``cross_entropy``."""

# ---------------------------------------------------------------------------- fused optimizer steps
# Each updates ``params`` (and the state lists) in place, outside autograd; the lists are
# parallel, one entry per parameter.

def sgd_step(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    bufs: Sequence[Tensor],
    first: bool,
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    found: Tensor | None = None,
    skipped: Tensor | None = None,
    count: bool = True,
) -> bool:
    """One fused SGD step over all parameters (PyTorch's formulas).

    ``bufs`` are the momentum buffers (may be empty when ``momentum == 0``); ``first`` says
    whether this is the first step (the buffers are then initialised from the gradients).
    With ``found`` and ``skipped`` the step is gated on the device (see ``adam_step``);
    returns False (nothing done) where it cannot be, else True.
    """

def _diagonal(x: Tensor, offset: builtins.int, dim1: builtins.int, dim2: builtins.int) -> Tensor:
    """The diagonal of dims (``dim1``, ``dim2``) as a new last dim: a view (``Tensor.diagonal``)."""

def _unfold(x: Tensor, dim: builtins.int, size: builtins.int, step: builtins.int) -> Tensor:
    """Windows of ``size`` along ``dim``, ``step`` apart, as a new last dim: a view (``Tensor.unfold``)."""

def _unscale_grads(grads: list[Tensor], inv: float, scale: Tensor | None = None) -> Tensor | None:
    """Mixed precision's unscaling of `grads` in place in a few passes (the GPU's
    multi-tensor kernel): a 0-d tensor, 1.0 if any element was inf or NaN before, else 0.0;
    None where the gradients are not all whole float32 GPU tensors of their own. `scale`: a
    scale state kept on the device (float32 (scale, inverse scale, ...)), whose inverse is
    used instead of `inv`."""

def _amp_update_scale(state: Tensor, found: Tensor, growth: float, backoff: float, interval: int) -> bool:
    """GradScaler's update of a scale state kept on the device (float32 (scale, inverse
    scale, clean steps in a row, unused)) from the iteration's found-inf flag, in one
    kernel: False (nothing done) where the device has none."""

def adam_step(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    m: Sequence[Tensor],
    v: Sequence[Tensor],
    step: int,
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled: bool = False,
    found: Tensor | None = None,
    skipped: Tensor | None = None,
    count: bool = True,
) -> bool:
    """One fused Adam step (AdamW when ``decoupled``) over all parameters; ``step`` counts from 1.

    With ``found`` (a GradScaler's found-inf flag) and ``skipped`` (the count of steps skipped
    so far; one float32 element each, on the GPU) the step is gated on the device: nothing
    moves where ``found`` is nonzero, and the bias corrections count ``step - skipped``; with
    ``count`` a skipped step adds itself to ``skipped`` (set it on one call of each step).
    Returns False (nothing done) where it cannot be gated, else True."""

def adadelta_step(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    square_avg: Sequence[Tensor],
    acc_delta: Sequence[Tensor],
    lr: float,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    found: Tensor | None = None,
    skipped: Tensor | None = None,
    count: bool = True,
) -> bool:
    """One fused Adadelta step over all parameters. With ``found`` and ``skipped`` the step
    is gated on the device (see ``adam_step``); returns False where it cannot be."""

def set_autocast(device: str, dtype: dtype | None) -> dtype | None:
    """Turns autocast on for a device ("cpu", "gpu") with float16/bfloat16, or off with None,
    on this thread; returns the previous dtype."""

def autocast_dtype(device: str) -> dtype | None:
    """The autocast dtype of a device on this thread, or None when autocast is off there."""

def rmsprop_step(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    square_avg: Sequence[Tensor],
    momentum_buf: Sequence[Tensor],
    grad_avg: Sequence[Tensor],
    lr: float,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
) -> None:
    """One fused RMSprop step over all parameters.

    ``momentum_buf`` may be empty when ``momentum == 0``, ``grad_avg`` when not ``centered``.
    """
