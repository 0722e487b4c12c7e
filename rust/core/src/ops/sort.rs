//! Sorting along a dim: `argsort`, `sort`, `topk`, and `take_along_dim` (their values).

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::layout::{fmt_shape, normalize_dim};
use crate::shape_err;
use crate::tensor::Tensor;
use std::cmp::Ordering;

/// Ascending order with NaN above every number (PyTorch's sort); stable among equals.
fn order(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// Elements sorted in one piece; a longer lane is sorted in runs of this size that are
/// then merged, so a cancel request is seen every few milliseconds.
const SORT_RUN: usize = 1 << 18;

/// Appends, for each lane of `n` values, the positions that sort it (stable), checking
/// for a cancel request between lanes and between the runs and merges of a long lane.
fn sort_lanes<T>(
    values: &[T],
    n: usize,
    descending: bool,
    cmp: impl Fn(&T, &T) -> Ordering,
    out: &mut Vec<i64>,
) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    // descending and still stable: compare the other way round, keep ties in order
    let before = |lane: &[T], i: usize, j: usize| {
        if descending {
            cmp(&lane[j], &lane[i])
        } else {
            cmp(&lane[i], &lane[j])
        }
    };
    let mut row: Vec<usize> = crate::storage::try_vec(n)?;
    let mut spare: Vec<usize> = Vec::new();
    let mut since_check = 0;
    for lane in values.chunks(n) {
        since_check += n;
        if since_check >= SORT_RUN {
            crate::threads::check_cancel("sort")?;
            since_check = 0;
        }
        row.clear();
        row.extend(0..n);
        if n <= SORT_RUN {
            row.sort_by(|&i, &j| before(lane, i, j));
        } else {
            for run in row.chunks_mut(SORT_RUN) {
                crate::threads::check_cancel("sort")?;
                run.sort_by(|&i, &j| before(lane, i, j));
            }
            if spare.len() != n {
                spare = crate::storage::try_filled(n, 0)?;
            }
            let mut width = SORT_RUN;
            while width < n {
                for start in (0..n).step_by(2 * width) {
                    crate::threads::check_cancel("sort")?;
                    let (mid, end) = ((start + width).min(n), (start + 2 * width).min(n));
                    let (mut i, mut j, mut k) = (start, mid, start);
                    while i < mid && j < end {
                        // the right element goes first only when strictly before: stable
                        if before(lane, row[j], row[i]) == Ordering::Less {
                            spare[k] = row[j];
                            j += 1;
                        } else {
                            spare[k] = row[i];
                            i += 1;
                        }
                        k += 1;
                    }
                    spare[k..k + mid - i].copy_from_slice(&row[i..mid]);
                    let k = k + mid - i;
                    spare[k..end].copy_from_slice(&row[j..end]);
                }
                std::mem::swap(&mut row, &mut spare);
                width *= 2;
            }
        }
        out.extend(row.iter().map(|&i| i as i64));
    }
    Ok(())
}

impl Tensor {
    /// Indices (int64, on the host) that sort this tensor along `dim`, ascending or
    /// `descending`. Stable: equal values keep their order either way. NaN sorts above
    /// every number, as in PyTorch. A GPU tensor is read back to be sorted.
    pub fn argsort(&self, dim: isize, descending: bool) -> Result<Tensor> {
        if self.ndim() == 0 {
            return Tensor::from_vec(vec![0i64], &[]);
        }
        let d = normalize_dim("argsort", dim, self.ndim())?;
        let last = self.ndim() as isize - 1;
        // the sorted dim last and contiguous: one row per lane
        let moved = self.detach().transpose(d as isize, last)?.contiguous()?;
        let n = moved.shape()[moved.ndim() - 1];
        let mut idx: Vec<i64> = crate::storage::try_vec(moved.numel())?;
        // int64 compared as integers (exact past 2**53), the rest through f64
        if moved.dtype() == DType::I64 {
            sort_lanes(
                &moved.to_vec::<i64>()?,
                n,
                descending,
                |a, b| a.cmp(b),
                &mut idx,
            )?;
        } else {
            sort_lanes(
                &moved.to_f64_vec()?,
                n,
                descending,
                |a, b| order(*a, *b),
                &mut idx,
            )?;
        }
        Tensor::from_vec(idx, moved.shape())?
            .transpose(d as isize, last)?
            .contiguous()
    }

    /// The entries of this tensor at `indices` (int64) along `dim`: `indices` has this
    /// tensor's shape except along `dim`. Differentiable (the gradient is scattered back).
    pub fn take_along_dim(&self, indices: &Tensor, dim: isize) -> Result<Tensor> {
        if indices.dtype() != DType::I64 {
            return Err(Error::DType(format!(
                "take_along_dim: indices must be int64, got {}",
                indices.dtype()
            )));
        }
        if self.ndim() == 0 {
            return Ok(self.clone());
        }
        let d = normalize_dim("take_along_dim", dim, self.ndim())?;
        let same_elsewhere = indices.ndim() == self.ndim()
            && (0..self.ndim()).all(|i| i == d || indices.shape()[i] == self.shape()[i]);
        if !same_elsewhere {
            return Err(shape_err!(
                "take_along_dim: indices of shape {} do not match the tensor's shape {} outside dim {}",
                fmt_shape(indices.shape()),
                fmt_shape(self.shape()),
                d
            ));
        }
        let last = self.ndim() as isize - 1;
        let n = self.shape()[d];
        // the dim last (no transpose, no graph node, when it already is)
        let swap = |t: &Tensor| -> Result<Tensor> {
            if d as isize == last {
                Ok(t.clone())
            } else {
                t.transpose(d as isize, last)
            }
        };
        let xt = swap(self)?;
        let it = swap(indices)?.contiguous()?;
        let k = it.shape()[it.ndim() - 1];
        let picked: Vec<i64> = it.to_vec()?;
        let mut flat = Vec::with_capacity(picked.len());
        for (pos, &i) in picked.iter().enumerate() {
            let i = if i < 0 { i + n as i64 } else { i };
            if i < 0 || i >= n as i64 {
                return Err(Error::Index(format!(
                    "take_along_dim: index {} is out of bounds for dim {} of size {}",
                    picked[pos], d, n
                )));
            }
            flat.push((pos / k.max(1)) as i64 * n as i64 + i);
        }
        let count = flat.len();
        let shape_t: Vec<isize> = it.shape().iter().map(|&s| s as isize).collect();
        swap(
            &xt.reshape(&[-1])?
                .index_select(0, &Tensor::from_vec(flat, &[count])?)?
                .reshape(&shape_t)?,
        )
    }

    /// PyTorch's `gather`: `out[i][j] = self[i][index[i][j]]` for `dim` 1 (and so on);
    /// `index` has this tensor's number of dims and sizes no larger outside `dim`.
    /// Differentiable.
    pub fn gather_dim(&self, dim: isize, index: &Tensor) -> Result<Tensor> {
        if let Some(long) = Tensor::long_indices("gather", index)? {
            return self.gather_dim(dim, &long);
        }
        if self.ndim() == 0 {
            return self.take_along_dim(index, 0);
        }
        let d = normalize_dim("gather", dim, self.ndim())?;
        if index.ndim() != self.ndim() {
            return Err(shape_err!(
                "gather: index of shape {} must have as many dims as the input of shape {}",
                fmt_shape(index.shape()),
                fmt_shape(self.shape())
            ));
        }
        let mut x = self.clone();
        for i in 0..self.ndim() {
            if i == d {
                continue;
            }
            let (want, have) = (index.shape()[i], self.shape()[i]);
            if want > have {
                return Err(shape_err!(
                    "gather: index of shape {} is larger than the input of shape {} in dim {}",
                    fmt_shape(index.shape()),
                    fmt_shape(self.shape()),
                    i
                ));
            }
            if want < have {
                x = x.narrow(i as isize, 0, want)?;
            }
        }
        x.take_along_dim(index, d as isize)
    }

    /// (values, indices) of this tensor sorted along `dim` (see [`Tensor::argsort`]).
    pub fn sort(&self, dim: isize, descending: bool) -> Result<(Tensor, Tensor)> {
        let idx = self.argsort(dim, descending)?;
        Ok((self.take_along_dim(&idx, dim)?, idx))
    }

    /// (values, indices) of the `k` largest (or smallest) entries along `dim`, in order.
    pub fn topk(&self, k: usize, dim: isize, largest: bool) -> Result<(Tensor, Tensor)> {
        let n = if self.ndim() == 0 {
            1
        } else {
            self.shape()[normalize_dim("topk", dim, self.ndim())?]
        };
        if k > n {
            return Err(Error::Index(format!(
                "topk: k = {k} is more than the {n} entries along dim {dim} of shape {}",
                fmt_shape(self.shape())
            )));
        }
        if self.ndim() == 0 {
            return self.sort(0, largest);
        }
        let idx = self
            .argsort(dim, largest)?
            .narrow(dim, 0, k)?
            .contiguous()?;
        Ok((self.take_along_dim(&idx, dim)?, idx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argsort_is_stable_with_nan_last_ascending_and_first_descending() {
        let x = Tensor::from_vec(vec![2.0f32, f32::NAN, 1.0, 2.0, -0.5], &[5]).unwrap();
        let up: Vec<i64> = x.argsort(0, false).unwrap().to_vec().unwrap();
        assert_eq!(up, vec![4, 2, 0, 3, 1]);
        let down: Vec<i64> = x.argsort(0, true).unwrap().to_vec().unwrap();
        assert_eq!(down, vec![1, 0, 3, 2, 4]);
    }

    #[test]
    fn topk_along_dim_0_of_a_matrix() {
        let x = Tensor::from_vec(vec![1.0f32, 9.0, 5.0, 3.0, 7.0, 4.0], &[3, 2]).unwrap();
        let (v, i) = x.topk(2, 0, true).unwrap();
        assert_eq!(v.shape(), &[2, 2]);
        assert_eq!(v.to_vec::<f32>().unwrap(), vec![7.0, 9.0, 5.0, 4.0]);
        assert_eq!(i.to_vec::<i64>().unwrap(), vec![2, 0, 1, 2]);
    }
}
