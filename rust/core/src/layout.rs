//! Shapes, strides and broadcasting: the part of a tensor that says where its elements are.

use crate::error::{Error, Result};
use crate::shape_err;
use smallvec::SmallVec;

/// Dimension sizes; four inline dims cover the usual tensors without a heap allocation.
pub type Shape = SmallVec<[usize; 4]>;
/// Element strides (may be 0 for broadcast dims, negative for reversed slices).
pub type Strides = SmallVec<[isize; 4]>;

/// Formats a shape the way NumPy prints it: `(2, 3)`, `(5,)`, `()`.
pub fn fmt_shape(shape: &[usize]) -> String {
    match shape.len() {
        0 => "()".to_string(),
        1 => format!("({},)", shape[0]),
        _ => {
            let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            format!("({})", parts.join(", "))
        }
    }
}

/// The largest extent a shape may have: its dims multiplied with 0 counted as 1. Below
/// 2**60, every element count, byte size (8-byte dtypes) and stride of it fits in `isize`,
/// so no later size arithmetic (strides, spans, NumPy's array header) can overflow, even for
/// an empty tensor such as `zeros(0).view(-1, 1, 2**62)`.
pub const MAX_EXTENT: usize = 1 << 60;

/// Number of elements of a shape, refusing shapes whose extent (see [`MAX_EXTENT`]) is too
/// large for any tensor, empty or not. Every tensor and every shape-growing view (reshape,
/// expand) passes through here.
pub fn checked_numel(shape: &[usize]) -> Result<usize> {
    let extent = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d.max(1)))
        .filter(|&e| e <= MAX_EXTENT);
    if extent.is_none() {
        return Err(Error::Memory(format!(
            "shape {} is too large for a tensor (its dims multiply past 2**60)",
            fmt_shape(shape)
        )));
    }
    Ok(shape.iter().product())
}

/// Row-major (C-order) strides of a shape.
pub fn contiguous_strides(shape: &[usize]) -> Strides {
    let mut strides: Strides = SmallVec::from_elem(0, shape.len());
    let mut acc = 1isize;
    for i in (0..shape.len()).rev() {
        strides[i] = acc;
        acc = acc.wrapping_mul(shape[i].max(1) as isize);
    }
    strides
}

/// Normalizes a possibly negative dim against `ndim` (as Python does), naming the op on error.
pub fn normalize_dim(op: &str, dim: isize, ndim: usize) -> Result<usize> {
    let n = ndim.max(1) as isize;
    let d = if dim < 0 { dim + n } else { dim };
    if d < 0 || d >= n {
        return Err(Error::Index(format!(
            "{op}: dim {dim} is out of range for a tensor with {ndim} dimension(s)"
        )));
    }
    Ok(d as usize)
}

/// The broadcast shape of two shapes (NumPy rules), naming the op on error.
pub fn broadcast_shapes(op: &str, a: &[usize], b: &[usize]) -> Result<Shape> {
    let n = a.len().max(b.len());
    let mut out: Shape = SmallVec::from_elem(0, n);
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(shape_err!(
                "{op}: shapes {} and {} cannot be broadcast together",
                fmt_shape(a),
                fmt_shape(b)
            ));
        };
    }
    Ok(out)
}

/// Shape, strides (in elements) and offset into the storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Size of each dimension.
    pub shape: Shape,
    /// Step in elements between neighbours along each dimension.
    pub strides: Strides,
    /// Index of the first element in the storage.
    pub offset: usize,
}

impl Layout {
    /// A C-contiguous layout starting at offset 0.
    pub fn contiguous(shape: &[usize]) -> Layout {
        Layout {
            shape: SmallVec::from_slice(shape),
            strides: contiguous_strides(shape),
            offset: 0,
        }
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the elements lie in C order with no gaps (size-1 dims may have any stride).
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1isize;
        for i in (0..self.shape.len()).rev() {
            if self.shape[i] == 1 {
                continue;
            }
            if self.strides[i] != expected {
                return self.numel() == 0;
            }
            expected *= self.shape[i] as isize;
        }
        true
    }

    /// Whether two of its elements may share one storage location: a stride-0 dim of more
    /// than one element (as `expand` makes), or dims that do not nest (overlapping
    /// `unfold` windows).
    /// Conservative: with the dims of size > 1 sorted by stride, each stride must pass the
    /// farthest offset the smaller ones reach, which every layout the API builds without
    /// overlap satisfies.
    pub fn has_internal_overlap(&self) -> bool {
        if self.shape.contains(&0) {
            return false;
        }
        let mut dims: SmallVec<[(usize, usize); 4]> = self
            .shape
            .iter()
            .zip(&self.strides)
            .filter(|(&n, _)| n > 1)
            .map(|(&n, &s)| (s.unsigned_abs(), n))
            .collect();
        dims.sort_unstable();
        let mut reach = 0usize;
        for (s, n) in dims {
            if s <= reach || s == 0 {
                return true;
            }
            reach = reach.saturating_add(s.saturating_mul(n - 1));
        }
        false
    }

    /// This layout viewed with `shape` broadcast to `target` (stride 0 on stretched dims).
    pub fn broadcast_to(&self, op: &str, target: &[usize]) -> Result<Layout> {
        checked_numel(target)?;
        let n = target.len();
        if self.ndim() > n {
            return Err(shape_err!(
                "{op}: cannot broadcast shape {} to {}",
                fmt_shape(&self.shape),
                fmt_shape(target)
            ));
        }
        let lead = n - self.ndim();
        let mut strides: Strides = SmallVec::from_elem(0, n);
        for i in 0..n {
            if i < lead {
                continue;
            }
            let d = self.shape[i - lead];
            if d == target[i] {
                strides[i] = self.strides[i - lead];
            } else if d == 1 {
                strides[i] = 0;
            } else {
                return Err(shape_err!(
                    "{op}: cannot broadcast shape {} to {}",
                    fmt_shape(&self.shape),
                    fmt_shape(target)
                ));
            }
        }
        Ok(Layout {
            shape: SmallVec::from_slice(target),
            strides,
            offset: self.offset,
        })
    }

    /// The layout with two dims swapped.
    pub fn transpose(&self, d0: usize, d1: usize) -> Layout {
        let mut l = self.clone();
        l.shape.swap(d0, d1);
        l.strides.swap(d0, d1);
        l
    }

    /// The layout with dims reordered (`perm` must be a permutation, checked by the caller).
    pub fn permute(&self, perm: &[usize]) -> Layout {
        Layout {
            shape: perm.iter().map(|&p| self.shape[p]).collect(),
            strides: perm.iter().map(|&p| self.strides[p]).collect(),
            offset: self.offset,
        }
    }

    /// A view with a new shape, when the strides allow one without copying.
    ///
    /// Works for contiguous layouts and, more generally, whenever each run of merged dims is
    /// itself contiguous (the same rule PyTorch's `view` follows).
    pub fn reshape_view(&self, new_shape: &[usize]) -> Option<Layout> {
        if self.is_contiguous() {
            let mut l = Layout::contiguous(new_shape);
            l.offset = self.offset;
            return Some(l);
        }
        // Group old dims into chunks that are contiguous among themselves, then split them.
        let old: Vec<(usize, isize)> = self
            .shape
            .iter()
            .copied()
            .zip(self.strides.iter().copied())
            .filter(|(d, _)| *d != 1)
            .collect();
        let mut new_strides: Strides = SmallVec::from_elem(0, new_shape.len());
        let mut oi = 0;
        let mut ni = 0;
        while ni < new_shape.len() || oi < old.len() {
            // skip size-1 new dims
            if ni < new_shape.len() && new_shape[ni] == 1 {
                new_strides[ni] = 1;
                ni += 1;
                continue;
            }
            if oi >= old.len() || ni >= new_shape.len() {
                return None;
            }
            // take old dims until their product is contiguous and matches new dims' product
            let chunk_start = oi;
            let mut old_prod = old[oi].0;
            oi += 1;
            let mut new_dims = vec![ni];
            let mut new_prod = new_shape[ni];
            ni += 1;
            loop {
                if old_prod == new_prod {
                    break;
                }
                if old_prod < new_prod {
                    if oi >= old.len() {
                        return None;
                    }
                    // merging old dims requires them to be contiguous with each other
                    if old[oi - 1].1 != old[oi].1 * old[oi].0 as isize {
                        return None;
                    }
                    old_prod *= old[oi].0;
                    oi += 1;
                } else {
                    if ni >= new_shape.len() {
                        return None;
                    }
                    if new_shape[ni] != 1 {
                        new_dims.push(ni);
                    } else {
                        new_strides[ni] = 1;
                    }
                    new_prod *= new_shape[ni];
                    ni += 1;
                }
            }
            // innermost stride of the chunk
            let mut stride = old[oi - 1].1;
            let _ = chunk_start;
            for &d in new_dims.iter().rev() {
                new_strides[d] = stride;
                stride *= new_shape[d] as isize;
            }
        }
        Some(Layout {
            shape: SmallVec::from_slice(new_shape),
            strides: new_strides,
            offset: self.offset,
        })
    }

    /// The storage range of a contiguous layout (empty for an empty one, wherever its offset).
    pub fn contiguous_range(&self) -> std::ops::Range<usize> {
        let n = self.numel();
        if n == 0 {
            0..0
        } else {
            self.offset..self.offset + n
        }
    }

    /// Calls `f(storage_index)` for every element in C order.
    #[inline]
    pub fn for_each_index(&self, mut f: impl FnMut(usize)) {
        let n = self.ndim();
        if self.numel() == 0 {
            return;
        }
        if n == 0 {
            f(self.offset);
            return;
        }
        let inner = self.shape[n - 1];
        let inner_stride = self.strides[n - 1];
        let mut idx: SmallVec<[usize; 6]> = SmallVec::from_elem(0, n);
        let mut base = self.offset as isize;
        loop {
            let mut p = base;
            for _ in 0..inner {
                f(p as usize);
                p += inner_stride;
            }
            // odometer over outer dims
            let mut d = n - 1;
            loop {
                if d == 0 {
                    return;
                }
                d -= 1;
                idx[d] += 1;
                base += self.strides[d];
                if idx[d] < self.shape[d] {
                    break;
                }
                base -= self.strides[d] * self.shape[d] as isize;
                idx[d] = 0;
            }
        }
    }

    /// The lowest and one past the highest storage index this layout reads (`None` when it
    /// has no elements).
    pub fn span(&self) -> Option<(usize, usize)> {
        if self.numel() == 0 {
            return None;
        }
        let (mut lo, mut hi) = (self.offset as isize, self.offset as isize);
        for (&n, &s) in self.shape.iter().zip(&self.strides) {
            let reach = s * (n as isize - 1);
            if reach < 0 {
                lo += reach;
            } else {
                hi += reach;
            }
        }
        Some((lo as usize, hi as usize + 1))
    }

    /// Copies the elements of `src` under this layout into a new C-ordered vector.
    /// An expanded view may name far more elements than its storage holds, so the copy is
    /// allocated fallibly (MemoryError, never an abort).
    pub fn gather<T: Copy>(&self, src: &[T]) -> Result<Vec<T>> {
        let n = self.numel();
        if n == 0 {
            return Ok(Vec::new()); // an empty view's offset may point past the storage
        }
        let mut out = crate::storage::try_vec(n)?;
        if self.is_contiguous() {
            out.extend_from_slice(&src[self.offset..self.offset + n]);
        } else if let Some(d) = self.unit_stride_dim() {
            self.gather_transposed(src, d, &mut out.spare_capacity_mut()[..n]);
            // SAFETY: gather_transposed wrote all n elements
            unsafe { out.set_len(n) };
        } else {
            self.for_each_index(|i| out.push(src[i]));
        }
        Ok(out)
    }

    /// For a transposed view (a dim before the last has stride 1, the last does not, both
    /// long enough to tile): that dim. Gathering it element by element reads the source a
    /// stride apart; by tiles, each source line is used for a whole tile row.
    fn unit_stride_dim(&self) -> Option<usize> {
        let n = self.ndim();
        if n < 2 || self.strides[n - 1] == 1 || self.shape[n - 1] < 8 {
            return None;
        }
        (0..n - 1)
            .rev()
            .find(|&d| self.strides[d] == 1 && self.shape[d] >= 8)
    }

    /// `gather` for a layout whose dim `d` has stride 1 (see `unit_stride_dim`): a tiled copy
    /// over (dim d, last dim) for each index of the other dims, writing all of `dst` (numel).
    fn gather_transposed<T: Copy>(
        &self,
        src: &[T],
        d: usize,
        dst: &mut [std::mem::MaybeUninit<T>],
    ) {
        let n = self.ndim();
        let numel = self.numel();
        let out_strides = contiguous_strides(&self.shape);
        // the other dims, walked with an odometer: (extent, source stride, output stride)
        let outer: SmallVec<[(usize, isize, usize); 6]> = (0..n - 1)
            .filter(|&k| k != d)
            .map(|k| (self.shape[k], self.strides[k], out_strides[k] as usize))
            .collect();
        let (rows, cols) = (self.shape[d], self.shape[n - 1]);
        let (col_stride, row_out) = (self.strides[n - 1], out_strides[d] as usize);
        assert_eq!(dst.len(), numel, "gather: destination length");
        let dst = dst.as_mut_ptr();
        // bounds checked once: the walk reads only inside the span and writes 0..numel
        let (lo, hi) = self.span().expect("gather: a non-empty layout");
        assert!(
            lo < hi && hi <= src.len(),
            "gather: layout outside its storage"
        );
        let src = src.as_ptr();
        let mut idx: SmallVec<[usize; 6]> = SmallVec::from_elem(0, outer.len());
        let (mut src_base, mut out_base) = (self.offset as isize, 0usize);
        loop {
            // SAFETY: the source indices are inside the span checked above, the output
            // indices below numel (the walk covers the shape once)
            unsafe {
                copy_transposed(
                    (src.offset(src_base), col_stride),
                    (dst.add(out_base) as *mut T, row_out),
                    rows,
                    cols,
                );
            }
            // odometer over the other dims
            let mut k = outer.len();
            loop {
                if k == 0 {
                    return;
                }
                k -= 1;
                let (extent, ss, os) = outer[k];
                idx[k] += 1;
                src_base += ss;
                out_base += os;
                if idx[k] < extent {
                    break;
                }
                src_base -= ss * extent as isize;
                out_base -= os * extent;
                idx[k] = 0;
            }
        }
    }
}

/// `dst[i * dst_rs + j] = src[i + j * src_cs]` for i < rows, j < cols: a copy from a source
/// whose rows are unit-stride columns (a transposed view) by 32 x 32 tiles, so each source
/// line serves a whole tile row instead of one element.
///
/// # Safety
/// Every source position read must hold an initialized `T` and every destination position
/// be writable.
pub(crate) unsafe fn copy_transposed<T: Copy>(
    (src, src_cs): (*const T, isize),
    (dst, dst_rs): (*mut T, usize),
    rows: usize,
    cols: usize,
) {
    const TILE: usize = 32;
    for i0 in (0..rows).step_by(TILE) {
        for j0 in (0..cols).step_by(TILE) {
            for i in i0..(i0 + TILE).min(rows) {
                for j in j0..(j0 + TILE).min(cols) {
                    // SAFETY: as the caller promises
                    unsafe {
                        dst.add(i * dst_rs + j)
                            .write(*src.offset(i as isize + j as isize * src_cs))
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_covers_the_elements_a_view_reads() {
        let base = Layout::contiguous(&[4, 6]);
        assert_eq!(base.span(), Some((0, 24)));
        // column 2 of rows 1..3, reversed: storage indices 20, 14, 8
        let v = Layout {
            shape: SmallVec::from_slice(&[3]),
            strides: SmallVec::from_slice(&[-6]),
            offset: 20,
        };
        assert_eq!(v.span(), Some((8, 21)));
        let bcast = Layout {
            shape: SmallVec::from_slice(&[5, 2]),
            strides: SmallVec::from_slice(&[0, 1]),
            offset: 3,
        };
        assert_eq!(bcast.span(), Some((3, 5)));
        assert_eq!(Layout::contiguous(&[0, 3]).span(), None);
    }

    /// The tiled gather of transposed views equals the element-by-element one, for
    /// permutations of 2 to 4 dims, tile remainders, a batch dim and negative strides.
    #[test]
    fn tiled_gather_of_transposed_views_matches_the_plain_walk() {
        let shapes: [&[usize]; 5] = [
            &[40, 33],
            &[8, 8],
            &[3, 37, 70],
            &[2, 9, 3, 65],
            &[65, 1, 9],
        ];
        for shape in shapes {
            let base = Layout::contiguous(shape);
            let src: Vec<u32> = (0..base.numel() as u32).collect();
            let n = shape.len();
            for a in 0..n {
                for b in a + 1..n {
                    let mut views = vec![base.transpose(a, b)];
                    // a reversed last dim: a negative stride on the tiled axis
                    let t = base.transpose(a, b);
                    let last = t.shape[n - 1];
                    let mut r = t.clone();
                    r.offset =
                        (t.offset as isize + t.strides[n - 1] * (last as isize - 1)) as usize;
                    r.strides[n - 1] = -t.strides[n - 1];
                    views.push(r);
                    for v in views {
                        let mut plain = Vec::new();
                        v.for_each_index(|i| plain.push(src[i]));
                        assert_eq!(
                            v.gather(&src).unwrap(),
                            plain,
                            "shape {shape:?} swap {a},{b}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn broadcast_rules() {
        assert_eq!(
            broadcast_shapes("t", &[4, 1, 5], &[3, 5])
                .unwrap()
                .as_slice(),
            &[4, 3, 5]
        );
        assert_eq!(broadcast_shapes("t", &[], &[2]).unwrap().as_slice(), &[2]);
        let e = broadcast_shapes("add", &[2, 3], &[4]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "add: shapes (2, 3) and (4,) cannot be broadcast together"
        );
    }

    #[test]
    fn contiguity_and_strides() {
        let l = Layout::contiguous(&[2, 3, 4]);
        assert_eq!(l.strides.as_slice(), &[12, 4, 1]);
        assert!(l.is_contiguous());
        assert!(!l.transpose(0, 2).is_contiguous());
        assert!(Layout::contiguous(&[0, 3]).is_contiguous());
    }

    #[test]
    fn gather_transposed() {
        let l = Layout::contiguous(&[2, 3]).transpose(0, 1);
        let src = [0, 1, 2, 3, 4, 5];
        assert_eq!(l.gather(&src).unwrap(), vec![0, 3, 1, 4, 2, 5]);
    }

    #[test]
    fn reshape_views() {
        let l = Layout::contiguous(&[2, 3, 4]);
        assert_eq!(l.reshape_view(&[6, 4]).unwrap().strides.as_slice(), &[4, 1]);
        // a transposed matrix cannot be flattened without a copy
        let t = Layout::contiguous(&[2, 3]).transpose(0, 1);
        assert!(t.reshape_view(&[6]).is_none());
        // but splitting a dim of a transposed matrix is a view
        let t2 = Layout::contiguous(&[4, 3]).transpose(0, 1); // shape (3, 4), strides (1, 3)
        let v = t2.reshape_view(&[3, 2, 2]).unwrap();
        assert_eq!(v.strides.as_slice(), &[1, 6, 3]);
        let b = Layout::contiguous(&[1, 3])
            .broadcast_to("t", &[2, 3])
            .unwrap();
        assert_eq!(b.strides.as_slice(), &[0, 1]);
    }

    #[test]
    fn broadcast_layout() {
        let l = Layout::contiguous(&[3, 1]);
        let b = l.broadcast_to("t", &[2, 3, 4]).unwrap();
        assert_eq!(b.strides.as_slice(), &[0, 1, 0]);
        let src = [10, 20, 30];
        assert_eq!(&b.gather(&src).unwrap()[..5], &[10, 10, 10, 10, 20]);
    }
}
