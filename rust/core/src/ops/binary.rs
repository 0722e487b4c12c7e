//! Elementwise binary ops with NumPy broadcasting, comparisons and `where`.

use crate::autograd::{needs, record_higher};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::layout::broadcast_shapes;
use crate::tensor::Tensor;

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
    pub fn name(self) -> &'static str {
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
    pub fn name(self) -> &'static str {
        match self {
            LogicOp::And => "logical_and",
            LogicOp::Or => "logical_or",
            LogicOp::Xor => "logical_xor",
        }
    }
}

/// Result dtype of an arithmetic op (`DType::promote`; `/` and `**` on integers give
/// float32, as in PyTorch).
pub fn result_dtype(op: BinaryOp, a: DType, b: DType) -> DType {
    let d = a.promote(b);
    match (op, d) {
        // true division is the one op that takes integers to float (PyTorch's rule); an
        // integer power stays an integer
        (BinaryOp::Div, d) if !d.is_float() => DType::F32,
        // two bools: the sum is their or, the product their and, the larger or smaller
        // a bool too (PyTorch's); `binary` refuses the rest
        (_, DType::Bool) => DType::Bool,
        (_, d) => d,
    }
}

impl Tensor {
    /// The dtypes two operands promote as, by PyTorch's rule for a 0-d operand (a Python
    /// number included) beside a dimensioned one: it decides the result's dtype only when
    /// its category (bool < integer < float) is higher; otherwise it takes the dimensioned
    /// operand's dtype, so `uint8_tensor + 1` stays uint8 and `half_tensor * 0.5` half.
    pub(crate) fn operand_dtypes(a: &Tensor, b: &Tensor) -> (DType, DType) {
        let (da, db) = (a.dtype(), b.dtype());
        match (a.ndim() == 0, b.ndim() == 0) {
            (true, false) if da.category() <= db.category() => (db, db),
            (false, true) if db.category() <= da.category() => (da, da),
            _ => (da, db),
        }
    }

    /// Elementwise `op` with broadcasting and dtype promotion.
    pub fn binary(&self, op: BinaryOp, other: &Tensor) -> Result<Tensor> {
        let (da, db) = Tensor::operand_dtypes(self, other);
        let dt = result_dtype(op, da, db);
        if dt == DType::Bool {
            // of two bools: or / and (no gradient: bools have none)
            let lop = match op {
                BinaryOp::Add | BinaryOp::Maximum => LogicOp::Or,
                BinaryOp::Mul | BinaryOp::Minimum => LogicOp::And,
                BinaryOp::Sub => {
                    return Err(Error::DType(
                        "sub: two bool tensors cannot be subtracted (as in PyTorch); use ^ or \
                         logical_xor, or ~ to invert a mask"
                            .into(),
                    ))
                }
                BinaryOp::Div | BinaryOp::Pow => {
                    return Err(Error::DType(format!(
                        "{}: not defined for two bool tensors (as in PyTorch)",
                        op.name()
                    )))
                }
            };
            return self.logical(lop, other);
        }
        let v = Tensor::colocate(op.name(), &[self, other], dt)?;
        let (a, b) = (&v[0], &v[1]);
        let out = Tensor::zip_storage(op.name(), a, b, |sa, la, sb, lb| sa.binary(la, sb, lb, op))?;
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
        // kept with their history, so a create_graph pass differentiates the rule
        let (ca, cb) = (a.saved_input(), b.saved_input());
        let (na, nb) = (needs(a), needs(b));
        let (sa, sb) = (a.shape().to_vec(), b.shape().to_vec());
        // what the rule reads, for the saved-tensor check
        let (at, bt) = (|| Tensor::clone(a), || Tensor::clone(b));
        let saved: crate::autograd::Saved = match op {
            BinaryOp::Add | BinaryOp::Sub => smallvec::smallvec![],
            BinaryOp::Mul if na && nb => smallvec::smallvec![at(), bt()],
            BinaryOp::Mul if na => smallvec::smallvec![bt()],
            BinaryOp::Mul => smallvec::smallvec![at()],
            BinaryOp::Div if nb => smallvec::smallvec![bt(), y.clone()],
            BinaryOp::Div => smallvec::smallvec![bt()],
            BinaryOp::Pow => smallvec::smallvec![at(), bt(), y.clone()],
            BinaryOp::Maximum | BinaryOp::Minimum => smallvec::smallvec![at(), bt()],
        };
        Ok(record_higher(out, name, &[a, b], saved, move |g| {
            // the output is kept detached (a node holding its own output is a cycle): a
            // recorded pass recomputes it from the inputs
            let y = match crate::autograd::creating_graph()
                && matches!(op, BinaryOp::Div | BinaryOp::Pow)
            {
                true => ca.binary(op, &cb)?,
                false => y.clone(),
            };
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
                // d(a^b) = b a^(b-1) da + a^b ln(a) db, with PyTorch's limits at a = 0: the
                // a-part is 0 where b = 0 (0 * 0^-1 would be NaN; a^0 is constant), and the
                // b-part is 0 where a = 0 and b >= 0 (0^b ln 0 would be NaN or -inf)
                BinaryOp::Pow => {
                    let zero = Tensor::scalar(0.0, g.dtype());
                    let ga = if na {
                        let one = Tensor::scalar(1.0, cb.dtype());
                        let full = g.mul(&cb)?.mul(&ca.pow(&cb.sub(&one)?)?)?;
                        let b0 = cb.compare(CmpOp::Eq, &Tensor::scalar(0.0, cb.dtype()))?;
                        Some(full.masked_fill(&b0, &zero)?)
                    } else {
                        None
                    };
                    let gb = if nb {
                        let full = g.mul(&y)?.mul(&ca.log()?)?;
                        let a0 = ca.compare(CmpOp::Eq, &Tensor::scalar(0.0, ca.dtype()))?;
                        let b_nonneg = cb.compare(CmpOp::Ge, &Tensor::scalar(0.0, cb.dtype()))?;
                        Some(full.masked_fill(&a0.logical(LogicOp::And, &b_nonneg)?, &zero)?)
                    } else {
                        None
                    };
                    (ga, gb)
                }
                // the larger input takes the gradient; ties split it evenly
                BinaryOp::Maximum | BinaryOp::Minimum => {
                    // w = [a wins] + [tie] / 2
                    let win = if op == BinaryOp::Maximum {
                        ca.compare(CmpOp::Gt, &cb)?
                    } else {
                        ca.compare(CmpOp::Lt, &cb)?
                    };
                    let half = Tensor::scalar(0.5, g.dtype());
                    let w = win.add(&ca.compare(CmpOp::Eq, &cb)?.mul(&half)?)?;
                    let gw = g.mul(&w)?;
                    (
                        na.then_some(gw.clone()),
                        if nb { Some(g.sub(&gw)?) } else { None },
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
        let dt = self.dtype().promote(other.dtype());
        let _g = crate::autograd::NoGradGuard::new();
        let v = Tensor::colocate_for("compare", &[self, other], dt, DType::Bool)?;
        Tensor::zip_storage("compare", &v[0], &v[1], |a, la, b, lb| {
            a.compare(la, b, lb, op)
        })
    }

    /// Elementwise logical and/or/xor of truth values (nonzero is true), any dtypes; a
    /// bool tensor, on the gpu when an operand is there.
    pub fn logical(&self, op: LogicOp, other: &Tensor) -> Result<Tensor> {
        let _g = crate::autograd::NoGradGuard::new();
        let v = Tensor::colocate(op.name(), &[self, other], DType::Bool)?;
        Tensor::zip_storage(op.name(), &v[0], &v[1], |a, la, b, lb| {
            a.logical(la, b, lb, op)
        })
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
        let (da, db) = Tensor::operand_dtypes(self, other);
        match da.promote(db) {
            DType::Bool => self.logical(op, other),
            d if d.is_int() => {
                // on the host, where integers live; the storage's logical ops are bitwise there
                let v = Tensor::colocate(name, &[self, other], d)?;
                Tensor::zip_storage(name, &v[0], &v[1], |a, la, b, lb| a.logical(la, b, lb, op))
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
            d if d.is_int() => {
                // in int64, wrapped back: !x of the narrower type
                let v: Vec<i64> = self.cast(DType::I64)?.to_vec()?;
                Tensor::from_vec(v.into_iter().map(|x| !x).collect(), self.shape())?.cast(d)
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

    /// -1, 0 or 1 by the sign of each element, in this tensor's dtype (NaN gives 0, as
    /// PyTorch's `(0 < x) - (x < 0)`; a bool is its own sign). Its gradient is zero, and,
    /// as PyTorch's, the result is tracked by autograd with that zero gradient, so a loss
    /// that reaches an input only through sign still backpropagates (zeros).
    pub fn sign(&self) -> Result<Tensor> {
        if self.dtype() == DType::Bool {
            return Ok(self.detach());
        }
        let out = {
            let _g = crate::autograd::NoGradGuard::new();
            let zero = Tensor::scalar(0.0, self.dtype());
            let pos = self.compare(CmpOp::Gt, &zero)?.cast(self.dtype())?;
            let neg = self.compare(CmpOp::Lt, &zero)?.cast(self.dtype())?;
            pos.sub(&neg)?
        };
        Ok(crate::autograd::record_higher(
            out,
            "SignBackward",
            &[self],
            Default::default(),
            |g| {
                Ok(vec![Some(
                    Tensor::full(g.shape(), 0.0, g.dtype())?.to_device(g.device())?,
                )])
            },
        ))
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
        // a GPU condition puts the op on the GPU too, as PyTorch's where(gpu_mask, 0, 1)
        let device = Tensor::placement(&[cond, a, b], dt);
        let v = Tensor::colocate_on("where", &[a, b], dt, device)?;
        let (a, b) = (&v[0], &v[1]);
        let c = if cond.dtype() == DType::Bool {
            cond.detach()
        } else {
            cond.compare(CmpOp::Ne, &Tensor::scalar(0.0, cond.dtype()))?
        };
        let c = c.to_device(device)?;
        let s1 = broadcast_shapes("where", c.shape(), a.shape())?;
        let shape = broadcast_shapes("where", &s1, b.shape())?;
        let lc = c.layout().broadcast_to("where", &shape)?;
        let la = a.layout().broadcast_to("where", &shape)?;
        let lb = b.layout().broadcast_to("where", &shape)?;
        let out = {
            let (gc, ga, gb) = (c.storage_guard(), a.storage_guard(), b.storage_guard());
            Tensor::from_buffer(gc.select(&lc, (&ga, &la), (&gb, &lb))?, &shape)?
        };
        if !out.dtype().is_float() {
            return Ok(out);
        }
        let (na, nb) = (needs(a), needs(b));
        if !crate::autograd::is_grad_enabled() || !(na || nb) {
            return Ok(out);
        }
        let (sa, sb) = (a.shape().to_vec(), b.shape().to_vec());
        let c2 = c.clone();
        Ok(record_higher(
            out,
            "WhereBackward",
            &[a, b],
            smallvec::smallvec![c2.clone()],
            move |g| {
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
            },
        ))
    }
}
