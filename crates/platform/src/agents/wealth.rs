//! The wealth agent: portfolio valuation from holdings × last price, gains against cost basis,
//! allocation by asset class and by position, and quotes for the instruments it knows.

use rusqlite::Connection;
use serde_json::{Value, json};

use super::money::{cents_to_amount, format_money};
use super::text::{self, has_any};
use super::{AgentAnswer, AgentRequest};

#[derive(Clone, Debug)]
struct Position {
    symbol: String,
    name: String,
    asset_class: String,
    quantity: f64,
    price: f64,
    as_of: String,
    cost_basis_cents: i64,
}

impl Position {
    fn value_cents(&self) -> i64 {
        (self.quantity * self.price * 100.0).round() as i64
    }
}

fn positions(conn: &Connection, user_id: &str) -> rusqlite::Result<Vec<Position>> {
    conn.prepare_cached(
        "SELECT h.symbol, p.name, p.asset_class, h.quantity, p.price, p.as_of, h.cost_basis_cents
         FROM holdings h JOIN accounts a ON a.account_id = h.account_id JOIN prices p ON p.symbol = h.symbol
         WHERE a.user_id = ?1 ORDER BY h.symbol",
    )?
    .query_map([user_id], |r| {
        Ok(Position {
            symbol: r.get(0)?,
            name: r.get(1)?,
            asset_class: r.get(2)?,
            quantity: r.get(3)?,
            price: r.get(4)?,
            as_of: r.get(5)?,
            cost_basis_cents: r.get(6)?,
        })
    })?
    .collect()
}

/// Percentage with two decimals.
fn pct(part: i64, whole: i64) -> f64 {
    if whole == 0 { 0.0 } else { (part as f64 * 10_000.0 / whole as f64).round() / 100.0 }
}

/// Answers a wealth query.
pub fn answer(conn: &mut Connection, req: &AgentRequest<'_>) -> rusqlite::Result<AgentAnswer> {
    let n = text::normalise(req.query);
    let known: Vec<(String, String, f64, String)> = conn
        .prepare_cached("SELECT symbol, name, price, as_of FROM prices ORDER BY symbol")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let asked: Vec<&(String, String, f64, String)> =
        known.iter().filter(|(s, ..)| has_any(&n, &[s.to_lowercase().as_str()])).collect();
    if !asked.is_empty() && !has_any(&n, &["portfolio", "holdings", "my"]) {
        let quotes: Vec<Value> = asked
            .iter()
            .map(|(s, name, price, as_of)| json!({"symbol": s, "name": name, "price": price, "currency": "USD", "as_of": as_of}))
            .collect();
        let lines: Vec<String> = asked.iter().map(|(s, _, p, _)| format!("{s} {p:.2} USD")).collect();
        return Ok(AgentAnswer::completed(json!({
            "intent": "quote",
            "quotes": quotes,
            "message": format!("Last prices: {}.", lines.join(", ")),
        })));
    }
    portfolio(conn, req)
}

fn portfolio(conn: &Connection, req: &AgentRequest<'_>) -> rusqlite::Result<AgentAnswer> {
    let all = positions(conn, req.user_id)?;
    let cash: i64 = conn.query_row(
        "SELECT coalesce(sum(balance_cents), 0) FROM accounts WHERE user_id = ?1 AND kind = 'brokerage'",
        [req.user_id],
        |r| r.get(0),
    )?;
    if all.is_empty() && cash == 0 {
        return Ok(AgentAnswer::completed(json!({
            "intent": "portfolio_valuation",
            "message": "You have no investments with us yet.",
        })));
    }
    let invested: i64 = all.iter().map(Position::value_cents).sum();
    let basis: i64 = all.iter().map(|p| p.cost_basis_cents).sum();
    let total = invested + cash;
    let mut by_class: Vec<(String, i64)> = Vec::new();
    for p in &all {
        match by_class.iter_mut().find(|(c, _)| *c == p.asset_class) {
            Some((_, v)) => *v += p.value_cents(),
            None => by_class.push((p.asset_class.clone(), p.value_cents())),
        }
    }
    by_class.push(("cash".to_owned(), cash));
    by_class.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let holdings: Vec<Value> = all
        .iter()
        .map(|p| {
            json!({
                "symbol": p.symbol,
                "name": p.name,
                "asset_class": p.asset_class,
                "quantity": p.quantity,
                "price": p.price,
                "price_as_of": p.as_of,
                "market_value": cents_to_amount(p.value_cents()),
                "cost_basis": cents_to_amount(p.cost_basis_cents),
                "gain": cents_to_amount(p.value_cents() - p.cost_basis_cents),
                "gain_pct": pct(p.value_cents() - p.cost_basis_cents, p.cost_basis_cents),
                "weight_pct": pct(p.value_cents(), total),
            })
        })
        .collect();
    let allocation: Vec<Value> = by_class
        .iter()
        .map(|(class, v)| json!({"asset_class": class, "value": cents_to_amount(*v), "weight_pct": pct(*v, total)}))
        .collect();
    let mix: Vec<String> =
        by_class.iter().map(|(c, v)| format!("{} {:.1} %", c.replace('_', " "), pct(*v, total))).collect();
    Ok(AgentAnswer::completed(json!({
        "intent": "portfolio_valuation",
        "currency": "USD",
        "total_value": cents_to_amount(total),
        "invested_value": cents_to_amount(invested),
        "cash": cents_to_amount(cash),
        "unrealized_gain": cents_to_amount(invested - basis),
        "unrealized_gain_pct": pct(invested - basis, basis),
        "allocation": allocation,
        "holdings": holdings,
        "message": format!(
            "Your portfolio is worth {} USD ({} USD invested in {} positions, {} USD cash), {} {} USD against cost. Allocation: {}.",
            format_money(total),
            format_money(invested),
            all.len(),
            format_money(cash),
            if invested >= basis { "up" } else { "down" },
            format_money((invested - basis).abs()),
            mix.join(", ")
        ),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::tests_support::bank;

    #[test]
    fn valuation_is_quantity_times_last_price() {
        let (_dir, mut conn) = bank();
        let a = answer(&mut conn, &AgentRequest::new("u-1001", "How is my portfolio doing?")).unwrap();
        assert_eq!(a.output["intent"], "portfolio_valuation");
        // u-1001: 40 AAPL × 227.50 + 120 VTI × 285.10 + 150 BND × 72.40 + 10 GLD × 243.60
        let invested = 40.0 * 227.50 + 120.0 * 285.10 + 150.0 * 72.40 + 10.0 * 243.60;
        assert!((a.output["invested_value"].as_f64().unwrap() - invested).abs() < 0.005);
        let weights: f64 =
            a.output["allocation"].as_array().unwrap().iter().map(|c| c["weight_pct"].as_f64().unwrap()).sum();
        assert!((weights - 100.0).abs() < 0.05, "{weights}");
        // a market-data update moves the valuation
        conn.execute("UPDATE prices SET price = 250.0 WHERE symbol = 'AAPL'", []).unwrap();
        let b = answer(&mut conn, &AgentRequest::new("u-1001", "value of my portfolio")).unwrap();
        assert!((b.output["invested_value"].as_f64().unwrap() - (invested + 40.0 * 22.50)).abs() < 0.005);
    }

    #[test]
    fn quotes_for_named_symbols() {
        let (_dir, mut conn) = bank();
        let a = answer(&mut conn, &AgentRequest::new("u-1003", "what is the share price of NVDA and BND?")).unwrap();
        assert_eq!(a.output["intent"], "quote");
        assert_eq!(a.output["quotes"].as_array().unwrap().len(), 2);
    }
}
