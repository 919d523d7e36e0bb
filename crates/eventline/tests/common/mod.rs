//! Shared checks of the CDC crash tests.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use eventline_log::{EmbeddedLog, EmbeddedOptions, EventLog};

/// Reads every `db.changes.users` event in the log under `data` and checks that each message id
/// appears once and that, per user, the `Name` counter (the commit number) only grows. Returns
/// how many events there are.
pub async fn users_changes_exactly_once_in_commit_order(data: &Path) -> u64 {
    let log = EmbeddedLog::open(data.join("log"), EmbeddedOptions::default()).unwrap();
    let mut ids = HashSet::new();
    let mut last_name: HashMap<String, u64> = HashMap::new();
    let mut total = 0u64;
    for p in 0..3 {
        let (_, end) = log.watermarks("db.changes.users", p).await.unwrap();
        let mut at = 0;
        while at < end {
            let batch = log.fetch("db.changes.users", p, at, 5000).await.unwrap();
            for r in &batch {
                let ev: serde_json::Value = serde_json::from_slice(r.value.as_ref().unwrap()).unwrap();
                let id = ev["_metadata"]["message_id"].as_str().unwrap().to_owned();
                assert!(ids.insert(id.clone()), "message {id} appears twice");
                let user = ev["data"]["UserId"].as_str().unwrap().to_owned();
                let name: u64 = ev["data"]["Name"].as_str().unwrap().parse().unwrap();
                if let Some(prev) = last_name.insert(user.clone(), name) {
                    assert!(name > prev, "{user}: change {name} after {prev}: out of commit order");
                }
                total += 1;
            }
            at = batch.last().unwrap().offset + 1;
        }
    }
    total
}
