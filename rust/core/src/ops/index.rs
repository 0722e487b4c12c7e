//! Indexing and joining: basic slicing views, row gathers, cat/stack and one_hot.

use crate::autograd::record_higher;
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::layout::{fmt_shape, normalize_dim, Layout, Shape, Strides};
use crate::storage::{try_filled, Buffer};
use crate::tensor::Tensor;
use crate::{any_dispatch, shape_err, value_err};

/// One item of a basic index expression (`x[1, 2:5, None, ...]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexItem {
    /// an integer: selects and removes the dim
    Int(isize),
    /// `start:stop:step` as Python's slice
    Slice(Option<isize>, Option<isize>, isize),
    /// `None`: inserts a size-1 dim
    NewAxis,
    /// `...`: as many full slices as needed
    Ellipsis,
}

/// Python's `slice.indices`: clamped start, and the element count, for a dim of `len`.
fn slice_range(
    start: Option<isize>,
    stop: Option<isize>,
    step: isize,
    len: usize,
) -> (isize, usize) {
    let len = len as isize;
    let clamp = |v: isize, lo: isize, hi: isize| v.max(lo).min(hi);
    let (lo, hi) = if step > 0 { (0, len) } else { (-1, len - 1) };
    let norm = |v: Option<isize>, default: isize| match v {
        None => default,
        Some(v) if v < 0 => clamp(v + len, lo, hi),
        Some(v) => clamp(v, lo, hi),
    };
    let s = norm(start, if step > 0 { 0 } else { len - 1 });
    let e = norm(stop, if step > 0 { len } else { -1 });
    let count = if step > 0 {
        if e > s {
            (e - s + step - 1) / step
        } else {
            0
        }
    } else if s > e {
        (s - e + (-step) - 1) / (-step)
    } else {
        0
    };
    (s, count as usize)
}

/// Applies basic index items to a layout.
fn index_layout(l: &Layout, items: &[IndexItem]) -> Result<Layout> {
    let consumed = items
        .iter()
        .filter(|i| matches!(i, IndexItem::Int(_) | IndexItem::Slice(..)))
        .count();
    let ellipses = items.iter().filter(|i| **i == IndexItem::Ellipsis).count();
    if ellipses > 1 {
        return Err(Error::Index(
            "index: an index can only have a single ellipsis ('...')".into(),
        ));
    }
    if consumed > l.ndim() {
        return Err(Error::Index(format!(
            "index: too many indices ({consumed}) for a tensor of shape {}",
            fmt_shape(&l.shape)
        )));
    }
    let mut shape = Shape::new();
    let mut strides = Strides::new();
    let mut offset = l.offset as isize;
    let mut d = 0usize;
    for item in items {
        match *item {
            IndexItem::Int(i) => {
                let len = l.shape[d] as isize;
                let j = if i < 0 { i + len } else { i };
                if j < 0 || j >= len {
                    return Err(Error::Index(format!(
                        "index {i} is out of bounds for dim {d} with size {len} (tensor of shape {})",
                        fmt_shape(&l.shape)
                    )));
                }
                offset += j * l.strides[d];
                d += 1;
            }
            IndexItem::Slice(start, stop, step) => {
                if step == 0 {
                    return Err(value_err!("index: slice step cannot be zero"));
                }
                let (s, count) = slice_range(start, stop, step, l.shape[d]);
                if count > 0 {
                    offset += s * l.strides[d];
                }
                shape.push(count);
                strides.push(l.strides[d] * step);
                d += 1;
            }
            IndexItem::NewAxis => {
                shape.push(1);
                strides.push(0);
            }
            IndexItem::Ellipsis => {
                let fill = l.ndim() - consumed;
                for _ in 0..fill {
                    shape.push(l.shape[d]);
                    strides.push(l.strides[d]);
                    d += 1;
                }
            }
        }
    }
    while d < l.ndim() {
        shape.push(l.shape[d]);
        strides.push(l.strides[d]);
        d += 1;
    }
    Ok(Layout {
        shape,
        strides,
        offset: offset.max(0) as usize,
    })
}

/// Zeros of `shape` with `g` written into the positions `view` picks (the backward of views).
fn scatter_into_zeros(shape: &[usize], view: &Layout, g: &Tensor) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    any_dispatch!(g.dtype(), T => {
        let mut buf: Vec<T> = try_filled(n, T::zero())?;
        let vals: Vec<T> = g.to_vec()?;
        let mut k = 0;
        view.for_each_index(|i| {
            buf[i] = vals[k];
            k += 1;
        });
        Tensor::from_vec(buf, shape)
    })
}

/// The most pieces split, chunk and unbind return. Each is a tensor handle (about 200
/// bytes, and a Python object of about 100 more when it reaches Python), so 2^24 pieces
/// take some 5 GB; an expanded dim can ask for billions, which would run for minutes
/// before failing (the op fuzzer found `expand(2**33, ...).split(3)` hanging).
pub(crate) const MAX_PIECES: usize = 1 << 24;

fn check_pieces(op: &str, n: usize) -> Result<()> {
    if n > MAX_PIECES {
        return Err(Error::Memory(format!(
            "{op}: {n} pieces is more than the {MAX_PIECES} tensors one call returns (each is a \
             tensor handle); split a smaller view, or index the pieces you need"
        )));
    }
    Ok(())
}

impl Tensor {
    /// Basic indexing (integers, slices, `None`, `...`): always a view.
    pub fn index(&self, items: &[IndexItem]) -> Result<Tensor> {
        let l = index_layout(self.layout(), items)?;
        let out = self.view_with(l);
        let in_shape = self.shape().to_vec();
        let items = items.to_vec();
        Ok(record_higher(
            out,
            "IndexBackward",
            &[self],
            Default::default(),
            move |g| {
                // d x[idx] = g placed at idx, zeros elsewhere
                let view = index_layout(&Layout::contiguous(&in_shape), &items)?;
                let gx = scatter_into_zeros(&in_shape, &view, g)?.to_device(g.device())?;
                // linear in g: its own derivative is the indexing again
                let items = items.clone();
                Ok(vec![Some(crate::autograd::linear_in(
                    gx,
                    g,
                    "IndexBackwardBackward",
                    move |gg| gg.index(&items),
                ))])
            },
        ))
    }

    /// `length` elements of `dim` starting at `start` (a view).
    pub fn narrow(&self, dim: isize, start: usize, length: usize) -> Result<Tensor> {
        if self.ndim() == 0 {
            return Err(shape_err!("narrow: cannot narrow a 0-dimensional tensor"));
        }
        let d = normalize_dim("narrow", dim, self.ndim())?;
        if start
            .checked_add(length)
            .is_none_or(|end| end > self.shape()[d])
        {
            return Err(Error::Index(format!(
                "narrow: range {}..{} is out of bounds for dim {} of size {}",
                start,
                start.saturating_add(length),
                d,
                self.shape()[d]
            )));
        }
        let mut items = vec![IndexItem::Slice(None, None, 1); d];
        items.push(IndexItem::Slice(
            Some(start as isize),
            Some((start + length) as isize),
            1,
        ));
        self.index(&items)
    }

    /// `dim` normalized for an op that takes pieces along it: a 0-d tensor has no dim to
    /// take them from (`normalize_dim` lets 0-d tensors use dim 0 or -1, as reductions do).
    fn sized_dim(&self, op: &str, dim: isize) -> Result<usize> {
        if self.ndim() == 0 {
            return Err(Error::Index(format!(
                "{op}: dim {dim} is out of range for a 0-dimensional tensor"
            )));
        }
        normalize_dim(op, dim, self.ndim())
    }

    /// Views of consecutive pieces along `dim` with the given lengths (which must add up
    /// to the dim's size); each is differentiable.
    pub fn split_sizes(&self, sizes: &[usize], dim: isize) -> Result<Vec<Tensor>> {
        let d = self.sized_dim("split", dim)?;
        check_pieces("split", sizes.len())?;
        let len = self.shape()[d];
        let total: usize = sizes.iter().sum();
        if total != len {
            return Err(shape_err!(
                "split: sizes {sizes:?} add up to {total}, but dim {d} of the tensor of shape {} has size {len}",
                fmt_shape(self.shape())
            ));
        }
        let mut start = 0;
        let mut out = crate::storage::try_vec(sizes.len())?;
        for &n in sizes {
            out.push(self.narrow(d as isize, start, n)?);
            start += n;
        }
        Ok(out)
    }

    /// Views of `size` entries along `dim` (the last may be shorter), as `torch.split`.
    pub fn split(&self, size: usize, dim: isize) -> Result<Vec<Tensor>> {
        let d = self.sized_dim("split", dim)?;
        if size == 0 {
            return Err(value_err!("split: the piece size must be positive, got 0"));
        }
        let len = self.shape()[d];
        // one view per piece: an expanded dim may ask for billions (refused before the
        // list of sizes is even made)
        check_pieces("split", len.div_ceil(size))?;
        let mut sizes = crate::storage::try_filled(len / size + 1, size)?;
        sizes.truncate(len / size);
        if !len.is_multiple_of(size) || len == 0 {
            sizes.push(len % size);
        }
        self.split_sizes(&sizes, dim)
    }

    /// At most `chunks` views of equal size along `dim` (the last may be shorter), as
    /// `torch.chunk`.
    pub fn chunk(&self, chunks: usize, dim: isize) -> Result<Vec<Tensor>> {
        let d = self.sized_dim("chunk", dim)?;
        if chunks == 0 {
            return Err(value_err!(
                "chunk: the number of chunks must be positive, got 0"
            ));
        }
        self.split(self.shape()[d].div_ceil(chunks).max(1), dim)
    }

    /// The slices along `dim`, each without that dim (views), as `torch.unbind`.
    pub fn unbind(&self, dim: isize) -> Result<Vec<Tensor>> {
        let d = self.sized_dim("unbind", dim)?;
        check_pieces("unbind", self.shape()[d])?;
        (0..self.shape()[d])
            .map(|i| self.narrow(d as isize, i, 1)?.squeeze(Some(d as isize)))
            .collect()
    }

    /// `x[mask]` for a bool `mask` shaped like the leading dims of `x`: the sub-tensors
    /// where it is true, stacked along a new first dim (shape (count, *rest)), as in
    /// NumPy and PyTorch. Differentiable (a gather along the flattened leading dims). The
    /// result's shape depends on the mask's values, so a GPU mask is read back first.
    pub fn index_mask(&self, mask: &Tensor) -> Result<Tensor> {
        let k = self.check_mask("index", mask)?;
        let flags: Vec<bool> = mask.to_vec()?;
        let picked: Vec<i64> = (0..flags.len() as i64)
            .filter(|&i| flags[i as usize])
            .collect();
        let mut flat: Vec<isize> = vec![flags.len() as isize];
        flat.extend(self.shape()[k..].iter().map(|&d| d as isize));
        let n = picked.len();
        self.reshape(&flat)?
            .index_select(0, &Tensor::from_vec(picked, &[n])?)
    }

    /// A bool mask indexes the leading dims of the tensor it has the shape of; reading
    /// (`x[mask]`) and writing (`x[mask] = v`) check it the same way. Returns its ndim.
    fn check_mask(&self, op: &str, mask: &Tensor) -> Result<usize> {
        if mask.dtype() != DType::Bool {
            return Err(Error::DType(format!(
                "{op}: a mask must be bool, got {}",
                mask.dtype()
            )));
        }
        let k = mask.ndim();
        if k > self.ndim() || mask.shape() != &self.shape()[..k] {
            return Err(Error::Index(format!(
                "{op}: the boolean mask of shape {} does not match the leading dims of the tensor of shape {}",
                fmt_shape(mask.shape()),
                fmt_shape(self.shape())
            )));
        }
        Ok(k)
    }

    /// `x[mask] = value`, in place and outside the graph: a one-element `value` goes to every
    /// entry where the bool mask over the leading dims is true; a larger one holds the
    /// selected entries in order (broadcast to the selection's shape `(count, *rest)`), as
    /// NumPy and PyTorch assign.
    pub fn mask_put_(&self, mask: &Tensor, value: &Tensor) -> Result<()> {
        let op = "index assignment";
        let k = self.check_mask(op, mask)?;
        self.check_writable(op)?;
        if value.numel() == 1 {
            let mut shape: Vec<isize> = mask.shape().iter().map(|&d| d as isize).collect();
            shape.extend(std::iter::repeat_n(1, self.ndim() - k));
            let m = mask.reshape(&shape)?.to_device(self.device())?;
            let v = value.detach().reshape(&[])?;
            return self.apply_(op, |t| Tensor::where_(&m, &v.cast(t.dtype())?, t));
        }
        let tracked = self.tracked(value);
        let _g = crate::autograd::NoGradGuard::new();
        let flags: Vec<bool> = mask.to_vec()?;
        let picked: Vec<usize> = (0..flags.len()).filter(|&i| flags[i]).collect();
        let mut shape = vec![picked.len()];
        shape.extend_from_slice(&self.shape()[k..]);
        let full = value.broadcast_to(&shape);
        let v = value.detach().broadcast_to(&shape).map_err(|_| {
            shape_err!(
                "{op}: a value of shape {} does not fit the {} selected entries of shape {}",
                fmt_shape(value.shape()),
                picked.len(),
                fmt_shape(&shape)
            )
        })?;
        let lead = &self.shape()[..k];
        let mut items = vec![IndexItem::Int(0); k];
        for (j, &p) in picked.iter().enumerate() {
            let mut rem = p;
            for d in (0..k).rev() {
                items[d] = IndexItem::Int((rem % lead[d]) as isize);
                rem /= lead[d];
            }
            self.index(&items)?
                .copy_(&v.index(&[IndexItem::Int(j as isize)])?)?;
        }
        if tracked {
            drop(_g);
            self.rebase_rows(&picked, full?)?;
        }
        Ok(())
    }

    /// After rows `rows` (flat indices over the leading dims that `value`'s first dim
    /// counts) were written with `value` outside the graph: the write, recorded.
    fn rebase_rows(&self, rows: &[usize], value: Tensor) -> Result<()> {
        let rest: usize = value.shape()[1..].iter().product();
        let mut sel: Vec<i64> = crate::storage::try_vec(rows.len() * rest)?;
        for &r in rows {
            sel.extend((0..rest).map(|j| (r * rest + j) as i64));
        }
        let n = sel.len();
        self.rebase_at(value.reshape(&[-1])?, Some(Tensor::from_vec(sel, &[n])?))
    }

    /// `x[idx]` for an index tensor, as NumPy and PyTorch: a bool mask selects (see
    /// `index_mask`); int64 indices pick rows of dim 0, the result shaped
    /// `idx.shape + x.shape[1:]`. Differentiable.
    pub fn index_by(&self, idx: &Tensor) -> Result<Tensor> {
        match idx.dtype() {
            DType::Bool => self.index_mask(idx),
            d if d.is_int() => {
                let idx = &idx.cast(DType::I64)?;
                let mut shape: Vec<isize> = idx.shape().iter().map(|&d| d as isize).collect();
                shape.extend(self.shape().iter().skip(1).map(|&d| d as isize));
                self.index_select(0, &idx.reshape(&[-1])?)?.reshape(&shape)
            }
            other => Err(Error::Index(format!(
                "index: tensors used as indices must be int64 or bool, got {other}"
            ))),
        }
    }

    /// `x[items] = value` for basic indices (ints, slices, None, ...): `value` (broadcast)
    /// is written into the view, in place and outside the graph.
    pub fn index_assign_(&self, items: &[IndexItem], value: &Tensor) -> Result<()> {
        // an expanded view shares memory among its elements: refused for every key
        self.check_writable("index assignment")?;
        self.index(items)?.copy_(value)
    }

    /// `x[idx] = value` for an index tensor: a bool mask sets the entries where it is true
    /// (see `mask_put_`); int64 indices set those rows of dim 0 in order (a repeated row
    /// takes the last value), `value` broadcast to the selection's shape
    /// `idx.shape + x.shape[1:]` as in NumPy. In place and outside the graph.
    pub fn index_put_(&self, idx: &Tensor, value: &Tensor) -> Result<()> {
        let op = "index assignment";
        self.check_writable(op)?;
        match idx.dtype() {
            DType::Bool => self.mask_put_(idx, value),
            d if d.is_int() => {
                let idx = &idx.cast(DType::I64)?;
                if self.ndim() == 0 {
                    return Err(Error::Index(format!(
                        "{op}: a 0-d tensor has no dim for an index tensor to select"
                    )));
                }
                let rows: Vec<i64> = idx.reshape(&[-1])?.to_vec()?;
                let mut sel: Vec<usize> = idx.shape().to_vec();
                sel.extend(&self.shape()[1..]);
                let mut shape: Vec<isize> = vec![rows.len() as isize];
                shape.extend(self.shape()[1..].iter().map(|&d| d as isize));
                let v = value.broadcast_to(&sel)?.reshape(&shape)?;
                let tracked = self.tracked(value);
                {
                    let _g = crate::autograd::NoGradGuard::new();
                    for (k, &r) in rows.iter().enumerate() {
                        let dst = self.index(&[IndexItem::Int(r as isize)])?;
                        dst.copy_(&v.index(&[IndexItem::Int(k as isize)])?)?;
                    }
                }
                if tracked {
                    let n0 = self.shape()[0] as i64;
                    let rows: Vec<usize> = rows
                        .iter()
                        .map(|&r| r.rem_euclid(n0.max(1)) as usize)
                        .collect();
                    self.rebase_rows(&rows, v)?;
                }
                Ok(())
            }
            other => Err(Error::Index(format!(
                "{op}: tensors used as indices must be int64 or bool, got {other}"
            ))),
        }
    }

    /// Picks entries `indices` (int64 or int32, 1-D; negatives count from the end) along `dim`.
    pub fn index_select(&self, dim: isize, indices: &Tensor) -> Result<Tensor> {
        let cast;
        let indices = match Tensor::long_indices("index_select", indices)? {
            Some(c) => {
                cast = c;
                &cast
            }
            None => indices,
        };
        if indices.ndim() > 1 {
            return Err(shape_err!(
                "index_select: indices must be 1-D, got shape {}",
                fmt_shape(indices.shape())
            ));
        }
        if self.ndim() == 0 {
            return Err(shape_err!(
                "index_select: cannot index a 0-dimensional tensor"
            ));
        }
        let d = normalize_dim("index_select", dim, self.ndim())?;
        let len = self.shape()[d] as i64;
        let idx: Vec<usize> = indices
            .to_vec::<i64>()?
            .into_iter()
            .map(|i| {
                let j = if i < 0 { i + len } else { i };
                if j < 0 || j >= len {
                    Err(Error::Index(format!(
                        "index_select: index {i} is out of bounds for dim {d} with size {len}"
                    )))
                } else {
                    Ok(j as usize)
                }
            })
            .collect::<Result<_>>()?;
        // the gather and its backward (each source row gets the sum of the gradient rows
        // that took it) run where the tensor lives
        let mut out_shape = self.shape().to_vec();
        out_shape[d] = idx.len();
        let out = self.map_storage_to(&out_shape, |b, l| b.index_select(l, d, &idx))?;
        let len = self.shape()[d];
        Ok(record_higher(
            out,
            "IndexSelectBackward",
            &[self],
            Default::default(),
            move |g| {
                // d x[idx] = g added back into the picked rows (repeated indices add up)
                let mut shape = g.shape().to_vec();
                shape[d] = len;
                let gx = g.map_storage_to(&shape, |b, l| b.index_add(l, d, &idx, len))?;
                if !crate::autograd::creating_graph() {
                    return Ok(vec![Some(gx)]);
                }
                let back = Tensor::from_vec(idx.iter().map(|&i| i as i64).collect(), &[idx.len()])?;
                Ok(vec![Some(crate::autograd::linear_in(
                    gx,
                    g,
                    "IndexSelectBackwardBackward",
                    move |gg| gg.index_select(d as isize, &back),
                ))])
            },
        ))
    }

    /// index_select's adjoint as an op: a zero tensor whose dim `dim` has length `size`,
    /// with each slice `k` of this (float) tensor along `dim` added into slice
    /// `indices[k]` (repeats add up, in order). The scatter-add behind `index_add`,
    /// `scatter_add` and their kin; differentiable (its backward is `index_select`).
    pub fn index_add_rows(&self, dim: isize, indices: &Tensor, size: usize) -> Result<Tensor> {
        let cast;
        let indices = match Tensor::long_indices("index_add", indices)? {
            Some(c) => {
                cast = c;
                &cast
            }
            None => indices,
        };
        if indices.ndim() != 1 {
            return Err(shape_err!(
                "index_add: indices must be a 1-D tensor, got shape {}",
                fmt_shape(indices.shape())
            ));
        }
        if self.dtype() == DType::Bool {
            return Err(Error::DType(
                "index_add: expected a numeric source, got bool".to_string(),
            ));
        }
        if self.ndim() == 0 {
            return Err(shape_err!(
                "index_add: cannot scatter a 0-dimensional tensor"
            ));
        }
        let d = normalize_dim("index_add", dim, self.ndim())?;
        if indices.numel() != self.shape()[d] {
            return Err(shape_err!(
                "index_add: {} indices for a source with {} entries along dim {}",
                indices.numel(),
                self.shape()[d],
                d
            ));
        }
        let idx: Vec<usize> = indices
            .to_vec::<i64>()?
            .into_iter()
            .map(|i| {
                let j = if i < 0 { i + size as i64 } else { i };
                if j < 0 || j >= size as i64 {
                    Err(Error::Index(format!(
                        "index_add: index {i} is out of bounds for dim {d} with size {size}"
                    )))
                } else {
                    Ok(j as usize)
                }
            })
            .collect::<Result<_>>()?;
        let mut out_shape = self.shape().to_vec();
        out_shape[d] = size;
        if !self.dtype().is_float() {
            // integers (no gradient; they live on the host): summed exactly, wrapping as
            // PyTorch's integer adds do
            return self.index_add_ints(d, &idx, &out_shape);
        }
        let out = self.map_storage_to(&out_shape, |b, l| b.index_add(l, d, &idx, size))?;
        let back = Tensor::from_vec(
            idx.iter().map(|&i| i as i64).collect::<Vec<_>>(),
            &[idx.len()],
        )?;
        Ok(record_higher(
            out,
            "IndexAddBackward",
            &[self],
            Default::default(),
            move |g| Ok(vec![Some(g.index_select(d as isize, &back)?)]),
        ))
    }

    /// `index_add_rows` for an integer source: slices of this tensor along `d` summed into
    /// slices `idx` of a zero tensor of `out_shape` in int64 (wrapping), then cast back.
    fn index_add_ints(&self, d: usize, idx: &[usize], out_shape: &[usize]) -> Result<Tensor> {
        let src: Vec<i64> = self.cast(DType::I64)?.contiguous()?.to_vec()?;
        let inner: usize = self.shape()[d + 1..].iter().product();
        let (rows, size) = (self.shape()[d], out_shape[d]);
        let outer = if rows == 0 {
            0
        } else {
            src.len() / (rows * inner.max(1))
        };
        let mut out = vec![0i64; out_shape.iter().product()];
        for o in 0..outer {
            for (k, &j) in idx.iter().enumerate() {
                let from = (o * rows + k) * inner;
                let to = (o * size + j) * inner;
                for e in 0..inner {
                    out[to + e] = out[to + e].wrapping_add(src[from + e]);
                }
            }
        }
        Tensor::from_vec(out, out_shape)?.cast(self.dtype())
    }

    /// Index tensors as ops take them: None when already int64, an int64 copy of int32 ones
    /// (as PyTorch's index_select, gather and scatter take both), a DTypeError otherwise.
    pub(crate) fn long_indices(op: &str, indices: &Tensor) -> Result<Option<Tensor>> {
        match indices.dtype() {
            DType::I64 => Ok(None),
            DType::I32 => Ok(Some(indices.cast(DType::I64)?)),
            other => Err(Error::DType(format!(
                "{op}: indices must be int64 or int32, got {other}"
            ))),
        }
    }

    /// Joins tensors along an existing dim. As PyTorch's, a 1-D empty tensor (the legacy
    /// "nothing yet" placeholder, shape (0,)) is skipped beside tensors of more dims.
    pub fn cat(tensors: &[Tensor], dim: isize) -> Result<Tensor> {
        let legacy = |t: &Tensor| t.ndim() == 1 && t.shape()[0] == 0;
        if tensors.iter().any(legacy) && tensors.iter().any(|t| t.ndim() > 1) {
            let kept: Vec<Tensor> = tensors.iter().filter(|t| !legacy(t)).cloned().collect();
            let dt = tensors
                .iter()
                .fold(kept[0].dtype(), |d, t| d.promote(t.dtype()));
            let kept: Vec<Tensor> = kept.iter().map(|t| t.cast(dt)).collect::<Result<_>>()?;
            return Tensor::cat(&kept, dim);
        }
        let first = tensors
            .first()
            .ok_or_else(|| value_err!("cat: expected a non-empty list of tensors"))?;
        let dt = tensors
            .iter()
            .fold(first.dtype(), |d, t| d.promote(t.dtype()));
        let nd = first.ndim();
        if nd == 0 {
            return Err(shape_err!(
                "cat: zero-dimensional tensors cannot be concatenated; use stack"
            ));
        }
        let d = normalize_dim("cat", dim, nd)?;
        for (i, t) in tensors.iter().enumerate() {
            let ok = t.ndim() == nd && (0..nd).all(|j| j == d || t.shape()[j] == first.shape()[j]);
            if !ok {
                return Err(shape_err!(
                    "cat: tensor {} has shape {} but tensor 0 has shape {} (sizes must match except in dim {})",
                    i,
                    fmt_shape(t.shape()),
                    fmt_shape(first.shape()),
                    d
                ));
            }
        }
        let parts: Vec<Tensor> = tensors.iter().map(|t| t.cast(dt)).collect::<Result<_>>()?;
        let sizes: Vec<usize> = parts.iter().map(|t| t.shape()[d]).collect();
        let mut out_shape = first.shape().to_vec();
        out_shape[d] = sizes.iter().sum();
        let out = {
            let guards: Vec<_> = parts.iter().map(|t| t.storage_guard()).collect();
            let views: Vec<(&Buffer, &Layout)> = guards
                .iter()
                .zip(&parts)
                .map(|(g, t)| (&**g, t.layout()))
                .collect();
            let (buf, layout) = Buffer::cat(&views, d, &out_shape)?;
            Tensor::from_buffer_layout(buf, layout)
        };
        let refs: Vec<&Tensor> = parts.iter().collect();
        Ok(record_higher(
            out,
            "CatBackward",
            &refs,
            Default::default(),
            move |g| {
                // d cat = the matching slice of g for each input
                let mut start = 0;
                let mut grads = Vec::with_capacity(sizes.len());
                for &sz in &sizes {
                    grads.push(Some(g.narrow(d as isize, start, sz)?));
                    start += sz;
                }
                Ok(grads)
            },
        ))
    }

    /// Joins tensors of one shape along a new dim.
    pub fn stack(tensors: &[Tensor], dim: isize) -> Result<Tensor> {
        let first = tensors
            .first()
            .ok_or_else(|| value_err!("stack: expected a non-empty list of tensors"))?;
        for (i, t) in tensors.iter().enumerate() {
            if t.shape() != first.shape() {
                return Err(shape_err!(
                    "stack: tensor {} has shape {} but tensor 0 has shape {} (all must match)",
                    i,
                    fmt_shape(t.shape()),
                    fmt_shape(first.shape())
                ));
            }
        }
        let d = normalize_dim("stack", dim, first.ndim() + 1)? as isize;
        let parts: Vec<Tensor> = tensors
            .iter()
            .map(|t| t.unsqueeze(d))
            .collect::<Result<_>>()?;
        Tensor::cat(&parts, d)
    }

    /// One-hot encoding of int64 labels: shape (..., num_classes), int64. `num_classes`
    /// `None` means max(label) + 1.
    pub fn one_hot(&self, num_classes: Option<usize>) -> Result<Tensor> {
        self.expect_cpu("one_hot")?;
        if self.dtype() != DType::I64 {
            return Err(Error::DType(format!(
                "one_hot: labels must be int64, got {}",
                self.dtype()
            )));
        }
        let labels: Vec<i64> = self.to_vec()?;
        let c = match num_classes {
            Some(c) => c,
            None => labels
                .iter()
                .copied()
                .max()
                .map(|m| (m.max(-1) + 1) as usize)
                .unwrap_or(0),
        };
        let mut shape = self.shape().to_vec();
        shape.push(c);
        let mut v: Vec<i64> = try_filled(crate::layout::checked_numel(&shape)?, 0)?;
        for (i, &l) in labels.iter().enumerate() {
            if l < 0 || l as usize >= c {
                return Err(Error::Index(format!(
                    "one_hot: label {l} is out of range for {c} classes"
                )));
            }
            v[i * c + l as usize] = 1;
        }
        Tensor::from_vec(v, &shape)
    }
}
