//! The engine's kernels from Rust, on the CPU and (when an adapter exists) the GPU:
//! matmul (and each GPU matmul kernel alone), broadcast add, reduction, log_softmax, and a
//! tiny op's fixed cost.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferrograd_core::{random, DType, Device, Tensor};
use std::hint::black_box;

fn devices() -> Vec<Device> {
    let mut d = vec![Device::Cpu];
    if Device::parse("gpu").is_ok() {
        d.push(Device::Gpu);
    }
    d
}

/// Forces queued GPU work to finish (a one-element read-back).
fn sync(t: &Tensor) {
    black_box(
        t.reshape(&[-1])
            .unwrap()
            .narrow(0, 0, 1)
            .unwrap()
            .item()
            .unwrap(),
    );
}

fn bench_matmul(c: &mut Criterion) {
    let mut g = c.benchmark_group("matmul");
    for dev in devices() {
        for n in [128usize, 256, 1024] {
            if dev == Device::Gpu && n > 256 && std::env::var("FERROGRAD_BENCH_LARGE").is_err() {
                continue; // lavapipe is slow; set FERROGRAD_BENCH_LARGE on a real GPU
            }
            let a = random::randn(&[n, n], DType::F32)
                .unwrap()
                .to_device(dev)
                .unwrap();
            let b = random::randn(&[n, n], DType::F32)
                .unwrap()
                .to_device(dev)
                .unwrap();
            g.throughput(Throughput::Elements((2 * n * n * n) as u64));
            g.bench_with_input(BenchmarkId::new(dev.name(), n), &n, |bench, _| {
                bench.iter(|| sync(&a.matmul(&b).unwrap()))
            });
        }
    }
    g.finish();
}

/// Every GPU matmul kernel on its own (the ones "auto" chooses among): 256 on lavapipe,
/// 1024 and 4096 with FERROGRAD_BENCH_LARGE on a real GPU.
fn bench_matmul_kernels(c: &mut Criterion) {
    use ferrograd_core::gpu as gpu_ops;
    if !devices().contains(&Device::Gpu) {
        return;
    }
    let sizes: &[usize] = if std::env::var("FERROGRAD_BENCH_LARGE").is_ok() {
        &[1024, 4096]
    } else {
        &[256]
    };
    let mut g = c.benchmark_group("gpu_matmul_kernel");
    for &n in sizes {
        let a = random::randn(&[n, n], DType::F32)
            .unwrap()
            .to_device(Device::Gpu)
            .unwrap();
        let b = random::randn(&[n, n], DType::F32)
            .unwrap()
            .to_device(Device::Gpu)
            .unwrap();
        g.throughput(Throughput::Elements((2 * n * n * n) as u64));
        for name in gpu_ops::matmul_kernel_names() {
            let before = gpu_ops::set_matmul_kernel(name).unwrap();
            g.bench_with_input(BenchmarkId::new(name, n), &n, |bench, _| {
                bench.iter(|| sync(&a.matmul(&b).unwrap()))
            });
            gpu_ops::set_matmul_kernel(&before).unwrap();
        }
    }
    g.finish();
}

fn bench_elementwise(c: &mut Criterion) {
    let mut g = c.benchmark_group("elementwise");
    for dev in devices() {
        let n = 1 << 16;
        let a = random::randn(&[256, n / 256], DType::F32)
            .unwrap()
            .to_device(dev)
            .unwrap();
        let b = random::randn(&[n / 256], DType::F32)
            .unwrap()
            .to_device(dev)
            .unwrap();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::new("broadcast_add", dev.name()), |bench| {
            bench.iter(|| sync(&a.add(&b).unwrap()))
        });
        g.bench_function(BenchmarkId::new("sum_dim0", dev.name()), |bench| {
            bench.iter(|| sync(&a.sum(Some(&[0]), false).unwrap()))
        });
        g.bench_function(BenchmarkId::new("log_softmax", dev.name()), |bench| {
            bench.iter(|| sync(&a.log_softmax(1).unwrap()))
        });
    }
    g.finish();
}

fn bench_overhead(c: &mut Criterion) {
    let a = Tensor::ones(&[4], DType::F32).unwrap();
    let b = Tensor::ones(&[4], DType::F32).unwrap();
    c.bench_function("tiny_add_cpu", |bench| {
        bench.iter(|| black_box(a.add(&b).unwrap()))
    });
}

criterion_group!(
    benches,
    bench_matmul,
    bench_matmul_kernels,
    bench_elementwise,
    bench_overhead
);
criterion_main!(benches);
