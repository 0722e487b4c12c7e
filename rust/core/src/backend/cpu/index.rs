//! Host gathers: index_select and its backward (rows added back), and concatenation.

use super::contig;
use crate::dtype::{Element, Float};
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::storage::{try_filled, try_vec, BufferElement, CpuStorage};

fn select_rows<T: Copy>(v: &[T], l: &Layout, dim: usize, idx: &[usize]) -> Result<Vec<T>> {
    let s = contig(v, l)?;
    let shape = &l.shape;
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    let mut out: Vec<T> = try_vec(outer * idx.len() * inner)?;
    for o in 0..outer {
        for &i in idx {
            let base = (o * shape[dim] + i) * inner;
            out.extend_from_slice(&s[base..base + inner]);
        }
    }
    Ok(out)
}

pub(crate) fn index_select(
    s: &CpuStorage,
    l: &Layout,
    dim: usize,
    idx: &[usize],
) -> Result<CpuStorage> {
    Ok(crate::each_storage!(s, v => select_rows(v, l, dim, idx)?))
}

fn add_rows<T: Float>(
    g: &[T],
    l: &Layout,
    dim: usize,
    idx: &[usize],
    size: usize,
) -> Result<Vec<T>> {
    let gv = contig(g, l)?;
    let shape = &l.shape;
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    let mut buf: Vec<T> = try_filled(outer * size * inner, T::zero())?;
    for o in 0..outer {
        for (k, &i) in idx.iter().enumerate() {
            let dst = (o * size + i) * inner;
            let src = (o * idx.len() + k) * inner;
            for j in 0..inner {
                buf[dst + j] += gv[src + j];
            }
        }
    }
    Ok(buf)
}

pub(crate) fn index_add(
    g: &CpuStorage,
    l: &Layout,
    dim: usize,
    idx: &[usize],
    size: usize,
) -> Result<CpuStorage> {
    match g {
        CpuStorage::F32(v) => Ok(CpuStorage::F32(add_rows(v, l, dim, idx, size)?)),
        CpuStorage::F64(v) => Ok(CpuStorage::F64(add_rows(v, l, dim, idx, size)?)),
        other => Err(Error::DType(format!(
            "index_select backward: expected a float gradient, got {}",
            other.dtype()
        ))),
    }
}

fn join<T: Element>(parts: &[(&[T], &Layout)], dim: usize, out_shape: &[usize]) -> Result<Vec<T>> {
    let outer: usize = out_shape[..dim].iter().product();
    let inner: usize = out_shape[dim + 1..].iter().product();
    let total: usize = out_shape.iter().product();
    let mut v: Vec<T> = try_filled(total, T::zero())?;
    let row = out_shape[dim] * inner;
    let mut at = 0;
    for (s, l) in parts {
        let s = contig(s, l)?;
        let w = l.shape[dim] * inner;
        for o in 0..outer {
            v[o * row + at..o * row + at + w].copy_from_slice(&s[o * w..(o + 1) * w]);
        }
        at += w;
    }
    Ok(v)
}

pub(crate) fn cat(
    parts: &[(&CpuStorage, &Layout)],
    dim: usize,
    out_shape: &[usize],
) -> Result<CpuStorage> {
    fn typed<T: BufferElement>(
        _like: &[T],
        parts: &[(&CpuStorage, &Layout)],
        dim: usize,
        out_shape: &[usize],
    ) -> Result<CpuStorage> {
        let mut xs = Vec::with_capacity(parts.len());
        for (s, l) in parts {
            let v = T::of(s).ok_or_else(|| {
                Error::DType(format!(
                    "cat: parts of one dtype expected, got {} and {}",
                    T::DTYPE,
                    s.dtype()
                ))
            })?;
            xs.push((v, *l));
        }
        Ok(T::host(join(&xs, dim, out_shape)?))
    }
    let Some((first, _)) = parts.first() else {
        return Err(Error::Value("cat: no parts".into()));
    };
    crate::with_storage!(first, v => typed(v, parts, dim, out_shape))
}
