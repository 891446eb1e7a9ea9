//! Money: an integer count of minor units together with its [`Currency`].
//!
//! There is no float anywhere on this path. Major units ("12.34") exist only at the
//! edges: [`Money::parse`] reads them and [`Money`]'s `Display` writes them. All
//! arithmetic is checked; overflow is an error, never a wrap, and two currencies
//! never meet in one operation.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest amount text [`Money::parse`] looks at; anything longer is malformed.
pub const MONEY_TEXT_LENGTH_MAX: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown currency code")]
    UnknownCurrency,
    #[error("an amount is written like \"12.34 USD\"")]
    Malformed,
    #[error("the amount has more decimal places than its currency allows")]
    TooPrecise,
    #[error("the amount is too large")]
    Overflow,
    #[error("two different currencies cannot be combined")]
    CurrencyMismatch,
}

impl MoneyError {
    /// Stable snake_case code for clients.
    pub fn code(&self) -> &'static str {
        match self {
            MoneyError::UnknownCurrency => "unknown_currency",
            MoneyError::Malformed => "amount_malformed",
            MoneyError::TooPrecise => "amount_too_precise",
            MoneyError::Overflow => "amount_too_large",
            MoneyError::CurrencyMismatch => "currency_mismatch",
        }
    }
}

macro_rules! currencies {
    ($($variant:ident = ($numeric:expr, $exponent:expr, $name:expr)),+ $(,)?) => {
        /// An ISO 4217 currency supported by Mizan, with its minor-unit exponent.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum Currency {
            $($variant),+
        }

        impl Currency {
            pub const ALL: &'static [Currency] = &[$(Currency::$variant),+];

            /// The three-letter ISO 4217 code.
            pub const fn code(self) -> &'static str {
                match self { $(Currency::$variant => stringify!($variant)),+ }
            }

            /// The ISO 4217 numeric code; Mizan uses it as the ledger number.
            pub const fn numeric(self) -> u16 {
                match self { $(Currency::$variant => $numeric),+ }
            }

            /// Number of decimal places of the minor unit (2 for USD, 0 for JPY, 3 for KWD).
            pub const fn exponent(self) -> u8 {
                match self { $(Currency::$variant => $exponent),+ }
            }

            pub const fn name(self) -> &'static str {
                match self { $(Currency::$variant => $name),+ }
            }

            pub fn from_numeric(numeric: u16) -> Option<Currency> {
                match numeric { $($numeric => Some(Currency::$variant),)+ _ => None }
            }
        }

        impl FromStr for Currency {
            type Err = MoneyError;
            fn from_str(code: &str) -> Result<Self, MoneyError> {
                match code { $(stringify!($variant) => Ok(Currency::$variant),)+ _ => Err(MoneyError::UnknownCurrency) }
            }
        }
    };
}

currencies! {
    USD = (840, 2, "US Dollar"),
    EUR = (978, 2, "Euro"),
    GBP = (826, 2, "Pound Sterling"),
    SAR = (682, 2, "Saudi Riyal"),
    AED = (784, 2, "UAE Dirham"),
    EGP = (818, 2, "Egyptian Pound"),
    QAR = (634, 2, "Qatari Rial"),
    MAD = (504, 2, "Moroccan Dirham"),
    TRY = (949, 2, "Turkish Lira"),
    PKR = (586, 2, "Pakistan Rupee"),
    INR = (356, 2, "Indian Rupee"),
    NGN = (566, 2, "Naira"),
    CAD = (124, 2, "Canadian Dollar"),
    AUD = (36, 2, "Australian Dollar"),
    CHF = (756, 2, "Swiss Franc"),
    MXN = (484, 2, "Mexican Peso"),
    BRL = (986, 2, "Brazilian Real"),
    JPY = (392, 0, "Yen"),
    KRW = (410, 0, "Won"),
    KWD = (414, 3, "Kuwaiti Dinar"),
    BHD = (48, 3, "Bahraini Dinar"),
    OMR = (512, 3, "Rial Omani"),
    JOD = (400, 3, "Jordanian Dinar"),
    TND = (788, 3, "Tunisian Dinar"),
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Currency {
    /// 10^exponent: how many minor units make one major unit.
    pub const fn minor_per_major(self) -> i64 {
        10_i64.pow(self.exponent() as u32)
    }
}

/// An amount of one currency, counted in minor units (cents, fils, yen).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    minor_units: i64,
    currency: Currency,
}

impl Money {
    pub const fn from_minor(minor_units: i64, currency: Currency) -> Self {
        Self {
            minor_units,
            currency,
        }
    }

    pub const fn zero(currency: Currency) -> Self {
        Self::from_minor(0, currency)
    }

    pub const fn minor_units(self) -> i64 {
        self.minor_units
    }

    pub const fn currency(self) -> Currency {
        self.currency
    }

    pub const fn is_positive(self) -> bool {
        self.minor_units > 0
    }

    fn same_currency(self, other: Money) -> Result<Currency, MoneyError> {
        if self.currency == other.currency {
            Ok(self.currency)
        } else {
            Err(MoneyError::CurrencyMismatch)
        }
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        let currency = self.same_currency(other)?;
        let sum = self
            .minor_units
            .checked_add(other.minor_units)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::from_minor(sum, currency))
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        let currency = self.same_currency(other)?;
        let difference = self
            .minor_units
            .checked_sub(other.minor_units)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::from_minor(difference, currency))
    }

    pub fn checked_mul(self, factor: i64) -> Result<Money, MoneyError> {
        let product = self
            .minor_units
            .checked_mul(factor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::from_minor(product, self.currency))
    }

    /// The share `numerator / denominator` of this amount, rounded down (toward zero).
    /// Used for fees in basis points: `amount.share(1_000, 10_000)` is 10%.
    pub fn share_floor(self, numerator: i64, denominator: i64) -> Result<Money, MoneyError> {
        if denominator <= 0 || numerator < 0 {
            return Err(MoneyError::Malformed);
        }
        let product = i128::from(self.minor_units) * i128::from(numerator);
        let quotient = product / i128::from(denominator);
        let minor_units = i64::try_from(quotient).map_err(|_| MoneyError::Overflow)?;
        Ok(Money::from_minor(minor_units, self.currency))
    }

    /// Parses "12.34 USD", "-0.5 EUR", "1,234.500 KWD" or "1500 JPY".
    ///
    /// Thousands separators are commas in groups of three; more decimal places than
    /// the currency has is `TooPrecise` (never rounded); fewer are padded.
    pub fn parse(text: &str) -> Result<Money, MoneyError> {
        if text.len() > MONEY_TEXT_LENGTH_MAX {
            return Err(MoneyError::Malformed);
        }
        let (amount_text, code) = text.trim().rsplit_once(' ').ok_or(MoneyError::Malformed)?;
        let currency: Currency = code.trim().parse()?;
        let minor_units = parse_major_units(amount_text.trim(), currency)?;
        Ok(Money::from_minor(minor_units, currency))
    }

    /// Parses an amount in major units ("12.34") for a currency known from elsewhere.
    pub fn parse_major(amount_text: &str, currency: Currency) -> Result<Money, MoneyError> {
        if amount_text.len() > MONEY_TEXT_LENGTH_MAX {
            return Err(MoneyError::Malformed);
        }
        Ok(Money::from_minor(
            parse_major_units(amount_text.trim(), currency)?,
            currency,
        ))
    }

    /// The amount in major units without the currency code: "1,234.50".
    pub fn format_major(self) -> String {
        let exponent = u32::from(self.currency.exponent());
        let magnitude = self.minor_units.unsigned_abs();
        let divisor = 10_u64.pow(exponent);
        let whole = group_thousands(magnitude / divisor);
        let sign = if self.minor_units < 0 { "-" } else { "" };
        if exponent == 0 {
            format!("{sign}{whole}")
        } else {
            let fraction = magnitude % divisor;
            format!(
                "{sign}{whole}.{fraction:0width$}",
                width = exponent as usize
            )
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.format_major(), self.currency.code())
    }
}

impl FromStr for Money {
    type Err = MoneyError;
    fn from_str(text: &str) -> Result<Self, MoneyError> {
        Money::parse(text)
    }
}

fn group_thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// Checks that comma grouping, if present, is in groups of three ("1,234,567").
fn strip_grouping(whole: &str) -> Result<String, MoneyError> {
    if !whole.contains(',') {
        return Ok(whole.to_owned());
    }
    let groups: Vec<&str> = whole.split(',').collect();
    let first_ok = (1..=3).contains(&groups[0].len());
    let rest_ok = groups[1..].iter().all(|group| group.len() == 3);
    if !first_ok || !rest_ok {
        return Err(MoneyError::Malformed);
    }
    Ok(groups.concat())
}

fn parse_major_units(text: &str, currency: Currency) -> Result<i64, MoneyError> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole_text, fraction_text) = match unsigned.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (unsigned, None),
    };
    let whole = strip_grouping(whole_text)?;
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(MoneyError::Malformed);
    }
    let exponent = usize::from(currency.exponent());
    let fraction = fraction_text.unwrap_or("");
    if fraction_text.is_some() && fraction.is_empty() {
        return Err(MoneyError::Malformed);
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(MoneyError::Malformed);
    }
    // Trailing zeros beyond the exponent are harmless ("1.500 USD"); other digits are not.
    let significant = fraction.trim_end_matches('0');
    if significant.len() > exponent {
        return Err(MoneyError::TooPrecise);
    }
    let mut minor: i64 = 0;
    for digit in whole.bytes().chain(
        significant
            .bytes()
            .chain(std::iter::repeat_n(b'0', exponent - significant.len())),
    ) {
        minor = minor
            .checked_mul(10)
            .and_then(|value| value.checked_add(i64::from(digit - b'0')))
            .ok_or(MoneyError::Overflow)?;
    }
    Ok(if negative { -minor } else { minor })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_formats_each_exponent() {
        assert_eq!(
            Money::parse("12.34 USD").unwrap(),
            Money::from_minor(1234, Currency::USD)
        );
        assert_eq!(
            Money::parse("1,234.500 KWD").unwrap(),
            Money::from_minor(1_234_500, Currency::KWD)
        );
        assert_eq!(
            Money::parse("1500 JPY").unwrap(),
            Money::from_minor(1500, Currency::JPY)
        );
        assert_eq!(
            Money::parse("-0.5 EUR").unwrap(),
            Money::from_minor(-50, Currency::EUR)
        );
        assert_eq!(
            Money::from_minor(123_456_789, Currency::USD).to_string(),
            "1,234,567.89 USD"
        );
        assert_eq!(
            Money::from_minor(1_234_500, Currency::BHD).to_string(),
            "1,234.500 BHD"
        );
        assert_eq!(
            Money::from_minor(-5, Currency::SAR).to_string(),
            "-0.05 SAR"
        );
        assert_eq!(Money::from_minor(0, Currency::JPY).to_string(), "0 JPY");
    }

    #[test]
    fn rejects_bad_amount_text_with_its_reason() {
        assert_eq!(Money::parse("1.234 USD"), Err(MoneyError::TooPrecise));
        assert_eq!(Money::parse("1.5 JPY"), Err(MoneyError::TooPrecise));
        assert_eq!(Money::parse("12.34 XXX"), Err(MoneyError::UnknownCurrency));
        for bad in [
            "12.34",
            "1,23.00 USD",
            "12. USD",
            ".5 USD",
            "1e3 USD",
            "12,34 USD",
            "--1 USD",
            "1 2 USD",
            "+1 USD",
            "",
        ] {
            assert!(Money::parse(bad).is_err(), "{bad:?} must not parse");
        }
        assert_eq!(
            Money::parse("92233720368547758.08 USD"),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Money::parse("92233720368547758.07 USD")
                .unwrap()
                .minor_units(),
            i64::MAX
        );
    }

    #[test]
    fn arithmetic_is_checked_and_currency_safe() {
        let usd = Money::from_minor(i64::MAX, Currency::USD);
        assert_eq!(
            usd.checked_add(Money::from_minor(1, Currency::USD)),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            usd.checked_add(Money::from_minor(1, Currency::EUR)),
            Err(MoneyError::CurrencyMismatch)
        );
        assert_eq!(
            Money::from_minor(i64::MIN, Currency::USD)
                .checked_sub(Money::from_minor(1, Currency::USD)),
            Err(MoneyError::Overflow)
        );
        assert_eq!(usd.checked_mul(2), Err(MoneyError::Overflow));
        let fee = Money::from_minor(999, Currency::USD)
            .share_floor(1_000, 10_000)
            .unwrap();
        assert_eq!(fee.minor_units(), 99);
    }

    #[test]
    fn currency_table_is_consistent() {
        for currency in Currency::ALL {
            assert_eq!(currency.code().parse::<Currency>().unwrap(), *currency);
            assert_eq!(Currency::from_numeric(currency.numeric()), Some(*currency));
        }
        assert_eq!(Currency::JPY.exponent(), 0);
        assert_eq!(Currency::KWD.exponent(), 3);
        assert_eq!(Currency::BHD.minor_per_major(), 1000);
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(minor in any::<i64>().prop_filter("not min", |v| *v != i64::MIN), index in 0..Currency::ALL.len()) {
            let money = Money::from_minor(minor, Currency::ALL[index]);
            prop_assert_eq!(Money::parse(&money.to_string()).unwrap(), money);
        }
    }
}
