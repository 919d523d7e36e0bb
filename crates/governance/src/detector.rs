//! The PII detector: candidates from patterns, checked by validators, scored with context.
//!
//! Pipeline for one text:
//! 1. one byte pass counts digits, `@` and `:`; a text that cannot hold any kind returns at once;
//! 2. e-mails (regex, only when there is an `@`), IBANs (country + length table walk), IPv6 (regex,
//!    only with two or more `:`), and one tokenizer for everything numeric (SSN, cards, phones, IPv4):
//!    it splits digit runs into groups joined by `-`, `.`, `(`/`)` or single spaces and tries the
//!    longest space-joined run of groups first;
//! 3. validators (Luhn + IIN, SSA ranges, E.164/NANP plans, ISO 13616 mod-97, octets);
//! 4. context words (Aho-Corasick) raise borderline candidates or sink look-alike identifiers;
//! 5. overlaps are resolved by score then length, and byte offsets become character offsets.

use std::net::Ipv6Addr;
use std::sync::{Arc, OnceLock};

use regex::Regex;
use serde::{Serialize, Serializer};

use crate::PiiKind;
use crate::context::{ContextIndex, Cue, Hit, cue_for};
use crate::validators::{card_valid, e164_valid, iban_length, iban_valid, ipv4_octet_valid, nanp_valid, ssn_valid};

/// One finding. `start`/`end` are Unicode character offsets into the scanned text, end exclusive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Entity {
    pub kind: PiiKind,
    pub start: usize,
    pub end: usize,
    /// Confidence in `[0, 1]`; entities below the detector's threshold are not reported.
    pub score: f32,
}

impl Serialize for Entity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Entity", 4)?;
        st.serialize_field("type", &self.kind)?;
        st.serialize_field("start", &self.start)?;
        st.serialize_field("end", &self.end)?;
        st.serialize_field("score", &round_score(self.score))?;
        st.end()
    }
}

/// A score as written on the wire: two decimals.
pub(crate) fn round_score(score: f32) -> f64 {
    (f64::from(score) * 100.0).round() / 100.0
}

/// The default reporting threshold.
pub const DEFAULT_THRESHOLD: f32 = 0.5;

const BOOST: f32 = 0.3;
const PENALTY: f32 = 0.4;

struct Compiled {
    email: Regex,
    ipv6: Regex,
    context: ContextIndex,
}

static COMPILED: OnceLock<Arc<Compiled>> = OnceLock::new();

fn compiled() -> Arc<Compiled> {
    COMPILED
        .get_or_init(|| {
            let email = Regex::new(
                r"[\p{L}\p{N}._%+\-']+@(?:[\p{L}\p{N}](?:[\p{L}\p{N}\-]{0,61}[\p{L}\p{N}])?\.)+[A-Za-z]{2,24}",
            )
            .unwrap_or_else(|e| panic!("e-mail pattern compiles: {e}"));
            let ipv6 =
                Regex::new(r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})?")
                    .unwrap_or_else(|e| panic!("IPv6 pattern compiles: {e}"));
            Arc::new(Compiled { email, ipv6, context: ContextIndex::new() })
        })
        .clone()
}

/// Finds PII in free text. Patterns are compiled once per process; cloning is cheap.
#[derive(Clone)]
pub struct Detector {
    compiled: Arc<Compiled>,
    threshold: f32,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector").field("threshold", &self.threshold).finish_non_exhaustive()
    }
}

impl Default for Detector {
    fn default() -> Self {
        Self::new()
    }
}

/// A candidate in byte offsets.
#[derive(Clone, Copy, Debug)]
struct Found {
    kind: PiiKind,
    start: usize,
    end: usize,
    score: f32,
}

impl Detector {
    /// A detector with the default threshold (0.5).
    pub fn new() -> Self {
        Self { compiled: compiled(), threshold: DEFAULT_THRESHOLD }
    }

    /// A detector reporting entities whose score is at least `threshold` (clamped to `[0, 1]`).
    pub fn with_threshold(threshold: f32) -> Self {
        let threshold = if threshold.is_nan() { DEFAULT_THRESHOLD } else { threshold.clamp(0.0, 1.0) };
        Self { compiled: compiled(), threshold }
    }

    /// The reporting threshold.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// All PII in `text`, ordered by start, non-overlapping, offsets in characters.
    pub fn detect(&self, text: &str) -> Vec<Entity> {
        let found = self.detect_bytes(text);
        to_char_offsets(text, &found)
    }

    /// Like [`Detector::detect`] but with byte offsets (always on character boundaries).
    pub fn detect_byte_offsets(&self, text: &str) -> Vec<Entity> {
        self.detect_bytes(text)
            .into_iter()
            .map(|f| Entity { kind: f.kind, start: f.start, end: f.end, score: f.score })
            .collect()
    }

    fn detect_bytes(&self, text: &str) -> Vec<Found> {
        let bytes = text.as_bytes();
        let (mut digits, mut at, mut colons) = (0usize, false, 0usize);
        for &b in bytes {
            match b {
                b'0'..=b'9' => digits += 1,
                b'@' => at = true,
                b':' => colons += 1,
                _ => {}
            }
        }
        if digits < 4 && !at && colons < 2 {
            return Vec::new();
        }
        let mut scan =
            Scan { text, ctx: &self.compiled.context, hits: None, threshold: self.threshold, out: Vec::new() };
        if at {
            scan.emails(&self.compiled.email);
        }
        if digits >= 8 {
            scan.ibans();
        }
        if colons >= 2 {
            scan.ipv6(&self.compiled.ipv6);
        }
        if digits >= 4 {
            scan.numbers();
        }
        resolve_overlaps(scan.out)
    }
}

/// Whether `c` continues a word (so a number touching it is part of an identifier). CJK and other
/// scripts written without spaces do not count, so `电话13812345678` still yields the number.
pub(crate) fn is_word_char(c: char) -> bool {
    c == '_' || (c.is_alphanumeric() && (c.is_ascii() || (c as u32) < 0x2E80))
}

fn char_before(text: &str, at: usize) -> Option<char> {
    text.get(..at).and_then(|s| s.chars().next_back())
}

fn char_after(text: &str, at: usize) -> Option<char> {
    text.get(at..).and_then(|s| s.chars().next())
}

struct Scan<'a> {
    text: &'a str,
    ctx: &'a ContextIndex,
    hits: Option<Vec<Hit>>,
    threshold: f32,
    out: Vec<Found>,
}

#[derive(Clone, Copy, Debug)]
struct Group {
    /// Byte span including a leading `+` or surrounding parentheses.
    start: usize,
    end: usize,
    /// Byte span of the digits.
    dstart: usize,
    dend: usize,
    plus: bool,
    paren: bool,
    /// The separator before this group (0 for the first group of a token, `)`/`(` for none).
    sep: u8,
}

impl Group {
    fn len(&self) -> usize {
        self.dend - self.dstart
    }
}

impl<'a> Scan<'a> {
    fn cue(&mut self, kind: PiiKind, start: usize) -> Option<Cue> {
        let text = self.text;
        let hits = self.hits.get_or_insert_with(|| self.ctx.hits(text));
        let hash_at = match char_before(text, start) {
            Some('#') => Some(start - 1),
            Some(' ') if char_before(text, start - 1) == Some('#') => Some(start - 2),
            _ => None,
        };
        let out = &self.out;
        cue_for(hits, kind, start, hash_at, |from, to| out.iter().any(|f| f.start >= from && f.end <= to))
    }

    fn push_scored(&mut self, kind: PiiKind, start: usize, end: usize, base: f32) -> bool {
        let score = match self.cue(kind, start) {
            Some(Cue::Positive(_)) => (base + BOOST).min(1.0),
            Some(Cue::Negative) => base - PENALTY,
            None => base,
        };
        if score >= self.threshold {
            self.out.push(Found { kind, start, end, score: score.clamp(0.0, 1.0) });
            true
        } else {
            false
        }
    }

    fn emails(&mut self, re: &Regex) {
        const FILE_EXTENSIONS: &[&str] = &[
            "png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "tif", "tiff", "heic", "pdf", "txt", "css",
            "html", "htm", "json", "xml", "exe", "dll", "mp4", "mov", "mp3", "wav", "csv", "xlsx", "docx",
        ];
        let text = self.text;
        for m in re.find_iter(text) {
            let s = m.as_str();
            let Some(at) = s.rfind('@') else { continue };
            let lead = s[..at].len() - s[..at].trim_start_matches(['.', '-', '+', '%', '\'']).len();
            let (local, domain) = (&s[lead..at], &s[at + 1..]);
            if local.is_empty() || local.len() > 64 || local.ends_with('.') || local.contains("..") {
                continue;
            }
            let tld = domain.rsplit('.').next().unwrap_or("");
            if FILE_EXTENSIONS.iter().any(|e| e.eq_ignore_ascii_case(tld)) {
                continue;
            }
            if domain.split('.').any(|l| l.starts_with('-') || l.ends_with('-')) {
                continue;
            }
            if char_after(text, m.end()).is_some_and(|c| c.is_alphanumeric() || c == '@') {
                continue;
            }
            self.out.push(Found { kind: PiiKind::Email, start: m.start() + lead, end: m.end(), score: 0.95 });
        }
    }

    fn ibans(&mut self) {
        let text = self.text;
        let bytes = text.as_bytes();
        let n = bytes.len();
        let mut i = 0;
        let mut compact = [0u8; 34];
        while i + 4 <= n {
            let ok_head = bytes[i].is_ascii_alphabetic()
                && bytes[i + 1].is_ascii_alphabetic()
                && bytes[i + 2].is_ascii_digit()
                && bytes[i + 3].is_ascii_digit()
                && bytes[i].is_ascii_uppercase() == bytes[i + 1].is_ascii_uppercase();
            if !ok_head || char_before(text, i).is_some_and(is_word_char) {
                i += 1;
                continue;
            }
            let Some(len) = iban_length(&bytes[i..i + 2]) else {
                i += 1;
                continue;
            };
            // Walk: compact, or print format with one space after every group of four.
            let mut count = 0;
            let mut pos = i;
            while count < len && pos < n {
                let b = bytes[pos];
                if b.is_ascii_alphanumeric() {
                    compact[count] = b;
                    count += 1;
                    pos += 1;
                } else if b == b' '
                    && count % 4 == 0
                    && count > 0
                    && pos + 1 < n
                    && bytes[pos + 1].is_ascii_alphanumeric()
                {
                    pos += 1;
                } else {
                    break;
                }
            }
            let attached = char_after(text, pos).is_some_and(is_word_char);
            if count == len && !attached && iban_valid(&compact[..len]) {
                self.out.push(Found { kind: PiiKind::Iban, start: i, end: pos, score: 0.95 });
                i = pos;
            } else {
                i += 1;
            }
        }
    }

    fn ipv6(&mut self, re: &Regex) {
        let text = self.text;
        for m in re.find_iter(text) {
            let (start, mut end) = (m.start(), m.end());
            if char_before(text, start).is_some_and(|c| is_word_char(c) || c == ':' || c == '.') {
                continue;
            }
            let mut s = m.as_str();
            if s.ends_with(':') && !s.ends_with("::") {
                s = &s[..s.len() - 1];
                end -= 1;
            }
            if !s.bytes().any(|b| b.is_ascii_digit()) || s.parse::<Ipv6Addr>().is_err() {
                continue;
            }
            if char_after(text, end).is_some_and(|c| is_word_char(c) || c == '.') {
                continue;
            }
            self.push_scored(PiiKind::IpAddress, start, end, 0.8);
        }
    }

    fn numbers(&mut self) {
        let text = self.text;
        let bytes = text.as_bytes();
        let n = bytes.len();
        let mut groups: Vec<Group> = Vec::with_capacity(8);
        let mut i = 0;
        while i < n {
            let b = bytes[i];
            let starts = b.is_ascii_digit() || ((b == b'+' || b == b'(') && i + 1 < n && bytes[i + 1].is_ascii_digit());
            if !starts {
                i += 1;
                continue;
            }
            let mut end = parse_token(bytes, i, &mut groups);
            if groups.is_empty() {
                i = end.max(i + 1);
                continue;
            }
            let attached_before = match char_before(text, i) {
                Some(c) if is_word_char(c) => true,
                Some(c @ ('-' | '.' | '/' | '\\' | '@' | '+')) => {
                    let before = i - c.len_utf8();
                    char_before(text, before).is_some_and(is_word_char)
                }
                _ => false,
            };
            let attached_after = match char_after(text, end) {
                Some(c) if is_word_char(c) || c == '@' => true,
                Some('-' | '_') => char_after(text, end + 1).is_some_and(is_word_char),
                _ => false,
            };
            // A CIDR block (10.0.0.0/8) names a network, not a host.
            let cidr = bytes.get(end) == Some(&b'/')
                && bytes.get(end + 1).is_some_and(u8::is_ascii_digit)
                && groups.iter().any(|g| g.sep == b'.');
            if cidr {
                while end < n && (bytes[end] == b'/' || bytes[end].is_ascii_digit()) {
                    end += 1;
                }
            }
            if !attached_before && !attached_after && !cidr {
                self.classify_token(&groups);
            }
            i = end.max(i + 1);
        }
    }

    /// Tries runs of whole segments (groups joined without spaces), longest first from each start.
    fn classify_token(&mut self, groups: &[Group]) {
        let seg_starts: Vec<usize> = (0..groups.len()).filter(|&g| g == 0 || groups[g].sep == b' ').collect();
        let nseg = seg_starts.len();
        let seg_end = |s: usize| if s + 1 < nseg { seg_starts[s + 1] } else { groups.len() };
        let mut si = 0;
        while si < nseg {
            let mut next = si + 1;
            for sj in (si..nseg.min(si + 8)).rev() {
                let (ga, gb) = (seg_starts[si], seg_end(sj));
                let run = &groups[ga..gb];
                if let Some((kind, base)) = classify(self.text.as_bytes(), run, &groups[..ga], &groups[gb..]) {
                    let (start, end) = (run[0].start, run[run.len() - 1].end);
                    if self.push_scored(kind, start, end, base) {
                        next = sj + 1;
                        break;
                    }
                }
            }
            si = next;
        }
    }
}

/// Splits the numeric token starting at `i` into groups; returns the byte end of the last group.
fn parse_token(bytes: &[u8], i: usize, groups: &mut Vec<Group>) -> usize {
    groups.clear();
    let n = bytes.len();
    let mut pos = i;
    let mut sep = 0u8;
    let mut end = i;
    loop {
        let gstart = pos;
        let mut p = pos;
        let plus = groups.is_empty() && bytes.get(p) == Some(&b'+');
        if plus {
            p += 1;
        }
        let paren = bytes.get(p) == Some(&b'(');
        if paren {
            p += 1;
        }
        let dstart = p;
        while p < n && bytes[p].is_ascii_digit() {
            p += 1;
        }
        let dend = p;
        if dend == dstart {
            break;
        }
        if dend - dstart > 19 {
            if groups.is_empty() {
                end = dend; // too long to be anything: skip the whole digit run
            }
            break;
        }
        if paren {
            if bytes.get(p) == Some(&b')') {
                p += 1;
            } else {
                break;
            }
        }
        groups.push(Group { start: gstart, end: p, dstart, dend, plus, paren, sep });
        end = p;
        if groups.len() >= 24 {
            break;
        }
        let (next_sep, skip) = match bytes.get(p) {
            Some(&c @ (b' ' | b'-' | b'.')) => (c, 1),
            Some(b'(') => (b'(', 0),
            Some(c) if paren && c.is_ascii_digit() => (b')', 0),
            _ => break,
        };
        let q = p + skip;
        let continues =
            q < n && (bytes[q].is_ascii_digit() || (bytes[q] == b'(' && q + 1 < n && bytes[q + 1].is_ascii_digit()));
        if !continues {
            break;
        }
        sep = next_sep;
        pos = q;
    }
    end
}

const CARD_SHAPES: &[&[usize]] =
    &[&[4, 4, 4, 4], &[4, 4, 4, 4, 3], &[4, 6, 5], &[4, 6, 4], &[4, 4, 4, 1], &[4, 4, 4, 3]];

/// The kind and base score of a run of groups, if it validates as one.
fn classify(bytes: &[u8], run: &[Group], before: &[Group], after: &[Group]) -> Option<(PiiKind, f32)> {
    let mut digits = [0u8; 24];
    let mut total = 0;
    for g in run {
        for &b in &bytes[g.dstart..g.dend] {
            if total == digits.len() {
                return None;
            }
            digits[total] = b;
            total += 1;
        }
    }
    let d = &digits[..total];
    let n = run.len();
    let plus = run[0].plus;
    let paren = run.iter().any(|g| g.paren);
    let seps: Vec<u8> = run[1..].iter().map(|g| g.sep).collect();
    let lens: Vec<usize> = run.iter().map(Group::len).collect();
    let same_sep = |allowed: &[u8]| seps.first().is_none_or(|s0| allowed.contains(s0) && seps.iter().all(|s| s == s0));

    if !plus && !paren {
        // IPv4
        if n == 4 && seps.iter().all(|&s| s == b'.') {
            return run.iter().all(|g| ipv4_octet_valid(&bytes[g.dstart..g.dend])).then_some((PiiKind::IpAddress, 0.6));
        }
        if seps.contains(&b'.') && !(n == 3 && lens == [3, 3, 4]) {
            return None;
        }
        // SSN
        if n == 1 && total == 9 && ssn_valid(d) {
            return Some((PiiKind::Ssn, 0.3));
        }
        if n == 3 && lens == [3, 2, 4] && same_sep(b"- ") && ssn_valid(d) {
            return Some((PiiKind::Ssn, 0.65));
        }
        // Payment card
        if (13..=19).contains(&total) && card_valid(d) {
            if n == 1 {
                return Some((PiiKind::CreditCard, 0.6));
            }
            let four = |g: Option<&Group>| g.is_some_and(|g| g.len() == 4 && g.sep != b'.');
            let neighbour = four(before.last()) || four(after.first());
            if same_sep(b" -") && CARD_SHAPES.contains(&lens.as_slice()) && !neighbour {
                return Some((PiiKind::CreditCard, 0.7));
            }
        }
    }
    // Phone
    if plus {
        let mut e = [0u8; 24];
        let mut k = 0;
        for (gi, g) in run.iter().enumerate() {
            let gd = &bytes[g.dstart..g.dend];
            if gi > 0 && g.paren && gd == b"0" {
                continue; // trunk prefix written as +44 (0)20 ...
            }
            for &b in gd {
                e[k] = b;
                k += 1;
            }
        }
        let groups_ok = lens.iter().skip(1).all(|&l| l <= 8);
        return (e164_valid(&e[..k]) && groups_ok).then_some((PiiKind::Phone, 0.75));
    }
    let nanp_off = usize::from(n == 4 && lens[0] == 1 && d[0] == b'1');
    let body = &run[nanp_off..];
    if body.len() == 3
        && lens[nanp_off..] == [3, 3, 4]
        && !body[1..].iter().any(|g| g.paren)
        && nanp_valid(&d[nanp_off..])
    {
        return Some((PiiKind::Phone, 0.7));
    }
    if paren {
        return None;
    }
    if n == 1 && total == 10 && nanp_valid(d) {
        return Some((PiiKind::Phone, 0.3));
    }
    if n == 1 && total == 11 && d[0] == b'1' && nanp_valid(&d[1..]) {
        return Some((PiiKind::Phone, 0.3));
    }
    if total >= 11 && d.starts_with(b"00") && n >= 2 && e164_valid(&d[2..]) {
        return Some((PiiKind::Phone, 0.6));
    }
    if total >= 2 && d[0] == b'0' && d[1] != b'0' && (10..=11).contains(&total) {
        if n == 1 {
            return Some((PiiKind::Phone, 0.3));
        }
        if lens.iter().all(|l| (2..=6).contains(l)) && same_sep(b" -") {
            return Some((PiiKind::Phone, 0.6));
        }
    }
    None
}

/// Keeps, among overlapping candidates, the one with the higher score (then the longer).
fn resolve_overlaps(mut found: Vec<Found>) -> Vec<Found> {
    found.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut out: Vec<Found> = Vec::with_capacity(found.len());
    for f in found {
        if f.start >= f.end {
            continue;
        }
        match out.last_mut() {
            Some(last) if f.start < last.end => {
                let better = (f.score, f.end - f.start) > (last.score, last.end - last.start);
                if better {
                    *last = f;
                    // The replacement may now overlap earlier kept entities; drop those it covers.
                    while out.len() >= 2 && out[out.len() - 2].end > out[out.len() - 1].start {
                        let keep = out.pop();
                        out.pop();
                        out.extend(keep);
                    }
                }
            }
            _ => out.push(f),
        }
    }
    out
}

/// Converts sorted, non-overlapping byte spans to character offsets.
fn to_char_offsets(text: &str, found: &[Found]) -> Vec<Entity> {
    let ascii = text.is_ascii();
    let (mut byte_cursor, mut char_cursor) = (0usize, 0usize);
    let mut out = Vec::with_capacity(found.len());
    for f in found {
        let (Some(gap), Some(span)) = (text.get(byte_cursor..f.start), text.get(f.start..f.end)) else {
            continue;
        };
        let (gap_chars, span_chars) =
            if ascii { (gap.len(), span.len()) } else { (gap.chars().count(), span.chars().count()) };
        let start = char_cursor + gap_chars;
        let end = start + span_chars;
        out.push(Entity { kind: f.kind, start, end, score: f.score });
        byte_cursor = f.end;
        char_cursor = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(PiiKind, String)> {
        let chars: Vec<char> = text.chars().collect();
        Detector::new().detect(text).into_iter().map(|e| (e.kind, chars[e.start..e.end].iter().collect())).collect()
    }

    /// A context word speaks about the value right after it: `account` (not personal data) must
    /// not reach past the IBAN it names to the contact detail that follows.
    #[test]
    fn a_context_word_does_not_reach_past_the_value_it_names() {
        let iban = "DE89370400440532013000";
        for (second, kind) in [
            ("+1 212 555 0147", PiiKind::Phone),
            ("192.168.10.20", PiiKind::IpAddress),
            ("219-09-9999", PiiKind::Ssn),
            ("378282246310005", PiiKind::CreditCard),
        ] {
            let text = format!("beneficiary account: {iban}; backup: {second}");
            assert_eq!(kinds(&text), vec![(PiiKind::Iban, iban.into()), (kind, second.into())], "{text}");
        }
        // ...while it still speaks about the value right after it.
        assert!(kinds("routing account 123456789 for payroll").is_empty());
    }

    #[test]
    fn finds_each_kind_with_exact_spans() {
        assert_eq!(kinds("SSN 123-45-6789."), vec![(PiiKind::Ssn, "123-45-6789".into())]);
        assert_eq!(
            kinds("card 4111 1111 1111 1111 exp 12/26"),
            vec![(PiiKind::CreditCard, "4111 1111 1111 1111".into())]
        );
        assert_eq!(kinds("mail: a.b+x@example.co.uk."), vec![(PiiKind::Email, "a.b+x@example.co.uk".into())]);
        assert_eq!(kinds("call (212) 555-0147 now"), vec![(PiiKind::Phone, "(212) 555-0147".into())]);
        assert_eq!(kinds("+44 20 7183 8750"), vec![(PiiKind::Phone, "+44 20 7183 8750".into())]);
        assert_eq!(
            kinds("IBAN DE89 3704 0044 0532 0130 00 EUR"),
            vec![(PiiKind::Iban, "DE89 3704 0044 0532 0130 00".into())]
        );
        assert_eq!(kinds("from 10.0.0.1."), vec![(PiiKind::IpAddress, "10.0.0.1".into())]);
        assert_eq!(kinds("[2001:db8::1]:443"), vec![(PiiKind::IpAddress, "2001:db8::1".into())]);
        assert_eq!(kinds("::ffff:192.0.2.1 up"), vec![(PiiKind::IpAddress, "::ffff:192.0.2.1".into())]);
    }

    #[test]
    fn rejects_look_alikes() {
        for text in [
            "SSN 000-12-3456",
            "SSN 666-12-3456",
            "SSN 912-12-3456",
            "SSN 123-00-4567",
            "SSN 123-45-0000",
            "card 4111 1111 1111 1112",
            "Order #4111111111111111",
            "version 1.2.3.4",
            "ISBN 978-3-16-148410-0",
            "IBAN DE88 3704 0044 0532 0130 00",
            "icon@2x.png",
            "12:30:45 and 00:1A:2B:3C:4D:5E",
            "std::vector<int>",
            "routing 021000021",
            "ORD-2024-123-45-6789",
            "1Z999AA10123456784",
        ] {
            assert!(kinds(text).is_empty(), "{text}: {:?}", kinds(text));
        }
    }

    #[test]
    fn context_decides_unformatted_numbers() {
        assert_eq!(kinds("my ssn is 078051120"), vec![(PiiKind::Ssn, "078051120".into())]);
        assert!(kinds("ref 078051120").is_empty());
        assert!(kinds("078051120").is_empty());
        assert_eq!(kinds("phone: 2125550147"), vec![(PiiKind::Phone, "2125550147".into())]);
        assert!(kinds("badge 2125550147").is_empty());
    }

    #[test]
    fn offsets_count_characters_not_bytes() {
        let text = "Привет 👋 ssn 123-45-6789 ✅";
        let e = Detector::new().detect(text);
        assert_eq!(e.len(), 1);
        let chars: Vec<char> = text.chars().collect();
        assert_eq!(chars[e[0].start..e[0].end].iter().collect::<String>(), "123-45-6789");
        assert_eq!(e[0].start, 13);
    }

    #[test]
    fn mastercard_two_series_and_amex_shapes() {
        assert_eq!(kinds("2223 0031 2200 3222"), vec![(PiiKind::CreditCard, "2223 0031 2200 3222".into())]);
        assert_eq!(kinds("3782-822463-10005"), vec![(PiiKind::CreditCard, "3782-822463-10005".into())]);
    }
}
