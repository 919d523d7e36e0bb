//! The planner: picks the agent for a query by weighted intent terms, or says it cannot.
//!
//! Offline, deterministic and cheap (two small allocations per query, no model):
//!
//! 1. The query is lower-cased and split into words at anything that is not a letter or digit
//!    (`401(k)` → `401 k`, `debt-to-income` → `debt to income`, `card's` → `card s`).
//! 2. From left to right, the longest term that matches at a word is counted once and its words are
//!    used up, so a phrase ("credit score", "loan balance") is not counted again as its parts. A
//!    word matches a term's word when it is the same, its plural (`+s`, `+es`, `y` → `ies`), or one
//!    typo away (one letter inserted, left out, replaced, or two neighbours swapped), the typo only
//!    for words of at least `TYPO_MIN_LEN` letters that begin with the same letter and are not
//!    real words of their own (`NOT_TYPOS`: "change" is not "charge"). A two-word term also
//!    matches the words written together (`creditcard`).
//! 3. Ticker symbols count for the wealth agent: `$NVDA` in any case, and a bare upper-case word
//!    of 2–5 letters (`NVDA`, `BRK.B`) that is not a common word or acronym (`NOT_TICKERS`) or one
//!    of the terms, unless the whole query is in upper case.
//! 4. The agent with the most weight wins (on a tie the first in [`AgentId::ALL`]). Products
//!    (card brands, loan kinds, retirement and brokerage accounts) weigh more than the words any
//!    agent shares ("owe", "balance", "payment", "rate"): "how much do I owe on my Visa" goes to the
//!    card agent, "… on my mortgage" and a bare "how much do I owe" to the loan agent, "IRA balance"
//!    to the wealth agent. Neutral phrases ("exchange rate", "checking account") only use up their
//!    words: no agent answers them.

use eventline_model::events::AgentId;

/// Where a query goes.
#[derive(Clone, Debug, PartialEq)]
pub enum Route {
    /// The agent and how sure the planner is (0..=1: the winner's share of all matched weight).
    Agent(AgentId, f32),
    /// No agent's terms matched: ask the user to rephrase rather than guess.
    Unclear,
}

/// Shortest word the planner forgives a typo in. Five-letter terms collide with everyday words
/// one letter away ("quite"/"quote", "prime"/"price", "stuck"/"stock", "black"/"block").
const TYPO_MIN_LEN: usize = 6;

/// Real words one typo away from a term, never read as that term ("change" is not "charge",
/// "quality" not "qualify"): found by checking every term of `TYPO_MIN_LEN` letters or more
/// against an English word list. Separated by single spaces.
const NOT_TYPOS: &str = "america americas backing baking balking banding banging banning barking barrow barrows \
    basking blacked blanking bunking burrow burrows busyness capitol change changed changes charger chargers charmed \
    charted crypt crypts currant divided empress expiation freezer frieze goggle goggles holing hooding hording \
    infest ingest invent inventing inventor inventors invents invert inverting inverts lacked lander landing landings \
    leader leaders leading licked locker lockers locket looked marked marker markers matter matters mister muster \
    persona playoff playoffs positron quality regaining regards retaining sayings scares sending shades shakes shames \
    shapes shards shared sharks sharps shaves shires shores snares spares speeding stares thicker ticked ticket \
    tickets tinker tracing treading tucker";

/// Upper-case words that are not ticker symbols: words written in capitals for emphasis, and
/// acronyms a bank customer uses. Terms (`PIN`, `APR`, `IRA`, `DTI`, `ETF`, `VISA`) never count as
/// tickers either.
const NOT_TICKERS: &str = concat!(
    // Short English words.
    "a about after again all also am an and any are as ask at back bad be been big but by call can cant did do \
    does done dont down each else even ever every fast fix for from get give go good got had has have he help \
    her here hey hi him his how i if im in into is it its just keep know last let like look made make many may \
    me mine more most much must my need never new next no none not now of off ok okay old on once one only or \
    our out over own pay paid please pls plz real really right said same see she show so some soon still stop \
    such sure take tell than thank thanks that the them then there these they this those thx time to today too \
    try two up upset urgent us very want was way we well went were what when where which who why will with wont \
    work wrong yes yet you your",
    " ",
    // Acronyms and abbreviations.
    "ach ai aml api app apy asap atm bic btw cd cds ceo cfo cvc dc diy dm dmv dr eft emi est eta eu eur faq fdic \
    fico fsa fyi gbp gst hr hsa iban id idk imo ios irs jpy jr kyc la lol mr mrs ms nsf ny nyc omg otp pdf pm \
    pos pst sf sms ssn st tbh tv ty uk upi ups url usa usd usps utc vat vip wtf www zip",
);

/// What each agent's terms are, and how much they weigh.
const TERMS: &[(Option<AgentId>, f32, &str)] = {
    use AgentId::*;
    &[
        // Card: balances, available credit, transactions, block/freeze, disputes.
        (
            Some(CardAgent),
            3.0,
            "credit card, debit card, card balance, credit limit, card limit, spending limit, available credit, \
            remaining credit, credit available, credit left, statement balance, minimum payment, master card, \
            american express, apple pay, google pay",
        ),
        (
            Some(CardAgent),
            2.0,
            "card, visa, mastercard, amex, discover, transaction, purchase, charge, charged, chargeback, dispute, \
            disputed, fraud, fraudulent, unauthorized, unauthorised, pin, block, blocked, unblock, freeze, \
            frozen, unfreeze, stolen, declined, contactless, spend, spent, spending, expiry, expiration, cvv, \
            refund, merchant, recognize, recognise, unrecognized, unrecognised",
        ),
        (
            Some(CardAgent),
            1.0,
            "balance, credit, limit, statement, lock, locked, unlock, lost, bill, activity, rewards, cashback",
        ),
        // Loan: what is owed, schedule and amortization, eligibility, rates, debt-to-income.
        (
            Some(LoanAgent),
            3.0,
            "loan balance, mortgage balance, loan payment, payment schedule, repayment schedule, credit score, \
            debt to income, line of credit, home equity, home loan, car loan, auto loan, student loan, \
            personal loan, business loan",
        ),
        (
            Some(LoanAgent),
            2.0,
            "interest rate, monthly payment, pay off, paid off, payoff, loan, mortgage, heloc, refinance, \
            refinancing, refi, borrow, borrowing, lend, lending, lender, amortization, amortisation, amortize, \
            amortise, installment, instalment, repayment, repay, eligible, eligibility, qualify, dti, overdraft, \
            principal",
        ),
        (
            Some(LoanAgent),
            1.0,
            "owe, owed, owing, debt, outstanding, apr, rate, interest, payment, afford, income, salary, house",
        ),
        // Wealth: portfolio value, holdings and positions, performance, allocation, prices and symbols.
        (
            Some(WealthAgent),
            3.0,
            "401 k, 403 b, share price, stock price, asset allocation, net worth, stock market, mutual fund, \
            index fund, savings goal, capital gain, brokerage account, retirement account",
        ),
        (
            Some(WealthAgent),
            2.0,
            "invest, investing, investment, investor, portfolio, holdings, holding, position, allocation, stock, \
            equity, etf, fund, bond, shares, retirement, pension, 401k, 403b, ira, roth, brokerage, dividend, \
            rebalance, rebalancing, quote, ticker, crypto, bitcoin, ethereum, securities, performance, valuation, \
            unrealized, unrealised, nasdaq, s p 500, dow jones, aapl, amzn, bnd, gld, goog, googl, msft, nvda, \
            qqq, tlt, tsla, voo, vti, vxus",
        ),
        (
            Some(WealthAgent),
            1.0,
            "price, market, gain, return, perform, performing, trading, asset, worth, yield, index",
        ),
        // Neutral: no agent answers these; their words must not count for one.
        (None, 0.0, "exchange rate, checking account, savings account, current account, online banking"),
    ]
};

/// Weight of a ticker symbol for the wealth agent: less than a word of intent, so that an unknown
/// acronym or a merchant in capitals ("a charge from CVS") does not outweigh one.
const TICKER_WEIGHT: f32 = 1.5;

/// One intent term.
#[derive(Clone, Debug)]
struct Term {
    /// `None`: a neutral phrase.
    agent: Option<usize>,
    /// Words separated by single spaces.
    phrase: &'static str,
    words: usize,
    weight: f32,
}

/// Intent terms with weights; multi-word terms match as phrases.
#[derive(Clone, Debug)]
pub struct Planner {
    /// By first letter, then longest phrase first, so the longest term matching at a word wins.
    terms: Vec<Term>,
    /// `terms[first[b].0..first[b].1]` begin with the ASCII byte `b` (a word only ever matches a
    /// term that begins with its own first letter).
    first: [(u16, u16); 128],
    /// Every word of every term, sorted: such a word is a term, not a ticker.
    term_words: Vec<&'static str>,
}

impl Default for Planner {
    fn default() -> Self {
        let mut terms: Vec<Term> = TERMS
            .iter()
            .flat_map(|(agent, weight, phrases)| {
                let agent = agent.map(|a| AgentId::ALL.iter().position(|x| *x == a).expect("known agent"));
                phrases.split(", ").map(move |phrase| Term {
                    agent,
                    phrase,
                    words: phrase.split(' ').count(),
                    weight: *weight,
                })
            })
            .collect();
        terms.sort_by(|a, b| {
            (a.phrase.as_bytes()[0].cmp(&b.phrase.as_bytes()[0]))
                .then(b.words.cmp(&a.words))
                .then(b.weight.total_cmp(&a.weight))
        });
        let mut first = [(0u16, 0u16); 128];
        for (i, t) in terms.iter().enumerate() {
            let b = t.phrase.as_bytes()[0];
            assert!(b.is_ascii() && i < usize::from(u16::MAX), "terms are ASCII and few");
            let i = i as u16;
            let range = &mut first[usize::from(b)];
            *range = if range.1 == 0 { (i, i + 1) } else { (range.0, i + 1) };
        }
        let mut term_words: Vec<&'static str> = terms.iter().flat_map(|t| t.phrase.split(' ')).collect();
        term_words.sort_unstable();
        term_words.dedup();
        Self { terms, first, term_words }
    }
}

impl Planner {
    /// Routes `query` to the agent whose terms weigh most in it.
    pub fn route(&self, query: &str) -> Route {
        let text = normalise(query);
        let words: Vec<&str> = text.split(' ').filter(|w| !w.is_empty()).collect();
        let mut score = [0f32; 3];
        let mut i = 0;
        while i < words.len() {
            let (from, to) = self.first.get(usize::from(words[i].as_bytes()[0])).copied().unwrap_or((0, 0));
            let matched = self.terms[usize::from(from)..usize::from(to)]
                .iter()
                .find_map(|t| t.matches_at(&words[i..]).map(|n| (t, n)));
            match matched {
                Some((term, used)) => {
                    if let Some(a) = term.agent {
                        score[a] += term.weight;
                    }
                    i += used;
                }
                None => i += 1,
            }
        }
        let wealth = AgentId::ALL.iter().position(|a| *a == AgentId::WealthAgent).expect("known agent");
        score[wealth] += TICKER_WEIGHT * self.tickers(query) as f32;
        let total: f32 = score.iter().sum();
        if total == 0.0 {
            return Route::Unclear;
        }
        let (best, s) =
            score.iter().enumerate().fold((0, 0.0f32), |acc, (i, s)| if *s > acc.1 { (i, *s) } else { acc });
        Route::Agent(AgentId::ALL[best], s / total)
    }

    /// How many ticker symbols `query` names (see the module docs).
    fn tickers(&self, query: &str) -> usize {
        let shouting = !query.chars().any(|c| c.is_lowercase());
        query
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '$' || c == '.'))
            .map(|w| w.trim_end_matches('.'))
            .filter(|w| {
                let (symbol, min) = match w.strip_prefix('$') {
                    Some(symbol) => (symbol, 1),
                    None if shouting => return false,
                    None => (*w, 2),
                };
                let dollar = min == 1;
                if !is_symbol(symbol, min, |c| if dollar { c.is_ascii_alphabetic() } else { c.is_ascii_uppercase() }) {
                    return false;
                }
                // At most 5 letters, a dot and 2 letters.
                let mut buf = [0u8; 8];
                buf[..symbol.len()].copy_from_slice(symbol.as_bytes());
                buf.make_ascii_lowercase();
                let lower = std::str::from_utf8(&buf[..symbol.len()]).expect("ASCII");
                let term = self.term_words.binary_search(&lower).is_ok();
                !term && (dollar || !NOT_TICKERS.split(' ').any(|w| w == lower))
            })
            .count()
    }
}

impl Term {
    /// How many of `words` this term uses up when it matches at their start.
    fn matches_at(&self, words: &[&str]) -> Option<usize> {
        if words.len() >= self.words && self.phrase.split(' ').zip(words).all(|(p, w)| word_matches(p, w)) {
            return Some(self.words);
        }
        // A two-word term written as one word: "creditcard", "debitcards".
        if self.words == 2 {
            let (first, second) = self.phrase.split_once(' ').expect("two words");
            let rest = words.first()?.strip_prefix(first)?;
            if is_form_of(second, rest) {
                return Some(1);
            }
        }
        None
    }
}

/// `min`..=5 letters that pass `letter`, then perhaps a share class of one or two (`BRK.B`).
fn is_symbol(w: &str, min: usize, letter: impl Fn(char) -> bool) -> bool {
    let (base, class) = match w.split_once('.') {
        Some((base, class)) => (base, Some(class)),
        None => (w, None),
    };
    (min..=5).contains(&base.len())
        && base.chars().all(&letter)
        && class.is_none_or(|c| (1..=2).contains(&c.len()) && c.chars().all(&letter))
}

/// Whether the query's `word` is the term's word `term`: the same, a plural of it, or one typo away.
fn word_matches(term: &str, word: &str) -> bool {
    if term.as_bytes().first() != word.as_bytes().first() {
        return false;
    }
    if is_form_of(term, word) {
        return true;
    }
    term.len() >= TYPO_MIN_LEN
        && (one_typo(term.as_bytes(), word.as_bytes())
            || word.strip_suffix('s').is_some_and(|w| one_typo(term.as_bytes(), w.as_bytes())))
        && !NOT_TYPOS.split(' ').any(|w| w == word)
}

/// `word` is `term` or its plural.
fn is_form_of(term: &str, word: &str) -> bool {
    match word.strip_prefix(term) {
        Some(rest) => matches!(rest, "" | "s" | "es"),
        None => term.strip_suffix('y').is_some_and(|stem| word.strip_prefix(stem) == Some("ies")),
    }
}

/// `a` and `b` differ by exactly one letter inserted, left out, replaced, or two neighbours swapped.
fn one_typo(a: &[u8], b: &[u8]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if long.len() - short.len() > 1 {
        return false;
    }
    let start = short.iter().zip(long).take_while(|(x, y)| x == y).count();
    if start == short.len() {
        // Equal, or only a letter added at the end.
        return long.len() != short.len();
    }
    if short.len() == long.len() {
        // Replaced at `start`, or swapped with the next letter.
        let replaced = short[start + 1..] == long[start + 1..];
        let swapped = start + 1 < short.len()
            && short[start] == long[start + 1]
            && short[start + 1] == long[start]
            && short[start + 2..] == long[start + 2..];
        replaced || swapped
    } else {
        // One letter inserted at `start`.
        short[start..] == long[start + 1..]
    }
}

/// Lower-case words of letters and digits, separated by single spaces.
fn normalise(q: &str) -> String {
    let mut out = String::with_capacity(q.len());
    for c in q.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.is_empty() && !out.ends_with(' ') {
            out.push(' ');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(q: &str) -> Option<AgentId> {
        match Planner::default().route(q) {
            Route::Agent(a, _) => Some(a),
            Route::Unclear => None,
        }
    }

    #[test]
    fn routes_by_intent() {
        assert_eq!(agent("check my card balance"), Some(AgentId::CardAgent));
        assert_eq!(agent("What's the interest rate on a 30-year mortgage?"), Some(AgentId::LoanAgent));
        assert_eq!(agent("How is my portfolio doing? Should I buy an ETF?"), Some(AgentId::WealthAgent));
        assert_eq!(agent("I want to dispute a transaction"), Some(AgentId::CardAgent));
        assert_eq!(agent("show my last 5 transactions"), Some(AgentId::CardAgent));
        assert_eq!(agent("how much do I still owe?"), Some(AgentId::LoanAgent));
        assert_eq!(agent("what are my holdings worth"), Some(AgentId::WealthAgent));
        // The phrase names the intent even when words of another agent come along.
        assert_eq!(agent("I paid by card; what is my loan balance?"), Some(AgentId::LoanAgent));
        assert_eq!(agent("show the payment schedule"), Some(AgentId::LoanAgent));
    }

    #[test]
    fn words_match_whole_not_inside_other_words() {
        // "pin" inside "shopping", "apr" inside "april", "fund" inside "refund" must not count.
        assert_eq!(agent("shopping in april"), None);
        assert_eq!(agent("refunded"), None);
    }

    #[test]
    fn phrases_outweigh_single_words() {
        // "credit score" (loan, phrase) beats "card" (card, word).
        assert_eq!(agent("does a new card hurt my credit score"), Some(AgentId::LoanAgent));
        match Planner::default().route("hello there") {
            Route::Unclear => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn products_decide_what_is_owed() {
        assert_eq!(agent("How much do I owe on my Visa?"), Some(AgentId::CardAgent));
        assert_eq!(agent("how much do i owe on my amex"), Some(AgentId::CardAgent));
        assert_eq!(agent("how much do I owe on my mortgage"), Some(AgentId::LoanAgent));
        assert_eq!(agent("what's the balance on my car loan"), Some(AgentId::LoanAgent));
        assert_eq!(agent("Roth IRA balance"), Some(AgentId::WealthAgent));
        assert_eq!(agent("what's my balance"), Some(AgentId::CardAgent));
    }

    #[test]
    fn ticker_symbols_go_to_wealth() {
        assert_eq!(agent("what is the price of NVDA"), Some(AgentId::WealthAgent));
        assert_eq!(agent("how is XYZ doing"), Some(AgentId::WealthAgent));
        assert_eq!(agent("$abc?"), Some(AgentId::WealthAgent));
        assert_eq!(agent("is BRK.B up"), Some(AgentId::WealthAgent));
        // Acronyms, terms and emphasis are not symbols; neither is a query in capitals.
        assert_eq!(agent("where is the nearest ATM"), None);
        assert_eq!(agent("I did NOT ask for this"), None);
        assert_eq!(agent("HELLO THERE"), None);
        assert_eq!(agent("what is my APR"), Some(AgentId::LoanAgent));
        assert_eq!(agent("reset my PIN"), Some(AgentId::CardAgent));
    }

    #[test]
    fn forgives_plurals_and_one_typo() {
        assert_eq!(agent("morgage payment"), Some(AgentId::LoanAgent));
        assert_eq!(agent("protfolio value"), Some(AgentId::WealthAgent));
        assert_eq!(agent("whats my creditcard balence"), Some(AgentId::CardAgent));
        assert_eq!(agent("am I too heavy in equities"), Some(AgentId::WealthAgent));
        // Real words are not typos, and short words are matched exactly.
        assert_eq!(agent("change my address"), None);
        assert_eq!(agent("I'm quite sure"), None);
    }

    #[test]
    fn word_lists_are_well_formed() {
        // Single spaces between lower-case words; ", " between phrases of one or more such words.
        let words = |list: &str| list.split(' ').all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()));
        assert!(words(NOT_TYPOS) && words(NOT_TICKERS));
        for (_, _, phrases) in TERMS {
            assert!(phrases.split(", ").all(|p| {
                p.split(' ').all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
            }));
        }
    }

    #[test]
    fn one_typo_is_exact() {
        assert!(one_typo(b"portfolio", b"protfolio"));
        assert!(one_typo(b"mortgage", b"morgage"));
        assert!(one_typo(b"balance", b"balence"));
        assert!(one_typo(b"balance", b"balances"));
        assert!(!one_typo(b"balance", b"balance"));
        assert!(!one_typo(b"mortgage", b"mrtgge"));
        assert!(!one_typo(b"transaction", b"transcation_"));
    }
}
