//! The produce pipeline against a real embedded log: every step, in order, and the same result
//! whichever way an event comes in.

use std::sync::Arc;

use eventline_governance::{Gate, Location, Policy};
use eventline_log::{EmbeddedLog, EmbeddedOptions, EventLog, Header, Record};
use eventline_model::topics::{Acks, COMPLIANCE_ALERTS, EXTERNAL_CRM_EVENTS, TopicSpec, builtin_specs};
use eventline_pipeline::{Draft, EventError, Pipeline};
use serde_json::{Value, json};

async fn pipeline() -> (tempfile::TempDir, Arc<EmbeddedLog>, Pipeline) {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(EmbeddedLog::open(dir.path(), EmbeddedOptions::default()).unwrap());
    for spec in builtin_specs(&TopicSpec::new("defaults")) {
        log.ensure_topic(&spec).await.unwrap();
    }
    let gate = Gate::new(Policy::default_with_key(b"pipeline-test-key-0123456789".to_vec()), "test");
    let p = Pipeline::new(log.clone(), Some(Arc::new(gate)), "enterprise-agent-platform");
    (dir, log, p)
}

fn crm(note: &str) -> Value {
    json!({
        "event_id": "sf-1", "source": "salesforce", "entity_type": "contact", "entity_id": "003A",
        "action": "updated", "attributes": {"note": note},
        "timestamp": "2026-11-30T10:00:00Z",
        "_metadata": {"timestamp": "2026-11-30T10:00:00.001Z", "message_id": "0193c9a0-0000-7000-8000-00000000c0de",
                      "producer": "crm"}
    })
}

async fn all(log: &EmbeddedLog, topic: &str) -> Vec<Record> {
    let mut out = Vec::new();
    for p in 0..3 {
        out.extend(log.fetch(topic, p, 0, 1000).await.unwrap());
    }
    out
}

#[tokio::test]
async fn an_event_is_governed_keyed_appended_and_its_alerts_follow() {
    let (_dir, log, p) = pipeline().await;
    let spec = TopicSpec::new(EXTERNAL_CRM_EVENTS);
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned();
    let draft = Draft::json(crm("call +1 212 555 0147"), "crm_integration", Location::InboundPayload)
        .headers(vec![Header::new("source-system", "sf")])
        .traceparent(Some(tp.clone()));
    let prepared = p.prepare(&spec, draft).unwrap();
    assert_eq!(prepared.event["attributes"]["note"], "call [PHONE]");
    assert_eq!(prepared.record.key.as_deref(), Some(&b"003A"[..]), "keyed by the topic's key field");
    assert_eq!(prepared.alerts.len(), 1);
    let appended = p.append(EXTERNAL_CRM_EVENTS, vec![prepared], Acks::All).await.unwrap();
    assert_eq!((appended.positions.len(), appended.alerts), (1, 1));
    let records = all(&log, EXTERNAL_CRM_EVENTS).await;
    assert_eq!(records[0].header("traceparent"), Some(tp.as_bytes()), "the trace context travels with the record");
    assert_eq!(records[0].header("source-system"), Some(&b"sf"[..]));
    assert!(!records[0].value_str().unwrap().contains("555 0147"));
    let alerts = all(&log, COMPLIANCE_ALERTS).await;
    assert_eq!(alerts.len(), 1);
    assert!(!alerts[0].value_str().unwrap().contains("555"), "no raw value in the alert");
}

#[tokio::test]
async fn callers_cannot_set_reserved_headers_or_a_bad_traceparent() {
    let (_dir, _log, p) = pipeline().await;
    let spec = TopicSpec::new(EXTERNAL_CRM_EVENTS);
    let reserved =
        Draft::json(crm("hi"), "t", Location::InboundPayload).headers(vec![Header::new("eventline.cdc.seq", "1")]);
    let err = p.prepare(&spec, reserved).unwrap_err();
    assert_eq!(err, EventError::ReservedHeader("eventline.cdc.seq".into()));
    assert_eq!(err.field().as_deref(), Some("eventline.cdc.seq"));
    let bad_tp = Draft::json(crm("hi"), "t", Location::InboundPayload).traceparent(Some("00-zz-01".into()));
    assert!(matches!(p.prepare(&spec, bad_tp), Err(EventError::Traceparent(_))));
    let as_header =
        Draft::json(crm("hi"), "t", Location::InboundPayload).headers(vec![Header::new("traceparent", "not-a-trace")]);
    assert!(matches!(p.prepare(&spec, as_header), Err(EventError::Traceparent(_))));
    // eventline's own producers may set them
    let own = Draft::json(crm("hi"), "cdc", Location::Event).system_header("eventline.cdc.seq", "7");
    assert_eq!(p.prepare(&spec, own).unwrap().record.headers[0].key, "eventline.cdc.seq");
}

#[tokio::test]
async fn errors_name_the_field_and_never_echo_the_value() {
    let (_dir, _log, p) = pipeline().await;
    let spec = TopicSpec::new(EXTERNAL_CRM_EVENTS);
    for (field, bad) in [
        ("/action", json!("4111 1111 1111 1111 jane.roe@example.com")),
        ("/action", json!(4111111111111111u64)),
        ("/entity_id", json!({"ssn": "123-45-6789"})),
    ] {
        let mut event = crm("x");
        event[&field[1..]] = bad.clone();
        let err = p.prepare(&spec, Draft::json(event, "t", Location::InboundPayload)).unwrap_err();
        let text = err.to_string();
        assert_eq!(err.field().as_deref(), Some(field), "{text}");
        for raw in ["4111", "jane.roe", "123-45-6789"] {
            assert!(!text.contains(raw), "{text} echoes {raw}");
        }
    }
    let not_json = p.prepare(&spec, Draft::text("{\"ssn\": 123-45-6789", "t", Location::InboundPayload)).unwrap_err();
    assert!(!not_json.to_string().contains("123-45"), "{not_json}");
}

#[tokio::test]
async fn a_refused_batch_prepares_nothing_and_raises_no_alert() {
    let (_dir, _log, p) = pipeline().await;
    let spec = TopicSpec::new(EXTERNAL_CRM_EVENTS);
    let mut bad = crm("x");
    bad["action"] = json!(7);
    let drafts = vec![
        Draft::json(crm("mail jane@example.com"), "t", Location::InboundPayload),
        Draft::json(bad, "t", Location::InboundPayload),
    ];
    let err = p.prepare_all(&spec, drafts).unwrap_err();
    assert_eq!((err.index, err.invalid_events), (1, 1));
    // The gate did not see the good event: it still raises its alert when sent again.
    let again = p.prepare(&spec, Draft::json(crm("mail jane@example.com"), "t", Location::InboundPayload)).unwrap();
    assert_eq!(again.alerts.len(), 1);
}

#[tokio::test]
async fn the_same_event_gives_the_same_record_and_alerts_whichever_way_it_comes() {
    let (_dir, _log, p) = pipeline().await;
    let spec = TopicSpec::new(EXTERNAL_CRM_EVENTS);
    let event = crm("call +1 212 555 0147");
    let as_text = p
        .prepare(
            &spec,
            Draft::text(serde_json::to_string(&event).unwrap(), "crm_integration", Location::InboundPayload),
        )
        .unwrap();
    // A second pipeline (another process, a retry after a crash) over the same log.
    let (_dir2, _log2, other) = pipeline().await;
    let as_json = other.prepare(&spec, Draft::json(event, "crm_integration", Location::InboundPayload)).unwrap();
    assert_eq!(as_text.record, as_json.record, "same bytes, key and headers");
    assert_eq!(as_text.alerts, as_json.alerts, "same alerts, ids included");
}

#[tokio::test]
async fn text_that_passes_unchanged_is_kept_byte_for_byte() {
    let (_dir, _log, p) = pipeline().await;
    let spec = TopicSpec::new("scratch");
    let line = r#"{ "b": 1,  "a": "no pii here" }"#;
    let prepared = p.prepare(&spec, Draft::text(line, "produce", Location::InboundPayload)).unwrap();
    assert_eq!(prepared.record.value.as_deref(), Some(line.as_bytes()));
    let stamped = p.prepare(&spec, Draft::text(line, "produce", Location::InboundPayload).stamped(true)).unwrap();
    assert_eq!(stamped.event["_metadata"]["producer"], "enterprise-agent-platform");
    assert!(stamped.event["timestamp"].is_string());
}
