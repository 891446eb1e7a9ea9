//! Availability by jurisdiction: which capabilities (P2P, cash-out, savings, cards) the
//! platform is licensed to offer to residents of a US state or a country.
//!
//! The table lives in the `licences` collection, one document per jurisdiction an
//! operator has set; a jurisdiction without one answers its built-in default
//! ([`default_licence`]). Use cases check it before moving money, by the person's
//! residence from their verification ([`crate::verification`]).

use mizan_ledger::{BusinessRow, Ledger};
use serde::{Deserialize, Serialize};

use crate::identity::{self, SharedReader};
use crate::payments::{internal, to_json, PaymentError};

pub const COLLECTION_LICENCES: &str = "licences";
/// The key people without a verified residence (tier 0) are checked under.
pub const JURISDICTION_UNVERIFIED: &str = "UNVERIFIED";
/// The key of every jurisdiction with neither its own document nor a built-in entry.
pub const JURISDICTION_DEFAULT: &str = "DEFAULT";
/// US states disabled for cash-out in the built-in table, to show the switch works.
pub const CASHOUT_DISABLED_STATES_DEFAULT: [&str; 2] = ["US-HI", "US-MT"];

/// The 50 states, the District of Columbia and Puerto Rico (USPS codes).
pub const US_STATES: [&str; 52] = [
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA",
    "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM",
    "NY", "NC", "ND", "OH", "OK", "OR", "PA", "PR", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA",
    "WA", "WV", "WI", "WY",
];

/// What a licence enables or disables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    P2p,
    Cashout,
    Savings,
    Cards,
}

impl Capability {
    pub const ALL: [Capability; 4] = [
        Capability::P2p,
        Capability::Cashout,
        Capability::Savings,
        Capability::Cards,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Capability::P2p => "p2p",
            Capability::Cashout => "cashout",
            Capability::Savings => "savings",
            Capability::Cards => "cards",
        }
    }
}

/// A jurisdiction key: `US-CA` (a US state), `GB` (a country other than the US), or
/// one of the two pseudo-jurisdictions `UNVERIFIED` and `DEFAULT`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Jurisdiction(String);

impl Jurisdiction {
    /// A residence: a US state (`US-CA`) or a two-letter country code other than `US`.
    pub fn parse_residence(text: &str) -> Option<Jurisdiction> {
        let upper = text.trim().to_ascii_uppercase();
        if let Some(state) = upper.strip_prefix("US-") {
            return US_STATES
                .contains(&state)
                .then(|| Jurisdiction(upper.clone()));
        }
        let country = upper.len() == 2 && upper.bytes().all(|b| b.is_ascii_uppercase());
        (country && upper != "US").then_some(Jurisdiction(upper))
    }

    /// A key of the licence table: a residence or a pseudo-jurisdiction.
    pub fn parse_key(text: &str) -> Option<Jurisdiction> {
        let upper = text.trim().to_ascii_uppercase();
        if upper == JURISDICTION_UNVERIFIED || upper == JURISDICTION_DEFAULT {
            return Some(Jurisdiction(upper));
        }
        Jurisdiction::parse_residence(&upper)
    }

    /// Where people without a verified residence are checked.
    pub fn unverified() -> Jurisdiction {
        Jurisdiction(JURISDICTION_UNVERIFIED.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which capabilities a jurisdiction has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Licence {
    pub p2p: bool,
    pub cashout: bool,
    pub savings: bool,
    pub cards: bool,
}

impl Licence {
    pub const ALL: Licence = Licence {
        p2p: true,
        cashout: true,
        savings: true,
        cards: true,
    };
    pub const P2P_ONLY: Licence = Licence {
        p2p: true,
        cashout: false,
        savings: false,
        cards: false,
    };

    pub fn allows(&self, capability: Capability) -> bool {
        match capability {
            Capability::P2p => self.p2p,
            Capability::Cashout => self.cashout,
            Capability::Savings => self.savings,
            Capability::Cards => self.cards,
        }
    }

    /// The capabilities in words, for the audit log: `p2p=on cashout=off …`.
    pub fn summary(&self) -> String {
        let word = |on: bool| if on { "on" } else { "off" };
        format!(
            "p2p={} cashout={} savings={} cards={}",
            word(self.p2p),
            word(self.cashout),
            word(self.savings),
            word(self.cards)
        )
    }
}

/// The built-in licence of a jurisdiction: every US state has everything except the
/// [`CASHOUT_DISABLED_STATES_DEFAULT`]; every other jurisdiction has P2P only.
/// `UNVERIFIED` (people before tier 1, whose residence nobody checked) has everything:
/// what they may do is bounded by the tier-0 limits (no cash-out by default).
pub fn default_licence(jurisdiction: &Jurisdiction) -> Licence {
    let key = jurisdiction.as_str();
    if key == JURISDICTION_UNVERIFIED {
        return Licence::ALL;
    }
    if !key.starts_with("US-") {
        return Licence::P2P_ONLY;
    }
    if CASHOUT_DISABLED_STATES_DEFAULT.contains(&key) {
        return Licence {
            cashout: false,
            ..Licence::ALL
        };
    }
    Licence::ALL
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LicenceDocument {
    licence: Licence,
    updated_at_ns: u64,
}

async fn stored(
    reader: &SharedReader,
    jurisdiction: &Jurisdiction,
) -> Result<Option<Licence>, PaymentError> {
    let key = jurisdiction.as_str().to_owned();
    let Some(body) = identity::read_document(reader, COLLECTION_LICENCES, key).await? else {
        return Ok(None);
    };
    let document: LicenceDocument =
        serde_json::from_slice(&body).map_err(|error| internal("stored licence", error))?;
    Ok(Some(document.licence))
}

/// The licence in force for `jurisdiction`: its document, else — for a residence
/// with no built-in entry — the `DEFAULT` document, else the built-in default.
pub async fn licence_for(
    reader: &SharedReader,
    jurisdiction: &Jurisdiction,
) -> Result<Licence, PaymentError> {
    if let Some(licence) = stored(reader, jurisdiction).await? {
        return Ok(licence);
    }
    let key = jurisdiction.as_str();
    let built_in = key.starts_with("US-") || key == JURISDICTION_UNVERIFIED;
    if !built_in {
        let default = Jurisdiction(JURISDICTION_DEFAULT.to_owned());
        if let Some(licence) = stored(reader, &default).await? {
            return Ok(licence);
        }
    }
    Ok(default_licence(jurisdiction))
}

/// Refuses with `capability_unavailable` unless `jurisdiction` has `capability`.
pub async fn require(
    reader: &SharedReader,
    jurisdiction: &Jurisdiction,
    capability: Capability,
) -> Result<(), PaymentError> {
    if licence_for(reader, jurisdiction).await?.allows(capability) {
        return Ok(());
    }
    Err(PaymentError::CapabilityUnavailable {
        jurisdiction: jurisdiction.as_str().to_owned(),
        capability: capability.code(),
    })
}

/// The whole table an operator sees: every US state, the two pseudo-jurisdictions,
/// and every country an operator has set, in key order.
pub async fn table(reader: &SharedReader) -> Result<Vec<(String, Licence)>, PaymentError> {
    let mut keys: Vec<String> = US_STATES.iter().map(|s| format!("US-{s}")).collect();
    keys.push(JURISDICTION_DEFAULT.to_owned());
    keys.push(JURISDICTION_UNVERIFIED.to_owned());
    let stored_rows = crate::documents::with_prefix(
        reader,
        COLLECTION_LICENCES,
        String::new(),
        None,
        mizan_ledger::store::DOCUMENTS_PAGE_LIMIT_MAX,
    )
    .await
    .map_err(|error| internal("listing licences", error))?;
    for (key, _) in &stored_rows {
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }
    keys.sort();
    let mut rows = Vec::with_capacity(keys.len());
    for key in keys {
        let jurisdiction = Jurisdiction(key.clone());
        rows.push((key, licence_for(reader, &jurisdiction).await?));
    }
    Ok(rows)
}

/// Sets the licence of `jurisdiction` (an operator action, admin only); it applies
/// to the next movement. The operator's audit entry is in the same atomic
/// submission as the change: no licence change without its audit line.
#[tracing::instrument(skip_all, fields(jurisdiction = %jurisdiction.as_str()))]
pub async fn set_licence(
    ledger: &Ledger,
    operator: &crate::operators::Operator,
    jurisdiction: &Jurisdiction,
    licence: Licence,
    now_ns: u64,
) -> Result<(), crate::cases::CaseError> {
    use crate::cases::{internal as case_internal, CaseError};
    use crate::operators::OperatorAction;
    operator.require(OperatorAction::SetLicence)?;
    let body = to_json(&LicenceDocument {
        licence,
        updated_at_ns: now_ns,
    })
    .map_err(|error| case_internal("encoding a licence", error))?;
    let target = format!("{} {}", jurisdiction.as_str(), licence.summary());
    let rows = vec![
        crate::operators::audit_row(
            &operator.name,
            operator.role,
            OperatorAction::SetLicence,
            &target,
            now_ns,
        )?,
        BusinessRow::Document {
            collection: COLLECTION_LICENCES.to_owned(),
            key: jurisdiction.as_str().to_owned(),
            body,
        },
    ];
    match crate::documents::submit_rows(ledger, rows)
        .await
        .map_err(|error| case_internal("setting a licence", error))?
    {
        None => {}
        Some(collection) => {
            return Err(CaseError::Internal(format!(
                "a random audit key was taken: {collection}"
            )))
        }
    }
    tracing::info!(?licence, "licence set");
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn jurisdictions_parse() {
        assert_eq!(
            Jurisdiction::parse_residence("us-ca").unwrap().as_str(),
            "US-CA"
        );
        assert_eq!(Jurisdiction::parse_residence("GB").unwrap().as_str(), "GB");
        for bad in ["US", "US-XX", "G", "GBR", "U1", ""] {
            assert!(Jurisdiction::parse_residence(bad).is_none(), "{bad}");
        }
        assert!(Jurisdiction::parse_residence("DEFAULT").is_none());
        assert!(Jurisdiction::parse_key("default").is_some());
        assert!(Jurisdiction::parse_key("UNVERIFIED").is_some());
    }

    #[test]
    fn defaults_enable_us_states_except_two_for_cashout() {
        let california = Jurisdiction::parse_residence("US-CA").unwrap();
        assert_eq!(default_licence(&california), Licence::ALL);
        let hawaii = Jurisdiction::parse_residence("US-HI").unwrap();
        assert!(!default_licence(&hawaii).allows(Capability::Cashout));
        assert!(default_licence(&hawaii).allows(Capability::P2p));
        let britain = Jurisdiction::parse_residence("GB").unwrap();
        assert_eq!(default_licence(&britain), Licence::P2P_ONLY);
    }
}
