//! Sliding windows for convolution and pooling: `unfold2d` (im2col) and its adjoint
//! `fold2d` (col2im), each the other's derivative, and `conv2d`, the product of the
//! windows with a weight in one backend op (on the GPU without the im2col matrix), and
//! `max_pool2d`, one backend op each way. Average pooling is `unfold2d` then a row mean
//! (see `ferrograd.nn.functional`).

use crate::backend::Window2d;
use crate::error::Result;
use crate::layout::fmt_shape;
use crate::shape_err;
use crate::tensor::Tensor;

impl Window2d {
    /// The window over an (n, c, h, w) input: output size from PyTorch's formula,
    /// floor((h + 2 ph - dh (kh - 1) - 1) / sh) + 1 (rounded up with `ceil_mode`, dropping a
    /// last window that would start in the right padding, as PyTorch does).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        op: &str,
        input: [usize; 4],
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        ceil_mode: bool,
        pad_value: f64,
        outside: f64,
    ) -> Result<Window2d> {
        let [n, c, h, w] = input;
        if kernel.contains(&0) || stride.contains(&0) || dilation.contains(&0) {
            return Err(crate::value_err!(
                "{op}: kernel size, stride and dilation must be positive, got kernel {kernel:?}, \
                 stride {stride:?}, dilation {dilation:?}"
            ));
        }
        let out = |size: usize, k: usize, s: usize, p: usize, d: usize| -> Result<usize> {
            let span = d * (k - 1) + 1;
            let room = size + 2 * p;
            if room < span {
                return Err(shape_err!(
                    "{op}: the input ({n}, {c}, {h}, {w}) padded by {padding:?} is smaller than the \
                     kernel {kernel:?} with dilation {dilation:?}"
                ));
            }
            let mut o = if ceil_mode {
                (room - span).div_ceil(s) + 1
            } else {
                (room - span) / s + 1
            };
            if ceil_mode && (o - 1) * s >= size + p {
                o -= 1; // the last window would start in the right padding
            }
            Ok(o)
        };
        let oh = out(h, kernel[0], stride[0], padding[0], dilation[0])?;
        let ow = out(w, kernel[1], stride[1], padding[1], dilation[1])?;
        Ok(Window2d {
            n,
            c,
            h,
            w,
            kh: kernel[0],
            kw: kernel[1],
            sh: stride[0],
            sw: stride[1],
            ph: padding[0],
            pw: padding[1],
            dh: dilation[0],
            dw: dilation[1],
            oh,
            ow,
            pad_value,
            outside,
        })
    }
}

impl Tensor {
    /// The windows of this (n, c, h, w) float tensor as an (n * oh * ow, c * kh * kw)
    /// matrix (im2col); differentiable (its backward is `fold2d`).
    pub fn unfold2d(&self, win: &Window2d) -> Result<Tensor> {
        let want = [win.n, win.c, win.h, win.w];
        if self.shape() != want {
            return Err(shape_err!(
                "unfold2d: expected an input of shape {}, got {}",
                fmt_shape(&want),
                fmt_shape(self.shape())
            ));
        }
        if !self.dtype().is_float() {
            return Err(crate::dtype_err!(
                "unfold2d: expected a float tensor, got {}",
                self.dtype()
            ));
        }
        let out = self.map_storage_to(&[win.rows(), win.cols()], |b, l| b.unfold2d(l, win))?;
        let w = *win;
        Ok(crate::autograd::record_higher(
            out,
            "Unfold2dBackward",
            &[self],
            Default::default(),
            move |g| Ok(vec![Some(g.fold2d(&w)?)]),
        ))
    }

    /// unfold2d's adjoint (col2im): the (n * oh * ow, c * kh * kw) matrix summed back into an
    /// (n, c, h, w) tensor; differentiable (its backward is `unfold2d`, with zero padding).
    pub fn fold2d(&self, win: &Window2d) -> Result<Tensor> {
        let want = [win.rows(), win.cols()];
        if self.shape() != want {
            return Err(shape_err!(
                "fold2d: expected a matrix of shape {}, got {}",
                fmt_shape(&want),
                fmt_shape(self.shape())
            ));
        }
        if !self.dtype().is_float() {
            return Err(crate::dtype_err!(
                "fold2d: expected a float tensor, got {}",
                self.dtype()
            ));
        }
        let out = self.map_storage_to(&[win.n, win.c, win.h, win.w], |b, l| b.fold2d(l, win))?;
        let w = Window2d {
            pad_value: 0.0,
            outside: 0.0,
            ..*win
        };
        Ok(crate::autograd::record_higher(
            out,
            "Fold2dBackward",
            &[self],
            Default::default(),
            move |g| Ok(vec![Some(g.unfold2d(&w)?)]),
        ))
    }
}

impl Tensor {
    /// Max pooling of each channel of this (n, c, h, w) float tensor over `win`'s windows:
    /// (n, c, oh, ow). Only input elements compete (padding is -inf, as in PyTorch); the
    /// gradient goes to each window's first maximum, as PyTorch's.
    pub fn max_pool2d(&self, win: &Window2d) -> Result<Tensor> {
        let want = [win.n, win.c, win.h, win.w];
        if self.shape() != want {
            return Err(shape_err!(
                "max_pool2d: expected an input of shape {}, got {}",
                fmt_shape(&want),
                fmt_shape(self.shape())
            ));
        }
        if !self.dtype().is_float() {
            return Err(crate::dtype_err!(
                "max_pool2d: expected a float tensor, got {}",
                self.dtype()
            ));
        }
        let win = Window2d {
            pad_value: f64::NEG_INFINITY,
            outside: f64::NEG_INFINITY,
            ..*win
        };
        let (y, arg) = self.storage_guard().max_pool2d(self.layout(), &win)?;
        let out = Tensor::from_buffer(y, &[win.n, win.c, win.oh, win.ow])?;
        let in_shape = [win.n, win.c, win.h, win.w];
        // the input, for a create_graph pass's recorded rule (a CNN's ReLU keeps it anyway)
        let xd = self.detach();
        Ok(crate::autograd::record_higher(
            out,
            "MaxPool2DBackward",
            &[self],
            Default::default(),
            move |g| {
                if crate::autograd::creating_graph() {
                    return Ok(vec![Some(max_pool2d_grad_recorded(&xd, g, &win)?)]);
                }
                let dx = g.storage_guard().max_pool2d_grad(g.layout(), &arg, &win)?;
                Ok(vec![Some(Tensor::from_buffer(dx, &in_shape)?)])
            },
        ))
    }
}

/// max_pool2d's gradient in recorded ops of g (for a `create_graph` pass): each window's
/// first maximum (the windows matrix's argmax, as the kernel picks it) marked in a constant
/// one-hot mask, g placed there and folded back (the same sums as the kernel's scatter).
fn max_pool2d_grad_recorded(x: &Tensor, g: &Tensor, win: &Window2d) -> Result<Tensor> {
    let (rows, c, taps) = (
        win.rows() as isize,
        win.c as isize,
        (win.kh * win.kw) as isize,
    );
    let onehot = {
        let _g = crate::autograd::NoGradGuard::new();
        let cols = x.unfold2d(win)?.reshape(&[rows, c, taps])?;
        let at = cols.argmax(Some(-1), true)?;
        let tap = Tensor::from_vec((0..taps as i64).collect::<Vec<_>>(), &[taps as usize])?
            .to_device(at.device())?;
        at.compare(crate::ops::CmpOp::Eq, &tap)?.cast(g.dtype())?
    };
    let zero_pad = Window2d {
        pad_value: 0.0,
        outside: 0.0,
        ..*win
    };
    g.permute(&[0, 2, 3, 1])?
        .reshape(&[rows, c, 1])?
        .mul(&onehot.to_device(g.device())?)?
        .reshape(&[rows, c * taps])?
        .fold2d(&zero_pad)
}

impl Tensor {
    /// A 2-D convolution of this (n, c, h, w) float tensor with `w` (oc, c, kh, kw) and an
    /// optional bias (oc): the (n, oc, oh, ow) output (`win` gives the windows; zero
    /// padding). Differentiable in all three: the backend's own backward where it has one,
    /// else the lowering's (with g as rows, dx = fold2d(g w), dw = g^T unfold2d(x)).
    pub fn conv2d(&self, w: &Tensor, bias: Option<&Tensor>, win: &Window2d) -> Result<Tensor> {
        let want = [win.n, win.c, win.h, win.w];
        if self.shape() != want {
            return Err(shape_err!(
                "conv2d: expected an input of shape {}, got {}",
                fmt_shape(&want),
                fmt_shape(self.shape())
            ));
        }
        let ws = w.shape();
        if ws.len() != 4 || ws[1] != win.c || ws[2] != win.kh || ws[3] != win.kw {
            return Err(shape_err!(
                "conv2d: weight of shape {} does not fit an input of {} channels and a {}x{} kernel \
                 (expected (out_channels, {}, {}, {}))",
                fmt_shape(ws),
                win.c,
                win.kh,
                win.kw,
                win.c,
                win.kh,
                win.kw
            ));
        }
        let oc = ws[0];
        if let Some(b) = bias {
            if b.shape() != [oc] {
                return Err(shape_err!(
                    "conv2d: bias of shape {} does not fit {oc} output channels",
                    fmt_shape(b.shape())
                ));
            }
        }
        if !self.dtype().is_float() {
            return Err(crate::dtype_err!(
                "conv2d: expected a float tensor, got {}",
                self.dtype()
            ));
        }
        let dt = crate::autocast::product_dtype(self.dtype(), self.device());
        let x = self.cast(dt)?;
        let w2 = w.cast(dt)?.reshape(&[oc as isize, win.cols() as isize])?;
        let b = bias.map(|b| b.cast(dt)).transpose()?;
        for t in std::iter::once(&w2).chain(b.as_ref()) {
            if t.device() != x.device() {
                return Err(crate::error::Error::Device(format!(
                    "conv2d: expected all tensors on one device, got {} and {}; move one with .to()",
                    x.device().name(),
                    t.device().name()
                )));
            }
        }
        let nchw = |y: Tensor| -> Result<Tensor> {
            let s = [win.n, win.oh, win.ow, oc].map(|d| d as isize);
            y.reshape(&s)?.permute(&[0, 3, 1, 2])?.contiguous()
        };
        if win.rows() == 0 || oc == 0 || win.cols() == 0 {
            // nothing to convolve: the lowering's composition handles the empty shapes
            let y = x.unfold2d(win)?.matmul(&w2.transpose(0, 1)?)?;
            return nchw(match b {
                Some(b) => y.add(&b)?,
                None => y,
            });
        }
        let (out, cols) = {
            let (gx, gw) = (x.storage_guard(), w2.storage_guard());
            let gb = b.as_ref().map(|t| t.storage_guard());
            let bias = gb.as_ref().zip(b.as_ref()).map(|(g, t)| (&**g, t.layout()));
            gx.conv2d(x.layout(), (&gw, w2.layout()), bias, win)?
        };
        let out = Tensor::from_buffer(out, &[win.n, oc, win.oh, win.ow])?;
        // the windows matrix, where the backend built it, serves the weight's gradient
        let cols = match cols {
            Some(c) if w2.requires_grad() => {
                Some(Tensor::from_buffer(c, &[win.rows(), win.cols()])?)
            }
            _ => None,
        };
        let mut inputs: Vec<&Tensor> = vec![&x, &w2];
        if let Some(b) = b.as_ref() {
            inputs.push(b);
        }
        // kept with their history: a create_graph pass differentiates the lowering's rule
        let (xd, wd, has_b) = (x.saved_input(), w2.saved_input(), b.is_some());
        let (nx, nw) = (x.requires_grad(), w2.requires_grad());
        let zero_pad = Window2d {
            pad_value: 0.0,
            outside: 0.0,
            ..*win
        };
        let saved = smallvec::smallvec![xd.clone(), wd.clone()];
        Ok(crate::autograd::record_higher(
            out,
            "Conv2dBackward",
            &inputs,
            saved,
            move |g| {
                // a create_graph pass takes the lowering's rule, in recorded ops
                let creating = crate::autograd::creating_graph();
                // the backend's own backward where it has one (the host's, image by image)
                let own = (!creating)
                    .then(|| {
                        xd.storage_guard().conv2d_grad(
                            xd.layout(),
                            (&wd.storage_guard(), wd.layout()),
                            (&g.storage_guard(), g.layout()),
                            &zero_pad,
                            (nx, nw),
                        )
                    })
                    .flatten();
                if let Some(r) = own {
                    let (dx, dw) = r?;
                    let mut grads = vec![
                        dx.map(|d| Tensor::from_buffer(d, xd.shape())).transpose()?,
                        dw.map(|d| Tensor::from_buffer(d, wd.shape())).transpose()?,
                    ];
                    if has_b {
                        // each plane's sum first: a reduction over the adjacent (oh, ow) of the
                        // contiguous gradient reads it in place, where one over (n, oh, ow)
                        // gathered all of it into a permuted copy first
                        grads.push(Some(g.sum(Some(&[2, 3]), false)?.sum(Some(&[0]), false)?));
                    }
                    return Ok(grads);
                }
                // the lowering's: the gradient as (n * oh * ow, oc) rows
                let g = &g.permute(&[0, 2, 3, 1])?.reshape(&[-1, oc as isize])?;
                let mut grads = vec![
                    if nx {
                        Some(g.mm(&wd)?.fold2d(&zero_pad)?)
                    } else {
                        None
                    },
                    if nw {
                        let c = match &cols {
                            Some(c) if !creating => c.clone(),
                            _ => xd.unfold2d(&zero_pad)?,
                        };
                        Some(g.transpose(0, 1)?.mm(&c)?)
                    } else {
                        None
                    },
                ];
                if has_b {
                    grads.push(Some(g.sum(Some(&[0]), false)?));
                }
                Ok(grads)
            },
        ))
    }
}
