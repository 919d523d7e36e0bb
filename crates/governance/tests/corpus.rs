//! Precision and recall of the detector over the labelled corpus (exact type + span match).
//!
//! Fails when either figure falls below 0.99 overall. Prints a per-type table and every miss, so a
//! regression says what broke: `cargo test -p eventline-governance --test corpus -- --nocapture`.

use std::collections::{BTreeMap, BTreeSet};

use eventline_governance::{Detector, PiiKind};
use serde::Deserialize;

#[derive(Deserialize)]
struct Line {
    text: String,
    entities: Vec<Label>,
}

#[derive(Deserialize)]
struct Label {
    #[serde(rename = "type")]
    kind: PiiKind,
    start: usize,
    end: usize,
}

const CORPUS: &str = include_str!("../corpus/pii.jsonl");

#[derive(Default)]
struct Counts {
    tp: usize,
    fp: usize,
    fn_: usize,
}

fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 { 1.0 } else { num as f64 / den as f64 }
}

#[test]
fn corpus_is_large_and_well_formed() {
    let lines: Vec<Line> = CORPUS
        .lines()
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).unwrap_or_else(|e| panic!("line {}: {e}", i + 1)))
        .collect();
    assert!(lines.len() >= 500, "corpus has {} lines", lines.len());
    let negatives = lines.iter().filter(|l| l.entities.is_empty()).count();
    assert!(negatives >= 150, "corpus needs hard negatives, has {negatives} lines without entities");
    let mut non_ascii = 0;
    for (i, l) in lines.iter().enumerate() {
        let n = l.text.chars().count();
        non_ascii += usize::from(!l.text.is_ascii() && !l.entities.is_empty());
        for e in &l.entities {
            assert!(e.start < e.end && e.end <= n, "line {}: span {}..{} out of {n} chars", i + 1, e.start, e.end);
        }
    }
    assert!(non_ascii >= 30, "need Unicode lines with entities so char offsets differ from byte offsets");
    for kind in PiiKind::ALL {
        let count = lines.iter().flat_map(|l| &l.entities).filter(|e| e.kind == kind).count();
        assert!(count >= 30, "{kind}: only {count} labelled entities");
    }
}

#[test]
fn precision_and_recall_meet_targets() {
    let detector = Detector::new();
    let mut per_kind: BTreeMap<PiiKind, Counts> = BTreeMap::new();
    let mut misses = Vec::new();
    for (i, raw) in CORPUS.lines().enumerate() {
        let line: Line = serde_json::from_str(raw).expect("well-formed line");
        let expected: BTreeSet<(PiiKind, usize, usize)> =
            line.entities.iter().map(|e| (e.kind, e.start, e.end)).collect();
        let got: BTreeSet<(PiiKind, usize, usize)> =
            detector.detect(&line.text).iter().map(|e| (e.kind, e.start, e.end)).collect();
        let chars: Vec<char> = line.text.chars().collect();
        let show = |&(k, s, e): &(PiiKind, usize, usize)| format!("{k} {:?}", chars[s..e].iter().collect::<String>());
        for hit in expected.intersection(&got) {
            per_kind.entry(hit.0).or_default().tp += 1;
        }
        for fp in got.difference(&expected) {
            per_kind.entry(fp.0).or_default().fp += 1;
            misses.push(format!("line {}: false positive {} in {:?}", i + 1, show(fp), line.text));
        }
        for fn_ in expected.difference(&got) {
            per_kind.entry(fn_.0).or_default().fn_ += 1;
            misses.push(format!("line {}: missed {} in {:?}", i + 1, show(fn_), line.text));
        }
    }
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    println!("{:<12} {:>5} {:>4} {:>4} {:>9} {:>7}", "type", "tp", "fp", "fn", "precision", "recall");
    for (kind, c) in &per_kind {
        println!(
            "{:<12} {:>5} {:>4} {:>4} {:>9.4} {:>7.4}",
            kind.as_str(),
            c.tp,
            c.fp,
            c.fn_,
            ratio(c.tp, c.tp + c.fp),
            ratio(c.tp, c.tp + c.fn_)
        );
        tp += c.tp;
        fp += c.fp;
        fn_ += c.fn_;
    }
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fn_);
    println!("{:<12} {:>5} {:>4} {:>4} {:>9.4} {:>7.4}", "overall", tp, fp, fn_, precision, recall);
    for m in &misses {
        println!("{m}");
    }
    assert!(precision >= 0.99, "precision {precision:.4} < 0.99; misses:\n{}", misses.join("\n"));
    assert!(recall >= 0.99, "recall {recall:.4} < 0.99; misses:\n{}", misses.join("\n"));
}
