//! Sliding windows (`_core.unfold2d`, `_core.fold2d`): the engine half of convolution and
//! pooling, which `ferrograd.nn.functional` builds on.

use crate::prelude::*;
use ferrograd_core::backend::Window2d;

fn pair(op: &str, what: &str, v: (isize, isize)) -> PyResult<[usize; 2]> {
    Ok([count(op, what, v.0)?, count(op, what, v.1)?])
}

#[allow(clippy::too_many_arguments)]
fn window(
    op: &str,
    shape: &[usize],
    kernel: (isize, isize),
    stride: (isize, isize),
    padding: (isize, isize),
    dilation: (isize, isize),
    ceil_mode: bool,
    pad_value: f64,
    outside: f64,
) -> PyResult<Window2d> {
    let [n, c, h, w] = <[usize; 4]>::try_from(shape).map_err(|_| {
        ShapeError::new_err(format!(
            "{op}: expected an (N, C, H, W) input, got shape {shape:?}"
        ))
    })?;
    Window2d::new(
        op,
        [n, c, h, w],
        pair(op, "kernel size", kernel)?,
        pair(op, "stride", stride)?,
        pair(op, "padding", padding)?,
        pair(op, "dilation", dilation)?,
        ceil_mode,
        pad_value,
        outside,
    )
    .map_err(err)
}

/// The windows of an (N, C, H, W) float tensor as an (N * OH * OW, C * KH * KW) matrix
/// (im2col), with (OH, OW); differentiable. Padding reads `pad_value`, positions past it
/// (ceil_mode's last windows) `outside`.
#[pyfunction]
#[pyo3(signature = (x, kernel, stride, padding, dilation, ceil_mode=false, pad_value=0.0, outside=0.0))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn unfold2d(
    py: Python<'_>,
    x: &PyTensor,
    kernel: (isize, isize),
    stride: (isize, isize),
    padding: (isize, isize),
    dilation: (isize, isize),
    ceil_mode: bool,
    pad_value: f64,
    outside: f64,
) -> PyResult<(PyTensor, (usize, usize))> {
    let win = window(
        "unfold2d",
        x.t.shape(),
        kernel,
        stride,
        padding,
        dilation,
        ceil_mode,
        pad_value,
        outside,
    )?;
    let t = &x.t;
    let out = run(py, heavy(t), || t.unfold2d(&win))?;
    Ok((wrap(out), (win.oh, win.ow)))
}

/// Max pooling of each channel of an (N, C, H, W) float tensor: (N, C, OH, OW); padding
/// is -inf, the gradient goes to each window's first maximum. Differentiable.
#[pyfunction]
#[pyo3(signature = (x, kernel, stride, padding, dilation, ceil_mode=false))]
pub(crate) fn max_pool2d(
    py: Python<'_>,
    x: &PyTensor,
    kernel: (isize, isize),
    stride: (isize, isize),
    padding: (isize, isize),
    dilation: (isize, isize),
    ceil_mode: bool,
) -> PyResult<PyTensor> {
    let inf = f64::NEG_INFINITY;
    let win = window(
        "max_pool2d",
        x.t.shape(),
        kernel,
        stride,
        padding,
        dilation,
        ceil_mode,
        inf,
        inf,
    )?;
    let t = &x.t;
    Ok(wrap(run(py, heavy(t), || t.max_pool2d(&win))?))
}

/// A 2-D convolution of an (N, C, H, W) float tensor with weight (OC, C, KH, KW) and an
/// optional bias (OC), zero padding: the (N, OC, OH, OW) output, with (OH, OW);
/// differentiable. On the GPU the windows are read inside the product (no im2col matrix).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv2d(
    py: Python<'_>,
    x: &PyTensor,
    weight: &PyTensor,
    bias: Option<PyTensor>,
    kernel: (isize, isize),
    stride: (isize, isize),
    padding: (isize, isize),
    dilation: (isize, isize),
) -> PyResult<(PyTensor, (usize, usize))> {
    let win = window(
        "conv2d",
        x.t.shape(),
        kernel,
        stride,
        padding,
        dilation,
        false,
        0.0,
        0.0,
    )?;
    let (t, w) = (&x.t, &weight.t);
    let b = bias.map(|b| b.t);
    let out = run(py, heavy(t), || t.conv2d(w, b.as_ref(), &win))?;
    Ok((wrap(out), (win.oh, win.ow)))
}

/// unfold2d's adjoint (col2im): an (N * OH * OW, C * KH * KW) matrix summed into an
/// (N, C, H, W) tensor of `shape`; differentiable. The transposed convolution's core.
#[pyfunction]
pub(crate) fn fold2d(
    py: Python<'_>,
    cols: &PyTensor,
    shape: Vec<usize>,
    kernel: (isize, isize),
    stride: (isize, isize),
    padding: (isize, isize),
    dilation: (isize, isize),
) -> PyResult<PyTensor> {
    let win = window(
        "fold2d", &shape, kernel, stride, padding, dilation, false, 0.0, 0.0,
    )?;
    let t = &cols.t;
    run(py, heavy(t), || t.fold2d(&win)).map(wrap)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(unfold2d, m)?)?;
    m.add_function(wrap_pyfunction!(conv2d, m)?)?;
    m.add_function(wrap_pyfunction!(max_pool2d, m)?)?;
    m.add_function(wrap_pyfunction!(fold2d, m)?)
}
