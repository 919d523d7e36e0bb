//! The loan agent: outstanding balances, the amortization schedule of a loan, eligibility for a
//! new loan from income, debt-to-income ratio and credit score, and the bank's current rates.

use chrono::{Months, NaiveDate};
use rusqlite::{Connection, OptionalExtension};
use serde_json::{Value, json};

use super::amortization::{self, Installment};
use super::money::{cents_to_amount, format_money};
use super::text::{self, has_any};
use super::{AgentAnswer, AgentRequest, contact};

/// How many installments a schedule answer lists.
const SCHEDULE_ROWS: usize = 12;

#[derive(Clone, Debug)]
struct Loan {
    loan_id: String,
    kind: String,
    principal_cents: i64,
    outstanding_cents: i64,
    rate_bps: i64,
    term_months: i64,
    payments_made: i64,
    start_date: NaiveDate,
    repayment_account_number: String,
}

impl Loan {
    fn payment(&self) -> i64 {
        amortization::monthly_payment(self.principal_cents, self.rate_bps, self.term_months)
    }

    fn remaining(&self) -> Vec<Installment> {
        amortization::schedule(
            self.outstanding_cents,
            self.rate_bps,
            self.payment(),
            self.term_months - self.payments_made,
        )
    }

    /// The due date of payment `number` counted from the start of the loan.
    fn due(&self, number: i64) -> NaiveDate {
        self.start_date.checked_add_months(Months::new(number as u32)).unwrap_or(self.start_date)
    }

    fn summary(&self) -> Value {
        let rest = self.remaining();
        let interest: i64 = rest.iter().map(|i| i.interest_cents).sum();
        let last = self.payments_made + rest.len() as i64;
        json!({
            "loan_id": self.loan_id,
            "type": self.kind,
            "original_principal": cents_to_amount(self.principal_cents),
            "outstanding_balance": cents_to_amount(self.outstanding_cents),
            "interest_rate_pct": self.rate_bps as f64 / 100.0,
            "monthly_payment": cents_to_amount(self.payment()),
            "payments_made": self.payments_made,
            "payments_remaining": rest.len(),
            "next_payment_date": self.due(self.payments_made + 1).to_string(),
            "payoff_date": self.due(last).to_string(),
            "remaining_interest": cents_to_amount(interest),
            "repayment_account": format!("checking ending {}", super::text::tail_chars(&self.repayment_account_number, 4)),
        })
    }
}

fn loans(conn: &Connection, user_id: &str) -> rusqlite::Result<Vec<Loan>> {
    conn.prepare_cached(
        "SELECT l.loan_id, l.kind, l.principal_cents, l.outstanding_cents, l.rate_bps, l.term_months,
                l.payments_made, l.start_date, a.account_number
         FROM loans l JOIN accounts a ON a.account_id = l.repayment_account
         WHERE l.user_id = ?1 AND l.status = 'active' ORDER BY l.outstanding_cents DESC, l.loan_id",
    )?
    .query_map([user_id], |r| {
        let start: String = r.get(7)?;
        Ok(Loan {
            loan_id: r.get(0)?,
            kind: r.get(1)?,
            principal_cents: r.get(2)?,
            outstanding_cents: r.get(3)?,
            rate_bps: r.get(4)?,
            term_months: r.get(5)?,
            payments_made: r.get(6)?,
            start_date: start
                .parse()
                .map_err(|e| rusqlite::Error::FromSqlConversionFailure(7, rusqlite::types::Type::Text, Box::new(e)))?,
            repayment_account_number: r.get(8)?,
        })
    })?
    .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Intent {
    Eligibility,
    Schedule,
    Rates,
    Balance,
}

fn intent(n: &str) -> Intent {
    if has_any(
        n,
        &[
            "eligible",
            "eligibility",
            "qualify",
            "afford",
            "apply",
            "application",
            "borrow",
            "pre approved",
            "preapproved",
        ],
    ) {
        Intent::Eligibility
    } else if has_any(
        n,
        &["schedule", "amortization", "amortisation", "payment plan", "installments", "instalments", "breakdown"],
    ) {
        Intent::Schedule
    } else if has_any(n, &["rates", "offers", "products"]) || (has_any(n, &["rate", "apr"]) && !has_any(n, &["my"])) {
        Intent::Rates
    } else {
        Intent::Balance
    }
}

/// The product a query is about: mortgage, auto or (by default) personal.
fn product_kind(n: &str) -> Option<&'static str> {
    if has_any(n, &["mortgage", "home", "house", "property"]) {
        Some("mortgage")
    } else if has_any(n, &["car", "auto", "vehicle"]) {
        Some("auto")
    } else if has_any(n, &["personal"]) {
        Some("personal")
    } else {
        None
    }
}

/// Answers a loan query.
pub fn answer(conn: &mut Connection, req: &AgentRequest<'_>) -> rusqlite::Result<AgentAnswer> {
    let n = text::normalise(req.query);
    match intent(&n) {
        Intent::Eligibility => eligibility(conn, req, &n),
        Intent::Schedule => schedule(conn, req, &n),
        Intent::Rates => rates(conn),
        Intent::Balance => balance(conn, req),
    }
}

fn balance(conn: &Connection, req: &AgentRequest<'_>) -> rusqlite::Result<AgentAnswer> {
    let all = loans(conn, req.user_id)?;
    if all.is_empty() {
        return Ok(AgentAnswer::completed(json!({
            "intent": "loan_balance",
            "loans": [],
            "message": "You have no active loans with us.",
        })));
    }
    let total: i64 = all.iter().map(|l| l.outstanding_cents).sum();
    let lines: Vec<String> = all
        .iter()
        .map(|l| {
            format!(
                "your {} loan has {} USD outstanding at {:.2} %, next payment of {} USD due {}",
                l.kind,
                format_money(l.outstanding_cents),
                l.rate_bps as f64 / 100.0,
                format_money(l.payment()),
                l.due(l.payments_made + 1)
            )
        })
        .collect();
    let mut message = format!("You owe {} USD in total: {}.", format_money(total), lines.join("; "));
    let mut out = json!({
        "intent": "loan_balance",
        "currency": "USD",
        "total_outstanding": cents_to_amount(total),
        "loans": all.iter().map(Loan::summary).collect::<Vec<_>>(),
    });
    if let Some(who) = contact(conn, req.user_id)?
        && let Some(phone) = who.phone
    {
        message.push_str(&format!(" Payment reminders are texted to {phone}."));
        out["reminders"] = json!({"sms": phone});
    }
    out["message"] = Value::String(message);
    Ok(AgentAnswer::completed(out))
}

fn schedule(conn: &Connection, req: &AgentRequest<'_>, n: &str) -> rusqlite::Result<AgentAnswer> {
    let all = loans(conn, req.user_id)?;
    let wanted = product_kind(n);
    let chosen: Vec<&Loan> = all.iter().filter(|l| wanted.is_none_or(|k| l.kind == k)).collect();
    let Some(loan) = chosen.first() else {
        return Ok(AgentAnswer::completed(json!({
            "intent": "amortization_schedule",
            "message": match wanted {
                Some(k) => format!("You have no active {k} loan with us."),
                None => "You have no active loans with us.".to_owned(),
            },
        })));
    };
    let rest = loan.remaining();
    let rows: Vec<Value> = rest
        .iter()
        .take(SCHEDULE_ROWS)
        .map(|i| {
            json!({
                "payment_number": loan.payments_made + i.number,
                "due_date": loan.due(loan.payments_made + i.number).to_string(),
                "payment": cents_to_amount(i.payment_cents),
                "interest": cents_to_amount(i.interest_cents),
                "principal": cents_to_amount(i.principal_cents),
                "balance_after": cents_to_amount(i.balance_cents),
            })
        })
        .collect();
    let interest: i64 = rest.iter().map(|i| i.interest_cents).sum();
    let paid: i64 = rest.iter().map(|i| i.payment_cents).sum();
    let first = rest.first().copied();
    Ok(AgentAnswer::completed(json!({
        "intent": "amortization_schedule",
        "loan": loan.summary(),
        "schedule": rows,
        "schedule_rows_shown": rows.len(),
        "totals": {
            "payments_remaining": rest.len(),
            "total_to_pay": cents_to_amount(paid),
            "total_interest": cents_to_amount(interest),
        },
        "other_loans": chosen.len().saturating_sub(1) + (all.len() - chosen.len()),
        "message": format!(
            "Your {} loan: {} payments of {} USD remain; the next one is {} USD interest and {} USD principal. Remaining interest: {} USD.",
            loan.kind,
            rest.len(),
            format_money(loan.payment()),
            format_money(first.map_or(0, |i| i.interest_cents)),
            format_money(first.map_or(0, |i| i.principal_cents)),
            format_money(interest),
        ),
    })))
}

/// A loan product's terms.
#[derive(Clone, Debug)]
struct Product {
    kind: String,
    rate_bps: i64,
    default_months: i64,
    max_months: i64,
    min_credit_score: i64,
    max_dti_bps: i64,
}

fn products(conn: &Connection) -> rusqlite::Result<Vec<Product>> {
    conn.prepare_cached(
        "SELECT kind, rate_bps, default_months, max_months, min_credit_score, max_dti_bps FROM loan_products ORDER BY kind",
    )?
    .query_map([], |r| {
        Ok(Product {
            kind: r.get(0)?,
            rate_bps: r.get(1)?,
            default_months: r.get(2)?,
            max_months: r.get(3)?,
            min_credit_score: r.get(4)?,
            max_dti_bps: r.get(5)?,
        })
    })?
    .collect()
}

fn rates(conn: &Connection) -> rusqlite::Result<AgentAnswer> {
    let all = products(conn)?;
    let lines: Vec<String> = all
        .iter()
        .map(|p| format!("{} {:.2} % (up to {} months)", p.kind, p.rate_bps as f64 / 100.0, p.max_months))
        .collect();
    Ok(AgentAnswer::completed(json!({
        "intent": "loan_rates",
        "products": all.iter().map(|p| json!({
            "type": p.kind,
            "interest_rate_pct": p.rate_bps as f64 / 100.0,
            "max_term_months": p.max_months,
            "min_credit_score": p.min_credit_score,
        })).collect::<Vec<_>>(),
        "message": format!("Our current fixed rates: {}.", lines.join(", ")),
    })))
}

fn eligibility(conn: &Connection, req: &AgentRequest<'_>, n: &str) -> rusqlite::Result<AgentAnswer> {
    if text::out_of_range(req.query) {
        return Ok(AgentAnswer::rejected(json!({
            "intent": "loan_eligibility",
            "message": format!(
                "An amount or term in your request is too large for us to assess: we consider loans of up to {} USD over at most {} years. Please ask again with the amount and term you need.",
                format_money(text::MAX_AMOUNT_CENTS),
                text::MAX_TERM_MONTHS / 12
            ),
        })));
    }
    let kind = product_kind(n).unwrap_or("personal");
    let product = products(conn)?.into_iter().find(|p| p.kind == kind);
    let Some(product) = product else {
        return Ok(AgentAnswer::rejected(json!({
            "intent": "loan_eligibility",
            "message": format!("We do not offer {kind} loans at the moment."),
        })));
    };
    let profile: Option<(i64, i64, i64)> = conn
        .query_row(
            "SELECT annual_income_cents, monthly_debt_cents, credit_score FROM financial_profiles WHERE user_id = ?1",
            [req.user_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((annual_income, other_debt, score)) = profile else {
        return Ok(AgentAnswer::rejected(json!({
            "intent": "loan_eligibility",
            "message": "We have no income on file for you, so we cannot assess a loan yet. Please update your financial profile.",
        })));
    };
    let mut reasons = Vec::new();
    let requested_term = text::term_months(req.query);
    let term = requested_term.unwrap_or(product.default_months).clamp(1, product.max_months);
    if requested_term.is_some_and(|t| t > product.max_months) {
        reasons.push(format!("the longest {kind} term is {} months", product.max_months));
    }
    let income_m = annual_income / 12;
    let current_loans: i64 = loans(conn, req.user_id)?.iter().map(Loan::payment).sum();
    let existing = other_debt + current_loans;
    let capacity = income_m * product.max_dti_bps / 10_000 - existing;
    let max_amount = amortization::max_principal(capacity, product.rate_bps, term);
    let requested = text::amounts(req.query).into_iter().max();
    let payment = requested.map(|a| amortization::monthly_payment(a, product.rate_bps, term));
    let dti_bps = |extra: i64| if income_m > 0 { (existing + extra) * 10_000 / income_m } else { i64::MAX };
    let new_dti = dti_bps(payment.unwrap_or(0));
    if score < product.min_credit_score {
        reasons.push(format!("a credit score of at least {} is needed (yours is {score})", product.min_credit_score));
    }
    match requested {
        Some(_) if new_dti > product.max_dti_bps => reasons.push(format!(
            "the new payment would bring your debt-to-income ratio to {:.1} %, above the {:.1} % limit",
            new_dti as f64 / 100.0,
            product.max_dti_bps as f64 / 100.0
        )),
        None if max_amount <= 0 => reasons.push("your current debt payments leave no room for a new loan".to_owned()),
        _ => {}
    }
    let eligible = score >= product.min_credit_score
        && match requested {
            Some(_) => new_dti <= product.max_dti_bps,
            None => max_amount > 0,
        };
    let mut message = match (eligible, requested) {
        (true, Some(a)) => format!(
            "Good news: you qualify for a {} USD {kind} loan over {term} months at {:.2} %: {} USD a month, a debt-to-income ratio of {:.1} %.",
            format_money(a),
            product.rate_bps as f64 / 100.0,
            format_money(payment.unwrap_or(0)),
            new_dti as f64 / 100.0
        ),
        (true, None) => format!(
            "You can borrow up to {} USD as a {kind} loan over {term} months at {:.2} %.",
            format_money(max_amount),
            product.rate_bps as f64 / 100.0
        ),
        (false, _) => format!("We cannot offer this {kind} loan: {}.", reasons.join("; ")),
    };
    let mut out = json!({
        "intent": "loan_eligibility",
        "product": kind,
        "eligible": eligible,
        "interest_rate_pct": product.rate_bps as f64 / 100.0,
        "term_months": term,
        "requested_amount": requested.map(cents_to_amount),
        "monthly_payment": payment.map(cents_to_amount),
        "monthly_income": cents_to_amount(income_m),
        "existing_monthly_debt": cents_to_amount(existing),
        "debt_to_income_pct": new_dti as f64 / 100.0,
        "max_debt_to_income_pct": product.max_dti_bps as f64 / 100.0,
        "credit_score": score,
        "min_credit_score": product.min_credit_score,
        "max_amount": cents_to_amount(max_amount.max(0)),
        "reasons": reasons,
    });
    if eligible && let Some(who) = contact(conn, req.user_id)? {
        message.push_str(&format!(" We can email the offer to {}.", who.email));
        out["offer_email"] = Value::String(who.email);
    }
    out["message"] = Value::String(message);
    Ok(AgentAnswer::completed(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::tests_support::bank;

    #[test]
    fn balance_and_schedule_use_the_annuity_formula() {
        let (_dir, mut conn) = bank();
        let a = answer(&mut conn, &AgentRequest::new("u-1002", "How much do I still owe on my car loan?")).unwrap();
        assert_eq!(a.output["intent"], "loan_balance");
        let loan = &a.output["loans"][0];
        assert_eq!(loan["monthly_payment"], json!(564.2));
        assert_eq!(loan["payments_made"], 14);
        assert_eq!(loan["payments_remaining"], 46);
        let s = answer(&mut conn, &AgentRequest::new("u-1002", "show my amortization schedule")).unwrap();
        let first = &s.output["schedule"][0];
        assert_eq!(first["payment_number"], 15);
        // interest = outstanding × 6.99 % / 12
        let outstanding = (loan["outstanding_balance"].as_f64().unwrap() * 100.0).round();
        let interest = (outstanding * 0.0699 / 12.0).round() / 100.0;
        assert_eq!(first["interest"].as_f64().unwrap(), interest);
        assert_eq!(s.output["schedule"].as_array().unwrap().len(), SCHEDULE_ROWS);
    }

    #[test]
    fn eligibility_from_income_debt_and_score() {
        let (_dir, mut conn) = bank();
        // u-1004: 110,000 a year, no debt, score 805.
        let a = answer(&mut conn, &AgentRequest::new("u-1004", "Can I borrow $25,000 over 5 years?")).unwrap();
        assert_eq!(a.output["eligible"], true, "{:?}", a.output);
        assert_eq!(a.output["product"], "personal");
        assert_eq!(a.output["monthly_payment"], cents_to_amount(amortization::monthly_payment(2_500_000, 1149, 60)));
        // too much for u-1003: 68,000 a year with a personal loan running
        let b =
            answer(&mut conn, &AgentRequest::new("u-1003", "could I borrow 120k for a car over 60 months")).unwrap();
        assert_eq!(b.output["eligible"], false, "{:?}", b.output);
        assert_eq!(b.output["product"], "auto");
        assert!(b.output["reasons"][0].as_str().unwrap().contains("debt-to-income"));
    }
}
