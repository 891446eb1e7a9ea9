//! Accounts and transfers as the ledger stores them.
//!
//! Modelled on TigerBeetle: an account's balances are split into debits/credits ×
//! pending/posted; transfers are immutable events with caller-chosen ids. Amounts are
//! `i64` minor units of the ledger's currency (ledger number = ISO 4217 numeric code).

use mizan_core::{AccountId, Currency, TransferId};
use serde::{Deserialize, Serialize};

/// Most transfers (and account creations) one submission may carry.
pub const BATCH_EVENTS_MAX: usize = 8_190;

/// Most events the writer puts in one storage transaction (several submissions):
/// each touched account page and each fsync is then shared by more transfers.
pub const TRANSACTION_EVENTS_MAX: usize = 8 * BATCH_EVENTS_MAX;

/// Longest pending timeout: 365 days.
pub const PENDING_TIMEOUT_SECONDS_MAX: u32 = 365 * 24 * 3600;

macro_rules! flag_set {
    ($(#[$meta:meta])* $name:ident { $($(#[$flag_meta:meta])* $flag:ident = $bit:expr),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(u16);

        impl $name {
            $($(#[$flag_meta])* pub const $flag: $name = $name($bit);)+
            pub const NONE: $name = $name(0);
            const KNOWN: u16 = 0 $(| $bit)+;

            pub const fn bits(self) -> u16 { self.0 }
            /// Rebuilds flags from stored bits; unknown bits are refused.
            pub fn from_bits(bits: u16) -> Option<$name> {
                if bits & !Self::KNOWN == 0 { Some($name(bits)) } else { None }
            }
            pub const fn contains(self, other: $name) -> bool { self.0 & other.0 == other.0 }
            pub const fn union(self, other: $name) -> $name { $name(self.0 | other.0) }
            pub const fn without(self, other: $name) -> $name { $name(self.0 & !other.0) }
        }

        impl std::ops::BitOr for $name {
            type Output = $name;
            fn bitor(self, other: $name) -> $name { self.union(other) }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut names = Vec::new();
                $(if self.contains($name::$flag) { names.push(stringify!($flag)); })+
                write!(f, "{}({})", stringify!($name), names.join("|"))
            }
        }
    };
}

flag_set!(
    /// Rules an account enforces on every transfer that touches it.
    AccountFlags {
        /// A wallet: can never be overdrawn (debits ≤ posted credits).
        DEBITS_MUST_NOT_EXCEED_CREDITS = 1,
        /// A liability the other way round (credits ≤ posted debits).
        CREDITS_MUST_NOT_EXCEED_DEBITS = 2,
        /// Set only by a closing transfer; no new transfers may touch the account.
        CLOSED = 4,
    }
);

flag_set!(
    /// What kind of transfer this is and how it chains.
    TransferFlags {
        /// Commits or fails together with the next event in the batch.
        LINKED = 1,
        /// A hold: moves amounts into the pending balances until posted or voided.
        PENDING = 2,
        /// Posts (captures) a pending transfer, fully or partly.
        POST_PENDING = 4,
        /// Voids (releases) a pending transfer.
        VOID_PENDING = 8,
        /// Moves at most what the debit account has available.
        BALANCING_DEBIT = 16,
        /// Moves at most what the credit account can take.
        BALANCING_CREDIT = 32,
        /// A pending transfer that closes its debit account; voiding it reopens.
        CLOSING_DEBIT = 64,
        /// A pending transfer that closes its credit account; voiding it reopens.
        CLOSING_CREDIT = 128,
        /// Set only by the ledger: the expiry of a timed-out pending transfer.
        EXPIRY = 256,
    }
);

/// What an account is for. Stored as its number; the numbers never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountCode {
    UserWallet,
    Savings,
    Escrow,
    PlatformRevenue,
    ProcessorClearing,
    BankClearing,
    InterestExpense,
    CardSettlement,
    Suspense,
    Operating,
    /// A person's spending allowance for one limit window (never overdrawn): credited
    /// with the window's limit, debited by every movement the limit counts.
    Allowance,
    /// The platform's side of every allowance grant and use (no balance limits).
    LimitsControl,
    /// Units of one checkout offer still for sale (on [`LEDGER_UNITS`], never
    /// overdrawn): credited with the quantity offered, debited by every purchase.
    Stock,
    /// The other side of one offer's stock: debited when it is offered, credited
    /// with every unit sold.
    StockControl,
}

impl AccountCode {
    pub const ALL: &'static [AccountCode] = &[
        AccountCode::UserWallet,
        AccountCode::Savings,
        AccountCode::Escrow,
        AccountCode::PlatformRevenue,
        AccountCode::ProcessorClearing,
        AccountCode::BankClearing,
        AccountCode::InterestExpense,
        AccountCode::CardSettlement,
        AccountCode::Suspense,
        AccountCode::Operating,
        AccountCode::Allowance,
        AccountCode::LimitsControl,
        AccountCode::Stock,
        AccountCode::StockControl,
    ];

    pub const fn number(self) -> u16 {
        match self {
            AccountCode::UserWallet => 1,
            AccountCode::Savings => 2,
            AccountCode::Escrow => 3,
            AccountCode::PlatformRevenue => 4,
            AccountCode::ProcessorClearing => 5,
            AccountCode::BankClearing => 6,
            AccountCode::InterestExpense => 7,
            AccountCode::CardSettlement => 8,
            AccountCode::Suspense => 9,
            AccountCode::Operating => 10,
            AccountCode::Allowance => 11,
            AccountCode::LimitsControl => 12,
            AccountCode::Stock => 13,
            AccountCode::StockControl => 14,
        }
    }

    pub fn from_number(number: u16) -> Option<AccountCode> {
        AccountCode::ALL
            .iter()
            .copied()
            .find(|code| code.number() == number)
    }
}

/// The ledger number of a currency: its ISO 4217 numeric code.
pub fn ledger_of(currency: Currency) -> u32 {
    u32::from(currency.numeric())
}

/// The ledger of counted things that are not money (a checkout offer's stock). ISO
/// 4217 numeric codes have three digits, so this number is never a currency's.
pub const LEDGER_UNITS: u32 = 1_000;

/// Whether accounts may be opened on `ledger`: a currency's, or [`LEDGER_UNITS`].
pub fn ledger_is_known(ledger: u32) -> bool {
    ledger == LEDGER_UNITS || currency_of(ledger).is_some()
}

/// The currency a ledger number stands for, if any.
pub fn currency_of(ledger: u32) -> Option<Currency> {
    u16::try_from(ledger).ok().and_then(Currency::from_numeric)
}

/// A request to create an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAccount {
    pub id: AccountId,
    pub ledger: u32,
    pub code: AccountCode,
    /// Opaque reference to whoever owns the account (a person, the platform); 0 for none.
    pub owner: u128,
    pub flags: AccountFlags,
}

/// An account with its balances. Only the ledger writer changes the balances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub ledger: u32,
    pub code: AccountCode,
    pub owner: u128,
    pub flags: AccountFlags,
    pub debits_pending: i64,
    pub debits_posted: i64,
    pub credits_pending: i64,
    pub credits_posted: i64,
    /// When the ledger created the account (ns since the epoch).
    pub timestamp: u64,
}

impl Account {
    pub fn new(request: &NewAccount, timestamp: u64) -> Account {
        Account {
            id: request.id,
            ledger: request.ledger,
            code: request.code,
            owner: request.owner,
            flags: request.flags,
            debits_pending: 0,
            debits_posted: 0,
            credits_pending: 0,
            credits_posted: 0,
            timestamp,
        }
    }

    /// Posted credits minus posted debits: what a wallet holds.
    pub fn balance_posted(&self) -> i128 {
        i128::from(self.credits_posted) - i128::from(self.debits_posted)
    }

    /// What a wallet may still spend: posted credits minus all debits, pending included.
    pub fn balance_available(&self) -> i128 {
        i128::from(self.credits_posted)
            - i128::from(self.debits_posted)
            - i128::from(self.debits_pending)
    }

    pub fn balances(&self) -> Balances {
        Balances {
            debits_pending: self.debits_pending,
            debits_posted: self.debits_posted,
            credits_pending: self.credits_pending,
            credits_posted: self.credits_posted,
        }
    }
}

/// The four balance counters of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Balances {
    pub debits_pending: i64,
    pub debits_posted: i64,
    pub credits_pending: i64,
    pub credits_posted: i64,
}

/// A request to create a transfer. For post/void, zero account ids, ledger and code
/// mean "as in the pending transfer", and a zero amount on a post means "all of it".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRequest {
    pub id: TransferId,
    pub debit_account_id: AccountId,
    pub credit_account_id: AccountId,
    pub amount: i64,
    pub pending_id: TransferId,
    pub ledger: u32,
    pub code: u16,
    /// Opaque reference to the business object (payment, order, paid DM); 0 for none.
    pub reference: u128,
    pub flags: TransferFlags,
    /// For pending transfers: seconds until the ledger voids it by itself; 0 = never.
    pub timeout_seconds: u32,
}

impl TransferRequest {
    /// A plain single-phase transfer.
    pub fn single(
        id: TransferId,
        debit: AccountId,
        credit: AccountId,
        amount: i64,
        ledger: u32,
        code: u16,
    ) -> TransferRequest {
        TransferRequest {
            id,
            debit_account_id: debit,
            credit_account_id: credit,
            amount,
            pending_id: TransferId::from_raw(0),
            ledger,
            code,
            reference: 0,
            flags: TransferFlags::NONE,
            timeout_seconds: 0,
        }
    }

    /// Posts (`post = true`) or voids a pending transfer, inheriting its fields.
    pub fn resolve(id: TransferId, pending_id: TransferId, post: bool, amount: i64) -> Self {
        TransferRequest {
            id,
            debit_account_id: AccountId::from_raw(0),
            credit_account_id: AccountId::from_raw(0),
            amount,
            pending_id,
            ledger: 0,
            code: 0,
            reference: 0,
            flags: if post {
                TransferFlags::POST_PENDING
            } else {
                TransferFlags::VOID_PENDING
            },
            timeout_seconds: 0,
        }
    }

    pub fn with_flags(mut self, flags: TransferFlags) -> Self {
        self.flags = self.flags | flags;
        self
    }

    pub fn with_reference(mut self, reference: u128) -> Self {
        self.reference = reference;
        self
    }

    pub fn with_timeout(mut self, timeout_seconds: u32) -> Self {
        self.timeout_seconds = timeout_seconds;
        self
    }

    pub fn is_resolution(&self) -> bool {
        self.flags.contains(TransferFlags::POST_PENDING)
            || self.flags.contains(TransferFlags::VOID_PENDING)
    }
}

/// A committed transfer. Post/void/expiry records carry the resolved fields of their
/// pending transfer. Expiry records are made by the ledger and have id zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub id: TransferId,
    pub debit_account_id: AccountId,
    pub credit_account_id: AccountId,
    pub amount: i64,
    pub pending_id: TransferId,
    pub ledger: u32,
    pub code: u16,
    pub reference: u128,
    pub flags: TransferFlags,
    pub timeout_seconds: u32,
    /// Assigned by the ledger; strictly increasing over all committed transfers.
    pub timestamp: u64,
    /// SHA-256 over the previous transfer's hash and this transfer's fields.
    pub hash: [u8; 32],
}

impl Transfer {
    /// When a pending transfer times out (ns since the epoch), if it has a timeout.
    pub fn expires_at_ns(&self) -> Option<u64> {
        if self.flags.contains(TransferFlags::PENDING) && self.timeout_seconds > 0 {
            Some(
                self.timestamp
                    .saturating_add(u64::from(self.timeout_seconds) * 1_000_000_000),
            )
        } else {
            None
        }
    }

    pub fn is_expiry(&self) -> bool {
        self.flags.contains(TransferFlags::EXPIRY)
    }
}

/// Where a pending transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingStatus {
    Pending,
    Posted,
    Voided,
    Expired,
}

impl PendingStatus {
    pub const fn number(self) -> u8 {
        match self {
            PendingStatus::Pending => 0,
            PendingStatus::Posted => 1,
            PendingStatus::Voided => 2,
            PendingStatus::Expired => 3,
        }
    }

    pub fn from_number(number: u8) -> Option<PendingStatus> {
        match number {
            0 => Some(PendingStatus::Pending),
            1 => Some(PendingStatus::Posted),
            2 => Some(PendingStatus::Voided),
            3 => Some(PendingStatus::Expired),
            _ => None,
        }
    }
}
