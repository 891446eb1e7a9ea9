//! Sanctions screening against the OFAC SDN list: the list files ([`list`]), the
//! name normalization both sides share ([`normalize`]) and the fuzzy matcher with its
//! index ([`matcher`]). How it works and how well: docs/COMPLIANCE.md.
//!
//! ```no_run
//! use mizan_compliance::sanctions::{SanctionsList, Screener, Thresholds};
//! let list = SanctionsList::load_dir("data/ofac".as_ref())?;
//! let screener = Screener::new(&list, Thresholds::TUNED);
//! let screening = screener.screen("Manuel Noriega")?;
//! println!("{}", screening.decision.as_str());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod list;
pub mod matcher;
pub mod normalize;

pub use list::{Alias, AliasKind, EntryKind, ListError, SanctionsList, SdnEntry};
pub use matcher::{
    Decision, Match, ScreenError, Screener, Screening, Subject, Thresholds, MATCHES_MAX,
    QUERY_BYTES_MAX,
};

/// The screener is shared across server threads and swapped on reload.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Screener>();
};
