//! The card agent: balances and available credit, recent transactions, blocking (lost or
//! stolen), freezing and unfreezing a card, and disputing a transaction.

use chrono::Duration;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use super::money::{cents_to_amount, format_money};
use super::text::{self, has_any};
use super::{AgentAnswer, AgentRequest, contact};

/// A card as the agent reads it.
#[derive(Clone, Debug)]
struct Card {
    card_id: String,
    account_id: String,
    /// The token (`ctok_…`) of a protected card; the number itself for a row another client
    /// wrote in clear (until `CardVault::protect` seals it).
    pan: String,
    /// First six and last four digits (protected cards).
    bin: Option<String>,
    last4: Option<String>,
    brand: String,
    kind: String,
    status: String,
    credit_limit_cents: Option<i64>,
    expiry: String,
}

impl Card {
    /// `4532 01•• •••• 0366`: the number as the bank may show it (BIN and last four); a row in
    /// clear is shown grouped as printed.
    fn number(&self) -> String {
        match (&self.bin, &self.last4) {
            (Some(bin), Some(last4)) if bin.len() == 6 => {
                format!("{} {}•• •••• {last4}", &bin[..4], &bin[4..])
            }
            _ => self
                .pan
                .as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    fn last4(&self) -> &str {
        self.last4.as_deref().unwrap_or_else(|| super::text::tail_chars(&self.pan, 4))
    }

    /// Whether `digits` (a run the customer typed) is this card's full number.
    fn is_number(&self, digits: &str) -> bool {
        match &self.bin {
            Some(bin) => digits.len() >= 13 && digits.starts_with(bin.as_str()) && digits.ends_with(self.last4()),
            None => self.pan == digits,
        }
    }

    /// `Mastercard credit card 5424 1812 3456 7890`.
    fn title(&self) -> String {
        let brand = match self.brand.as_str() {
            "visa" => "Visa",
            "mastercard" => "Mastercard",
            other => other,
        };
        format!("{brand} {} card {}", self.kind, self.number())
    }

    fn json(&self) -> Value {
        json!({
            "card_id": self.card_id,
            "card_number": self.number(),
            "brand": self.brand,
            "type": self.kind,
            "status": self.status,
            "expiry": self.expiry,
        })
    }
}

fn cards(conn: &Connection, user_id: &str) -> rusqlite::Result<Vec<Card>> {
    conn.prepare_cached(
        "SELECT card_id, account_id, pan, brand, kind, status, credit_limit_cents, expiry, bin, last4
         FROM cards WHERE user_id = ?1 ORDER BY kind DESC, card_id",
    )?
    .query_map([user_id], |r| {
        Ok(Card {
            card_id: r.get(0)?,
            account_id: r.get(1)?,
            pan: r.get(2)?,
            brand: r.get(3)?,
            kind: r.get(4)?,
            status: r.get(5)?,
            credit_limit_cents: r.get(6)?,
            expiry: r.get(7)?,
            bin: r.get(8)?,
            last4: r.get(9)?,
        })
    })?
    .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Intent {
    Block,
    Freeze,
    Unfreeze,
    Dispute,
    Transactions,
    Balance,
}

fn intent(normalised: &str) -> Intent {
    if has_any(normalised, &["unfreeze", "unlock", "unpause", "reactivate", "thaw"]) {
        Intent::Unfreeze
    } else if has_any(normalised, &["lost", "stolen", "block", "cancel", "missing"]) {
        Intent::Block
    } else if has_any(normalised, &["freeze", "pause", "lock", "suspend"]) {
        Intent::Freeze
    } else if has_any(
        normalised,
        &["dispute", "chargeback", "fraud", "fraudulent", "unauthorized", "unauthorised", "not mine", "didn t make"],
    ) {
        Intent::Dispute
    } else if has_any(
        normalised,
        &["transaction", "transactions", "statement", "spent", "spending", "purchases", "charges", "history", "recent"],
    ) {
        Intent::Transactions
    } else {
        Intent::Balance
    }
}

/// Answers a card query.
pub fn answer(conn: &mut Connection, req: &AgentRequest<'_>) -> rusqlite::Result<AgentAnswer> {
    let all = cards(conn, req.user_id)?;
    if all.is_empty() {
        return Ok(AgentAnswer::completed(json!({
            "intent": "no_cards",
            "message": "You have no cards with us.",
        })));
    }
    let normalised = text::normalise(req.query);
    let intent = intent(&normalised);
    // A state-changing action needs an unambiguous request: "don't cancel my card" and "how do I
    // block my card?" change nothing, and the answer says so.
    if matches!(intent, Intent::Block | Intent::Freeze | Intent::Unfreeze | Intent::Dispute) {
        let verbs = [
            "block",
            "cancel",
            "lost",
            "stolen",
            "missing",
            "freeze",
            "pause",
            "lock",
            "suspend",
            "unfreeze",
            "unlock",
            "unpause",
            "reactivate",
            "thaw",
            "dispute",
            "chargeback",
        ];
        let action = match intent {
            Intent::Block => "block a card",
            Intent::Freeze => "freeze a card",
            Intent::Unfreeze => "unfreeze a card",
            _ => "dispute a charge",
        };
        let example = match intent {
            Intent::Block => "block my debit card",
            Intent::Freeze => "freeze my credit card",
            Intent::Unfreeze => "unfreeze my credit card",
            _ => "dispute the Best Buy charge",
        };
        match text::mood(req.query, &normalised, &verbs) {
            text::Mood::Do => {}
            text::Mood::Negated => {
                return Ok(AgentAnswer::completed(json!({
                    "intent": "no_action",
                    "action_taken": false,
                    "message": format!("Understood: nothing was changed on your cards. If you do want to {action}, say for example \"{example}\"."),
                })));
            }
            text::Mood::Question => {
                return Ok(AgentAnswer::completed(json!({
                    "intent": "how_to",
                    "action_taken": false,
                    "message": format!("Nothing was changed on your cards. To {action}, ask me directly, for example \"{example}\", and I will do it at once and confirm it here."),
                })));
            }
        }
    }
    match intent {
        Intent::Balance => balances(conn, &all),
        Intent::Transactions => transactions(conn, req),
        Intent::Dispute => dispute(conn, req, &all),
        i @ (Intent::Block | Intent::Freeze | Intent::Unfreeze) => match pick_card(req.query, &normalised, &all) {
            Some(card) => change_status(conn, req, i, card, &normalised),
            None => Ok(choose_card(&all, "Which card do you mean?")),
        },
    }
}

/// The card the customer names by its number or ending, its type or brand; or the only card.
fn pick_card<'c>(query: &str, normalised: &str, all: &'c [Card]) -> Option<&'c Card> {
    for run in text::digit_runs(query) {
        if run.len() >= 4
            && let Some(c) = all.iter().find(|c| c.is_number(&run) || (run.len() == 4 && c.last4() == run))
        {
            return Some(c);
        }
    }
    let by_word: Vec<&Card> = all
        .iter()
        .filter(|c| {
            (has_any(normalised, &["credit"]) && c.kind == "credit")
                || (has_any(normalised, &["debit"]) && c.kind == "debit")
                || has_any(normalised, &[c.brand.as_str()])
        })
        .collect();
    match (by_word.as_slice(), all) {
        ([one], _) => Some(one),
        ([], [only]) => Some(only),
        _ => None,
    }
}

fn choose_card(all: &[Card], question: &str) -> AgentAnswer {
    let list: Vec<String> = all.iter().map(|c| format!("{} ({})", c.title(), c.status)).collect();
    AgentAnswer::completed(json!({
        "intent": "clarify",
        "message": format!("{question} You have: {}.", list.join("; ")),
        "cards": all.iter().map(Card::json).collect::<Vec<_>>(),
    }))
}

fn credit_balance(conn: &Connection, card_id: &str) -> rusqlite::Result<i64> {
    conn.query_row("SELECT coalesce(sum(amount_cents), 0) FROM card_transactions WHERE card_id = ?1", [card_id], |r| {
        r.get(0)
    })
}

fn balances(conn: &Connection, all: &[Card]) -> rusqlite::Result<AgentAnswer> {
    let mut items = Vec::new();
    let mut lines = Vec::new();
    for c in all {
        let mut item = c.json();
        if c.kind == "credit" {
            let balance = credit_balance(conn, &c.card_id)?;
            let limit = c.credit_limit_cents.unwrap_or(0);
            let available = (limit - balance).max(0);
            item["balance"] = cents_to_amount(balance);
            item["credit_limit"] = cents_to_amount(limit);
            item["available_credit"] = cents_to_amount(available);
            lines.push(format!(
                "{}: balance {} USD, {} USD of your {} USD limit available",
                c.title(),
                format_money(balance),
                format_money(available),
                format_money(limit)
            ));
        } else {
            let balance: i64 =
                conn.query_row("SELECT balance_cents FROM accounts WHERE account_id = ?1", [&c.account_id], |r| {
                    r.get(0)
                })?;
            item["account_balance"] = cents_to_amount(balance);
            lines.push(format!("{}: {} USD available in your checking account", c.title(), format_money(balance)));
        }
        if c.status != "active" {
            lines.last_mut().expect("just pushed").push_str(&format!(" (card {})", c.status));
        }
        items.push(item);
    }
    Ok(AgentAnswer::completed(json!({
        "intent": "card_balance",
        "currency": "USD",
        "cards": items,
        "message": format!("{}.", lines.join(". ")),
    })))
}

fn transactions(conn: &Connection, req: &AgentRequest<'_>) -> rusqlite::Result<AgentAnswer> {
    let limit = text::count(req.query, 50).unwrap_or(5);
    let mut stmt = conn.prepare_cached(
        "SELECT t.txn_id, t.posted_at, t.merchant, t.category, t.amount_cents, t.currency, t.status, coalesce(c.last4, c.pan)
         FROM card_transactions t JOIN cards c ON c.card_id = t.card_id
         WHERE c.user_id = ?1 ORDER BY t.posted_at DESC, t.txn_id LIMIT ?2",
    )?;
    let rows = stmt
        .query_map(params![req.user_id, limit as i64], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let total: i64 = rows.iter().map(|r| r.4).sum();
    let items: Vec<Value> = rows
        .iter()
        .map(|(id, at, merchant, category, cents, currency, status, pan)| {
            json!({
                "txn_id": id,
                "date": super::text::head_chars(at, 10),
                "merchant": merchant,
                "category": category,
                "amount": cents_to_amount(*cents),
                "currency": currency,
                "status": status,
                "card_last4": super::text::tail_chars(pan, 4),
            })
        })
        .collect();
    Ok(AgentAnswer::completed(json!({
        "intent": "recent_transactions",
        "transactions": items,
        "total": cents_to_amount(total),
        "currency": "USD",
        "message": format!("Your last {} card transactions add up to {} USD.", rows.len(), format_money(total)),
    })))
}

fn change_status(
    conn: &mut Connection,
    req: &AgentRequest<'_>,
    intent: Intent,
    card: &Card,
    normalised: &str,
) -> rusqlite::Result<AgentAnswer> {
    let (from_ok, to, verb, name) = match intent {
        Intent::Block => (["active", "frozen"].as_slice(), "blocked", "blocked", "block_card"),
        Intent::Freeze => (["active"].as_slice(), "frozen", "frozen", "freeze_card"),
        _ => (["frozen"].as_slice(), "active", "unfrozen", "unfreeze_card"),
    };
    if !from_ok.contains(&card.status.as_str()) {
        let why = match (intent, card.status.as_str()) {
            (_, "blocked") => "it is blocked for good; a replacement card is on its way".to_owned(),
            (Intent::Unfreeze, s) => format!("it is {s}, not frozen"),
            (_, s) => format!("it is already {s}"),
        };
        return Ok(AgentAnswer::rejected(json!({
            "intent": name,
            "card": card.json(),
            "message": format!("Your {} was not {verb}: {why}.", card.title()),
        })));
    }
    let reason = if has_any(normalised, &["stolen"]) {
        "reported stolen"
    } else if has_any(normalised, &["lost", "missing"]) {
        "reported lost"
    } else {
        "customer request"
    };
    let now = req.now.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let tx = crate::store::sqlite::write_transaction(conn)?;
    let changed = tx.execute(
        "UPDATE cards SET status = ?1, status_reason = ?2, status_changed_at = ?3 WHERE card_id = ?4 AND status = ?5",
        params![to, reason, now, card.card_id, card.status],
    )?;
    tx.commit()?;
    if changed != 1 {
        // Changed by another request between the read and the update.
        return Ok(AgentAnswer::rejected(json!({
            "intent": name,
            "message": format!("Your {} changed while we were updating it; please try again.", card.title()),
        })));
    }
    let who = contact(conn, req.user_id)?;
    let mut updated = card.clone();
    updated.status = to.to_owned();
    let mut message = format!("Your {} is now {verb}", updated.title());
    if intent == Intent::Block {
        message.push_str(&format!(" ({reason}); a replacement card will be mailed to you"));
    }
    let mut out = json!({
        "intent": name,
        "card": updated.json(),
        "status_reason": reason,
        "changed_at": now,
    });
    if let Some(who) = who {
        message.push_str(&format!(". We sent a confirmation to {}", who.email));
        out["notification"] = json!({"email": who.email, "sms": who.phone});
    }
    message.push('.');
    out["message"] = Value::String(message);
    Ok(AgentAnswer::completed(out))
}

/// A card transaction as a dispute sees it.
#[derive(Debug)]
struct Txn {
    txn_id: String,
    card_id: String,
    posted_at: String,
    merchant: String,
    amount_cents: i64,
    status: String,
}

fn dispute(conn: &mut Connection, req: &AgentRequest<'_>, all: &[Card]) -> rusqlite::Result<AgentAnswer> {
    let since = (req.now - Duration::days(120)).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let recent: Vec<Txn> = conn
        .prepare_cached(
            "SELECT t.txn_id, t.card_id, t.posted_at, t.merchant, t.amount_cents, t.status
             FROM card_transactions t JOIN cards c ON c.card_id = t.card_id
             WHERE c.user_id = ?1 AND t.posted_at >= ?2 ORDER BY t.posted_at DESC, t.txn_id",
        )?
        .query_map(params![req.user_id, since], |r| {
            Ok(Txn {
                txn_id: r.get(0)?,
                card_id: r.get(1)?,
                posted_at: r.get(2)?,
                merchant: r.get(3)?,
                amount_cents: r.get(4)?,
                status: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let normalised = text::normalise(req.query);
    let amounts = text::amounts(req.query);
    let by_merchant = |t: &&Txn| normalised.contains(&text::normalise(&t.merchant));
    let by_amount = |t: &&Txn| amounts.contains(&t.amount_cents);
    let found = recent
        .iter()
        .find(|t| by_merchant(t) && by_amount(t))
        .or_else(|| recent.iter().find(by_merchant))
        .or_else(|| recent.iter().find(by_amount));
    let Some(txn) = found else {
        let options: Vec<Value> = recent
            .iter()
            .take(5)
            .map(|t| {
                json!({"txn_id": t.txn_id, "date": super::text::head_chars(&t.posted_at, 10), "merchant": t.merchant,
                       "amount": cents_to_amount(t.amount_cents)})
            })
            .collect();
        return Ok(AgentAnswer::completed(json!({
            "intent": "clarify",
            "message": "Which transaction do you want to dispute? Name the merchant or the amount.",
            "recent_transactions": options,
        })));
    };
    let card = all.iter().find(|c| c.card_id == txn.card_id).expect("the transaction is on one of the user's cards");
    let txn_json = json!({
        "txn_id": txn.txn_id, "date": super::text::head_chars(&txn.posted_at, 10), "merchant": txn.merchant,
        "amount": cents_to_amount(txn.amount_cents), "currency": "USD",
    });
    if txn.status == "disputed" {
        let open: Option<String> = conn
            .query_row("SELECT dispute_id FROM card_disputes WHERE txn_id = ?1", [&txn.txn_id], |r| r.get(0))
            .optional()?;
        return Ok(AgentAnswer::rejected(json!({
            "intent": "dispute_transaction",
            "transaction": txn_json,
            "dispute_id": open,
            "message": format!("The {} USD charge at {} is already under dispute.", format_money(txn.amount_cents), txn.merchant),
        })));
    }
    let reason = if has_any(&normalised, &["fraud", "fraudulent", "unauthorized", "unauthorised", "not mine"]) {
        "unauthorized"
    } else {
        "customer dispute"
    };
    let dispute_id = format!("dsp_{}", uuid::Uuid::now_v7().simple());
    let now = req.now.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let tx = crate::store::sqlite::write_transaction(conn)?;
    tx.execute(
        "INSERT INTO card_disputes (dispute_id, txn_id, user_id, reason, status, created_at) VALUES (?1, ?2, ?3, ?4, 'open', ?5)",
        params![dispute_id, txn.txn_id, req.user_id, reason, now],
    )?;
    tx.execute("UPDATE card_transactions SET status = 'disputed' WHERE txn_id = ?1", [&txn.txn_id])?;
    tx.commit()?;
    let mut message = format!(
        "We opened dispute {dispute_id} for the {} USD charge at {} on {} with your {}",
        format_money(txn.amount_cents),
        txn.merchant,
        super::text::head_chars(&txn.posted_at, 10),
        card.title()
    );
    let mut out = json!({
        "intent": "dispute_transaction",
        "dispute_id": dispute_id,
        "reason": reason,
        "transaction": txn_json,
        "card": card.json(),
    });
    if card.kind == "credit" {
        message.push_str("; a provisional credit is applied while we investigate");
        out["provisional_credit"] = cents_to_amount(txn.amount_cents);
    }
    if let Some(who) = contact(conn, req.user_id)? {
        message.push_str(&format!(". Updates will be sent to {}", who.email));
        out["notification"] = json!({"email": who.email});
    }
    message.push('.');
    out["message"] = Value::String(message);
    Ok(AgentAnswer::completed(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::tests_support::bank;
    use eventline_model::events::ExecutionStatus;

    #[test]
    fn rows_written_by_any_client_never_panic_the_agent() {
        let (_dir, mut conn) = bank();
        // Another client wrote a short, non-ASCII card number and dates that are not timestamps.
        conn.execute_batch(
            "UPDATE cards SET pan = '€€' || substr(card_id, -3) WHERE user_id = 'u-1001';
             UPDATE card_transactions SET posted_at = 'gestern' WHERE card_id IN
                 (SELECT card_id FROM cards WHERE user_id = 'u-1001');",
        )
        .unwrap();
        for q in ["card balance", "show my last transactions", "dispute the Best Buy charge", "freeze my debit card"] {
            let a = answer(&mut conn, &AgentRequest::new("u-1001", q)).unwrap();
            assert!(a.output.contains_key("message"), "{q}: {:?}", a.output);
        }
    }

    #[test]
    fn balances_are_computed_from_the_rows() {
        let (_dir, mut conn) = bank();
        let a = answer(&mut conn, &AgentRequest::new("u-1001", "what's my card balance?")).unwrap();
        assert_eq!(a.output["intent"], "card_balance");
        let credit = a.output["cards"].as_array().unwrap().iter().find(|c| c["type"] == "credit").unwrap();
        let (sum, limit): (i64, i64) = conn
            .query_row(
                "SELECT (SELECT sum(amount_cents) FROM card_transactions WHERE card_id = 'crd_1001_credit'),
                        (SELECT credit_limit_cents FROM cards WHERE card_id = 'crd_1001_credit')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(credit["balance"], cents_to_amount(sum));
        assert_eq!(credit["available_credit"], cents_to_amount(limit - sum));
        let pan: String =
            conn.query_row("SELECT pan FROM cards WHERE card_id = 'crd_1001_credit'", [], |r| r.get(0)).unwrap();
        assert_eq!(
            credit["card_number"].as_str().unwrap().replace(' ', ""),
            pan,
            "the agent's raw answer has the number"
        );
    }

    #[test]
    fn blocking_a_lost_card_updates_it_once() {
        let (_dir, mut conn) = bank();
        let a = answer(&mut conn, &AgentRequest::new("u-1002", "I lost my credit card, please block it")).unwrap();
        assert_eq!(a.status, ExecutionStatus::Completed, "{:?}", a.output);
        assert_eq!(a.output["card"]["status"], "blocked");
        let (status, reason): (String, String) = conn
            .query_row("SELECT status, status_reason FROM cards WHERE card_id = 'crd_1002_credit'", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((status.as_str(), reason.as_str()), ("blocked", "reported lost"));
        assert!(a.output["message"].as_str().unwrap().contains("carlos.rivera@example.com"));
        let again = answer(&mut conn, &AgentRequest::new("u-1002", "block my credit card")).unwrap();
        assert_eq!(again.status, ExecutionStatus::Rejected);
        let debit: String =
            conn.query_row("SELECT status FROM cards WHERE card_id = 'crd_1002_debit'", [], |r| r.get(0)).unwrap();
        assert_eq!(debit, "active", "the other card is untouched");
    }

    #[test]
    fn freeze_by_ending_then_unfreeze() {
        let (_dir, mut conn) = bank();
        let pan: String =
            conn.query_row("SELECT pan FROM cards WHERE card_id = 'crd_1003_debit'", [], |r| r.get(0)).unwrap();
        let q = format!("freeze the card ending {}", &pan[12..]);
        let a = answer(&mut conn, &AgentRequest::new("u-1003", &q)).unwrap();
        assert_eq!(a.output["card"]["status"], "frozen", "{:?}", a.output);
        let b = answer(&mut conn, &AgentRequest::new("u-1003", "unfreeze my debit card")).unwrap();
        assert_eq!(b.output["card"]["status"], "active");
        let c = answer(&mut conn, &AgentRequest::new("u-1003", "freeze my card")).unwrap();
        assert_eq!(c.output["intent"], "clarify", "two cards: ask which");
    }

    #[test]
    fn dispute_by_merchant_marks_the_transaction() {
        let (_dir, mut conn) = bank();
        let merchant: String = conn
            .query_row(
                "SELECT merchant FROM card_transactions WHERE card_id = 'crd_1001_credit' ORDER BY posted_at DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let a = answer(&mut conn, &AgentRequest::new("u-1001", &format!("I want to dispute the {merchant} charge")))
            .unwrap();
        assert_eq!(a.output["intent"], "dispute_transaction", "{:?}", a.output);
        let picked = a.output["transaction"]["txn_id"].as_str().unwrap().to_owned();
        let (status, disputes): (String, i64) = conn
            .query_row(
                "SELECT status, (SELECT count(*) FROM card_disputes WHERE txn_id = ?1) FROM card_transactions WHERE txn_id = ?1",
                [&picked],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((status.as_str(), disputes), ("disputed", 1));
        let merchant_of_picked: String = conn
            .query_row("SELECT merchant FROM card_transactions WHERE txn_id = ?1", [&picked], |r| r.get(0))
            .unwrap();
        assert_eq!(merchant_of_picked, merchant);
    }

    #[test]
    fn recent_transactions_newest_first() {
        let (_dir, mut conn) = bank();
        let a = answer(&mut conn, &AgentRequest::new("u-1004", "show my last 3 transactions")).unwrap();
        let items = a.output["transactions"].as_array().unwrap();
        assert_eq!(items.len(), 3);
        assert!(items[0]["date"].as_str() >= items[2]["date"].as_str());
    }
}
