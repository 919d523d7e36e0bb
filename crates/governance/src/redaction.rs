//! Typed masks for detected entities.
//!
//! Every kind is replaced by its mask (`[SSN]`, `[EMAIL]`, ...), except payment cards, which keep at
//! most the BIN (first six digits) and the last four, as PCI DSS 3.4.1 allows: `411111******1111`.

use crate::{Entity, PiiKind};

/// The masked form of a card number: first six and last four digits, `*` for the rest (separators
/// dropped). Numbers shorter than 13 digits are fully masked as `[CREDIT_CARD]`.
pub fn mask_card(value: &str) -> String {
    let digits: Vec<char> = value.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 13 {
        return PiiKind::CreditCard.mask().to_owned();
    }
    let n = digits.len();
    digits.iter().enumerate().map(|(i, &d)| if i < 6 || i >= n - 4 { d } else { '*' }).collect()
}

/// The replacement for `value` detected as `kind`.
pub fn mask_value(kind: PiiKind, value: &str) -> String {
    match kind {
        PiiKind::CreditCard => mask_card(value),
        _ => kind.mask().to_owned(),
    }
}

/// `text` with every entity replaced by its typed mask. Entity offsets are characters (as returned by
/// [`crate::Detector::detect`]); entities that overlap an earlier one or fall outside the text are
/// ignored, so any input is safe.
pub fn redact(text: &str, entities: &[Entity]) -> String {
    redact_with(text, entities, mask_value)
}

/// Like [`redact`] with a custom replacement for each `(kind, original value)`.
pub fn redact_with(text: &str, entities: &[Entity], mut replace: impl FnMut(PiiKind, &str) -> String) -> String {
    let mut spans: Vec<&Entity> = entities.iter().filter(|e| e.start < e.end).collect();
    spans.sort_by_key(|e| (e.start, std::cmp::Reverse(e.end)));
    // char offset -> byte offset, computed once
    let boundaries: Vec<usize> = text.char_indices().map(|(b, _)| b).chain(std::iter::once(text.len())).collect();
    let char_len = boundaries.len() - 1;
    let mut out = String::with_capacity(text.len());
    let mut cursor = 0usize; // in chars
    for e in spans {
        if e.start < cursor || e.end > char_len {
            continue;
        }
        let (b0, b1, b2) = (boundaries[cursor], boundaries[e.start], boundaries[e.end]);
        out.push_str(&text[b0..b1]);
        out.push_str(&replace(e.kind, &text[b1..b2]));
        cursor = e.end;
    }
    out.push_str(&text[boundaries[cursor]..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Detector;

    #[test]
    fn typed_masks_and_pci_card_mask() {
        let text = "SSN 123-45-6789, card 4111 1111 1111 1111, mail a@example.com, IBAN DE89370400440532013000";
        let out = redact(text, &Detector::new().detect(text));
        assert_eq!(out, "SSN [SSN], card 411111******1111, mail [EMAIL], IBAN [IBAN]");
    }

    #[test]
    fn amex_keeps_bin_and_last_four_only() {
        assert_eq!(mask_card("3782 822463 10005"), "378282*****0005");
        assert_eq!(mask_card("4111"), "[CREDIT_CARD]");
    }

    #[test]
    fn unicode_around_entities_survives() {
        let text = "📞 Привет, звоните +1 212 555 0147 🙂";
        let out = redact(text, &Detector::new().detect(text));
        assert_eq!(out, "📞 Привет, звоните [PHONE] 🙂");
    }

    #[test]
    fn bogus_spans_are_ignored() {
        let e = |start, end| Entity { kind: PiiKind::Ssn, start, end, score: 1.0 };
        assert_eq!(redact("héllo", &[e(1, 99), e(3, 2), e(0, 1), e(0, 2)]), "[SSN]llo", "longest at a start wins");
        assert_eq!(redact("héllo", &[e(4, 5), e(9, 12)]), "héll[SSN]");
    }
}
