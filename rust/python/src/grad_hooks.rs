//! Python callables inside the backward pass: hooks run once a leaf's gradient is final,
//! callbacks queued for the end of a backward pass, and derivative rules written in Python
//! (`ferrograd.autograd.Function`). The core holds them as plain closures; each acquires the
//! GIL to call Python (the pass may run with it released).

use crate::prelude::*;
use ferrograd_core::autograd::{self as ag, BackwardFn, GradHook, LeafHook};
use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::Mutex;

thread_local! {
    /// The first exception a Python callable raised during the backward pass on this
    /// thread: `backward` re-raises it as it was, not as the core's RuntimeError.
    static RAISED: RefCell<Option<PyErr>> = const { RefCell::new(None) };
}

fn raised(py: Python<'_>, e: PyErr, what: &str) -> Error {
    let msg = format!("{what} raised {}", e.value(py));
    RAISED.with(|r| {
        let mut r = r.borrow_mut();
        if r.is_none() {
            *r = Some(e);
        }
    });
    Error::Autograd(msg)
}

/// Clears what an earlier, failed pass left (called as a backward pass starts).
pub(crate) fn clear_raised() {
    RAISED.with(|r| r.borrow_mut().take());
}

/// After a failed backward pass: the Python exception a hook, callback or rule raised.
pub(crate) fn take_raised() -> Option<PyErr> {
    RAISED.with(|r| r.borrow_mut().take())
}

/// What `register_hook` and `register_post_accumulate_grad_hook` return: `remove()`
/// unregisters the hook.
#[pyclass(name = "RemovableHandle", module = "ferrograd")]
pub(crate) struct PyHookHandle {
    id: u64,
}

#[pymethods]
impl PyHookHandle {
    /// Unregisters the hook (a second call does nothing).
    fn remove(&self) {
        ag::remove_hook(self.id);
    }
    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }
    fn __exit__(&self, _a: Py<PyAny>, _b: Py<PyAny>, _c: Py<PyAny>) {
        self.remove();
    }
}

#[pymethods]
impl PyTensor {
    /// Calls `hook(tensor)` once this leaf's gradient is final in each backward pass that
    /// reaches it (after its last accumulation), as PyTorch's
    /// `register_post_accumulate_grad_hook`; returns a handle whose `remove()` unregisters it.
    fn register_post_accumulate_grad_hook(&self, hook: Py<PyAny>) -> PyResult<PyHookHandle> {
        Python::attach(|py| {
            if !hook.bind(py).is_callable() {
                return Err(PyTypeError::new_err(
                    "register_post_accumulate_grad_hook: the hook must be callable",
                ));
            }
            Ok(())
        })?;
        let h: LeafHook = Arc::new(move |t: &Tensor| {
            Python::attach(|py| {
                hook.call1(py, (wrap(t.clone()),))
                    .map(|_| ())
                    .map_err(|e| raised(py, e, "a post-accumulate-grad hook"))
            })
        });
        let id = ag::register_post_accumulate_grad_hook(&self.t, h).map_err(err)?;
        Ok(PyHookHandle { id })
    }

    /// Registers `hook(grad)` on this tensor's gradient, as PyTorch's `Tensor.register_hook`:
    /// each backward pass that computes the gradient calls it with the gradient summed over
    /// the tensor's uses; a Tensor it returns (same shape) replaces the gradient, None keeps
    /// it. Returns a handle whose `remove()` unregisters it.
    fn register_hook(&self, hook: Py<PyAny>) -> PyResult<PyHookHandle> {
        Python::attach(|py| {
            if !hook.bind(py).is_callable() {
                return Err(PyTypeError::new_err(
                    "register_hook: the hook must be callable",
                ));
            }
            Ok(())
        })?;
        let h: GradHook = Arc::new(move |g: &Tensor| {
            Python::attach(|py| {
                let got = hook
                    .call1(py, (wrap(g.clone()),))
                    .map_err(|e| raised(py, e, "a tensor hook"))?;
                let got = got.bind(py);
                if got.is_none() {
                    return Ok(None);
                }
                match got.cast::<PyTensor>() {
                    Ok(t) => Ok(Some(t.get().t.clone())),
                    Err(_) => Err(Error::Autograd(format!(
                        "register_hook: a hook returned a {}, not a Tensor or None",
                        got.get_type()
                            .name()
                            .map(|n| n.to_string())
                            .unwrap_or_default()
                    ))),
                }
            })
        });
        let id = ag::register_hook(&self.t, h).map_err(err)?;
        Ok(PyHookHandle { id })
    }

    /// Keeps this non-leaf tensor's gradient in `.grad` in later backward passes (a leaf
    /// keeps its own anyway), as PyTorch's `retain_grad`.
    fn retain_grad(&self) -> PyResult<()> {
        ag::retain_grad(&self.t).map_err(err)
    }

    /// Whether backward passes fill this non-leaf tensor's `.grad` (after `retain_grad`).
    #[getter]
    fn retains_grad(&self) -> bool {
        ag::retains_grad(&self.t)
    }
}

/// One backward pass from several tensors (`gradients`: one seed or None each), into the
/// `.grad` of `inputs` only when given.
#[pyfunction]
#[pyo3(signature = (tensors, gradients, retain_graph, inputs=None, create_graph=false))]
pub(crate) fn _backward_many(
    py: Python<'_>,
    tensors: Vec<PyTensor>,
    gradients: Vec<Option<PyTensor>>,
    retain_graph: bool,
    inputs: Option<Vec<PyTensor>>,
    create_graph: bool,
) -> PyResult<()> {
    let roots: Vec<Tensor> = tensors.into_iter().map(|t| t.t).collect();
    let seeds: Vec<Option<Tensor>> = gradients.into_iter().map(|g| g.map(|g| g.t)).collect();
    let inputs: Option<Vec<Tensor>> = inputs.map(|v| v.into_iter().map(|t| t.t).collect());
    if create_graph {
        crate::tensor::create_graph_warning(py)?;
    }
    clear_raised();
    crate::guard::run(py, true, || {
        ag::backward_many(&roots, seeds, retain_graph, inputs.as_deref(), create_graph)
    })
    .map_err(|e| take_raised().unwrap_or(e))
}

/// The gradients of `outputs` with respect to `inputs` (the engine half of
/// `ferrograd.autograd.grad`), None for an unused input when `allow_unused`; with
/// `create_graph` the gradients carry their own graph.
#[pyfunction]
#[pyo3(signature = (outputs, grad_outputs, inputs, retain_graph, allow_unused, create_graph=false))]
pub(crate) fn _grad(
    py: Python<'_>,
    outputs: Vec<PyTensor>,
    grad_outputs: Vec<Option<PyTensor>>,
    inputs: Vec<PyTensor>,
    retain_graph: bool,
    allow_unused: bool,
    create_graph: bool,
) -> PyResult<Vec<Option<PyTensor>>> {
    let outs: Vec<Tensor> = outputs.into_iter().map(|t| t.t).collect();
    let seeds: Vec<Option<Tensor>> = grad_outputs.into_iter().map(|g| g.map(|g| g.t)).collect();
    let ins: Vec<Tensor> = inputs.into_iter().map(|t| t.t).collect();
    clear_raised();
    let got = crate::guard::run(py, true, || {
        ag::grad(&outs, seeds, &ins, retain_graph, allow_unused, create_graph)
    })
    .map_err(|e| take_raised().unwrap_or(e))?;
    Ok(got.into_iter().map(|g| g.map(wrap)).collect())
}

/// Queues `callback()` to run when the backward pass in progress finishes, after every
/// gradient is accumulated (PyTorch's engine `queue_callback`); only from a hook.
#[pyfunction]
pub(crate) fn queue_callback(callback: Py<PyAny>) -> PyResult<()> {
    ag::queue_callback(Box::new(move || {
        Python::attach(|py| {
            callback
                .call0(py)
                .map(|_| ())
                .map_err(|e| raised(py, e, "a queued backward callback"))
        })
    }))
    .map_err(err)
}

/// Node names live as long as the program (the graph holds `&'static str`): one leaked
/// copy per distinct custom function name.
fn static_name(name: String) -> &'static str {
    static NAMES: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    let set = names.get_or_insert_with(HashSet::new);
    if let Some(n) = set.get(name.as_str()) {
        return n;
    }
    let leaked: &'static str = Box::leak(name.into_boxed_str());
    set.insert(leaked);
    leaked
}

/// Gives `output` (computed without recording) the derivative rule `backward(grad)`, which
/// returns one gradient (a Tensor shaped as that input, or None) per tensor in `inputs`:
/// the engine half of `ferrograd.autograd.Function`. `differentiable` false: a
/// create_graph pass refuses at it (`once_differentiable`).
#[pyfunction]
#[pyo3(signature = (output, inputs, backward, name, differentiable=true))]
pub(crate) fn _custom_grad_fn(
    output: &PyTensor,
    inputs: Vec<PyTensor>,
    backward: Py<PyAny>,
    name: String,
    differentiable: bool,
) -> PyResult<PyTensor> {
    let name = static_name(name);
    let specs: Vec<(Vec<usize>, bool)> = inputs
        .iter()
        .map(|t| (t.t.shape().to_vec(), t.t.requires_grad()))
        .collect();
    let rule: BackwardFn = Box::new(move |g: &Tensor| {
        Python::attach(|py| {
            let got = backward
                .call1(py, (wrap(g.clone()),))
                .map_err(|e| raised(py, e, name))?;
            let got = got.bind(py);
            let items: Vec<Bound<'_, PyAny>> = if got.is_none() || got.cast::<PyTensor>().is_ok() {
                vec![got.clone()]
            } else {
                got.try_iter()
                    .and_then(|it| it.collect::<PyResult<Vec<_>>>())
                    .map_err(|e| raised(py, e, name))?
            };
            if items.len() != specs.len() {
                return Err(Error::Autograd(format!(
                    "{name}: backward returned {} gradients for {} tensor inputs",
                    items.len(),
                    specs.len()
                )));
            }
            let mut out = Vec::with_capacity(items.len());
            for (i, (item, (shape, needs))) in items.iter().zip(&specs).enumerate() {
                if item.is_none() || !needs {
                    out.push(None);
                    continue;
                }
                let t = item.cast::<PyTensor>().map_err(|_| {
                    Error::Autograd(format!(
                        "{name}: backward returned a {} for input {i}, not a Tensor or None",
                        item.get_type()
                            .name()
                            .map(|n| n.to_string())
                            .unwrap_or_default()
                    ))
                })?;
                let t = t.get().t.clone();
                if t.shape() != shape.as_slice() {
                    return Err(Error::Shape(format!(
                        "{name}: backward returned a gradient of shape {:?} for input {i} of shape {:?}",
                        t.shape(),
                        shape
                    )));
                }
                out.push(Some(t));
            }
            Ok(out)
        })
    });
    let ins: Vec<&Tensor> = inputs.iter().map(|t| &t.t).collect();
    Ok(wrap(ag::record_custom(
        output.t.clone(),
        name,
        &ins,
        rule,
        differentiable,
    )))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyHookHandle>()?;
    m.add_function(wrap_pyfunction!(queue_callback, m)?)?;
    m.add_function(wrap_pyfunction!(_backward_many, m)?)?;
    m.add_function(wrap_pyfunction!(_grad, m)?)?;
    m.add_function(wrap_pyfunction!(_custom_grad_fn, m)?)
}
