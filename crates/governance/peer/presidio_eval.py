#!/usr/bin/env python3
"""Scores Microsoft Presidio (pattern recognizers only) on corpus/pii.jsonl.

Same definition as tests/corpus.rs: an entity counts as a true positive only when type, start and end
(Unicode characters, end exclusive) all match. Presidio types are mapped to ours; entities of other
Presidio types are ignored. No spaCy model can be downloaded here, so the analyzer runs on a blank
English spaCy pipeline (tokenizer only): the NER-based recognizers have no model and stay silent,
the pattern + checksum + context recognizers (US_SSN, CREDIT_CARD, EMAIL_ADDRESS, PHONE_NUMBER,
IBAN_CODE, IP_ADDRESS) work as usual. Default score threshold (0).

    python3 -m venv /tmp/presidio-venv && /tmp/presidio-venv/bin/pip install presidio-analyzer
    /tmp/presidio-venv/bin/python crates/governance/peer/presidio_eval.py crates/governance/corpus/pii.jsonl
"""
import json
import sys
import time
from collections import Counter

import spacy
from presidio_analyzer import AnalyzerEngine
from presidio_analyzer.nlp_engine import SpacyNlpEngine

TYPE_MAP = {
    "US_SSN": "SSN",
    "CREDIT_CARD": "CREDIT_CARD",
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "IBAN_CODE": "IBAN",
    "IP_ADDRESS": "IP_ADDRESS",
}


class BlankSpacyNlpEngine(SpacyNlpEngine):
    """A spaCy engine over spacy.blank('en'): tokenization and lemmas only, no model download."""

    def __init__(self):
        super().__init__(models=[{"lang_code": "en", "model_name": "blank"}])

    def load(self):
        self.nlp = {"en": spacy.blank("en")}


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "crates/governance/corpus/pii.jsonl"
    lines = [json.loads(l) for l in open(path, encoding="utf-8")]
    analyzer = AnalyzerEngine(nlp_engine=BlankSpacyNlpEngine(), supported_languages=["en"])
    entities = list(TYPE_MAP)

    tp, fp, fn = Counter(), Counter(), Counter()
    misses = []
    for i, line in enumerate(lines, 1):
        text = line["text"]
        expected = {(e["type"], e["start"], e["end"]) for e in line["entities"]}
        results = analyzer.analyze(text=text, language="en", entities=entities)
        got = {(TYPE_MAP[r.entity_type], r.start, r.end) for r in results if r.entity_type in TYPE_MAP}
        for k in expected & got:
            tp[k[0]] += 1
        for k in got - expected:
            fp[k[0]] += 1
            misses.append(f"line {i}: false positive {k[0]} {text[k[1]:k[2]]!r}")
        for k in expected - got:
            fn[k[0]] += 1
            misses.append(f"line {i}: missed {k[0]} {text[k[1]:k[2]]!r}")

    def ratio(a, b):
        return a / b if b else 1.0

    print(f"{'type':<12} {'tp':>5} {'fp':>4} {'fn':>4} {'precision':>9} {'recall':>7}")
    for t in ["SSN", "CREDIT_CARD", "EMAIL", "PHONE", "IBAN", "IP_ADDRESS"]:
        print(f"{t:<12} {tp[t]:>5} {fp[t]:>4} {fn[t]:>4} {ratio(tp[t], tp[t] + fp[t]):>9.4f} {ratio(tp[t], tp[t] + fn[t]):>7.4f}")
    T, F, N = sum(tp.values()), sum(fp.values()), sum(fn.values())
    print(f"{'overall':<12} {T:>5} {F:>4} {N:>4} {ratio(T, T + F):>9.4f} {ratio(T, T + N):>7.4f}")

    texts = [l["text"] for l in lines]
    for t in texts[:50]:  # warm-up
        analyzer.analyze(text=t, language="en", entities=entities)
    rounds = 3
    start = time.perf_counter()
    for _ in range(rounds):
        for t in texts:
            analyzer.analyze(text=t, language="en", entities=entities)
    elapsed = time.perf_counter() - start
    print(f"throughput: {rounds * len(texts) / elapsed:.0f} texts/s ({rounds} x {len(texts)} texts, one core)")
    if "-v" in sys.argv:
        print("\n".join(misses))


if __name__ == "__main__":
    main()
