//! Analytic gradient values and layout logic, checked from Rust alone.

use ferrograd_core::ops::IndexItem;
use ferrograd_core::{DType, Tensor};

fn t(v: &[f64], shape: &[usize]) -> Tensor {
    let x = Tensor::from_vec(v.to_vec(), shape).unwrap();
    x.set_requires_grad(true).unwrap();
    x
}

fn grad(x: &Tensor) -> Vec<f64> {
    x.grad().expect("grad was set").to_vec::<f64>().unwrap()
}

#[test]
fn mul_sum_grad() {
    let x = t(&[1.0, 2.0, 3.0], &[3]);
    let y = x.mul(&x).unwrap().sum(None, false).unwrap();
    y.backward(None, false).unwrap();
    assert_eq!(grad(&x), vec![2.0, 4.0, 6.0]);
}

#[test]
fn broadcast_grad_sums_back() {
    let a = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let b = t(&[10.0, 20.0, 30.0], &[3]);
    a.mul(&b)
        .unwrap()
        .sum(None, false)
        .unwrap()
        .backward(None, false)
        .unwrap();
    assert_eq!(grad(&b), vec![5.0, 7.0, 9.0]);
    assert_eq!(grad(&a), vec![10.0, 20.0, 30.0, 10.0, 20.0, 30.0]);
}

#[test]
fn matmul_grad_values() {
    // y = sum(A @ B): dA = 1 @ B^T (row sums of B), dB = A^T @ 1 (column sums of A)
    let a = t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
    let b = t(&[5.0, 6.0, 7.0, 8.0], &[2, 2]);
    a.matmul(&b)
        .unwrap()
        .sum(None, false)
        .unwrap()
        .backward(None, false)
        .unwrap();
    assert_eq!(grad(&a), vec![11.0, 15.0, 11.0, 15.0]);
    assert_eq!(grad(&b), vec![4.0, 4.0, 6.0, 6.0]);
}

#[test]
fn linear_matches_composed() {
    let x = t(&[1.0, -2.0, 0.5, 3.0, 1.0, -1.0], &[2, 3]);
    let w = t(&[0.1, 0.2, 0.3, -0.4, 0.5, 0.6], &[2, 3]);
    let b = t(&[1.0, -1.0], &[2]);
    let y = x.linear(&w, Some(&b)).unwrap();
    let y2 = x
        .matmul(&w.transpose(0, 1).unwrap())
        .unwrap()
        .add(&b)
        .unwrap();
    assert_eq!(y.to_vec::<f64>().unwrap(), y2.to_vec::<f64>().unwrap());
    y.sum(None, false).unwrap().backward(None, false).unwrap();
    assert_eq!(grad(&b), vec![2.0, 2.0]);
    assert_eq!(grad(&w), vec![4.0, -1.0, -0.5, 4.0, -1.0, -0.5]);
}

#[test]
fn relu_and_max_grads() {
    let x = t(&[-1.0, 2.0, 3.0, 3.0], &[4]);
    x.relu()
        .unwrap()
        .sum(None, false)
        .unwrap()
        .backward(None, false)
        .unwrap();
    assert_eq!(grad(&x), vec![0.0, 1.0, 1.0, 1.0]);
    x.set_grad(None).unwrap();
    x.amax(None, false).unwrap().backward(None, false).unwrap();
    assert_eq!(grad(&x), vec![0.0, 0.0, 0.5, 0.5]); // ties share the gradient
}

#[test]
fn accumulates_and_refuses_second_backward() {
    let x = t(&[1.0, 2.0], &[2]);
    let y = x.exp().unwrap().sum(None, false).unwrap();
    y.backward(None, true).unwrap();
    y.backward(None, false).unwrap();
    let e = [1f64.exp() * 2.0, 2f64.exp() * 2.0];
    let g = grad(&x);
    assert!((g[0] - e[0]).abs() < 1e-12 && (g[1] - e[1]).abs() < 1e-12);
    let err = y.backward(None, false).unwrap_err();
    assert!(err.to_string().contains("second time"), "{err}");
}

#[test]
fn views_share_storage_and_route_grads() {
    let x = t(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], &[2, 3]);
    let v = x.transpose(0, 1).unwrap();
    assert!(v.shares_storage(&x));
    assert!(!v.is_contiguous());
    assert_eq!(
        v.to_vec::<f64>().unwrap(),
        vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    );
    let s = x
        .index(&[IndexItem::Slice(None, None, 1), IndexItem::Int(1)])
        .unwrap();
    assert_eq!(s.to_vec::<f64>().unwrap(), vec![1.0, 4.0]);
    s.sum(None, false).unwrap().backward(None, false).unwrap();
    assert_eq!(grad(&x), vec![0.0, 1.0, 0.0, 0.0, 1.0, 0.0]);
}

#[test]
fn reductions_over_dims() {
    let x = Tensor::arange(0.0, 24.0, 1.0, DType::F32)
        .unwrap()
        .reshape(&[2, 3, 4])
        .unwrap();
    let s = x.sum(Some(&[0, 2]), false).unwrap();
    assert_eq!(s.shape(), &[3]);
    assert_eq!(s.to_vec::<f32>().unwrap(), vec![60.0, 92.0, 124.0]);
    let m = x.amax(Some(&[1]), true).unwrap();
    assert_eq!(m.shape(), &[2, 1, 4]);
    let a = x.argmax(Some(2), false).unwrap();
    assert_eq!(a.to_vec::<i64>().unwrap(), vec![3; 6]);
}

#[test]
fn errors_name_op_and_shapes() {
    let a = Tensor::ones(&[128, 784], DType::F32).unwrap();
    let b = Tensor::ones(&[512, 10], DType::F32).unwrap();
    let e = a.matmul(&b).unwrap_err().to_string();
    assert_eq!(
        e,
        "matmul: shapes (128, 784) and (512, 10) do not align (784 != 512)"
    );
    let e = a.reshape(&[3, 3]).unwrap_err().to_string();
    assert!(e.starts_with("reshape:"), "{e}");
}

#[test]
fn long_chain_drops_without_overflow() {
    let x = t(&[1.0], &[1]);
    let mut y = x.clone();
    for _ in 0..100_000 {
        y = y.add(&x).unwrap();
    }
    drop(y); // would overflow the stack with a recursive drop
}

#[test]
fn long_chains_of_rules_that_keep_their_inputs_drop_without_overflow() {
    // the rules keep their inputs with their history (for create_graph), which holds the
    // upstream nodes a second way besides the edges
    let x = t(&[0.5], &[1]);
    let w = t(&[1.0], &[1, 1]);
    let mut y = x.clone();
    for i in 0..60_000 {
        y = match i % 3 {
            0 => y.mul(&x).unwrap(),
            1 => y.tanh().unwrap(),
            _ => y
                .reshape(&[1, 1])
                .unwrap()
                .matmul(&w)
                .unwrap()
                .reshape(&[1])
                .unwrap(),
        };
    }
    drop(y);
}
