//! Gathers, scatter-sums and concatenation.

use super::*;

/// out = x.index_select(dim, idx) for in-range, non-negative indices (checked by the
/// caller), x a contiguous run of `shape` from `offset`.
pub(crate) fn launch_gather(
    x: &GpuBuffer,
    offset: usize,
    shape: &[usize],
    dim: usize,
    idx: &[usize],
) -> Result<GpuBuffer> {
    let ctx = gpu::context()?;
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    let n = outer * idx.len() * inner;
    check_u32("index_select", n)?;
    check_u32("index_select", shape.iter().product::<usize>() + offset)?;
    let out = ctx.alloc(n)?;
    if n > 0 {
        let (groups, row) = ctx.grid(n, 64)?;
        let p = GatherParams {
            n: n as u32,
            count: idx.len() as u32,
            size: shape[dim] as u32,
            inner: inner as u32,
            row,
            x_offset: offset as u32,
            lists: 0,
            _pad: 0,
        };
        let words: Vec<u32> = idx.iter().map(|&i| i as u32).collect();
        ctx.dispatch(
            "gather",
            gpu::shaders::GATHER,
            "main",
            &p,
            [Some(x), None],
            &out,
            Some(&words),
            groups,
        )?;
    }
    Ok(out)
}

/// The backward of `gather(x, dim, idx)` with `x`'s dim of length `size`: each source row
/// gets the sum of the gradient rows that took it (zero when none did), as the CPU's
/// index-add, summed in increasing order of those rows.
pub(crate) fn launch_scatter_sum(
    g: &GpuBuffer,
    offset: usize,
    shape: &[usize],
    dim: usize,
    idx: &[usize],
    size: usize,
) -> Result<GpuBuffer> {
    let ctx = gpu::context()?;
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    let n = outer * size * inner;
    let numel: usize = shape.iter().product();
    check_u32("index_select backward", n)?;
    check_u32(
        "index_select backward",
        numel + offset + size + idx.len() + 1,
    )?;
    let out = ctx.alloc(n)?;
    if n > 0 {
        // CSR lists: offsets (size + 1 words), then the gradient rows of each source row
        let mut offsets = vec![0u32; size + 1];
        for &k in idx {
            offsets[k + 1] += 1;
        }
        for k in 0..size {
            offsets[k + 1] += offsets[k];
        }
        let mut next = offsets.clone();
        let mut rows = vec![0u32; idx.len()];
        for (j, &k) in idx.iter().enumerate() {
            rows[next[k] as usize] = j as u32;
            next[k] += 1;
        }
        let mut words = offsets;
        words.extend_from_slice(&rows);
        let (groups, row) = ctx.grid(n, 64)?;
        let p = GatherParams {
            n: n as u32,
            count: idx.len() as u32,
            size: size as u32,
            inner: inner as u32,
            row,
            x_offset: offset as u32,
            lists: size as u32 + 1,
            _pad: 0,
        };
        ctx.dispatch(
            "scatter_sum",
            gpu::shaders::GATHER,
            "scatter_sum_main",
            &p,
            [Some(g), None],
            &out,
            Some(&words),
            groups,
        )?;
    }
    Ok(out)
}

/// The permutation that moves dim `d` first (the other dims in order) and its inverse.
pub(crate) fn dim_first(d: usize, nd: usize) -> (Vec<usize>, Vec<usize>) {
    let front: Vec<usize> = std::iter::once(d)
        .chain((0..nd).filter(|&j| j != d))
        .collect();
    let back: Vec<usize> = (0..nd)
        .map(|j| match j.cmp(&d) {
            std::cmp::Ordering::Less => j + 1,
            std::cmp::Ordering::Equal => 0,
            std::cmp::Ordering::Greater => j,
        })
        .collect();
    (front, back)
}
