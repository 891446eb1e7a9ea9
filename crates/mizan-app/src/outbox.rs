//! Outbox rows: every event carries `occurred_at_ns`, the time of the state change it
//! reports, so consumers (the webhook router) can tell what was true when it happened
//! — e.g. whether an app was linked to the person yet.

use mizan_ledger::BusinessRow;

/// The JSON field every outbox payload carries.
pub const OCCURRED_AT_FIELD: &str = "occurred_at_ns";

/// An outbox row for `topic`: the document's JSON object plus `occurred_at_ns`.
/// A document that is not a JSON object goes in as `{"document": …}`.
pub(crate) fn event_row(topic: &str, document: &[u8], occurred_at_ns: u64) -> BusinessRow {
    let mut fields = match serde_json::from_slice::<serde_json::Value>(document) {
        Ok(serde_json::Value::Object(fields)) => fields,
        Ok(other) => {
            let mut fields = serde_json::Map::new();
            fields.insert("document".to_owned(), other);
            fields
        }
        Err(_) => serde_json::Map::new(),
    };
    fields.insert(OCCURRED_AT_FIELD.to_owned(), occurred_at_ns.into());
    BusinessRow::Outbox {
        topic: topic.to_owned(),
        payload: serde_json::Value::Object(fields).to_string().into_bytes(),
    }
}

/// When an outbox event happened, if it says.
pub fn occurred_at_ns(payload: &[u8]) -> Option<u64> {
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()?
        .get(OCCURRED_AT_FIELD)?
        .as_u64()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn events_carry_their_time() {
        let BusinessRow::Outbox { topic, payload } = event_row("t", br#"{"a":1}"#, 42) else {
            panic!("not an outbox row");
        };
        assert_eq!(topic, "t");
        assert_eq!(occurred_at_ns(&payload), Some(42));
        let value: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(value["a"], 1);
        let BusinessRow::Outbox { payload, .. } = event_row("t", b"[1]", 7) else {
            panic!("not an outbox row");
        };
        assert_eq!(occurred_at_ns(&payload), Some(7));
        assert_eq!(occurred_at_ns(b"{}"), None);
    }
}
