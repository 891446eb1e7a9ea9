//! One conformance suite, run against every store: the same scenarios and the same
//! property test must give the same results on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod fixture;
mod property;
mod scenarios;

/// Instantiates every scenario for one backend.
macro_rules! conformance_suite {
    ($module:ident, $backend:expr) => {
        mod $module {
            use crate::fixture::Fixture;
            use crate::scenarios;

            fn fixture() -> Fixture {
                Fixture::new($backend)
            }

            #[test]
            fn accounts_are_created_once() {
                scenarios::accounts_are_created_once(&fixture());
            }
            #[test]
            fn transfers_are_exactly_once_across_restarts() {
                scenarios::transfers_are_exactly_once_across_restarts(&fixture());
            }
            #[test]
            fn two_phase_transfers_post_and_void() {
                scenarios::two_phase_transfers_post_and_void(&fixture());
            }
            #[test]
            fn pending_timeouts_expire_even_after_downtime() {
                scenarios::pending_timeouts_expire_even_after_downtime(&fixture());
            }
            #[test]
            fn linked_chains_are_all_or_nothing() {
                scenarios::linked_chains_are_all_or_nothing(&fixture());
            }
            #[test]
            fn bad_input_gets_its_code_and_changes_nothing() {
                scenarios::bad_input_gets_its_code_and_changes_nothing(&fixture());
            }
            #[test]
            fn business_rows_commit_if_and_only_if_transfers_do() {
                scenarios::business_rows_commit_if_and_only_if_transfers_do(&fixture());
            }
            #[test]
            fn history_pages_and_past_balances() {
                scenarios::history_pages_and_past_balances(&fixture());
            }
            #[test]
            fn verify_passes_then_detects_tampering() {
                scenarios::verify_passes_then_detects_tampering(&fixture());
            }
            #[test]
            fn concurrent_overdraft_race_never_overdraws() {
                scenarios::concurrent_overdraft_race_never_overdraws(&fixture());
            }
            #[test]
            fn balancing_and_closing_transfers() {
                scenarios::balancing_and_closing_transfers(&fixture());
            }
            #[test]
            fn verify_sees_one_snapshot_of_a_live_ledger() {
                scenarios::verify_sees_one_snapshot_of_a_live_ledger(&fixture());
            }
            #[test]
            fn created_documents_are_claimed_exactly_once() {
                scenarios::created_documents_are_claimed_exactly_once(&fixture());
            }
            #[test]
            fn documents_are_listed_by_key_prefix() {
                scenarios::documents_are_listed_by_key_prefix(&fixture());
            }
            #[test]
            fn documents_are_deleted_in_row_order() {
                scenarios::documents_are_deleted_in_row_order(&fixture());
            }
            #[test]
            fn ensured_events_are_created_once_and_never_fail_a_submission() {
                scenarios::ensured_events_are_created_once_and_never_fail_a_submission(&fixture());
            }
            #[test]
            fn store_matches_reference_model() {
                crate::property::store_matches_reference_model($backend);
            }
        }
    };
}

conformance_suite!(sqlite, crate::fixture::Backend::Sqlite);
conformance_suite!(postgresql, crate::fixture::Backend::Postgres);
