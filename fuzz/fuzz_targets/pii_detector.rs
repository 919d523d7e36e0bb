//! Fuzzes the PII detector: it never panics, every entity is non-empty, inside the text, on character
//! boundaries, in order and non-overlapping; redaction and `pii scan` never panic either.
#![no_main]

use eventline_governance::{Detector, redact, scan_line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let detector = Detector::new();

    let n_chars = text.chars().count();
    let entities = detector.detect(&text);
    let mut last = 0;
    for e in &entities {
        assert!(e.start < e.end, "empty entity {e:?}");
        assert!(e.end <= n_chars, "entity {e:?} past the end ({n_chars} chars)");
        assert!(e.start >= last, "overlapping entity {e:?}");
        last = e.end;
    }
    for e in detector.detect_byte_offsets(&text) {
        assert!(e.start < e.end && e.end <= text.len());
        assert!(text.is_char_boundary(e.start) && text.is_char_boundary(e.end), "{e:?} splits a character");
    }
    let _ = redact(&text, &entities);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = scan_line(&detector, s, true);
    }
});
