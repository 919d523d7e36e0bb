//! Detector throughput on short texts (one core). Reports texts/s via criterion's element throughput:
//! `cargo bench -p eventline-governance --bench detect`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eventline_governance::Detector;

const CORPUS: &str = include_str!("../corpus/pii.jsonl");

fn texts() -> Vec<String> {
    CORPUS
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_owned))
        .collect()
}

fn bench(c: &mut Criterion) {
    let detector = Detector::new();
    let corpus = texts();
    let plain: Vec<String> = corpus.iter().filter(|t| detector.detect(t).is_empty()).cloned().collect();
    let mut group = c.benchmark_group("detect");
    group.throughput(Throughput::Elements(corpus.len() as u64));
    group.bench_function("corpus_texts", |b| {
        b.iter(|| {
            for t in &corpus {
                black_box(detector.detect(black_box(t)));
            }
        })
    });
    group.throughput(Throughput::Elements(plain.len() as u64));
    group.bench_function("texts_without_pii", |b| {
        b.iter(|| {
            for t in &plain {
                black_box(detector.detect(black_box(t)));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
