//! The demo bank: five customers with accounts, cards, card transactions, loans, financial
//! profiles and brokerage holdings, written once at first start.
//!
//! Deterministic: the same customers, card numbers, amounts, rates and quantities every time (a
//! fixed splitmix64 sequence, not `rand`, so no library upgrade changes them). Only dates move:
//! transactions and loan schedules are placed relative to the day of seeding so the data looks
//! current. Card numbers pass Luhn and their network's IIN range, e-mail addresses use
//! `example.com` and phone numbers the fictional 555-01xx range.

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, Utc};
use rusqlite::{Connection, params};

use crate::agents::amortization;

/// The seed's name in `_eventline_seed`.
pub const SEED_NAME: &str = "demo-bank-v1";

/// A seeded customer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoUser {
    pub user_id: &'static str,
    pub name: &'static str,
    pub email: &'static str,
    pub phone: &'static str,
}

/// The seeded customers.
pub const DEMO_USERS: [DemoUser; 5] = [
    DemoUser { user_id: "u-1001", name: "Jane Doe", email: "jane.doe@example.com", phone: "+1 212 555 0147" },
    DemoUser { user_id: "u-1002", name: "Carlos Rivera", email: "carlos.rivera@example.com", phone: "+1 415 555 0182" },
    DemoUser { user_id: "u-1003", name: "Aiko Tanaka", email: "aiko.tanaka@example.com", phone: "+1 646 555 0123" },
    DemoUser { user_id: "u-1004", name: "Fatima Okafor", email: "fatima.okafor@example.com", phone: "+1 312 555 0198" },
    DemoUser { user_id: "u-1005", name: "Lukas Weber", email: "lukas.weber@example.com", phone: "+1 617 555 0111" },
];

/// Instruments with their last price (updated later by market data).
const PRICES: [(&str, &str, &str, f64); 10] = [
    ("AAPL", "Apple Inc.", "equity", 227.50),
    ("MSFT", "Microsoft Corp.", "equity", 415.20),
    ("NVDA", "NVIDIA Corp.", "equity", 135.80),
    ("GOOGL", "Alphabet Inc. Class A", "equity", 176.40),
    ("AMZN", "Amazon.com Inc.", "equity", 201.20),
    ("VTI", "Vanguard Total Stock Market ETF", "equity", 285.10),
    ("VXUS", "Vanguard Total International Stock ETF", "equity", 61.30),
    ("BND", "Vanguard Total Bond Market ETF", "fixed_income", 72.40),
    ("TLT", "iShares 20+ Year Treasury Bond ETF", "fixed_income", 92.10),
    ("GLD", "SPDR Gold Shares", "commodity", 243.60),
];

/// (kind, rate in basis points, default term, max term, minimum credit score, max DTI in bps).
const LOAN_PRODUCTS: [(&str, i64, i64, i64, i64, i64); 3] =
    [("mortgage", 650, 360, 360, 620, 4300), ("personal", 1149, 60, 84, 660, 4000), ("auto", 699, 60, 84, 620, 4300)];

/// Per customer: annual income, other monthly debt (cents), credit score.
const PROFILES: [(i64, i64, i64); 5] = [
    (14_500_000, 45_000, 762),
    (9_200_000, 38_000, 701),
    (6_800_000, 22_000, 688),
    (11_000_000, 0, 805),
    (18_500_000, 120_000, 744),
];

/// A seeded loan: (kind, principal cents, rate bps, term months, payments made).
type LoanSeed = (&'static str, i64, i64, i64, i64);

/// Per customer: loans.
const LOANS: [&[LoanSeed]; 5] = [
    &[("mortgage", 32_000_000, 625, 360, 38)],
    &[("auto", 2_850_000, 699, 60, 14)],
    &[("personal", 1_200_000, 1049, 48, 20)],
    &[],
    &[("mortgage", 45_000_000, 575, 360, 70), ("personal", 800_000, 1149, 36, 5)],
];

/// Per customer: brokerage positions as (symbol, quantity).
const HOLDINGS: [&[(&str, f64)]; 5] = [
    &[("AAPL", 40.0), ("VTI", 120.0), ("BND", 150.0), ("GLD", 10.0)],
    &[("MSFT", 12.5), ("VXUS", 80.0), ("BND", 60.0)],
    &[("NVDA", 55.0), ("AMZN", 18.0)],
    &[("VTI", 300.0), ("VXUS", 220.0), ("BND", 400.0), ("TLT", 90.0)],
    &[("GOOGL", 75.0), ("AAPL", 60.0), ("TLT", 150.0), ("GLD", 25.0), ("MSFT", 30.0)],
];

/// Merchants as (name, category, min cents, max cents).
const MERCHANTS: [(&str, &str, i64, i64); 14] = [
    ("Whole Foods Market", "groceries", 2_500, 18_000),
    ("Trader Joe's", "groceries", 1_800, 9_500),
    ("Shell", "fuel", 3_000, 7_500),
    ("Uber", "transport", 900, 4_800),
    ("Delta Air Lines", "travel", 18_000, 62_000),
    ("Marriott Hotels", "travel", 16_000, 54_000),
    ("Amazon", "shopping", 1_200, 21_000),
    ("Best Buy", "electronics", 4_000, 89_000),
    ("Netflix", "subscriptions", 1_549, 1_549),
    ("Spotify", "subscriptions", 1_199, 1_199),
    ("Starbucks", "dining", 450, 1_800),
    ("Chipotle", "dining", 1_100, 3_200),
    ("CVS Pharmacy", "health", 800, 6_500),
    ("Home Depot", "home", 2_500, 41_000),
];

/// splitmix64: a fixed, portable sequence.
struct Sequence(u64);

impl Sequence {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo + 1) as u64)) as i64
    }
}

/// A 16-digit card number starting with `prefix` whose last digit is the Luhn check digit.
pub fn card_number(prefix: &str, seq: &mut impl FnMut() -> u64) -> String {
    let mut digits: Vec<u8> = prefix.bytes().map(|b| b - b'0').collect();
    while digits.len() < 15 {
        digits.push((seq() % 10) as u8);
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    digits.push(((10 - sum % 10) % 10) as u8);
    digits.iter().map(|d| char::from(b'0' + d)).collect()
}

fn iso(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The first day of the month `months` before `today`'s month.
fn month_start_before(today: NaiveDate, months: u32) -> NaiveDate {
    let first = today.with_day(1).expect("day 1 exists");
    first.checked_sub_months(Months::new(months)).expect("date in range")
}

/// Seeds the demo bank unless it was seeded before; returns whether it wrote anything.
/// Customers who already exist in `Users` (created through the API) keep their profile.
pub fn seed_demo_bank(conn: &mut Connection, now: DateTime<Utc>) -> rusqlite::Result<bool> {
    let tx = crate::store::sqlite::write_transaction(conn)?;
    let done: bool =
        tx.query_row("SELECT EXISTS (SELECT 1 FROM _eventline_seed WHERE name = ?1)", [SEED_NAME], |r| r.get(0))?;
    if done {
        return Ok(false);
    }
    let mut seq = Sequence(0x00E7_E171_BA4C_0001);
    for (symbol, name, class, price) in PRICES {
        tx.execute(
            "INSERT OR IGNORE INTO prices (symbol, name, asset_class, price, currency, as_of) VALUES (?1, ?2, ?3, ?4, 'USD', ?5)",
            params![symbol, name, class, price, iso(now)],
        )?;
    }
    for (kind, rate, default_months, max_months, score, dti) in LOAN_PRODUCTS {
        tx.execute(
            "INSERT OR IGNORE INTO loan_products (kind, rate_bps, default_months, max_months, min_credit_score, max_dti_bps)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![kind, rate, default_months, max_months, score, dti],
        )?;
    }
    for (i, user) in DEMO_USERS.iter().enumerate() {
        seed_customer(&tx, i, user, now, &mut seq)?;
    }
    tx.execute("INSERT INTO _eventline_seed (name, seeded_at) VALUES (?1, ?2)", params![SEED_NAME, iso(now)])?;
    tx.commit()?;
    Ok(true)
}

fn seed_customer(
    tx: &Connection,
    i: usize,
    user: &DemoUser,
    now: DateTime<Utc>,
    seq: &mut Sequence,
) -> rusqlite::Result<()> {
    let n = &user.user_id[2..]; // "1001"
    let today = now.date_naive();
    let opened = iso(now - Duration::days(365 * 4 + 30 * i as i64));
    tx.execute(
        "INSERT INTO Users (UserId, Email, Name, Phone) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (UserId) DO NOTHING",
        params![user.user_id, user.email, user.name, user.phone],
    )?;
    let (income, debt, score) = PROFILES[i];
    tx.execute(
        "INSERT INTO financial_profiles (user_id, annual_income_cents, monthly_debt_cents, credit_score) VALUES (?1, ?2, ?3, ?4)",
        params![user.user_id, income, debt, score],
    )?;
    let checking = format!("acc_{n}_chk");
    let savings = format!("acc_{n}_sav");
    let brokerage = format!("acc_{n}_brk");
    for (id, kind, lo, hi) in [
        (&checking, "checking", 150_000, 1_250_000),
        (&savings, "savings", 500_000, 6_000_000),
        (&brokerage, "brokerage", 100_000, 2_500_000),
    ] {
        let number = format!("{:012}", seq.next() % 1_000_000_000_000);
        tx.execute(
            "INSERT INTO accounts (account_id, user_id, kind, account_number, currency, balance_cents, opened_at)
             VALUES (?1, ?2, ?3, ?4, 'USD', ?5, ?6)",
            params![id, user.user_id, kind, number, seq.between(lo, hi), opened],
        )?;
    }
    let mut next = || seq.next();
    let debit_pan = card_number("453201", &mut next);
    let credit_pan = card_number("542418", &mut next);
    let expiry = |years: i32| format!("{}-{:02}", today.year() + years, (i % 12) + 1);
    let debit = format!("crd_{n}_debit");
    let credit = format!("crd_{n}_credit");
    tx.execute(
        "INSERT INTO cards (card_id, user_id, account_id, pan, brand, kind, credit_limit_cents, expiry)
         VALUES (?1, ?2, ?3, ?4, 'visa', 'debit', NULL, ?5)",
        params![debit, user.user_id, checking, debit_pan, expiry(3)],
    )?;
    let limit = [1_000_000, 500_000, 300_000, 1_500_000, 2_000_000][i];
    tx.execute(
        "INSERT INTO cards (card_id, user_id, account_id, pan, brand, kind, credit_limit_cents, expiry)
         VALUES (?1, ?2, ?3, ?4, 'mastercard', 'credit', ?5, ?6)",
        params![credit, user.user_id, checking, credit_pan, limit, expiry(2)],
    )?;
    for (card, count) in [(&debit, 12), (&credit, 18)] {
        for t in 0..count {
            let (merchant, category, lo, hi) = MERCHANTS[(seq.next() % MERCHANTS.len() as u64) as usize];
            let age_minutes = seq.between(30, 45 * 24 * 60);
            let posted = now - Duration::minutes(age_minutes);
            let status = if age_minutes < 36 * 60 { "pending" } else { "posted" };
            tx.execute(
                "INSERT INTO card_transactions (txn_id, card_id, posted_at, merchant, category, amount_cents, currency, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'USD', ?7)",
                params![format!("txn_{card}_{t:03}"), card, iso(posted), merchant, category, seq.between(lo, hi), status],
            )?;
        }
    }
    for (k, (kind, principal, rate, term, made)) in LOANS[i].iter().enumerate() {
        let payment = amortization::monthly_payment(*principal, *rate, *term);
        let outstanding = amortization::balance_after(*principal, *rate, payment, *made);
        let start = month_start_before(today, *made as u32);
        tx.execute(
            "INSERT INTO loans (loan_id, user_id, kind, principal_cents, outstanding_cents, rate_bps, term_months,
                                payments_made, start_date, repayment_account)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                format!("ln_{n}_{}", k + 1),
                user.user_id,
                kind,
                principal,
                outstanding,
                rate,
                term,
                made,
                start.to_string(),
                checking
            ],
        )?;
    }
    for (symbol, quantity) in HOLDINGS[i] {
        let price: f64 = tx.query_row("SELECT price FROM prices WHERE symbol = ?1", [symbol], |r| r.get(0))?;
        // Bought at 70–115 % of today's price.
        let basis = (quantity * price * seq.between(70, 115) as f64).round() as i64;
        tx.execute(
            "INSERT INTO holdings (account_id, symbol, quantity, cost_basis_cents) VALUES (?1, ?2, ?3, ?4)",
            params![brokerage, symbol, quantity, basis],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite;

    fn seeded(now: DateTime<Utc>) -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = sqlite::open(&dir.path().join("eventline.db")).unwrap();
        sqlite::migrate(&mut conn).unwrap();
        assert!(seed_demo_bank(&mut conn, now).unwrap());
        assert!(!seed_demo_bank(&mut conn, now).unwrap(), "seeds once");
        (dir, conn)
    }

    fn dump(conn: &Connection, sql: &str) -> Vec<String> {
        let mut stmt = conn.prepare(sql).unwrap();
        let cols = stmt.column_count();
        stmt.query_map([], |r| {
            Ok((0..cols).map(|c| format!("{:?}", r.get_ref(c).unwrap())).collect::<Vec<_>>().join("|"))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    #[test]
    fn the_same_bank_every_time_and_card_numbers_pass_luhn() {
        let now = "2026-03-15T12:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let later = "2026-07-01T08:30:00Z".parse::<DateTime<Utc>>().unwrap();
        let ((_d1, a), (_d2, b)) = (seeded(now), seeded(later));
        for sql in [
            "SELECT user_id, pan, brand, kind, credit_limit_cents FROM cards ORDER BY card_id",
            "SELECT card_id, merchant, amount_cents FROM card_transactions ORDER BY txn_id",
            "SELECT loan_id, principal_cents, outstanding_cents, rate_bps FROM loans ORDER BY loan_id",
            "SELECT account_id, symbol, quantity, cost_basis_cents FROM holdings ORDER BY account_id, symbol",
        ] {
            assert_eq!(dump(&a, sql), dump(&b, sql), "{sql}");
        }
        let pans: Vec<String> = a
            .prepare("SELECT pan FROM cards")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(pans.len(), 10);
        let detector = eventline_governance::Detector::new();
        for pan in pans {
            assert!(eventline_governance::validators::luhn_valid(pan.as_bytes()), "{pan}");
            let found = detector.detect(&format!("card {pan}"));
            assert_eq!(found.len(), 1, "{pan} is recognised as a card number");
        }
        let users: i64 = a.query_row("SELECT count(*) FROM Users", [], |r| r.get(0)).unwrap();
        assert_eq!(users, 5);
    }

    #[test]
    fn seeded_outstanding_balances_follow_the_amortization_schedule() {
        let (_dir, conn) = seeded(Utc::now());
        let (principal, outstanding, rate, term, made): (i64, i64, i64, i64, i64) = conn
            .query_row(
                "SELECT principal_cents, outstanding_cents, rate_bps, term_months, payments_made FROM loans WHERE loan_id = 'ln_1002_1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap();
        assert_eq!((principal, rate, term, made), (2_850_000, 699, 60, 14));
        // 28,500.00 at 6.99 % over 60 months: 564.20 a month (standard annuity formula)
        let payment = amortization::monthly_payment(principal, rate, term);
        assert_eq!(payment, 56_420);
        let rows = amortization::schedule(principal, rate, payment, term);
        assert_eq!(rows[(made - 1) as usize].balance_cents, outstanding);
    }
}
