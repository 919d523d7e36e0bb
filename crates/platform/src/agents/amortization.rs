//! Loan arithmetic in integer cents: the annuity payment, the amortization schedule, the balance
//! after some payments and the largest principal a payment can carry.
//!
//! A fixed-rate loan of principal `P` at monthly rate `r` over `n` months is repaid by the
//! payment `M = P·r / (1 − (1 + r)^−n)`; each month's interest is the balance × `r` (rounded to
//! the cent), the rest of the payment reduces the balance, and the last payment is whatever
//! clears it.

/// The monthly rate of an annual rate in basis points.
fn monthly_rate(rate_bps: i64) -> f64 {
    rate_bps as f64 / 10_000.0 / 12.0
}

/// The level monthly payment that repays `principal_cents` over `months` at `rate_bps`, rounded
/// to the cent.
pub fn monthly_payment(principal_cents: i64, rate_bps: i64, months: i64) -> i64 {
    if months <= 0 || principal_cents <= 0 {
        return principal_cents.max(0);
    }
    let r = monthly_rate(rate_bps);
    if r == 0.0 {
        return (principal_cents as f64 / months as f64).ceil() as i64;
    }
    (principal_cents as f64 * r / (1.0 - (1.0 + r).powi(-(months as i32)))).round() as i64
}

/// One month of a schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Installment {
    /// 1-based payment number counted from the balance the schedule starts at.
    pub number: i64,
    pub payment_cents: i64,
    pub interest_cents: i64,
    pub principal_cents: i64,
    /// The balance after this payment.
    pub balance_cents: i64,
}

/// The schedule that repays `balance_cents` with `payment_cents` a month at `rate_bps`, at most
/// `max_months` long; the last payment clears the balance exactly.
pub fn schedule(balance_cents: i64, rate_bps: i64, payment_cents: i64, max_months: i64) -> Vec<Installment> {
    let r = monthly_rate(rate_bps);
    let mut balance = balance_cents;
    let mut out = Vec::new();
    for number in 1..=max_months {
        if balance <= 0 {
            break;
        }
        let interest = (balance as f64 * r).round() as i64;
        let last = number == max_months || balance + interest <= payment_cents;
        let payment = if last { balance + interest } else { payment_cents };
        let principal = payment - interest;
        balance -= principal;
        out.push(Installment {
            number,
            payment_cents: payment,
            interest_cents: interest,
            principal_cents: principal,
            balance_cents: balance,
        });
    }
    out
}

/// The balance of a loan of `principal_cents` after `payments` level payments of `payment_cents`.
pub fn balance_after(principal_cents: i64, rate_bps: i64, payment_cents: i64, payments: i64) -> i64 {
    let r = monthly_rate(rate_bps);
    let mut balance = principal_cents;
    for _ in 0..payments {
        let interest = (balance as f64 * r).round() as i64;
        balance = (balance + interest - payment_cents).max(0);
    }
    balance
}

/// The largest principal that `payment_cents` a month repays over `months` at `rate_bps`
/// (the present value of the payments), rounded down to the cent.
pub fn max_principal(payment_cents: i64, rate_bps: i64, months: i64) -> i64 {
    if payment_cents <= 0 || months <= 0 {
        return 0;
    }
    let r = monthly_rate(rate_bps);
    if r == 0.0 {
        return payment_cents * months;
    }
    (payment_cents as f64 * (1.0 - (1.0 + r).powi(-(months as i32))) / r).floor() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textbook_payments() {
        // 200,000 at 6 % over 30 years: 1,199.10 a month.
        assert_eq!(monthly_payment(20_000_000, 600, 360), 119_910);
        // 10,000 at 12 % over 12 months: 888.49 a month.
        assert_eq!(monthly_payment(1_000_000, 1200, 12), 88_849);
        assert_eq!(monthly_payment(120_000, 0, 12), 10_000);
    }

    #[test]
    fn a_schedule_repays_exactly() {
        let p = monthly_payment(1_000_000, 1200, 12);
        let rows = schedule(1_000_000, 1200, p, 12);
        assert_eq!(rows.len(), 12);
        assert_eq!(rows[0].interest_cents, 10_000, "1 % of 10,000.00 in the first month");
        assert_eq!(rows[0].principal_cents, p - 10_000);
        assert_eq!(rows.last().unwrap().balance_cents, 0);
        let principal: i64 = rows.iter().map(|r| r.principal_cents).sum();
        assert_eq!(principal, 1_000_000);
        assert!((rows.last().unwrap().payment_cents - p).abs() < 10, "rounding leaves cents, not dollars");
        assert_eq!(balance_after(1_000_000, 1200, p, 3), rows[2].balance_cents);
    }

    #[test]
    fn max_principal_inverts_the_payment() {
        let p = max_principal(119_910, 600, 360);
        assert!((p - 20_000_000).abs() < 100, "{p}");
        assert_eq!(max_principal(0, 600, 360), 0);
    }
}
