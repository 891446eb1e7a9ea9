//! Outbox rows: every event carries `occurred_at_ns`, the time of the state change it
//! reports, so consumers (the webhook router) can tell what was true when it happened
//! — e.g. whether an app was linked to the person yet.

use mizan_ledger::BusinessRow;

/// The JSON field every outbox payload carries.
pub const OCCURRED_AT_FIELD: &str = "occurred_at_ns";

/// An outbox row for `topic`: the document's JSON object plus `occurred_at_ns`.
/// A document that is not a JSON object goes in as `{"document": …}`.
pub(crate) fn event_row(topic: &str, document: &[u8], occurred_at_ns: u64) -> BusinessRow {
    let payload = match spliced(document, occurred_at_ns) {
        Some(payload) => payload,
        None => rebuilt(document, occurred_at_ns),
    };
    BusinessRow::Outbox {
        topic: topic.to_owned(),
        payload,
    }
}

/// `document` with `"occurred_at_ns":N` written in after its opening brace, when it
/// is a JSON object that does not name the field already (every document the use
/// cases write): no parse and re-serialization on the payment path.
fn spliced(document: &[u8], occurred_at_ns: u64) -> Option<Vec<u8>> {
    let start = document
        .iter()
        .position(|byte| !byte.is_ascii_whitespace())?;
    let end = document
        .iter()
        .rposition(|byte| !byte.is_ascii_whitespace())?;
    let object = &document[start..=end];
    if object.len() < 2 || object[0] != b'{' || object[object.len() - 1] != b'}' {
        return None;
    }
    let named = object
        .windows(OCCURRED_AT_FIELD.len())
        .any(|window| window == OCCURRED_AT_FIELD.as_bytes());
    if named || serde_json::from_slice::<serde::de::IgnoredAny>(object).is_err() {
        return None;
    }
    let rest = &object[1..];
    let empty = rest
        .iter()
        .all(|byte| byte.is_ascii_whitespace() || *byte == b'}');
    let field = format!("{{\"{OCCURRED_AT_FIELD}\":{occurred_at_ns}");
    let mut payload = Vec::with_capacity(field.len() + rest.len() + 1);
    payload.extend_from_slice(field.as_bytes());
    if !empty {
        payload.push(b',');
    }
    payload.extend_from_slice(if empty { b"}" } else { rest });
    Some(payload)
}

/// The slow way, for anything else: parsed, the field set, serialized again.
fn rebuilt(document: &[u8], occurred_at_ns: u64) -> Vec<u8> {
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
    serde_json::Value::Object(fields).to_string().into_bytes()
}

/// When an outbox event happened, if it says.
pub fn occurred_at_ns(payload: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Occurred {
        occurred_at_ns: Option<serde_json::Value>,
    }
    serde_json::from_slice::<Occurred>(payload)
        .ok()?
        .occurred_at_ns?
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
        assert_eq!(occurred_at_ns(br#"{"occurred_at_ns":"soon"}"#), None);
    }

    #[test]
    fn spliced_events_read_as_rebuilt_ones() {
        let documents: [&[u8]; 7] = [
            br#"{"a":1,"b":{"c":"}"}}"#,
            b" {} ",
            br#"{ }"#,
            br#"{"occurred_at_ns":5,"a":1}"#,
            br#"{"a":"occurred_at_ns"}"#,
            b"[1]",
            br#"{"broken":"#,
        ];
        for document in documents {
            let BusinessRow::Outbox { payload, .. } = event_row("t", document, 42) else {
                panic!("not an outbox row");
            };
            let fast: serde_json::Value = serde_json::from_slice(&payload).unwrap();
            let slow: serde_json::Value = serde_json::from_slice(&rebuilt(document, 42)).unwrap();
            assert_eq!(fast, slow, "{}", String::from_utf8_lossy(document));
            assert_eq!(occurred_at_ns(&payload), Some(42));
        }
        assert!(spliced(br#"{"a":1}"#, 9).is_some());
        assert!(spliced(br#"{"occurred_at_ns":1}"#, 9).is_none());
    }
}
