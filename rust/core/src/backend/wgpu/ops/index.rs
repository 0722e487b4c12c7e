//! Gathers, scatter-sums and concatenation.

use super::*;

/// out = x.index_select(dim, idx) for in-range, non-negative indices (checked by the caller).
pub(crate) fn gather(x: &Tensor, dim: usize, idx: &[usize]) -> Result<Tensor> {
    let ctx = gpu::context()?;
    let x = x.contiguous()?;
    let shape = x.shape().to_vec();
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    let mut out_shape = shape.clone();
    out_shape[dim] = idx.len();
    let n = outer * idx.len() * inner;
    check_u32("index_select", n)?;
    check_u32("index_select", x.numel())?;
    let out = ctx.alloc(n)?;
    if n > 0 {
        let (groups, row) = ctx.grid(n, 64)?;
        let p = GatherParams {
            n: n as u32,
            count: idx.len() as u32,
            size: shape[dim] as u32,
            inner: inner as u32,
            row,
            x_offset: x.layout().offset as u32,
            lists: 0,
            _pad: 0,
        };
        let words: Vec<u32> = idx.iter().map(|&i| i as u32).collect();
        x.with_gpu(|xb, _| {
            ctx.dispatch(
                "gather",
                gpu::shaders::GATHER,
                "main",
                &p,
                [Some(xb), None],
                &out,
                Some(&words),
                groups,
            )
        })??;
    }
    new_tensor(out, &out_shape)
}

/// The backward of `gather(x, dim, idx)` with `x`'s dim of length `size`: each source row
/// gets the sum of the gradient rows that took it (zero when none did), as the CPU's
/// index-add, summed in increasing order of those rows.
pub(crate) fn scatter_sum(g: &Tensor, dim: usize, idx: &[usize], size: usize) -> Result<Tensor> {
    let ctx = gpu::context()?;
    let g = g.contiguous()?;
    let shape = g.shape().to_vec();
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    let mut out_shape = shape.clone();
    out_shape[dim] = size;
    let n = outer * size * inner;
    check_u32("index_select backward", n)?;
    check_u32("index_select backward", g.numel() + size + idx.len() + 1)?;
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
            x_offset: g.layout().offset as u32,
            lists: size as u32 + 1,
            _pad: 0,
        };
        g.with_gpu(|gb, _| {
            ctx.dispatch(
                "scatter_sum",
                gpu::shaders::GATHER,
                "scatter_sum_main",
                &p,
                [Some(gb), None],
                &out,
                Some(&words),
                groups,
            )
        })??;
    }
    new_tensor(out, &out_shape)
}

/// Concatenation along `d` on the GPU: each part with `d` moved to the front is made
/// contiguous, the parts are copied one after another into one buffer (queue-ordered
/// buffer copies, no kernel), and the result is that buffer with `d` moved back (a view).
pub(crate) fn cat(parts: &[Tensor], d: usize, out_shape: &[usize]) -> Result<Tensor> {
    let ctx = gpu::context()?;
    let nd = out_shape.len();
    // d first, the other dims in order; and its inverse
    let front: Vec<isize> = std::iter::once(d)
        .chain((0..nd).filter(|&j| j != d))
        .map(|j| j as isize)
        .collect();
    let back: Vec<isize> = (0..nd)
        .map(|j| match j.cmp(&d) {
            std::cmp::Ordering::Less => j as isize + 1,
            std::cmp::Ordering::Equal => 0,
            std::cmp::Ordering::Greater => j as isize,
        })
        .collect();
    let total: usize = out_shape.iter().product();
    check_u32("cat", total)?;
    let out = ctx.alloc(total)?;
    let mut at = 0;
    for p in parts {
        let moved = p.detach().permute(&front)?;
        // a contiguous part is copied from where it lies in its buffer; anything else is
        // compacted first
        let moved = if moved.is_contiguous() {
            moved
        } else {
            copy(&moved)?
        };
        if moved.numel() > 0 {
            let (from, n) = (moved.layout().offset, moved.numel());
            moved.with_gpu(|b, _| out.copy_from(at, b, from, n))??;
        }
        at += moved.numel();
    }
    let mut moved_shape: Vec<usize> = vec![out_shape[d]];
    moved_shape.extend((0..nd).filter(|&j| j != d).map(|j| out_shape[j]));
    new_tensor(out, &moved_shape)?.permute(&back)
}
