//! Context words that raise or lower the score of a borderline candidate.
//!
//! One Aho-Corasick automaton (ASCII case-insensitive, leftmost-longest) holds every keyword. The
//! keyword nearest before a candidate that speaks about its kind (or says "this is an order,
//! tracking, version... number") decides: positive for the same kind raises the score, negative
//! lowers it. Keywords about other kinds are skipped.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::PiiKind;

/// What a keyword says about the number that follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cue {
    /// The following value is of this kind.
    Positive(PiiKind),
    /// The following value is an identifier that is not personal data (order, tracking, version...).
    Negative,
}

/// How far before a candidate (in bytes) a keyword still counts.
const WINDOW: usize = 48;

struct Keyword {
    word: &'static str,
    cue: Cue,
    /// Whether letters may follow (`card` matches `cards`); otherwise a whole word is required.
    stem: bool,
}

const fn kw(word: &'static str, cue: Cue, stem: bool) -> Keyword {
    Keyword { word, cue, stem }
}

use Cue::{Negative as N, Positive as P};
use PiiKind::{CreditCard as C, IpAddress as I, Phone as T, Ssn as S};

const KEYWORDS: &[Keyword] = &[
    kw("ssn", P(S), true),
    kw("ss#", P(S), false),
    kw("social security", P(S), false),
    kw("social-security", P(S), false),
    kw("soc sec", P(S), false),
    kw("taxpayer", P(S), true),
    kw("tin", P(S), false),
    kw("card", P(C), true),
    kw("credit", P(C), false),
    kw("debit", P(C), false),
    kw("visa", P(C), false),
    kw("mastercard", P(C), false),
    kw("amex", P(C), false),
    kw("american express", P(C), false),
    kw("pan", P(C), false),
    kw("tarjeta", P(C), true),
    kw("carte", P(C), true),
    kw("karte", P(C), true),
    kw("kreditkarte", P(C), true),
    kw("карта", P(C), false),
    kw("卡号", P(C), false),
    kw("phone", P(T), true),
    kw("telephone", P(T), true),
    kw("tel", P(T), false),
    kw("tel.", P(T), false),
    kw("call", P(T), true),
    kw("mobile", P(T), false),
    kw("cell", P(T), false),
    kw("text me", P(T), false),
    kw("sms", P(T), false),
    kw("whatsapp", P(T), false),
    kw("fax", P(T), false),
    kw("dial", P(T), true),
    kw("reach me", P(T), false),
    kw("téléphone", P(T), false),
    kw("telefon", P(T), true),
    kw("teléfono", P(T), false),
    kw("móvil", P(T), false),
    kw("appelez", P(T), false),
    kw("номер", P(T), false),
    kw("电话", P(T), false),
    kw("ip", P(I), false),
    kw("ipv4", P(I), false),
    kw("ipv6", P(I), false),
    kw("from", P(I), false),
    kw("src", P(I), false),
    kw("dst", P(I), false),
    kw("host", P(I), false),
    kw("server", P(I), false),
    kw("client", P(I), false),
    kw("address", P(I), false),
    // identifiers that are not personal data
    kw("order", N, true),
    kw("pedido", N, false),
    kw("commande", N, false),
    kw("bestellung", N, false),
    kw("订单", N, false),
    kw("invoice", N, true),
    kw("ticket", N, true),
    kw("case", N, false),
    kw("case id", N, false),
    kw("ref", N, false),
    kw("ref.", N, false),
    kw("reference", N, false),
    kw("confirmation", N, false),
    kw("tracking", N, false),
    kw("track", N, false),
    kw("parcel", N, false),
    kw("shipment", N, false),
    kw("delivery", N, false),
    kw("awb", N, false),
    kw("isbn", N, false),
    kw("version", N, false),
    kw("build", N, false),
    kw("firmware", N, false),
    kw("kernel", N, false),
    kw("patch", N, false),
    kw("release", N, true),
    kw("install", N, true),
    kw("upgrade", N, true),
    kw("app", N, false),
    kw("sdk", N, false),
    kw("section", N, false),
    kw("clause", N, false),
    kw("routing", N, false),
    kw("account", N, false),
    kw("badge", N, false),
    kw("serial", N, false),
    kw("sku", N, false),
    kw("zip", N, false),
];

pub(crate) struct ContextIndex {
    ac: AhoCorasick,
}

/// A keyword occurrence in one text: where it ends (bytes) and its cue.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hit {
    pub end: usize,
    pub cue: Cue,
}

impl ContextIndex {
    pub(crate) fn new() -> Self {
        let ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .build(KEYWORDS.iter().map(|k| k.word))
            .unwrap_or_else(|e| panic!("context keywords are a valid automaton: {e}"));
        Self { ac }
    }

    /// Every keyword occurrence in `text` that stands as a word (or a word stem).
    pub(crate) fn hits(&self, text: &str) -> Vec<Hit> {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        for m in self.ac.find_iter(text) {
            let k = &KEYWORDS[m.pattern().as_usize()];
            let before_ok = m.start() == 0 || !is_word_byte_before(text, m.start());
            let after_ok = k.stem || m.end() >= bytes.len() || !is_word_byte_after(text, m.end());
            if before_ok && after_ok {
                out.push(Hit { end: m.end(), cue: k.cue });
            }
        }
        out
    }
}

fn is_word_byte_before(text: &str, at: usize) -> bool {
    text[..at].chars().next_back().is_some_and(crate::detector::is_word_char)
}

fn is_word_byte_after(text: &str, at: usize) -> bool {
    text[at..].chars().next().is_some_and(crate::detector::is_word_char)
}

/// The cue that applies to a candidate of `kind` starting at byte `start`: the nearest preceding
/// keyword within the window that is either negative or positive for `kind`.
///
/// `hash_at` is the byte position of a `#` written just before the candidate (`#4411...`): a number
/// tag marks an identifier unless a positive keyword is glued to it (`SSN#123-45-6789`).
///
/// A keyword speaks about the value that follows it, not past it: `found_between(from, to)` says
/// whether a value already identified in the text (IBANs and e-mails are found before numbers)
/// lies within those bytes, and a keyword with one between it and the candidate does not reach the
/// candidate ("account: <IBAN>; backup: <phone>" — `account` is about the IBAN, not the phone).
pub(crate) fn cue_for(
    hits: &[Hit],
    kind: PiiKind,
    start: usize,
    hash_at: Option<usize>,
    found_between: impl Fn(usize, usize) -> bool,
) -> Option<Cue> {
    let nearest = hits
        .iter()
        .rev()
        .filter(|h| h.end <= start && start - h.end <= WINDOW)
        .filter(|h| !found_between(h.end, start))
        .find(|h| matches!(h.cue, Cue::Negative) || h.cue == Cue::Positive(kind));
    match (hash_at, nearest) {
        (Some(at), Some(h)) if h.end == at && h.cue == Cue::Positive(kind) => Some(h.cue),
        (Some(_), _) => Some(Cue::Negative),
        (None, h) => h.map(|h| h.cue),
    }
}
