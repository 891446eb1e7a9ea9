//! The OFAC SDN list in its legacy CSV form (`sdn.csv`, `alt.csv`): parsing and the
//! checks a loaded list must pass before anything screens against it.
//!
//! The legacy format has no header row, uses `-0-` (often followed by a space) for
//! null, quotes fields that contain commas, ends lines with CRLF and ends the file
//! with a DOS end-of-file byte (0x1A). No field in the snapshot spans lines, but the
//! parser accepts quoted newlines and doubled quotes anyway, as CSV allows them.

use std::fmt;
use std::path::{Path, PathBuf};

use rustc_hash::FxHashSet;

/// A list file larger than this is refused: the 2021 `sdn.csv` is 2 MB, so 64 MiB
/// leaves room for growth while keeping a bad path from reading a disk image.
pub const LIST_FILE_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Records per file; the snapshot has about 12,000.
pub const LIST_RECORDS_MAX: usize = 1_000_000;
/// Bytes per field; the longest name in the snapshot is 158 bytes, remarks run longer.
pub const LIST_FIELD_BYTES_MAX: usize = 16 * 1024;
/// Fields in a record; `sdn.csv` has 12.
const RECORD_FIELDS_MAX: usize = 32;

/// Why a list could not be loaded. The list is all-or-nothing: a screener never
/// runs on a partly parsed list.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("reading {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is {size_bytes} bytes, more than the {LIST_FILE_BYTES_MAX} allowed")]
    FileTooLarge { path: PathBuf, size_bytes: u64 },
    #[error("{file} is not UTF-8")]
    NotUtf8 { file: &'static str },
    #[error("{file} record {record}: {reason}")]
    Malformed {
        file: &'static str,
        record: usize,
        reason: String,
    },
    #[error("{file} has more than {LIST_RECORDS_MAX} records")]
    TooManyRecords { file: &'static str },
    #[error("sdn.csv lists ent_num {ent_num} twice")]
    DuplicateEntNum { ent_num: u32 },
    #[error("alt.csv names ent_num {ent_num}, which sdn.csv does not list")]
    UnknownEntNum { ent_num: u32 },
    #[error("{file} has no records")]
    Empty { file: &'static str },
}

/// What kind of party an SDN entry is; entities have `-0-` in the type column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Individual,
    Entity,
    Vessel,
    Aircraft,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Individual => "individual",
            EntryKind::Entity => "entity",
            EntryKind::Vessel => "vessel",
            EntryKind::Aircraft => "aircraft",
        }
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// One row of `sdn.csv` (the columns screening uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdnEntry {
    pub ent_num: u32,
    /// As on the list, e.g. `NORIEGA, Manuel Antonio`.
    pub name: String,
    pub kind: EntryKind,
    /// Sanctions programs, e.g. `SDGT] [IRGC`, as on the list.
    pub programs: String,
}

/// alt_type of an alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasKind {
    /// Also known as.
    Aka,
    /// Formerly known as.
    Fka,
    /// Now known as.
    Nka,
}

/// One row of `alt.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub ent_num: u32,
    pub alt_num: u32,
    pub kind: AliasKind,
    pub name: String,
}

/// The parsed list: every entry and every alias, checked for consistency.
#[derive(Debug, Clone)]
pub struct SanctionsList {
    entries: Vec<SdnEntry>,
    aliases: Vec<Alias>,
    /// SHA-256 over both files' text, hex.
    digest: String,
}

fn digest_of(sdn_csv: &str, alt_csv: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for text in [sdn_csv, alt_csv] {
        hasher.update((text.len() as u64).to_be_bytes());
        hasher.update(text.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

impl SanctionsList {
    /// Loads `sdn.csv` and `alt.csv` from `directory`.
    pub fn load_dir(directory: &Path) -> Result<Self, ListError> {
        let sdn = read_file(&directory.join("sdn.csv"))?;
        let alt = read_file(&directory.join("alt.csv"))?;
        let sdn = String::from_utf8(sdn).map_err(|_| ListError::NotUtf8 { file: "sdn.csv" })?;
        let alt = String::from_utf8(alt).map_err(|_| ListError::NotUtf8 { file: "alt.csv" })?;
        Self::parse(&sdn, &alt)
    }

    /// Parses the two files' text and checks that ent_nums are unique and every alias
    /// names an entry.
    pub fn parse(sdn_csv: &str, alt_csv: &str) -> Result<Self, ListError> {
        let entries = parse_sdn(sdn_csv)?;
        let aliases = parse_alt(alt_csv)?;
        let mut ent_nums = FxHashSet::default();
        for entry in &entries {
            if !ent_nums.insert(entry.ent_num) {
                return Err(ListError::DuplicateEntNum {
                    ent_num: entry.ent_num,
                });
            }
        }
        if let Some(orphan) = aliases
            .iter()
            .find(|alias| !ent_nums.contains(&alias.ent_num))
        {
            return Err(ListError::UnknownEntNum {
                ent_num: orphan.ent_num,
            });
        }
        Ok(Self {
            entries,
            aliases,
            digest: digest_of(sdn_csv, alt_csv),
        })
    }

    /// SHA-256 of the two files' text (each length-prefixed, so no two pairs of
    /// files share a digest by moving bytes between them), lower-case hex: the same
    /// list always has the same digest, any changed byte changes it.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    pub fn entries(&self) -> &[SdnEntry] {
        &self.entries
    }

    pub fn aliases(&self) -> &[Alias] {
        &self.aliases
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, ListError> {
    let io_error = |source| ListError::Io {
        path: path.to_path_buf(),
        source,
    };
    let size_bytes = std::fs::metadata(path).map_err(io_error)?.len();
    if size_bytes > LIST_FILE_BYTES_MAX {
        return Err(ListError::FileTooLarge {
            path: path.to_path_buf(),
            size_bytes,
        });
    }
    std::fs::read(path).map_err(io_error)
}

/// Parses `sdn.csv`: ent_num, SDN_Name, SDN_Type, Program, and eight more columns.
pub fn parse_sdn(text: &str) -> Result<Vec<SdnEntry>, ListError> {
    const FILE: &str = "sdn.csv";
    let records = parse_records(text, FILE)?;
    let mut entries = Vec::with_capacity(records.len());
    for (index, fields) in records.iter().enumerate() {
        let record = index + 1;
        let malformed = |reason: String| ListError::Malformed {
            file: FILE,
            record,
            reason,
        };
        if fields.len() != 12 {
            return Err(malformed(format!("{} fields, expected 12", fields.len())));
        }
        let ent_num = parse_number(&fields[0]).ok_or_else(|| malformed("bad ent_num".into()))?;
        let name = null_or(&fields[1]).ok_or_else(|| malformed("no SDN_Name".into()))?;
        let kind = match null_or(&fields[2]).map(str::to_ascii_lowercase).as_deref() {
            None => EntryKind::Entity,
            Some("individual") => EntryKind::Individual,
            Some("vessel") => EntryKind::Vessel,
            Some("aircraft") => EntryKind::Aircraft,
            Some(other) => return Err(malformed(format!("unknown SDN_Type {other:?}"))),
        };
        let programs = null_or(&fields[3]).unwrap_or_default().to_string();
        entries.push(SdnEntry {
            ent_num,
            name: name.to_string(),
            kind,
            programs,
        });
    }
    if entries.is_empty() {
        return Err(ListError::Empty { file: FILE });
    }
    Ok(entries)
}

/// Parses `alt.csv`: ent_num, alt_num, alt_type, alt_name, alt_remarks.
pub fn parse_alt(text: &str) -> Result<Vec<Alias>, ListError> {
    const FILE: &str = "alt.csv";
    let records = parse_records(text, FILE)?;
    let mut aliases = Vec::with_capacity(records.len());
    for (index, fields) in records.iter().enumerate() {
        let record = index + 1;
        let malformed = |reason: String| ListError::Malformed {
            file: FILE,
            record,
            reason,
        };
        if fields.len() != 5 {
            return Err(malformed(format!("{} fields, expected 5", fields.len())));
        }
        let ent_num = parse_number(&fields[0]).ok_or_else(|| malformed("bad ent_num".into()))?;
        let alt_num = parse_number(&fields[1]).ok_or_else(|| malformed("bad alt_num".into()))?;
        let kind = match null_or(&fields[2]).map(str::to_ascii_lowercase).as_deref() {
            Some("aka") => AliasKind::Aka,
            Some("fka") => AliasKind::Fka,
            Some("nka") => AliasKind::Nka,
            other => return Err(malformed(format!("unknown alt_type {other:?}"))),
        };
        let name = null_or(&fields[3]).ok_or_else(|| malformed("no alt_name".into()))?;
        aliases.push(Alias {
            ent_num,
            alt_num,
            kind,
            name: name.to_string(),
        });
    }
    Ok(aliases)
}

/// `None` for the legacy null (`-0-`, possibly padded) and for empty fields.
fn null_or(field: &str) -> Option<&str> {
    let trimmed = field.trim();
    if trimmed.is_empty() || trimmed == "-0-" {
        None
    } else {
        Some(trimmed)
    }
}

fn parse_number(field: &str) -> Option<u32> {
    field.trim().parse().ok()
}

/// Splits CSV text into records of fields. Quoted fields may contain commas, quotes
/// written as `""`, and line breaks. A trailing 0x1A (DOS end of file) is ignored, as
/// are blank lines.
fn parse_records(text: &str, file: &'static str) -> Result<Vec<Vec<String>>, ListError> {
    let text = text.trim_end_matches(['\u{1a}', '\r', '\n']);
    let mut records = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut characters = text.chars().peekable();
    let malformed = |records: usize, reason: &str| ListError::Malformed {
        file,
        record: records + 1,
        reason: reason.to_string(),
    };
    while let Some(character) = characters.next() {
        if in_quotes {
            if character == '"' {
                if characters.peek() == Some(&'"') {
                    characters.next();
                    field.push('"');
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(character);
            }
        } else {
            match character {
                '"' if field.trim().is_empty() => {
                    field.clear();
                    in_quotes = true;
                }
                ',' => fields.push(std::mem::take(&mut field)),
                '\r' => {}
                '\n' => {
                    fields.push(std::mem::take(&mut field));
                    end_record(&mut records, &mut fields, file)?;
                }
                other => field.push(other),
            }
        }
        if field.len() > LIST_FIELD_BYTES_MAX {
            return Err(malformed(records.len(), "field too long"));
        }
        if fields.len() > RECORD_FIELDS_MAX {
            return Err(malformed(records.len(), "too many fields"));
        }
    }
    if in_quotes {
        return Err(malformed(records.len(), "unterminated quoted field"));
    }
    fields.push(field);
    end_record(&mut records, &mut fields, file)?;
    Ok(records)
}

fn end_record(
    records: &mut Vec<Vec<String>>,
    fields: &mut Vec<String>,
    file: &'static str,
) -> Result<(), ListError> {
    let blank = fields.len() == 1 && fields[0].trim().is_empty();
    if !blank {
        if records.len() >= LIST_RECORDS_MAX {
            return Err(ListError::TooManyRecords { file });
        }
        records.push(std::mem::take(fields));
    }
    fields.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_and_quoted_fields() {
        let sdn = "1,\"DOE, John\",individual,\"SDGT] [IRGC\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,\"a.k.a. \"\"JD\"\", x\"\r\n\
                   2,\"ACME, LTD.\",-0- ,\"CUBA\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \r\n\u{1a}";
        let alt = "1,10,\"aka\",\"DOE, Johnny\",-0- \r\n";
        let list = SanctionsList::parse(sdn, alt).unwrap();
        assert_eq!(list.entries().len(), 2);
        assert_eq!(list.entries()[0].name, "DOE, John");
        assert_eq!(list.entries()[0].programs, "SDGT] [IRGC");
        assert_eq!(list.entries()[1].kind, EntryKind::Entity);
        assert_eq!(list.aliases()[0].kind, AliasKind::Aka);
    }

    #[test]
    fn the_digest_names_the_exact_list() {
        let sdn = "1,\"DOE, John\",individual,\"SDGT\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \n";
        let alt = "1,10,\"aka\",\"DOE, Johnny\",-0- \n";
        let list = SanctionsList::parse(sdn, alt).unwrap();
        assert_eq!(list.digest().len(), 64);
        assert_eq!(
            list.digest(),
            SanctionsList::parse(sdn, alt).unwrap().digest()
        );
        let renamed = sdn.replace("John", "Jon");
        assert_ne!(
            list.digest(),
            SanctionsList::parse(&renamed, alt).unwrap().digest()
        );
        // No alias file is another list, not the same list.
        assert_ne!(
            list.digest(),
            SanctionsList::parse(sdn, "").unwrap().digest()
        );
        let screener = crate::sanctions::Screener::new(&list, crate::sanctions::Thresholds::TUNED);
        assert_eq!(screener.list_digest(), list.digest());
    }

    #[test]
    fn rejects_orphan_alias_and_duplicates() {
        let sdn = "1,\"A\",-0- ,\"X\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \n";
        assert!(matches!(
            SanctionsList::parse(sdn, "2,1,\"aka\",\"B\",-0- \n"),
            Err(ListError::UnknownEntNum { ent_num: 2 })
        ));
        let twice = format!("{sdn}{sdn}");
        assert!(matches!(
            SanctionsList::parse(&twice, ""),
            Err(ListError::DuplicateEntNum { ent_num: 1 })
        ));
        assert!(matches!(
            parse_sdn("1,\"A\n"),
            Err(ListError::Malformed { .. })
        ));
    }
}
