//! The planner: picks the agent for a query by weighted intent terms, or says it cannot.

use eventline_model::events::AgentId;

/// Where a query goes.
#[derive(Clone, Debug, PartialEq)]
pub enum Route {
    /// The agent and how sure the planner is (0..=1: the winner's share of all matched weight).
    Agent(AgentId, f32),
    /// No agent's terms matched: ask the user to rephrase rather than guess.
    Unclear,
}

/// Intent terms with weights; multi-word terms match as phrases.
#[derive(Clone, Debug)]
pub struct Planner {
    terms: Vec<(AgentId, &'static str, f32)>,
}

impl Default for Planner {
    fn default() -> Self {
        use AgentId::*;
        let terms = [
            (
                CardAgent,
                &[
                    "card",
                    "cards",
                    "credit card",
                    "debit card",
                    "pin",
                    "block",
                    "freeze",
                    "chargeback",
                    "dispute",
                    "limit",
                    "transaction",
                    "transactions",
                    "spending",
                    "balance",
                    "contactless",
                    "statement",
                ][..],
            ),
            (
                LoanAgent,
                &[
                    "loan",
                    "loans",
                    "loan balance",
                    "mortgage balance",
                    "loan payment",
                    "payment schedule",
                    "mortgage",
                    "owe",
                    "borrow",
                    "repayment",
                    "repay",
                    "installment",
                    "instalment",
                    "interest rate",
                    "apr",
                    "refinance",
                    "credit score",
                    "overdraft",
                    "amortization",
                ][..],
            ),
            (
                WealthAgent,
                &[
                    "invest",
                    "investment",
                    "investments",
                    "holdings",
                    "allocation",
                    "portfolio",
                    "stock",
                    "stocks",
                    "share price",
                    "etf",
                    "fund",
                    "bond",
                    "retirement",
                    "pension",
                    "dividend",
                    "market",
                    "savings goal",
                    "rebalance",
                ][..],
            ),
        ];
        let mut out = Vec::new();
        for (agent, words) in terms {
            for w in words {
                // Phrases are more specific than single words.
                let weight = if w.contains(' ') { 2.0 } else { 1.0 };
                out.push((agent, *w, weight));
            }
        }
        Self { terms: out }
    }
}

impl Planner {
    /// Routes `query` to the agent whose terms weigh most in it.
    pub fn route(&self, query: &str) -> Route {
        let text = normalise(query);
        let mut score = [0f32; 3];
        for (agent, term, weight) in &self.terms {
            if contains_term(&text, term) {
                score[AgentId::ALL.iter().position(|a| a == agent).expect("known agent")] += weight;
            }
        }
        let total: f32 = score.iter().sum();
        if total == 0.0 {
            return Route::Unclear;
        }
        let (best, s) =
            score.iter().enumerate().fold((0, 0.0f32), |acc, (i, s)| if *s > acc.1 { (i, *s) } else { acc });
        Route::Agent(AgentId::ALL[best], s / total)
    }
}

fn normalise(q: &str) -> String {
    let mapped: String = q.chars().map(|c| if c.is_alphanumeric() { c.to_ascii_lowercase() } else { ' ' }).collect();
    format!(" {} ", mapped.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn contains_term(text: &str, term: &str) -> bool {
    text.contains(&format!(" {term} "))
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
}
