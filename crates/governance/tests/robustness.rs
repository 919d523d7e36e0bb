//! The detector never panics and its offsets are always valid, whatever the input.

use eventline_governance::{Detector, redact, scan_line};
use proptest::prelude::*;

fn check(text: &str) {
    let detector = Detector::new();
    let n = text.chars().count();
    let entities = detector.detect(text);
    let mut last_end = 0;
    for e in &entities {
        assert!(e.start < e.end, "{e:?} in {text:?}");
        assert!(e.end <= n, "{e:?} past {n} chars in {text:?}");
        assert!(e.start >= last_end, "overlap {e:?} in {text:?}");
        assert!((0.0..=1.0).contains(&e.score));
        last_end = e.end;
    }
    for e in detector.detect_byte_offsets(text) {
        assert!(text.is_char_boundary(e.start) && text.is_char_boundary(e.end), "{e:?} in {text:?}");
    }
    let _ = redact(text, &entities);
}

/// Text made of the pieces PII is made of, so candidates and validators are exercised.
fn piiish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[0-9]{1,6}",
        Just(" ".to_owned()),
        Just("-".to_owned()),
        Just(".".to_owned()),
        Just(":".to_owned()),
        Just("::".to_owned()),
        Just("+".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just("@".to_owned()),
        Just("#".to_owned()),
        Just("/".to_owned()),
        "[A-Za-z]{1,4}",
        "[a-f0-9]{1,4}",
        Just("DE89".to_owned()),
        Just("ssn ".to_owned()),
        Just("card ".to_owned()),
        Just("é".to_owned()),
        Just("👋".to_owned()),
        Just("电话".to_owned()),
        Just("4111 1111 1111 1111".to_owned()),
        Just("jane@example.com".to_owned()),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn never_panics_on_arbitrary_unicode(text in "\\PC{0,80}") {
        check(&text);
    }

    #[test]
    fn never_panics_on_pii_shaped_text(text in piiish()) {
        check(&text);
    }

    #[test]
    fn scan_line_never_panics(text in "\\PC{0,60}", redact_flag: bool) {
        let line = serde_json::json!({ "text": text }).to_string();
        let out = scan_line(&Detector::new(), &line, redact_flag).unwrap();
        prop_assert!(out["entities"].is_array());
        prop_assert_eq!(out.get("redacted").is_some(), redact_flag);
        let _ = scan_line(&Detector::new(), &text, redact_flag);
    }
}

#[test]
fn long_and_pathological_inputs() {
    check(&"1".repeat(100_000));
    check(&"1 ".repeat(50_000));
    check(&"1-".repeat(50_000));
    check(&"1.".repeat(50_000));
    check(&":".repeat(10_000));
    check(&"a@".repeat(10_000));
    check(&"DE89 ".repeat(10_000));
    check(&"+(1)".repeat(10_000));
    check(&"4111 1111 1111 1111 ".repeat(1000));
    check("");
}
