//! SAR and CTR drafts: the fields FinCEN's Suspicious Activity Report and Currency
//! Transaction Report ask for, filled from a case, the person and their wallet
//! history, for a compliance officer to review and file through the BSA E-Filing
//! System. Nothing here files anything.

use serde::{Deserialize, Serialize};

/// The filing institution as the forms name it (`[filer]` in the server config).
/// The defaults are placeholders, marked as such, until the licensed entity exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Filer {
    pub legal_name: String,
    /// Employer Identification Number.
    pub tin: String,
    /// `msb` (money services business).
    pub institution_type: String,
    pub address: String,
    pub city: String,
    pub state: String,
    pub zip: String,
    pub country: String,
    pub contact_office: String,
    pub contact_phone: String,
}

impl Default for Filer {
    fn default() -> Filer {
        let placeholder = |text: &str| format!("PLACEHOLDER: {text}");
        Filer {
            legal_name: placeholder("Mizan legal entity name"),
            tin: placeholder("EIN"),
            institution_type: "msb".to_owned(),
            address: placeholder("street address"),
            city: placeholder("city"),
            state: placeholder("state"),
            zip: placeholder("ZIP"),
            country: "US".to_owned(),
            contact_office: "Compliance".to_owned(),
            contact_phone: placeholder("phone"),
        }
    }
}

/// Over this many cents of cash in, or of cash out, in one day, a CTR is due
/// (31 CFR 1010.311: "more than $10,000").
pub const CTR_THRESHOLD_MINOR: i64 = 1_000_000;
/// How far before the decision a SAR without flagged movements reads the history.
pub const SAR_LOOKBACK_DAYS: u64 = 90;
const NANOS_PER_DAY: u64 = 86_400 * 1_000_000_000;

/// Part I of both forms: the person the report is about. Fields the platform does
/// not hold (date of birth, address, TIN, ID document: the provider checked them,
/// Mizan kept none) are null, for the officer to fill from the provider's file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub person_id: String,
    pub handle: String,
    /// The legal name given at identity verification, if they verified.
    pub legal_name: Option<String>,
    pub email: String,
    pub date_of_birth: Option<String>,
    pub address: Option<String>,
    pub tin: Option<String>,
    pub identification: Option<String>,
    /// The wallet's ledger account id.
    pub account_numbers: Vec<String>,
    pub relationship: String,
    /// `active`, `frozen` or `closed`.
    pub account_status: String,
}

/// One transaction listed in a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportTransaction {
    pub transfer_id: String,
    /// `payment_in`, `payment_out`, `funding`, `cashout`, `tip_in`, …
    pub kind: String,
    /// Major units, e.g. "9500.00".
    pub amount: String,
    pub currency: String,
    pub date: String,
}

/// Part II of the SAR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuspiciousActivity {
    /// Items 29–38: the characterization of the activity.
    pub categories: Vec<String>,
    pub date_from: Option<String>,
    pub date_to: Option<String>,
    /// Item 26: the amount involved, major units.
    pub total_amount: String,
    pub currency: String,
    pub product_types: Vec<String>,
    pub instrument_types: Vec<String>,
    pub transactions: Vec<ReportTransaction>,
}

/// A SAR draft: Parts I–V of FinCEN Form 111.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SarDraft {
    pub form: String,
    pub filing_type: String,
    pub case_id: String,
    pub generated_at: String,
    /// Part I.
    pub subject: Subject,
    /// Part II.
    pub suspicious_activity: SuspiciousActivity,
    /// Part III: where the activity occurred (Mizan itself).
    pub financial_institution: Filer,
    /// Part IV: who files.
    pub filing_institution: Filer,
    /// Part V: what happened, from the case's evidence and notes.
    pub narrative: String,
}

/// A CTR draft: FinCEN Form 112, one person, one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtrDraft {
    pub form: String,
    /// Item 22: the day (UTC) the transactions were on.
    pub transaction_date: String,
    /// Part I.
    pub subject: Subject,
    /// Part II, items 24 and 25: totals of cash in (card funding) and cash out
    /// (cash-outs), major units.
    pub total_cash_in: String,
    pub total_cash_out: String,
    pub currency: String,
    pub transactions: Vec<ReportTransaction>,
    /// Part III.
    pub financial_institution: Filer,
}

/// Major units without grouping ("10500.00"), as the forms' amount fields take them.
fn usd(minor: i64) -> String {
    assert!(minor >= 0, "report amounts are sums of positive movements");
    format!("{}.{:02}", minor / 100, minor % 100)
}

fn date_of(ns: u64) -> String {
    crate::time::rfc3339_from_ns(ns)
        .get(..10)
        .unwrap_or_default()
        .to_owned()
}

fn transaction(movement: &crate::cases::FlaggedMovement) -> ReportTransaction {
    ReportTransaction {
        transfer_id: movement.transfer.clone(),
        kind: movement.kind.clone(),
        amount: usd(movement.amount_minor),
        currency: movement.currency.clone(),
        date: date_of(movement.at_ns),
    }
}

async fn vault_field(
    vault: &crate::vault::SharedVault,
    person: crate::identity::PersonId,
    verified: bool,
    kind: mizan_vault::FieldKind,
) -> Result<Option<String>, crate::cases::CaseError> {
    if !verified {
        return Ok(None);
    }
    crate::vault::reveal_for_compliance(vault, person, kind, "drafting a SAR or CTR")
        .await
        .map(|value| value.map(|value| value.expose().clone()))
        .map_err(|error| crate::cases::internal("the vault", error.code()))
}

async fn subject(
    reader: &crate::identity::SharedReader,
    vault: &crate::vault::SharedVault,
    person: crate::identity::PersonId,
) -> Result<Subject, crate::cases::CaseError> {
    use crate::cases::internal;
    let found = crate::identity::person_by_id(reader, person)
        .await
        .map_err(|error| internal("reading the person", error))?;
    let legal_name = crate::sanctions::subject_name(reader, vault, person, "drafting a SAR or CTR")
        .await?
        .map(|name| name.expose().clone());
    let status = match crate::cases::freeze_of(reader, person).await? {
        Some(freeze) if freeze.permanent => "closed",
        Some(freeze) if freeze.frozen => "frozen",
        _ => "active",
    };
    let wallet = person
        .wallet_id(crate::identity::WALLET_CURRENCY)
        .map_err(|error| internal("wallet id", error))?;
    // The rest of what the forms ask about the subject, from the vault (each read
    // access-logged); only people who verified have them.
    let verified = legal_name.is_some();
    let date_of_birth =
        vault_field(vault, person, verified, mizan_vault::FieldKind::DateOfBirth).await?;
    // Stored as line, city, postal code and residence, one per line.
    let address = vault_field(vault, person, verified, mizan_vault::FieldKind::Address)
        .await?
        .map(|address| address.lines().collect::<Vec<_>>().join(", "));
    let identification = vault_field(
        vault,
        person,
        verified,
        mizan_vault::FieldKind::GovernmentId,
    )
    .await?;
    Ok(Subject {
        person_id: person.to_string(),
        handle: found.handle.as_str().to_owned(),
        legal_name,
        email: found.email.as_str().to_owned(),
        date_of_birth,
        address,
        // Mizan keeps only the SSN's last 4: the full TIN is for the filer to add.
        tin: None,
        identification,
        account_numbers: vec![wallet.to_string()],
        relationship: "customer".to_owned(),
        account_status: status.to_owned(),
    })
}

/// The name a sanctions case screened, revealed from the vault for the SAR draft
/// (as a compliance officer; access-logged with the case id).
async fn screened_name_for_sar(
    vault: &crate::vault::SharedVault,
    case: &crate::cases::Case,
) -> Result<crate::cases::ScreenedName, crate::cases::CaseError> {
    crate::cases::reveal_screened_name(
        vault,
        case,
        mizan_vault::Role::ComplianceOfficer,
        "mizan-reports",
        &format!("drafting the SAR of compliance case {}", case.id),
    )
    .await
}

fn narrative(case: &crate::cases::Case, screened: &crate::cases::ScreenedName) -> String {
    use crate::cases::Evidence;
    use crate::cases::ScreenedName;
    let mut text = format!(
        "Mizan opened compliance case {} on {} ({}).",
        case.id,
        date_of(case.opened_at_ns),
        case.kind.as_str()
    );
    match &case.evidence {
        Evidence::Sanctions {
            trigger,
            decision,
            matches,
            ..
        } => {
            let entries: Vec<String> = matches
                .iter()
                .map(|m| {
                    format!(
                        "{} (ent_num {}, score {:.3}, {})",
                        m.list_name, m.ent_num, m.score, m.programs
                    )
                })
                .collect();
            text.push_str(&format!(
                " Sanctions screening at {trigger} answered {decision}, matching the OFAC SDN list: {}.",
                entries.join("; ")
            ));
            match screened {
                ScreenedName::Shown(name) => {
                    text.push_str(&format!(" The name screened: {}.", name.expose()));
                }
                ScreenedName::Erased => {
                    text.push_str(" The name screened was erased with the person's data.");
                }
                ScreenedName::Denied | ScreenedName::NotKept => {}
            }
        }
        Evidence::Monitoring { rule, summary, .. } => {
            text.push_str(&format!(" Transaction monitoring rule {rule}: {summary}."));
        }
        Evidence::Manual => text.push_str(" Opened by an operator."),
    }
    for note in &case.notes {
        text.push_str(&format!(
            "\n{} ({}): {}",
            note.operator,
            date_of(note.at_ns),
            note.text
        ));
    }
    if let (Some(by), Some(at)) = (&case.decided_by, case.decided_at_ns) {
        text.push_str(&format!(
            "\nDecided to file this SAR by {by} on {}.",
            date_of(at)
        ));
    }
    text
}

/// The SAR draft of a case decided `file_sar`.
pub async fn sar_draft(
    reader: &crate::identity::SharedReader,
    vault: &crate::vault::SharedVault,
    filer: &Filer,
    case: &crate::cases::Case,
    now_ns: u64,
) -> Result<SarDraft, crate::cases::CaseError> {
    use crate::cases::{CaseDecision, CaseError, Evidence};
    if case.decision != Some(CaseDecision::FileSar) {
        return Err(CaseError::NoSarFiled);
    }
    let person = crate::identity::PersonId::parse(&case.person)
        .map_err(|error| crate::cases::internal("stored person", error))?;
    let (categories, flagged) = match &case.evidence {
        Evidence::Monitoring {
            rule, movements, ..
        } => {
            let category = mizan_compliance::monitoring::Rule::ALL
                .into_iter()
                .find(|known| known.code() == rule)
                .map_or("Other suspicious activity", |known| known.sar_category());
            (vec![category.to_owned()], movements.clone())
        }
        Evidence::Sanctions { .. } | Evidence::Manual => {
            let category = match case.evidence {
                Evidence::Sanctions { .. } => "Other suspicious activity: OFAC SDN list match",
                _ => "Other suspicious activity",
            };
            let until = case.decided_at_ns.unwrap_or(now_ns);
            let from = until.saturating_sub(SAR_LOOKBACK_DAYS * NANOS_PER_DAY);
            let movements = crate::monitoring::movements_of(reader, person, from, until).await?;
            let flagged = movements.iter().map(crate::monitoring::flagged).collect();
            (vec![category.to_owned()], flagged)
        }
    };
    let total: i64 = flagged.iter().map(|m| m.amount_minor).sum();
    Ok(SarDraft {
        form: "FinCEN SAR (Form 111) draft".to_owned(),
        filing_type: "initial".to_owned(),
        case_id: case.id.clone(),
        generated_at: crate::time::rfc3339_from_ns(now_ns),
        subject: subject(reader, vault, person).await?,
        suspicious_activity: SuspiciousActivity {
            categories,
            date_from: flagged.iter().map(|m| m.at_ns).min().map(date_of),
            date_to: flagged.iter().map(|m| m.at_ns).max().map(date_of),
            total_amount: usd(total),
            currency: crate::identity::WALLET_CURRENCY.code().to_owned(),
            product_types: vec!["Prepaid access / stored value (wallet)".to_owned()],
            instrument_types: vec!["Funds transfer".to_owned()],
            transactions: flagged.iter().map(transaction).collect(),
        },
        financial_institution: filer.clone(),
        filing_institution: filer.clone(),
        narrative: narrative(case, &screened_name_for_sar(vault, case).await?),
    })
}

/// The CTR drafts due for the UTC day starting at `day_start_ns`: everyone whose
/// card funding, or whose cash-outs, added up to more than $10,000 that day.
pub async fn ctr_drafts(
    reader: &crate::identity::SharedReader,
    vault: &crate::vault::SharedVault,
    filer: &Filer,
    day_start_ns: u64,
) -> Result<Vec<CtrDraft>, crate::cases::CaseError> {
    use mizan_compliance::monitoring::Direction;
    let until = day_start_ns.saturating_add(NANOS_PER_DAY - 1);
    let mut drafts = Vec::new();
    for person in crate::monitoring::everyone(reader).await? {
        let movements =
            crate::monitoring::movements_of(reader, person, day_start_ns, until).await?;
        let cash: Vec<_> = movements
            .iter()
            .filter(|m| m.channel.is_cash_like())
            .collect();
        let total = |direction| -> i64 {
            cash.iter()
                .filter(|m| m.direction == direction)
                .map(|m| m.amount_minor)
                .sum()
        };
        let (cash_in, cash_out) = (total(Direction::In), total(Direction::Out));
        if cash_in <= CTR_THRESHOLD_MINOR && cash_out <= CTR_THRESHOLD_MINOR {
            continue;
        }
        drafts.push(CtrDraft {
            form: "FinCEN CTR (Form 112) draft".to_owned(),
            transaction_date: date_of(day_start_ns),
            subject: subject(reader, vault, person).await?,
            total_cash_in: usd(cash_in),
            total_cash_out: usd(cash_out),
            currency: crate::identity::WALLET_CURRENCY.code().to_owned(),
            transactions: cash
                .iter()
                .map(|m| transaction(&crate::monitoring::flagged(m)))
                .collect(),
            financial_institution: filer.clone(),
        });
    }
    Ok(drafts)
}

/// CTR drafts as CSV: one line per person, the totals and Part I fields.
pub fn ctr_csv(drafts: &[CtrDraft]) -> String {
    let quote = |text: &str| format!("\"{}\"", text.replace('"', "\"\""));
    let mut csv = String::from(
        "transaction_date,person_id,handle,legal_name,email,account_number,total_cash_in,total_cash_out,currency,filer_name,filer_tin\n",
    );
    for draft in drafts {
        let fields = [
            draft.transaction_date.as_str(),
            draft.subject.person_id.as_str(),
            draft.subject.handle.as_str(),
            draft.subject.legal_name.as_deref().unwrap_or(""),
            draft.subject.email.as_str(),
            draft
                .subject
                .account_numbers
                .first()
                .map_or("", String::as_str),
            draft.total_cash_in.as_str(),
            draft.total_cash_out.as_str(),
            draft.currency.as_str(),
            draft.financial_institution.legal_name.as_str(),
            draft.financial_institution.tin.as_str(),
        ];
        let line: Vec<String> = fields.iter().map(|field| quote(field)).collect();
        csv.push_str(&line.join(","));
        csv.push('\n');
    }
    csv
}
