//! Result codes for every event in a batch.
//!
//! Each code has a stable snake_case name. The variants are declared in precedence
//! order: when an event breaks several rules, the first rule in this order is the one
//! reported. `docs/LEDGER.md` lists them all with their meaning.

use serde::Serialize;

macro_rules! result_codes {
    ($(#[$meta:meta])* $name:ident { $($(#[$variant_meta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$variant_meta])* $variant),+
        }

        impl $name {
            /// Every code, in precedence order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable snake_case name clients see.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn from_str_code(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    };
}

result_codes!(
    /// The outcome of creating one account.
    CreateAccountResult {
        Ok = "ok",
        LinkedEventFailed = "linked_event_failed",
        IdMustNotBeZero = "id_must_not_be_zero",
        IdMustNotBeIntMax = "id_must_not_be_int_max",
        FlagsAreMutuallyExclusive = "flags_are_mutually_exclusive",
        FlagsAreReserved = "flags_are_reserved",
        LedgerMustNotBeZero = "ledger_must_not_be_zero",
        LedgerMustBeACurrency = "ledger_must_be_a_currency",
        ExistsWithDifferentFlags = "exists_with_different_flags",
        ExistsWithDifferentOwner = "exists_with_different_owner",
        ExistsWithDifferentLedger = "exists_with_different_ledger",
        ExistsWithDifferentCode = "exists_with_different_code",
        Exists = "exists",
    }
);

result_codes!(
    /// The outcome of creating one transfer.
    CreateTransferResult {
        Ok = "ok",
        LinkedEventFailed = "linked_event_failed",
        LinkedEventChainOpen = "linked_event_chain_open",
        IdMustNotBeZero = "id_must_not_be_zero",
        IdMustNotBeIntMax = "id_must_not_be_int_max",
        FlagsAreReserved = "flags_are_reserved",
        FlagsAreMutuallyExclusive = "flags_are_mutually_exclusive",
        ClosingTransferMustBePending = "closing_transfer_must_be_pending",
        PendingIdMustBeZero = "pending_id_must_be_zero",
        PendingIdMustNotBeZero = "pending_id_must_not_be_zero",
        PendingIdMustNotBeIntMax = "pending_id_must_not_be_int_max",
        PendingIdMustBeDifferent = "pending_id_must_be_different",
        TimeoutReservedForPendingTransfer = "timeout_reserved_for_pending_transfer",
        TimeoutTooLong = "timeout_too_long",
        AmountMustNotBeNegative = "amount_must_not_be_negative",
        DebitAccountIdMustNotBeZero = "debit_account_id_must_not_be_zero",
        DebitAccountIdMustNotBeIntMax = "debit_account_id_must_not_be_int_max",
        CreditAccountIdMustNotBeZero = "credit_account_id_must_not_be_zero",
        CreditAccountIdMustNotBeIntMax = "credit_account_id_must_not_be_int_max",
        AccountsMustBeDifferent = "accounts_must_be_different",
        LedgerMustNotBeZero = "ledger_must_not_be_zero",
        CodeMustNotBeZero = "code_must_not_be_zero",
        AmountMustNotBeZero = "amount_must_not_be_zero",
        ExistsWithDifferentFlags = "exists_with_different_flags",
        ExistsWithDifferentPendingId = "exists_with_different_pending_id",
        ExistsWithDifferentTimeout = "exists_with_different_timeout",
        ExistsWithDifferentDebitAccountId = "exists_with_different_debit_account_id",
        ExistsWithDifferentCreditAccountId = "exists_with_different_credit_account_id",
        ExistsWithDifferentAmount = "exists_with_different_amount",
        ExistsWithDifferentReference = "exists_with_different_reference",
        ExistsWithDifferentLedger = "exists_with_different_ledger",
        ExistsWithDifferentCode = "exists_with_different_code",
        Exists = "exists",
        DebitAccountNotFound = "debit_account_not_found",
        CreditAccountNotFound = "credit_account_not_found",
        AccountsMustHaveTheSameLedger = "accounts_must_have_the_same_ledger",
        LedgerMustMatch = "ledger_must_match",
        PendingTransferNotFound = "pending_transfer_not_found",
        PendingTransferNotPending = "pending_transfer_not_pending",
        PendingTransferHasDifferentDebitAccountId = "pending_transfer_has_different_debit_account_id",
        PendingTransferHasDifferentCreditAccountId = "pending_transfer_has_different_credit_account_id",
        PendingTransferHasDifferentLedger = "pending_transfer_has_different_ledger",
        PendingTransferHasDifferentCode = "pending_transfer_has_different_code",
        ExceedsPendingTransferAmount = "exceeds_pending_transfer_amount",
        PendingTransferHasDifferentAmount = "pending_transfer_has_different_amount",
        PendingTransferAlreadyPosted = "pending_transfer_already_posted",
        PendingTransferAlreadyVoided = "pending_transfer_already_voided",
        PendingTransferExpired = "pending_transfer_expired",
        AccountClosed = "account_closed",
        OverflowsDebitsPending = "overflows_debits_pending",
        OverflowsCreditsPending = "overflows_credits_pending",
        OverflowsDebitsPosted = "overflows_debits_posted",
        OverflowsCreditsPosted = "overflows_credits_posted",
        OverflowsDebits = "overflows_debits",
        OverflowsCredits = "overflows_credits",
        OverflowsTimeout = "overflows_timeout",
        ExceedsCredits = "exceeds_credits",
        ExceedsDebits = "exceeds_debits",
    }
);

impl CreateTransferResult {
    /// True for every "this id exists already" outcome, identical or not.
    pub fn is_exists(self) -> bool {
        self >= CreateTransferResult::ExistsWithDifferentFlags
            && self <= CreateTransferResult::Exists
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for code in CreateTransferResult::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "duplicate code {text}");
            assert!(text.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert_eq!(CreateTransferResult::from_str_code(text), Some(*code));
        }
        for code in CreateAccountResult::ALL {
            assert_eq!(
                CreateAccountResult::from_str_code(code.as_str()),
                Some(*code)
            );
        }
    }

    #[test]
    fn precedence_is_declaration_order() {
        assert!(CreateTransferResult::IdMustNotBeZero < CreateTransferResult::Exists);
        assert!(CreateTransferResult::Exists < CreateTransferResult::DebitAccountNotFound);
        assert!(CreateTransferResult::AccountClosed < CreateTransferResult::ExceedsCredits);
        assert!(CreateTransferResult::Exists.is_exists());
        assert!(CreateTransferResult::ExistsWithDifferentAmount.is_exists());
        assert!(!CreateTransferResult::ExceedsCredits.is_exists());
    }
}

#[cfg(test)]
mod documentation {
    use super::*;

    #[test]
    fn every_code_is_documented_in_ledger_md() {
        let docs = include_str!("../../../docs/LEDGER.md");
        for code in CreateTransferResult::ALL {
            assert!(
                docs.contains(&format!("| `{}` |", code.as_str())),
                "docs/LEDGER.md lacks {code}"
            );
        }
        for code in CreateAccountResult::ALL {
            assert!(
                docs.contains(&format!("| `{}` |", code.as_str())),
                "docs/LEDGER.md lacks {code}"
            );
        }
    }
}

impl CreateAccountResult {
    /// True for `exists` and every `exists_with_different_*`: the id is taken.
    pub fn id_taken(self) -> bool {
        use CreateAccountResult as R;
        matches!(
            self,
            R::Exists
                | R::ExistsWithDifferentFlags
                | R::ExistsWithDifferentOwner
                | R::ExistsWithDifferentLedger
                | R::ExistsWithDifferentCode
        )
    }
}

impl CreateTransferResult {
    /// True for `exists` and every `exists_with_different_*`: the id is taken.
    pub fn id_taken(self) -> bool {
        use CreateTransferResult as R;
        matches!(
            self,
            R::Exists
                | R::ExistsWithDifferentFlags
                | R::ExistsWithDifferentPendingId
                | R::ExistsWithDifferentTimeout
                | R::ExistsWithDifferentDebitAccountId
                | R::ExistsWithDifferentCreditAccountId
                | R::ExistsWithDifferentAmount
                | R::ExistsWithDifferentReference
                | R::ExistsWithDifferentLedger
                | R::ExistsWithDifferentCode
        )
    }
}
