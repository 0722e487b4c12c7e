//! Elementwise binary ops with NumPy broadcasting, comparisons and `where`.

use crate::autograd::{needs, record};
use crate::dtype::{DType, Element, Float};
use crate::error::Result;
use crate::kernels;
use crate::layout::{broadcast_shapes, Layout};
use crate::storage::{try_vec, BufferElement};
use crate::tensor::Tensor;
use crate::threads;
use crate::{any_dispatch, float_dispatch};

/// Arithmetic binary ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// a + b
    Add = 0,
    /// a - b
    Sub = 1,
    /// a * b
    Mul = 2,
    /// a / b (true division: integers give float32)
    Div = 3,
    /// a ** b
    Pow = 4,
    /// elementwise max, NaN-propagating
    Maximum = 5,
    /// elementwise min, NaN-propagating
    Minimum = 6,
}

impl BinaryOp {
    fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Pow => "pow",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
        }
    }
}

/// Comparisons (no gradient); the result is a bool tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// ==
    Eq,
    /// !=
    Ne,
    /// <
    Lt,
    /// <=
    Le,
    /// >
    Gt,
    /// >=
    Ge,
}

/// Logical ops on truth values (nonzero is true); the result is a bool tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogicOp {
    /// a and b
    And,
    /// a or b
    Or,
    /// a xor b
    Xor,
}

impl LogicOp {
    fn name(self) -> &'static str {
        match self {
            LogicOp::And => "logical_and",
            LogicOp::Or => "logical_or",
            LogicOp::Xor => "logical_xor",
        }
    }
}

/// Applies `f` elementwise over `a` and `b` broadcast together; both must hold `T`.
pub(crate) fn broadcast_apply<T, U, F>(op: &str, a: &Tensor, b: &Tensor, f: F) -> Result<Tensor>
where
    T: BufferElement,
    U: BufferElement,
    F: Fn(T, T) -> U + Copy + Send + Sync,
{
    let shape = broadcast_shapes(op, a.shape(), b.shape())?;
    let n = crate::layout::checked_numel(&shape)?;
    let mut out: Vec<U> = try_vec(n)?;
    // SAFETY-free "uninit": fill with a default then overwrite; the cost is one memset.
    out.resize(n, U::zero());
    let la = a.layout().broadcast_to(op, &shape)?;
    let lb = b.layout().broadcast_to(op, &shape)?;
    a.read(|sa: &[T], _| {
        b.read(|sb: &[T], _| {
            apply_layouts(
                sa,
                &la,
                sb,
                &lb,
                &mut out,
                a.numel() == 1,
                b.numel() == 1,
                f,
            );
        })
    });
    Tensor::from_vec(out, &shape)
}

#[allow(clippy::too_many_arguments)]
fn apply_layouts<T, U, F>(
    sa: &[T],
    la: &Layout,
    sb: &[T],
    lb: &Layout,
    out: &mut [U],
    a_scalar: bool,
    b_scalar: bool,
    f: F,
) where
    T: Copy + Send + Sync,
    U: Copy + Send,
    F: Fn(T, T) -> U + Copy + Send + Sync,
{
    let n = out.len();
    if n == 0 {
        return;
    }
    let (ca, cb) = (la.is_contiguous(), lb.is_contiguous());
    if ca && cb {
        let (xa, xb) = (&sa[la.contiguous_range()], &sb[lb.contiguous_range()]);
        threads::for_chunks(out, |s, o| {
            kernels::zip_map(&xa[s..s + o.len()], &xb[s..s + o.len()], o, f)
        });
        return;
    }
    if ca && b_scalar {
        let (xa, v) = (&sa[la.contiguous_range()], sb[lb.offset]);
        threads::for_chunks(out, |s, o| {
            kernels::map_scalar(&xa[s..s + o.len()], v, o, f)
        });
        return;
    }
    if cb && a_scalar {
        let (xb, v) = (&sb[lb.contiguous_range()], sa[la.offset]);
        threads::for_chunks(out, |s, o| {
            kernels::map_scalar(&xb[s..s + o.len()], v, o, move |x, y| f(y, x))
        });
        return;
    }
    // General case: walk the outer dims, run the innermost dim as a strided (often unit) row.
    let nd = la.ndim();
    let inner = la.shape[nd - 1];
    let (ia, ib) = (la.strides[nd - 1], lb.strides[nd - 1]);
    let mut idx = vec![0usize; nd];
    let (mut pa, mut pb) = (la.offset as isize, lb.offset as isize);
    let mut row = 0;
    loop {
        let o = &mut out[row * inner..(row + 1) * inner];
        if ia == 1 && ib == 1 {
            kernels::zip_map(
                &sa[pa as usize..pa as usize + inner],
                &sb[pb as usize..pb as usize + inner],
                o,
                f,
            );
        } else if ia == 1 && ib == 0 {
            kernels::map_scalar(&sa[pa as usize..pa as usize + inner], sb[pb as usize], o, f);
        } else if ia == 0 && ib == 1 {
            kernels::map_scalar(
                &sb[pb as usize..pb as usize + inner],
                sa[pa as usize],
                o,
                move |x, y| f(y, x),
            );
        } else {
            for (j, slot) in o.iter_mut().enumerate() {
                *slot = f(
                    sa[(pa + j as isize * ia) as usize],
                    sb[(pb + j as isize * ib) as usize],
                );
            }
        }
        row += 1;
        let mut d = nd - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            pa += la.strides[d];
            pb += lb.strides[d];
            if idx[d] < la.shape[d] {
                break;
            }
            pa -= la.strides[d] * la.shape[d] as isize;
            pb -= lb.strides[d] * lb.shape[d] as isize;
            idx[d] = 0;
        }
    }
}

fn float_forward<T: Float + BufferElement>(op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let name = op.name();
    match op {
        BinaryOp::Add => broadcast_apply(name, a, b, |x: T, y: T| x + y),
        BinaryOp::Sub => broadcast_apply(name, a, b, |x: T, y: T| x - y),
        BinaryOp::Mul => broadcast_apply(name, a, b, |x: T, y: T| x * y),
        BinaryOp::Div => broadcast_apply(name, a, b, |x: T, y: T| x / y),
        BinaryOp::Pow => broadcast_apply(name, a, b, |x: T, y: T| x.powf(y)),
        BinaryOp::Maximum => broadcast_apply(name, a, b, kernels::nan_max::<T>),
        BinaryOp::Minimum => broadcast_apply(name, a, b, kernels::nan_min::<T>),
    }
}

fn int_forward(op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let name = op.name();
    match op {
        BinaryOp::Add => broadcast_apply(name, a, b, |x: i64, y: i64| x.wrapping_add(y)),
        BinaryOp::Sub => broadcast_apply(name, a, b, |x: i64, y: i64| x.wrapping_sub(y)),
        BinaryOp::Mul => broadcast_apply(name, a, b, |x: i64, y: i64| x.wrapping_mul(y)),
        BinaryOp::Maximum => broadcast_apply(name, a, b, |x: i64, y: i64| x.max(y)),
        BinaryOp::Minimum => broadcast_apply(name, a, b, |x: i64, y: i64| x.min(y)),
        BinaryOp::Div | BinaryOp::Pow => unreachable!("promoted to float before"),
    }
}

/// Result dtype of an arithmetic op (bool < int64 < float32 < float64; `/` and `**` on
/// integers give float32, as in PyTorch).
pub fn result_dtype(op: BinaryOp, a: DType, b: DType) -> DType {
    let d = a.promote(b);
    match (op, d) {
        (BinaryOp::Div | BinaryOp::Pow, DType::I64 | DType::Bool) => DType::F32,
        // the larger or smaller of two bools is a bool, as in PyTorch
        (BinaryOp::Maximum | BinaryOp::Minimum, DType::Bool) => DType::Bool,
        (_, DType::Bool) => DType::I64,
        (_, d) => d,
    }
}

impl Tensor {
    /// Elementwise `op` with broadcasting and dtype promotion.
    pub fn binary(&self, op: BinaryOp, other: &Tensor) -> Result<Tensor> {
        let dt = result_dtype(op, self.dtype(), other.dtype());
        if dt == DType::Bool {
            // maximum/minimum of bools: or/and (no gradient: bools have none)
            let lop = if op == BinaryOp::Maximum {
                LogicOp::Or
            } else {
                LogicOp::And
            };
            return self.logical(lop, other);
        }
        // int64 results are computed on the host, where the gpu backend keeps int64
        let on_gpu = dt != DType::I64 && (self.is_gpu() || other.is_gpu());
        let (a, b, out) = if on_gpu {
            #[cfg(feature = "gpu")]
            {
                // float32 on the gpu: gpu bools are read as their 0/1 floats, and host
                // int64/bool operands (labels, argmax's results) go up with the float one
                let a = super::gpu_ops::gpu_operand(op.name(), self)?;
                let b = super::gpu_ops::gpu_operand(op.name(), other)?;
                let out = super::gpu_ops::binary_code(op.name(), op as u32, &a, &b)?;
                (a, b, out)
            }
            #[cfg(not(feature = "gpu"))]
            unreachable!("no gpu tensors without the gpu feature")
        } else {
            let a = self.cast(dt)?;
            let b = other.cast(dt)?;
            if dt == DType::I64 {
                return int_forward(op, &a, &b);
            }
            let out = float_dispatch!(dt, op.name(), T => float_forward::<T>(op, &a, &b)?);
            (a, b, out)
        };
        if !(crate::autograd::is_grad_enabled() && (a.requires_grad() || b.requires_grad())) {
            return Ok(out);
        }
        let y = out.detach();
        let name = match op {
            BinaryOp::Add => "AddBackward",
            BinaryOp::Sub => "SubBackward",
            BinaryOp::Mul => "MulBackward",
            BinaryOp::Div => "DivBackward",
            BinaryOp::Pow => "PowBackward",
            BinaryOp::Maximum => "MaximumBackward",
            BinaryOp::Minimum => "MinimumBackward",
        };
        let (ca, cb) = (a.detach(), b.detach());
        let (na, nb) = (needs(&a), needs(&b));
        let (sa, sb) = (a.shape().to_vec(), b.shape().to_vec());
        Ok(record(out, name, &[&a, &b], move |g| {
            let (ga, gb): (Option<Tensor>, Option<Tensor>) = match op {
                // d(a+b) = da + db
                BinaryOp::Add => (na.then(|| g.clone()), nb.then(|| g.clone())),
                // d(a-b) = da - db
                BinaryOp::Sub => (
                    na.then(|| g.clone()),
                    if nb { Some(g.neg()?) } else { None },
                ),
                // d(ab) = b da + a db
                BinaryOp::Mul => (
                    if na { Some(g.mul(&cb)?) } else { None },
                    if nb { Some(g.mul(&ca)?) } else { None },
                ),
                // d(a/b) = da / b - (a/b) db / b
                BinaryOp::Div => (
                    if na { Some(g.div(&cb)?) } else { None },
                    if nb {
                        Some(g.mul(&y)?.div(&cb)?.neg()?)
                    } else {
                        None
                    },
                ),
                // d(a^b) = b a^(b-1) da + a^b ln(a) db
                BinaryOp::Pow => (
                    if na {
                        let one = Tensor::scalar(1.0, cb.dtype());
                        Some(g.mul(&cb)?.mul(&ca.pow(&cb.sub(&one)?)?)?)
                    } else {
                        None
                    },
                    if nb {
                        Some(g.mul(&y)?.mul(&ca.log()?)?)
                    } else {
                        None
                    },
                ),
                // the larger input takes the gradient; ties split it evenly
                BinaryOp::Maximum | BinaryOp::Minimum => {
                    if ca.is_gpu() {
                        // w = [a wins] + [tie] / 2 from the gpu comparisons (bool 0/1 floats)
                        let win = if op == BinaryOp::Maximum {
                            ca.compare(CmpOp::Gt, &cb)?
                        } else {
                            ca.compare(CmpOp::Lt, &cb)?
                        };
                        let tie = ca
                            .compare(CmpOp::Eq, &cb)?
                            .mul(&Tensor::scalar(0.5, DType::F32))?;
                        let w = win.add(&tie)?;
                        let gw = g.mul(&w)?;
                        return Ok(vec![
                            if na { Some(gw.sum_to(&sa)?) } else { None },
                            if nb {
                                Some(g.sub(&gw)?.sum_to(&sb)?)
                            } else {
                                None
                            },
                        ]);
                    }
                    let sel = float_dispatch!(ca.dtype(), "maximum", T => {
                        if op == BinaryOp::Maximum {
                            broadcast_apply(name, &ca, &cb, |x: T, y: T| T::from_f64(if x > y { 1.0 } else if x == y { 0.5 } else { 0.0 }))?
                        } else {
                            broadcast_apply(name, &ca, &cb, |x: T, y: T| T::from_f64(if x < y { 1.0 } else if x == y { 0.5 } else { 0.0 }))?
                        }
                    });
                    let one = Tensor::scalar(1.0, sel.dtype());
                    (
                        if na { Some(g.mul(&sel)?) } else { None },
                        if nb {
                            Some(g.mul(&one.sub(&sel)?)?)
                        } else {
                            None
                        },
                    )
                }
            };
            Ok(vec![
                ga.map(|t| t.sum_to(&sa)).transpose()?,
                gb.map(|t| t.sum_to(&sb)).transpose()?,
            ])
        }))
    }

    /// `self + other`
    pub fn add(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Add, other)
    }
    /// `self - other`
    pub fn sub(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Sub, other)
    }
    /// `self * other`
    pub fn mul(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Mul, other)
    }
    /// `self / other`
    pub fn div(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Div, other)
    }
    /// `self ** other`
    pub fn pow(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Pow, other)
    }
    /// Elementwise maximum.
    pub fn maximum(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Maximum, other)
    }
    /// Elementwise minimum.
    pub fn minimum(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Minimum, other)
    }
    /// `self * s` for a Python-style scalar.
    pub fn mul_scalar(&self, s: f64) -> Result<Tensor> {
        self.mul(&Tensor::scalar(s, self.dtype()))
    }
    /// `self + s` for a Python-style scalar.
    pub fn add_scalar(&self, s: f64) -> Result<Tensor> {
        self.add(&Tensor::scalar(s, self.dtype()))
    }

    /// Elementwise comparison giving a bool tensor (never differentiable).
    /// On the gpu the comparison runs in float32 and its result is a gpu bool.
    pub fn compare(&self, op: CmpOp, other: &Tensor) -> Result<Tensor> {
        #[cfg(feature = "gpu")]
        if self.is_gpu() || other.is_gpu() {
            let a = super::gpu_ops::gpu_operand("compare", self)?;
            let b = super::gpu_ops::gpu_operand("compare", other)?;
            return super::gpu_ops::compare(op, &a, &b);
        }
        let dt = self.dtype().promote(other.dtype());
        let _g = crate::autograd::NoGradGuard::new();
        let a = self.cast(dt)?;
        let b = other.cast(dt)?;
        let name = "compare";
        any_dispatch!(dt, T => cmp_typed::<T>(name, op, &a, &b))
    }

    /// Elementwise logical and/or/xor of truth values (nonzero is true), any dtypes; a
    /// bool tensor, on the gpu when an operand is there.
    pub fn logical(&self, op: LogicOp, other: &Tensor) -> Result<Tensor> {
        #[cfg(feature = "gpu")]
        if self.is_gpu() || other.is_gpu() {
            let a = super::gpu_ops::gpu_operand(op.name(), self)?;
            let b = super::gpu_ops::gpu_operand(op.name(), other)?;
            return super::gpu_ops::logical(op, &a, &b);
        }
        let _g = crate::autograd::NoGradGuard::new();
        let (a, b) = (self.cast(DType::Bool)?, other.cast(DType::Bool)?);
        match op {
            LogicOp::And => broadcast_apply(op.name(), &a, &b, |x: bool, y: bool| x && y),
            LogicOp::Or => broadcast_apply(op.name(), &a, &b, |x: bool, y: bool| x || y),
            LogicOp::Xor => broadcast_apply(op.name(), &a, &b, |x: bool, y: bool| x != y),
        }
    }

    /// Elementwise logical not (zero is true): a bool tensor on this tensor's device.
    pub fn logical_not(&self) -> Result<Tensor> {
        self.compare(CmpOp::Eq, &Tensor::scalar(0.0, self.dtype()))
    }

    /// Bitwise and/or/xor: logical for bool tensors, bitwise for int64 (two's complement,
    /// on the host); floats are refused, as in PyTorch.
    pub fn bitwise(&self, op: LogicOp, other: &Tensor) -> Result<Tensor> {
        let name = match op {
            LogicOp::And => "bitwise_and",
            LogicOp::Or => "bitwise_or",
            LogicOp::Xor => "bitwise_xor",
        };
        match self.dtype().promote(other.dtype()) {
            DType::Bool => self.logical(op, other),
            DType::I64 => {
                let a = self.cast(DType::I64)?;
                let b = other.cast(DType::I64)?;
                match op {
                    LogicOp::And => broadcast_apply(name, &a, &b, |x: i64, y: i64| x & y),
                    LogicOp::Or => broadcast_apply(name, &a, &b, |x: i64, y: i64| x | y),
                    LogicOp::Xor => broadcast_apply(name, &a, &b, |x: i64, y: i64| x ^ y),
                }
            }
            d => Err(crate::dtype_err!(
                "{name}: expected bool or int64 tensors, got {} and {} (promoted to {d}); use logical_{} for truth values",
                self.dtype(),
                other.dtype(),
                &name[8..]
            )),
        }
    }

    /// `~x`: logical not of a bool tensor, bitwise not of an int64 one; floats are refused.
    pub fn bitwise_not(&self) -> Result<Tensor> {
        match self.dtype() {
            DType::Bool => self.logical_not(),
            DType::I64 => {
                let v: Vec<i64> = self.to_vec()?;
                Tensor::from_vec(v.into_iter().map(|x| !x).collect(), self.shape())
            }
            d => Err(crate::dtype_err!(
                "bitwise_not: expected a bool or int64 tensor, got {d}; use logical_not for truth values"
            )),
        }
    }

    /// Whether each element is NaN: a bool tensor on this tensor's device (all false for
    /// integer and bool tensors).
    pub fn isnan(&self) -> Result<Tensor> {
        if !self.dtype().is_float() {
            return Tensor::zeros(self.shape(), DType::Bool)?.to_device(self.device());
        }
        self.compare(CmpOp::Ne, self) // only NaN differs from itself
    }

    /// Whether each element is +-infinity: a bool tensor (all false for integers).
    pub fn isinf(&self) -> Result<Tensor> {
        if !self.dtype().is_float() {
            return Tensor::zeros(self.shape(), DType::Bool)?.to_device(self.device());
        }
        let _g = crate::autograd::NoGradGuard::new();
        self.abs()?
            .compare(CmpOp::Eq, &Tensor::scalar(f64::INFINITY, self.dtype()))
    }

    /// Whether each element is finite (neither NaN nor infinite): a bool tensor (all true
    /// for integers).
    pub fn isfinite(&self) -> Result<Tensor> {
        if !self.dtype().is_float() {
            return Tensor::ones(self.shape(), DType::Bool)?.to_device(self.device());
        }
        let _g = crate::autograd::NoGradGuard::new();
        // NaN < inf is false, as is inf < inf
        self.abs()?
            .compare(CmpOp::Lt, &Tensor::scalar(f64::INFINITY, self.dtype()))
    }

    /// -1, 0 or 1 by the sign of each element (NaN stays NaN), in this tensor's dtype; its
    /// gradient is zero, so the result is not tracked by autograd.
    pub fn sign(&self) -> Result<Tensor> {
        let _g = crate::autograd::NoGradGuard::new();
        let dt = if self.dtype() == DType::Bool {
            DType::I64
        } else {
            self.dtype()
        };
        let zero = Tensor::scalar(0.0, self.dtype());
        let pos = self.compare(CmpOp::Gt, &zero)?.cast(dt)?;
        let neg = self.compare(CmpOp::Lt, &zero)?.cast(dt)?;
        let s = pos.sub(&neg)?;
        if !dt.is_float() {
            return Ok(s);
        }
        // NaN compares false both ways: put it back
        Tensor::where_(&self.isnan()?, self, &s).map(|t| t.detach())
    }

    /// `value` (a 0-dim tensor) where the bool `mask`, broadcast to this tensor's shape, is
    /// true; this tensor's values elsewhere. Gradients flow to this tensor where the mask
    /// is false.
    pub fn masked_fill(&self, mask: &Tensor, value: &Tensor) -> Result<Tensor> {
        if mask.dtype() != DType::Bool {
            return Err(crate::dtype_err!(
                "masked_fill: the mask must be bool, got {}",
                mask.dtype()
            ));
        }
        if value.ndim() != 0 {
            return Err(crate::shape_err!(
                "masked_fill: the value must be a number or a 0-dim tensor, got shape {}",
                crate::layout::fmt_shape(value.shape())
            ));
        }
        let fits = broadcast_shapes("masked_fill", mask.shape(), self.shape())
            .is_ok_and(|s| s.as_slice() == self.shape());
        if !fits {
            return Err(crate::shape_err!(
                "masked_fill: the mask of shape {} does not broadcast to the tensor's shape {}",
                crate::layout::fmt_shape(mask.shape()),
                crate::layout::fmt_shape(self.shape())
            ));
        }
        // the result keeps this tensor's dtype on either device, as PyTorch's
        Tensor::where_(mask, &value.cast(self.dtype())?, self)
    }

    /// `where(cond, self, other)`: picks from `self` where `cond` is true, else `other`.
    pub fn where_(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let dt = a.dtype().promote(b.dtype());
        #[cfg(feature = "gpu")]
        if dt != DType::I64 && (cond.is_gpu() || a.is_gpu() || b.is_gpu()) {
            return Tensor::where_gpu(cond, a, b);
        }
        if dt == DType::I64 && (cond.is_gpu() || a.is_gpu() || b.is_gpu()) {
            // an int64 result lives on the host (the gpu backend holds float32 and bool)
            let host = |t: &Tensor| t.detach().to_device(crate::tensor::Device::Cpu);
            return Tensor::where_(&host(cond)?, &host(a)?, &host(b)?);
        }
        let a = a.cast(dt)?;
        let b = b.cast(dt)?;
        let c = if cond.dtype() == DType::Bool {
            cond.clone()
        } else {
            cond.compare(CmpOp::Ne, &Tensor::scalar(0.0, cond.dtype()))?
        };
        let s1 = broadcast_shapes("where", c.shape(), a.shape())?;
        let shape = broadcast_shapes("where", &s1, b.shape())?;
        let cv: Vec<bool> = c.detach().broadcast_to(&shape)?.to_vec()?;
        let out = any_dispatch!(dt, T => {
            let av: Vec<T> = a.detach().broadcast_to(&shape)?.to_vec()?;
            let bv: Vec<T> = b.detach().broadcast_to(&shape)?.to_vec()?;
            let v: Vec<T> = cv.iter().zip(av.iter().zip(bv.iter())).map(|(&c, (&x, &y))| if c { x } else { y }).collect();
            Tensor::from_vec(v, &shape)?
        });
        if !dt.is_float() {
            return Ok(out);
        }
        let (na, nb) = (needs(&a), needs(&b));
        let (sa, sb) = (a.shape().to_vec(), b.shape().to_vec());
        let c2 = c.clone();
        Ok(record(out, "WhereBackward", &[&a, &b], move |g| {
            // d where(c, a, b) = where(c, g, 0) da + where(c, 0, g) db
            let z = Tensor::scalar(0.0, g.dtype());
            Ok(vec![
                if na {
                    Some(Tensor::where_(&c2, g, &z)?.sum_to(&sa)?)
                } else {
                    None
                },
                if nb {
                    Some(Tensor::where_(&c2, &z, g)?.sum_to(&sb)?)
                } else {
                    None
                },
            ])
        }))
    }
}

#[cfg(feature = "gpu")]
impl Tensor {
    /// where() with any of its tensors on the GPU: the select runs on the GPU (forward and
    /// backward). The condition may be a gpu bool or a host one (uploaded in a queued
    /// copy); host int64/bool operands go up as float32, as in arithmetic. Two bool
    /// operands give a bool.
    fn where_gpu(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let c = if cond.dtype() == DType::Bool {
            cond.detach()
        } else {
            cond.compare(CmpOp::Ne, &Tensor::scalar(0.0, cond.dtype()))?
        };
        let bools = a.dtype() == DType::Bool && b.dtype() == DType::Bool;
        let a = super::gpu_ops::gpu_operand("where", a)?;
        let b = super::gpu_ops::gpu_operand("where", b)?;
        let out = super::gpu_ops::select(&c, &a, &b)?;
        if bools {
            return Ok(out.with_dtype(DType::Bool));
        }
        let (na, nb) = (needs(&a), needs(&b));
        if !crate::autograd::is_grad_enabled() || !(na || nb) {
            return Ok(out);
        }
        let (sa, sb) = (a.shape().to_vec(), b.shape().to_vec());
        Ok(record(out, "WhereBackward", &[&a, &b], move |g| {
            // d where(c, a, b) = where(c, g, 0) da + where(c, 0, g) db
            let z = Tensor::scalar(0.0, DType::F32);
            Ok(vec![
                if na {
                    Some(super::gpu_ops::select(&c, g, &z)?.sum_to(&sa)?)
                } else {
                    None
                },
                if nb {
                    Some(super::gpu_ops::select(&c, &z, g)?.sum_to(&sb)?)
                } else {
                    None
                },
            ])
        }))
    }
}

fn cmp_typed<T: BufferElement + PartialOrd>(
    name: &str,
    op: CmpOp,
    a: &Tensor,
    b: &Tensor,
) -> Result<Tensor> {
    match op {
        CmpOp::Eq => broadcast_apply(name, a, b, |x: T, y: T| x == y),
        CmpOp::Ne => broadcast_apply(name, a, b, |x: T, y: T| x != y),
        CmpOp::Lt => broadcast_apply(name, a, b, |x: T, y: T| x < y),
        CmpOp::Le => broadcast_apply(name, a, b, |x: T, y: T| x <= y),
        CmpOp::Gt => broadcast_apply(name, a, b, |x: T, y: T| x > y),
        CmpOp::Ge => broadcast_apply(name, a, b, |x: T, y: T| x >= y),
    }
}
