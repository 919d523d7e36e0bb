//! Reading what the customer asked for: words, amounts, terms, card endings.

/// The query in lower case with punctuation turned into spaces, padded with spaces so that
/// `has_word` can match whole words.
pub fn normalise(query: &str) -> String {
    let mapped: String =
        query.chars().map(|c| if c.is_alphanumeric() { c.to_ascii_lowercase() } else { ' ' }).collect();
    format!(" {} ", mapped.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Whether any of `words` (or phrases) occurs as a whole word in the normalised query.
pub fn has_any(normalised: &str, words: &[&str]) -> bool {
    words.iter().any(|w| normalised.contains(&format!(" {w} ")))
}

/// Whether a query that names a state-changing action asks for it to be done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mood {
    /// An imperative or a request ("block my card", "please freeze it", "can you block it").
    Do,
    /// Negated ("don't cancel my card", "no need to freeze it").
    Negated,
    /// A question about the action ("how do I block my card?", "what happens if I freeze it").
    Question,
}

/// How `query` (its normalised form `n`) mentions the action named by one of `verbs`.
pub fn mood(query: &str, n: &str, verbs: &[&str]) -> Mood {
    let words: Vec<&str> = n.split_whitespace().collect();
    let at = words.iter().position(|w| verbs.contains(w));
    // Negation within the three words before the action.
    if let Some(i) = at {
        let before = &words[i.saturating_sub(3)..i];
        let negated = before.iter().any(|w| matches!(*w, "not" | "dont" | "never" | "without"))
            || before
                .windows(2)
                .any(|p| matches!((p[0], p[1]), ("don", "t") | ("do", "not") | ("no", "need") | ("won", "t")))
            || has_any(n, &["don t want", "do not want", "no need to", "rather not", "instead of"]);
        if negated {
            return Mood::Negated;
        }
    }
    // A request phrased as a question is still a request ("can you block my card?").
    if has_any(
        n,
        &[
            "can you",
            "could you",
            "would you",
            "will you",
            "please",
            "i want to",
            "i need to",
            "i d like to",
            "i would like to",
        ],
    ) {
        return Mood::Do;
    }
    let informational = [
        "how do i",
        "how can i",
        "how to",
        "how does",
        "what happens",
        "what if",
        "what does",
        "should i",
        "can i",
        "is it possible",
        "do i need",
        "why",
        "when should",
        "what is",
        "what are",
        "explain",
        "tell me about",
    ];
    if informational.iter().any(|p| n.starts_with(&format!(" {p} ")) || n.contains(&format!(" {p} "))) {
        return Mood::Question;
    }
    if query.trim_end().ends_with('?')
        && words
            .first()
            .is_some_and(|w| matches!(*w, "how" | "what" | "why" | "when" | "should" | "is" | "does" | "do" | "would"))
    {
        return Mood::Question;
    }
    Mood::Do
}

/// Runs of digits in the query, separators inside a number (space, `-`) joined: "4532 0151 1283
/// 0366" is one run, "ending 0366" gives "0366".
pub fn digit_runs(query: &str) -> Vec<String> {
    let mut runs = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = query.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_digit() {
            cur.push(c);
        } else if (c == ' ' || c == '-')
            && !cur.is_empty()
            && chars.get(i + 1).is_some_and(char::is_ascii_digit)
            && cur.len().is_multiple_of(4)
        {
            // a separator between digit groups of a card number
        } else if !cur.is_empty() {
            runs.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        runs.push(cur);
    }
    runs
}

/// Money amounts in the query, in cents: `$25,000`, `25000`, `25k`, `1.5m`, `12,500.50`.
pub fn amounts(query: &str) -> Vec<i64> {
    let lower = query.to_lowercase();
    let chars: Vec<char> = lower.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        let mut text = String::new();
        while i < chars.len()
            && (chars[i].is_ascii_digit()
                || (chars[i] == ',' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
                || (chars[i] == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)))
        {
            if chars[i] != ',' {
                text.push(chars[i]);
            }
            i += 1;
        }
        let Ok(mut value) = text.parse::<f64>() else { continue };
        let rest: String = chars[i..].iter().collect();
        let dollar = start > 0 && chars[start - 1] == '$';
        if rest.starts_with('k') && !rest.starts_with("km") {
            value *= 1_000.0;
        } else if rest.starts_with('m') && !rest.starts_with("mo") && !rest.starts_with("mi") {
            value *= 1_000_000.0;
        } else if rest.trim_start().starts_with("thousand") {
            value *= 1_000.0;
        } else if !dollar
            && (rest.starts_with('%')
                || ["year", "yr", "month", "mo", "percent", "day", "week"]
                    .iter()
                    .any(|unit| rest.trim_start_matches([' ', '-']).starts_with(unit)))
        {
            continue; // a term or a rate, not money
        }
        out.push((value * 100.0).round() as i64);
    }
    out
}

/// The largest amount a request may name, in cents ($10 billion): beyond it a number is not a
/// request the agents consider, and it is refused instead of being computed with.
pub const MAX_AMOUNT_CENTS: i64 = 1_000_000_000_000;
/// The longest term a request may name, in months (100 years).
pub const MAX_TERM_MONTHS: i64 = 1200;

/// Whether the query names an amount or a term too large to compute with (an amount over
/// [`MAX_AMOUNT_CENTS`], a term over [`MAX_TERM_MONTHS`], or a number too long to be either) —
/// checked, so that it is refused rather than wrapped or saturated into a wrong answer.
pub fn out_of_range(query: &str) -> bool {
    // Amounts: `amounts` saturates (f64 → i64); anything at or over the cap is out of range.
    if amounts(query).into_iter().any(|a| a >= MAX_AMOUNT_CENTS) {
        return true;
    }
    let n = normalise(query);
    let words: Vec<&str> = n.split_whitespace().collect();
    for w in words.windows(2) {
        if !w[0].chars().all(|c| c.is_ascii_digit()) || w[0].is_empty() {
            continue;
        }
        let is_term = matches!(w[1], "year" | "years" | "yr" | "yrs" | "month" | "months" | "mo" | "mos");
        if is_term {
            let months =
                w[0].parse::<i64>().ok().and_then(|k| if w[1].starts_with('y') { k.checked_mul(12) } else { Some(k) });
            if months.is_none_or(|m| m > MAX_TERM_MONTHS) {
                return true;
            }
        }
    }
    false
}

/// A term in months: "5 years", "60 months", "30-year", "36 mo".
pub fn term_months(query: &str) -> Option<i64> {
    let n = normalise(query);
    let words: Vec<&str> = n.split_whitespace().collect();
    for w in words.windows(2) {
        let Ok(k) = w[0].parse::<i64>() else { continue };
        match w[1] {
            "year" | "years" | "yr" | "yrs" => return Some(k.saturating_mul(12)),
            "month" | "months" | "mo" | "mos" => return Some(k),
            _ => {}
        }
    }
    None
}

/// The number of items asked for ("last 10 transactions"), if any, between 1 and `max`.
pub fn count(query: &str, max: usize) -> Option<usize> {
    let n = normalise(query);
    let words: Vec<&str> = n.split_whitespace().collect();
    words.windows(2).find_map(|w| match (w[0], w[1].parse::<usize>()) {
        ("last" | "recent" | "latest" | "past", Ok(k)) if (1..=max).contains(&k) => Some(k),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unambiguous_request_acts() {
        let verbs = ["block", "cancel", "freeze", "dispute"];
        let m = |q: &str| mood(q, &normalise(q), &verbs);
        for q in [
            "block my card",
            "please freeze my debit card",
            "can you block my credit card?",
            "I want to cancel my card",
            "Block it now!",
        ] {
            assert_eq!(m(q), Mood::Do, "{q}");
        }
        for q in
            ["don't cancel my card", "do not block my card", "no need to freeze it", "I don't want to block my card"]
        {
            assert_eq!(m(q), Mood::Negated, "{q}");
        }
        for q in [
            "how do I block my card?",
            "what happens if I freeze it",
            "should I cancel my card?",
            "how to dispute a charge",
            "can I freeze my card online?",
        ] {
            assert_eq!(m(q), Mood::Question, "{q}");
        }
    }

    #[test]
    fn numbers_too_large_to_compute_with_are_out_of_range() {
        assert!(out_of_range("can I borrow 99999999999999999999"));
        assert!(out_of_range("can I borrow $20 billion, i.e. $20,000,000,000"));
        assert!(out_of_range("a loan of $5,000 over 99999999999999999999 years"));
        assert!(out_of_range("a loan of $5,000 over 200 years"));
        assert!(!out_of_range("can I borrow $25,000 over 5 years"));
        assert!(!out_of_range("a 30-year mortgage of $450k"));
        assert_eq!(term_months("over 999999999999999999 years"), Some(i64::MAX), "saturates, never wraps");
    }

    #[test]
    fn reads_amounts_terms_and_card_endings() {
        assert_eq!(amounts("Can I borrow $25,000 over 5 years?"), vec![2_500_000]);
        assert_eq!(amounts("a 30k car loan for 60 months"), vec![3_000_000]);
        assert_eq!(amounts("mortgage of 450000 at 6%"), vec![45_000_000]);
        assert_eq!(amounts("1.5m home"), vec![150_000_000]);
        assert_eq!(term_months("Can I borrow $25,000 over 5 years?"), Some(60));
        assert_eq!(term_months("for 36 months"), Some(36));
        assert_eq!(term_months("a 30-year mortgage"), Some(360));
        assert!(amounts("a 30-year mortgage").is_empty());
        assert_eq!(digit_runs("block card 4532 0151 1283 0366 now"), ["4532015112830366"]);
        assert_eq!(digit_runs("the card ending 0366, dispute 2 charges"), ["0366", "2"]);
        assert_eq!(count("show my last 10 transactions", 50), Some(10));
        assert!(has_any(&normalise("I LOST my card!"), &["lost", "stolen"]));
        assert!(!has_any(&normalise("unblocked"), &["block"]));
    }
}

/// The last `n` characters of `s` (all of it when shorter). Strings read from the database are
/// written by any client, so they are cut on character boundaries, never by bytes.
pub fn tail_chars(s: &str, n: usize) -> &str {
    let count = s.chars().count();
    let skip = count.saturating_sub(n);
    s.char_indices().nth(skip).map_or("", |(i, _)| &s[i..])
}

/// The first `n` characters of `s` (all of it when shorter), e.g. the date of a timestamp.
pub fn head_chars(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

#[cfg(test)]
mod cut_tests {
    use super::*;

    #[test]
    fn cuts_fall_on_character_boundaries() {
        assert_eq!(tail_chars("4111111111111111", 4), "1111");
        assert_eq!(tail_chars("12", 4), "12");
        assert_eq!(tail_chars("€€€€€", 4), "€€€€");
        assert_eq!(head_chars("2026-11-30T10:00:00Z", 10), "2026-11-30");
        assert_eq!(head_chars("2026-1€", 10), "2026-1€");
        assert_eq!(head_chars("日本語の日付です、とても長い", 10), "日本語の日付です、と");
    }
}
