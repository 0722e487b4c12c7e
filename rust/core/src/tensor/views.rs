//! Views and shape changes: reshape, transpose, permute, expand, repeat, squeeze, sum_to.

use super::Tensor;
use crate::autograd::{self};
use crate::error::{Error, Result};
use crate::layout::{checked_numel, fmt_shape, normalize_dim, Layout, Shape};
use crate::{shape_err, value_err};
use smallvec::SmallVec;

impl Tensor {
    // ---------------------------------------------------------------- views

    /// A tensor with the same data and a new shape; one dim may be -1 (inferred).
    /// A view when the strides allow it, else a copy (as `torch.reshape`).
    pub fn reshape(&self, shape: &[isize]) -> Result<Tensor> {
        self.reshape_impl("reshape", shape, true)
    }

    /// Like [`Tensor::reshape`] but never copies: refuses when no view is possible.
    pub fn view(&self, shape: &[isize]) -> Result<Tensor> {
        self.reshape_impl("view", shape, false)
    }

    fn reshape_impl(&self, op: &str, shape: &[isize], allow_copy: bool) -> Result<Tensor> {
        let new_shape = self.infer_shape(op, shape)?;
        if new_shape.as_slice() == self.shape() {
            return Ok(self.clone());
        }
        let out = match self.0.layout.reshape_view(&new_shape) {
            Some(l) => self.view_with(l),
            None if allow_copy => {
                let c = self.copy_data()?;
                c.view_with(Layout::contiguous(&new_shape))
            }
            None => {
                return Err(shape_err!(
                    "view: a tensor of shape {} with strides {:?} cannot be viewed as {}; use reshape()",
                    fmt_shape(self.shape()),
                    self.strides(),
                    fmt_shape(&new_shape)
                ))
            }
        };
        let in_shape: Vec<isize> = self.shape().iter().map(|&d| d as isize).collect();
        Ok(autograd::record_higher(
            out,
            "ReshapeBackward",
            &[self],
            Default::default(),
            move |g| Ok(vec![Some(g.reshape(&in_shape)?)]),
        ))
    }

    fn infer_shape(&self, op: &str, shape: &[isize]) -> Result<Shape> {
        let numel = self.numel();
        let mut infer = None;
        let mut known = 1usize;
        for (i, &d) in shape.iter().enumerate() {
            if d == -1 {
                if infer.is_some() {
                    return Err(shape_err!(
                        "{op}: only one dimension can be -1, got {shape:?}"
                    ));
                }
                infer = Some(i);
            } else if d < 0 {
                return Err(shape_err!("{op}: invalid size {d} in shape {shape:?}"));
            } else {
                known = known
                    .checked_mul(d as usize)
                    .ok_or_else(|| shape_err!("{op}: shape {shape:?} is too large"))?;
            }
        }
        let mut out: Shape = shape.iter().map(|&d| d.max(0) as usize).collect();
        if let Some(i) = infer {
            if known == 0 || !numel.is_multiple_of(known) {
                return Err(shape_err!(
                    "{op}: shape {:?} is invalid for a tensor of shape {} ({} elements)",
                    shape,
                    fmt_shape(self.shape()),
                    numel
                ));
            }
            out[i] = numel / known;
        } else if known != numel {
            return Err(shape_err!(
                "{op}: shape {:?} is invalid for a tensor of shape {} ({} elements)",
                shape,
                fmt_shape(self.shape()),
                numel
            ));
        }
        checked_numel(&out)?;
        Ok(out)
    }

    /// Swaps two dims (a view).
    pub fn transpose(&self, d0: isize, d1: isize) -> Result<Tensor> {
        let n = self.ndim();
        if n < 2 && (d0 == 0 || d0 == -1) && (d1 == 0 || d1 == -1) {
            return Ok(self.clone());
        }
        let a = normalize_dim("transpose", d0, n)?;
        let b = normalize_dim("transpose", d1, n)?;
        let out = self.view_with(self.0.layout.transpose(a, b));
        Ok(autograd::record_higher(
            out,
            "TransposeBackward",
            &[self],
            Default::default(),
            move |g| Ok(vec![Some(g.transpose(a as isize, b as isize)?)]),
        ))
    }

    /// Reorders dims (a view).
    pub fn permute(&self, dims: &[isize]) -> Result<Tensor> {
        let n = self.ndim();
        if dims.len() != n {
            return Err(shape_err!(
                "permute: got {} dims {:?} for a tensor of shape {}",
                dims.len(),
                dims,
                fmt_shape(self.shape())
            ));
        }
        let mut perm = Vec::with_capacity(n);
        let mut seen = vec![false; n];
        for &d in dims {
            let d = normalize_dim("permute", d, n)?;
            if seen[d] {
                return Err(shape_err!("permute: dims {dims:?} repeat a dimension"));
            }
            seen[d] = true;
            perm.push(d);
        }
        let out = self.view_with(self.0.layout.permute(&perm));
        let mut inv = vec![0isize; n];
        for (i, &p) in perm.iter().enumerate() {
            inv[p] = i as isize;
        }
        Ok(autograd::record_higher(
            out,
            "PermuteBackward",
            &[self],
            Default::default(),
            move |g| Ok(vec![Some(g.permute(&inv)?)]),
        ))
    }

    /// Broadcasts to `shape` without copying (stride 0); -1 keeps a dim.
    pub fn expand(&self, shape: &[isize]) -> Result<Tensor> {
        let n = shape.len();
        if n < self.ndim() {
            return Err(shape_err!(
                "expand: cannot expand shape {} to {} dims",
                fmt_shape(self.shape()),
                n
            ));
        }
        let lead = n - self.ndim();
        let mut target: Shape = SmallVec::with_capacity(n);
        for (i, &d) in shape.iter().enumerate() {
            if d == -1 {
                if i < lead {
                    return Err(shape_err!(
                        "expand: -1 is not allowed for a new leading dim"
                    ));
                }
                target.push(self.shape()[i - lead]);
            } else if d < 0 {
                return Err(shape_err!("expand: invalid size {d}"));
            } else {
                target.push(d as usize);
            }
        }
        self.broadcast_to(&target)
    }

    /// PyTorch's `repeat`: the tensor tiled `reps[i]` times along dim i; more counts than
    /// dims add leading dims. A copy; the gradient sums over the tiles.
    pub fn repeat(&self, reps: &[isize]) -> Result<Tensor> {
        if reps.len() < self.ndim() {
            return Err(shape_err!(
                "repeat: {} repeat counts for a tensor of shape {}; give at least one per dim",
                reps.len(),
                fmt_shape(self.shape())
            ));
        }
        if let Some(r) = reps.iter().find(|&&r| r < 0) {
            return Err(value_err!("repeat: repeat counts must be >= 0, got {r}"));
        }
        let lead = reps.len() - self.ndim();
        let shape: Vec<isize> = std::iter::repeat_n(1, lead)
            .chain(self.shape().iter().map(|&d| d as isize))
            .collect();
        // view as (1, s0, 1, s1, ...), expand to (r0, s0, r1, s1, ...), merge each pair; a
        // dim repeated once needs no pair
        let mut single = Vec::with_capacity(2 * reps.len());
        let mut tiled = Vec::with_capacity(2 * reps.len());
        let mut out = Vec::with_capacity(reps.len());
        for (&s, &r) in shape.iter().zip(reps) {
            if r == 1 {
                single.push(s);
                tiled.push(s);
            } else {
                single.extend([1, s]);
                tiled.extend([r, s]);
            }
            out.push(
                r.checked_mul(s).ok_or_else(|| {
                    Error::Memory(format!("repeat: {reps:?} repeats are too many"))
                })?,
            );
        }
        if tiled.len() > 8 {
            // past the 8 dims the GPU kernels index: tile one dim at a time instead
            let out_shape: Vec<usize> = out.iter().map(|&d| d as usize).collect();
            if out_shape.contains(&0) {
                // nothing to tile (and a count of 2**40 must not become 2**40 parts)
                return Tensor::zeros(&out_shape, self.dtype())?.to_device(self.device());
            }
            let mut t = self.reshape(&shape)?;
            for (d, &r) in reps.iter().enumerate() {
                if r != 1 {
                    t = if r == 0 {
                        t.narrow(d as isize, 0, 0)?
                    } else {
                        Tensor::cat(&vec![t; r as usize], d as isize)?
                    };
                }
            }
            return if t.shares_storage(self) {
                t.clone_tensor()
            } else {
                Ok(t)
            };
        }
        let r = self.reshape(&single)?.expand(&tiled)?.reshape(&out)?;
        // a copy, as PyTorch's: the reshape above may still be a view (of stride-0 dims, or
        // of the tensor itself when every count is 1), which in-place writes must not share
        if r.shares_storage(self) {
            r.clone_tensor()
        } else {
            Ok(r)
        }
    }

    /// Broadcasts to `shape` (a view), summing the gradient back.
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Tensor> {
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let l = self.0.layout.broadcast_to("expand", shape)?;
        let out = self.view_with(l);
        let in_shape: Shape = SmallVec::from_slice(self.shape());
        Ok(autograd::record_higher(
            out,
            "ExpandBackward",
            &[self],
            Default::default(),
            move |g| Ok(vec![Some(g.sum_to(&in_shape)?)]),
        ))
    }

    /// Inserts a size-1 dim at `dim` (a view).
    pub fn unsqueeze(&self, dim: isize) -> Result<Tensor> {
        let n = self.ndim();
        let d = normalize_dim("unsqueeze", dim, n + 1)?;
        let mut shape: Vec<isize> = self.shape().iter().map(|&x| x as isize).collect();
        shape.insert(d, 1);
        self.reshape(&shape)
    }

    /// Removes size-1 dims (all of them, or just `dim`).
    pub fn squeeze(&self, dim: Option<isize>) -> Result<Tensor> {
        let n = self.ndim();
        let keep: Vec<isize> = match dim {
            None => self
                .shape()
                .iter()
                .filter(|&&d| d != 1)
                .map(|&d| d as isize)
                .collect(),
            Some(d) => {
                if n == 0 {
                    normalize_dim("squeeze", d, 0)?; // only 0 and -1 name a 0-d tensor's dim
                    return Ok(self.clone());
                }
                let d = normalize_dim("squeeze", d, n)?;
                self.shape()
                    .iter()
                    .enumerate()
                    .filter(|&(i, &s)| !(i == d && s == 1))
                    .map(|(_, &s)| s as isize)
                    .collect()
            }
        };
        self.reshape(&keep)
    }

    /// Flattens dims `start..=end` into one.
    pub fn flatten(&self, start: isize, end: isize) -> Result<Tensor> {
        let n = self.ndim();
        if n == 0 {
            // a 0-d tensor's only dims are 0 and -1, as for reductions
            normalize_dim("flatten", start, 0)?;
            normalize_dim("flatten", end, 0)?;
            return self.reshape(&[1]);
        }
        let s = normalize_dim("flatten", start, n)?;
        let e = normalize_dim("flatten", end, n)?;
        if s > e {
            return Err(shape_err!(
                "flatten: start_dim {start} comes after end_dim {end}"
            ));
        }
        let mut shape: Vec<isize> = Vec::new();
        for (i, &d) in self.shape().iter().enumerate() {
            if i <= s || i > e {
                shape.push(d as isize);
            } else {
                let last = shape.len() - 1;
                shape[last] *= d as isize;
            }
        }
        self.reshape(&shape)
    }

    /// Sums a (broadcast) gradient back down to `shape`.
    pub fn sum_to(&self, shape: &[usize]) -> Result<Tensor> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let n = self.ndim();
        let lead = n.checked_sub(shape.len()).ok_or_else(|| {
            shape_err!(
                "sum_to: cannot reduce shape {} to {}",
                fmt_shape(self.shape()),
                fmt_shape(shape)
            )
        })?;
        let mut dims: Vec<isize> = (0..lead as isize).collect();
        for (i, &d) in shape.iter().enumerate() {
            if d == 1 && self.shape()[lead + i] != 1 {
                dims.push((lead + i) as isize);
            }
        }
        let s = if dims.is_empty() {
            self.clone()
        } else {
            self.sum(Some(&dims), true)?
        };
        let target: Vec<isize> = shape.iter().map(|&d| d as isize).collect();
        s.reshape(&target)
    }
}

impl Tensor {
    /// The diagonal of dims (`dim1`, `dim2`) as a new last dim, a view (PyTorch's
    /// `diagonal`): entries [i, i + offset] (offset > 0 above the main diagonal), so
    /// writes through it reach this tensor.
    pub fn diagonal(&self, offset: isize, dim1: isize, dim2: isize) -> Result<Tensor> {
        let n = self.ndim();
        if n < 2 {
            return Err(shape_err!(
                "diagonal: expected a tensor with at least 2 dims, got shape {}",
                fmt_shape(self.shape())
            ));
        }
        let a = normalize_dim("diagonal", dim1, n)?;
        let b = normalize_dim("diagonal", dim2, n)?;
        if a == b {
            return Err(value_err!(
                "diagonal: dim1 and dim2 must differ, got {dim1} and {dim2}"
            ));
        }
        let l = &self.0.layout;
        let (r, c) = (l.shape[a] as isize, l.shape[b] as isize);
        let len = if offset >= 0 {
            r.min(c - offset)
        } else {
            (r + offset).min(c)
        }
        .max(0) as usize;
        let keep: Vec<usize> = (0..n).filter(|&i| i != a && i != b).collect();
        let mut shape: Shape = keep.iter().map(|&i| l.shape[i]).collect();
        let mut strides: crate::layout::Strides = keep.iter().map(|&i| l.strides[i]).collect();
        shape.push(len);
        strides.push(l.strides[a] + l.strides[b]);
        // the first entry, inside the tensor whenever the diagonal has one
        let start = match (len, offset >= 0) {
            (0, _) => 0,
            (_, true) => offset * l.strides[b],
            (_, false) => -offset * l.strides[a],
        };
        let out = self.view_with(Layout {
            shape,
            strides,
            offset: (l.offset as isize + start) as usize,
        });
        let xs = self.shape().to_vec();
        Ok(autograd::record_higher(
            out,
            "DiagonalBackward",
            &[self],
            Default::default(),
            move |g| {
                // g into the (i, i + offset) entries of a zero (..., r, c) tensor: an index add
                // over the two dims flattened, then the dims back in place
                let (r, c) = (xs[a], xs[b]);
                let first = if offset >= 0 {
                    0
                } else {
                    offset.unsigned_abs()
                };
                let flat: Vec<i64> = (0..len)
                    .map(|k| ((first + k) * c + (first + k)) as i64 + offset as i64)
                    .collect();
                let idx = Tensor::from_vec(flat, &[len])?;
                let lead = n - 2;
                let gz = g.index_add_rows(lead as isize, &idx, r * c)?;
                let mut full: Vec<isize> = keep.iter().map(|&i| xs[i] as isize).collect();
                full.extend([r as isize, c as isize]);
                let mut inv = vec![0isize; n];
                for (i, &p) in keep.iter().chain([&a, &b]).enumerate() {
                    inv[p] = i as isize;
                }
                Ok(vec![Some(gz.reshape(&full)?.permute(&inv)?)])
            },
        ))
    }

    /// Every slice of length `size` along `dim`, `step` apart, as a new last dim: a view
    /// (PyTorch's `Tensor.unfold`), so writes through it reach this tensor. A 0-d tensor
    /// counts as one element along dim 0.
    pub fn unfold(&self, dim: isize, size: usize, step: usize) -> Result<Tensor> {
        if self.ndim() == 0 {
            normalize_dim("unfold", dim, 1)?;
            let y = self.reshape(&[1])?.unfold(0, size, step)?;
            return y.reshape(&[size as isize]);
        }
        let nd = self.ndim();
        let d = normalize_dim("unfold", dim, nd)?;
        let l = &self.0.layout;
        let n = l.shape[d];
        if step == 0 || size > n {
            return Err(value_err!(
                "unfold: need 0 <= size <= {n} and step > 0, got size {size}, step {step}"
            ));
        }
        let count = (n - size) / step + 1;
        let mut shape = l.shape.clone();
        shape[d] = count;
        shape.push(size);
        let mut strides = l.strides.clone();
        strides[d] = l.strides[d] * step as isize;
        strides.push(l.strides[d]);
        let out = self.view_with(Layout {
            shape,
            strides,
            offset: l.offset,
        });
        let xs = self.shape().to_vec();
        Ok(autograd::record_higher(
            out,
            "UnfoldBackward",
            &[self],
            Default::default(),
            move |g| {
                // windows may overlap: each window's entries added back where they came from
                let mut perm: Vec<isize> = (0..=d as isize).collect();
                perm.push(nd as isize);
                perm.extend(d as isize + 1..nd as isize);
                let mut merged: Vec<isize> = xs.iter().map(|&s| s as isize).collect();
                merged[d] = (count * size) as isize;
                let flat: Vec<i64> = (0..count)
                    .flat_map(|k| (0..size).map(move |j| (k * step + j) as i64))
                    .collect();
                let idx = Tensor::from_vec(flat, &[count * size])?;
                let gm = g.permute(&perm)?.reshape(&merged)?;
                Ok(vec![Some(gm.index_add_rows(d as isize, &idx, n)?)])
            },
        ))
    }
}
