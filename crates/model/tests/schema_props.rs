//! Property tests: every event the typed model produces validates against its topic's schema, and a
//! mutated event is rejected with the pointer of the field that was broken.

use eventline_model::events::*;
use eventline_model::{Metadata, Timestamp, schema};
use proptest::prelude::*;
use serde_json::{Value, json};

fn ts() -> impl Strategy<Value = Timestamp> {
    (0i64..4_102_444_800_000).prop_map(|ms| Timestamp::from_unix_millis(ms).unwrap())
}

fn meta() -> impl Strategy<Value = Metadata> {
    ("[a-z]{1,12}", ts()).prop_map(|(producer, t)| {
        let mut m = Metadata::new(producer);
        m.timestamp = t;
        m
    })
}

fn agent_execution() -> impl Strategy<Value = AgentExecution> {
    (
        "[a-z0-9-]{1,20}",
        prop::sample::select(AgentId::ALL.to_vec()),
        prop::sample::select(vec![ExecutionStatus::Completed, ExecutionStatus::Failed, ExecutionStatus::Rejected]),
        any::<u32>(),
        ".{0,40}",
        ts(),
        meta(),
    )
        .prop_map(|(id, agent, status, d, q, t, m)| AgentExecution {
            execution_id: id,
            agent_id: agent,
            status,
            duration_ms: d as u64,
            input: AgentInput { query: q, extra: Default::default() },
            output: json!({"answer": "ok"}).as_object().unwrap().clone(),
            timestamp: t,
            metadata: m,
            extra: Default::default(),
        })
}

fn alert() -> impl Strategy<Value = ComplianceAlert> {
    (
        "[a-z0-9-]{1,20}",
        prop::sample::select(vec![Severity::Low, Severity::Medium, Severity::High, Severity::Critical]),
        prop::sample::select(vec![AlertAction::Redacted, AlertAction::Blocked, AlertAction::Masked]),
        ts(),
        meta(),
    )
        .prop_map(|(id, severity, action, t, m)| ComplianceAlert {
            alert_id: id,
            alert_type: "PII_EXPOSURE".into(),
            severity,
            details: AlertDetails {
                component: "card_agent".into(),
                field: "ssn".into(),
                action,
                extra: Default::default(),
            },
            timestamp: t,
            metadata: m,
            extra: Default::default(),
        })
}

fn db_change() -> impl Strategy<Value = DbChange> {
    (
        prop::sample::select(vec![ChangeKind::Insert, ChangeKind::Update, ChangeKind::Delete, ChangeKind::Snapshot]),
        prop::sample::select(vec![SourceTable::Users, SourceTable::Conversations]),
        "[a-z0-9-]{1,12}",
        ".{0,20}",
        ".{0,20}",
        ts(),
        meta(),
    )
        .prop_map(|(kind, table, id, old, new, t, m)| {
            let key = table.key_column();
            let before = json!({key: id, "Email": old}).as_object().unwrap().clone();
            let after = json!({key: id, "Email": new}).as_object().unwrap().clone();
            DbChange::from_images(kind, table, Some(before), Some(after), t, m)
        })
}

fn market_tick() -> impl Strategy<Value = MarketTick> {
    ("[A-Z]{1,5}", 0.0f64..1e6, prop::sample::select(vec!["USD", "EUR", "GBP"]), ts(), meta()).prop_map(
        |(symbol, price, cur, t, m)| MarketTick {
            symbol,
            price,
            currency: cur.into(),
            bid: Some(price),
            ask: Some(price),
            volume: Some(10),
            exchange: None,
            timestamp: t,
            metadata: m,
            extra: Default::default(),
        },
    )
}

fn crm_event() -> impl Strategy<Value = CrmEvent> {
    ("[a-z0-9]{1,10}", "[A-Z0-9]{1,10}", ts(), meta()).prop_map(|(eid, entity, t, m)| CrmEvent {
        event_id: eid,
        source: "servicenow".into(),
        entity_type: CrmEntityType::Case,
        entity_id: entity,
        action: CrmAction::Updated,
        attributes: Default::default(),
        timestamp: t,
        metadata: m,
        extra: Default::default(),
    })
}

fn assert_valid<E: Event>(e: &E) -> Result<(), TestCaseError> {
    let v = e.to_value();
    if let Err(err) = schema::validate(e.topic(), &v) {
        return Err(TestCaseError::fail(format!("{err}\n{v}")));
    }
    // And the typed model reads back exactly what it wrote.
    let back: E = serde_json::from_value(v.clone()).unwrap();
    prop_assert_eq!(back.to_value(), v);
    Ok(())
}

/// Replaces the value at `pointer` with one of the wrong type.
fn break_field(v: &mut Value, pointer: &str) {
    let slot = v.pointer_mut(pointer).unwrap();
    *slot = match slot {
        Value::String(_) => json!(12345),
        _ => json!(["wrong"]),
    };
}

proptest! {
    #[test]
    fn typed_events_validate(a in agent_execution(), b in alert(), c in db_change(), d in market_tick(), e in crm_event()) {
        assert_valid(&a)?;
        assert_valid(&b)?;
        assert_valid(&c)?;
        assert_valid(&d)?;
        assert_valid(&e)?;
    }

    #[test]
    fn mutated_agent_events_are_rejected_at_the_field(
        a in agent_execution(),
        field in prop::sample::select(vec!["/execution_id", "/agent_id", "/status", "/duration_ms", "/input", "/input/query", "/output", "/timestamp", "/_metadata/message_id", "/_metadata/timestamp"]),
    ) {
        let mut v = a.to_value();
        break_field(&mut v, field);
        let err = schema::validate("agent.executions", &v).unwrap_err();
        prop_assert!(err.violations.iter().any(|x| x.pointer == field), "{} not in {}", field, err);
    }

    #[test]
    fn removed_required_fields_are_named(
        b in alert(),
        field in prop::sample::select(vec!["alert_id", "alert_type", "severity", "details", "timestamp", "_metadata"]),
    ) {
        let mut v = b.to_value();
        v.as_object_mut().unwrap().remove(field);
        let err = schema::validate("compliance.alerts", &v).unwrap_err();
        let want = format!("/{field}");
        prop_assert!(err.violations.iter().any(|x| x.pointer == want), "{} not in {}", want, err);
    }

    #[test]
    fn mutated_db_changes_are_rejected_at_the_field(
        c in db_change(),
        field in prop::sample::select(vec!["/event_type", "/table", "/data", "/_metadata/producer"]),
    ) {
        let mut v = c.to_value();
        break_field(&mut v, field);
        let err = schema::validate(c.topic(), &v).unwrap_err();
        prop_assert!(err.violations.iter().any(|x| x.pointer == field), "{} not in {}", field, err);
    }
}
