#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The vault against both stores: every scenario runs on SQLite (a temporary file)
//! and on PostgreSQL (a fresh schema per test, dropped afterwards). PostgreSQL is
//! never skipped: without a server these tests fail.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use mizan_vault::{
    may_reveal, AccessOutcome, Accessor, BankAccountNumber, CardNumber, FieldKind, MasterKeyRing,
    PersonId, PostgresVaultStore, Reason, RecordId, Role, SqliteVaultStore, TokenId, Vault,
    VaultError, VaultStore,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

fn postgres_url() -> String {
    std::env::var("MIZAN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh place to keep a vault: a temporary directory, or a new PostgreSQL schema.
struct Fixture {
    backend: Backend,
    directory: tempfile::TempDir,
    schema: String,
}

impl Fixture {
    fn new(backend: Backend) -> Fixture {
        let schema = format!("vault_test_{:016x}", rand::random::<u64>());
        if backend == Backend::Postgres {
            let mut client = postgres::Client::connect(&postgres_url(), postgres::NoTls)
                .expect("connect to PostgreSQL (is it running? MIZAN_TEST_POSTGRES_URL)");
            client
                .batch_execute(&format!("CREATE SCHEMA {schema}"))
                .expect("create schema");
        }
        Fixture {
            backend,
            directory: tempfile::tempdir().expect("temporary directory"),
            schema,
        }
    }

    fn sqlite_path(&self) -> std::path::PathBuf {
        self.directory.path().join("mizan.vault.sqlite")
    }

    fn store(&self) -> Box<dyn VaultStore> {
        match self.backend {
            Backend::Sqlite => Box::new(SqliteVaultStore::open(&self.sqlite_path()).unwrap()),
            Backend::Postgres => {
                Box::new(PostgresVaultStore::connect(&postgres_url(), Some(&self.schema)).unwrap())
            }
        }
    }

    fn vault(&self, ring: &MasterKeyRing) -> Vault {
        Vault::open(self.store(), ring.clone()).unwrap()
    }

    /// Runs one statement on a raw connection, as an attacker or a careless
    /// operator with database access would.
    fn raw_execute(&self, sql: &str) -> Result<u64, String> {
        match self.backend {
            Backend::Sqlite => {
                let connection = rusqlite::Connection::open(self.sqlite_path()).unwrap();
                connection
                    .execute(sql, [])
                    .map(|rows| rows as u64)
                    .map_err(|error| error.to_string())
            }
            Backend::Postgres => self
                .raw_postgres()
                .execute(sql, &[])
                .map_err(|error| format!("{error:?}")),
        }
    }

    fn raw_postgres(&self) -> postgres::Client {
        let mut client = postgres::Client::connect(&postgres_url(), postgres::NoTls).unwrap();
        client
            .batch_execute(&format!("SET search_path TO {}", self.schema))
            .unwrap();
        client
    }

    fn raw_ciphertext(&self, record: RecordId) -> Vec<u8> {
        let id = record.to_be_bytes();
        match self.backend {
            Backend::Sqlite => rusqlite::Connection::open(self.sqlite_path())
                .unwrap()
                .query_row(
                    "SELECT ciphertext FROM vault_records WHERE record_id = ?1",
                    [id.as_slice()],
                    |row| row.get(0),
                )
                .unwrap(),
            Backend::Postgres => self
                .raw_postgres()
                .query_one(
                    "SELECT ciphertext FROM vault_records WHERE record_id = $1",
                    &[&id.as_slice()],
                )
                .unwrap()
                .get(0),
        }
    }

    fn set_raw_ciphertext(&self, record: RecordId, ciphertext: &[u8]) {
        let id = record.to_be_bytes();
        let sql_sqlite = "UPDATE vault_records SET ciphertext = ?1 WHERE record_id = ?2";
        let rows = match self.backend {
            Backend::Sqlite => rusqlite::Connection::open(self.sqlite_path())
                .unwrap()
                .execute(sql_sqlite, rusqlite::params![ciphertext, id.as_slice()])
                .unwrap() as u64,
            Backend::Postgres => self
                .raw_postgres()
                .execute(
                    "UPDATE vault_records SET ciphertext = $1 WHERE record_id = $2",
                    &[&ciphertext, &id.as_slice()],
                )
                .unwrap(),
        };
        assert_eq!(rows, 1);
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if self.backend == Backend::Postgres {
            if let Ok(mut client) = postgres::Client::connect(&postgres_url(), postgres::NoTls) {
                let _ = client.batch_execute(&format!("DROP SCHEMA {} CASCADE", self.schema));
            }
        }
    }
}

fn person(raw: u128) -> PersonId {
    PersonId::new(raw).unwrap()
}

fn compliance() -> Accessor {
    Accessor::new(Role::ComplianceOfficer, "staff-17").unwrap()
}

fn processing() -> Accessor {
    Accessor::new(Role::PaymentProcessing, "card-authorizer").unwrap()
}

fn reason() -> Reason {
    Reason::parse("KYC review of case 4711").unwrap()
}

const CARD: &str = "4111 1111 1111 1111";
const CARD_DIGITS: &str = "4111111111111111";

/// Generates one `#[test]` per backend for each scenario function.
macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $scenario() { super::$scenario(super::Backend::Sqlite) })*
        }
        mod postgresql {
            $(#[test] fn $scenario() { super::$scenario(super::Backend::Postgres) })*
        }
    };
}

on_both_stores!(
    seal_open_round_trip,
    tampered_or_swapped_ciphertext_fails,
    wrong_master_key_fails,
    rotation_rewraps_everything_while_readers_see_no_failure,
    retire_refuses_while_a_version_is_in_use,
    shred_erases_one_person_and_the_rest_still_works,
    blind_index_finds_duplicates_and_survives_rotation,
    tokens_keep_last4_and_reject_invalid_numbers,
    access_log_is_append_only,
    reveal_enforces_roles_and_logs_every_attempt,
    export_contains_own_data_only,
    a_serving_vault_follows_a_rotation_made_elsewhere,
    service_secrets_are_used_inside_the_vault_and_revealed_to_no_one,
);

fn seal_open_round_trip(backend: Backend) {
    let fixture = Fixture::new(backend);
    let ring = MasterKeyRing::generate();
    let vault = fixture.vault(&ring);
    let alice = person(1);
    let name = vault
        .put_person_field(alice, FieldKind::LegalName, "Alice Liddell")
        .unwrap();
    let birth = vault
        .put_person_field(alice, FieldKind::DateOfBirth, "1852-05-04")
        .unwrap();
    assert_eq!(
        vault
            .reveal(&compliance(), &reason(), name)
            .unwrap()
            .expose(),
        "Alice Liddell"
    );
    assert_eq!(
        vault
            .reveal(&compliance(), &reason(), birth)
            .unwrap()
            .expose(),
        "1852-05-04"
    );
    let card = vault
        .tokenize_card(alice, &CardNumber::parse(CARD).unwrap())
        .unwrap();
    let revealed = vault
        .reveal_token(&processing(), &reason(), &card.token)
        .unwrap();
    assert_eq!(revealed.expose(), CARD_DIGITS);
    assert_eq!(format!("{revealed:?}"), "***");
    // A second vault over the same store (a restart) reads the same values.
    drop(vault);
    let reopened = fixture.vault(&ring);
    assert_eq!(
        reopened
            .reveal(&compliance(), &reason(), name)
            .unwrap()
            .expose(),
        "Alice Liddell"
    );
    assert!(matches!(
        reopened.put_person_field(alice, FieldKind::CardNumber, CARD_DIGITS),
        Err(VaultError::InvalidInput(_))
    ));
    assert!(matches!(
        reopened.reveal(&compliance(), &reason(), RecordId::generate()),
        Err(VaultError::NotFound("record"))
    ));
}

fn tampered_or_swapped_ciphertext_fails(backend: Backend) {
    let fixture = Fixture::new(backend);
    let vault = fixture.vault(&MasterKeyRing::generate());
    let alice = person(1);
    let name = vault
        .put_person_field(alice, FieldKind::LegalName, "Alice")
        .unwrap();
    let address = vault
        .put_person_field(alice, FieldKind::Address, "1 Rabbit Hole")
        .unwrap();
    let original = fixture.raw_ciphertext(name);

    let mut flipped = original.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    fixture.set_raw_ciphertext(name, &flipped);
    let error = vault.reveal(&compliance(), &reason(), name).unwrap_err();
    assert!(matches!(error, VaultError::Tampered), "{error}");
    assert_eq!(error.code(), "tampered");
    assert!(error.to_string().contains("tampered"));

    // The same person's address ciphertext moved into the name record: same data
    // key, but the AAD binds record id and field kind.
    fixture.set_raw_ciphertext(name, &fixture.raw_ciphertext(address));
    assert!(matches!(
        vault.reveal(&compliance(), &reason(), name),
        Err(VaultError::Tampered)
    ));

    // Another person's record moved in: their data key doesn't even apply.
    let bob_name = vault
        .put_person_field(person(2), FieldKind::LegalName, "Bob")
        .unwrap();
    fixture.set_raw_ciphertext(name, &fixture.raw_ciphertext(bob_name));
    assert!(matches!(
        vault.reveal(&compliance(), &reason(), name),
        Err(VaultError::Tampered)
    ));

    fixture.set_raw_ciphertext(name, &original);
    assert_eq!(
        vault
            .reveal(&compliance(), &reason(), name)
            .unwrap()
            .expose(),
        "Alice"
    );
}

fn wrong_master_key_fails(backend: Backend) {
    let fixture = Fixture::new(backend);
    let vault = fixture.vault(&MasterKeyRing::generate());
    let name = vault
        .put_person_field(person(1), FieldKind::LegalName, "Alice")
        .unwrap();
    drop(vault);
    let impostor = fixture.vault(&MasterKeyRing::generate());
    let error = impostor.reveal(&compliance(), &reason(), name).unwrap_err();
    assert!(
        matches!(error, VaultError::MasterKeyMismatch { version: 1 }),
        "{error}"
    );
    assert!(error.to_string().contains("wrong master key"));
    // Rotating under a ring whose version 1 is the wrong key fails the same way,
    // before anything is written.
    let vault = fixture.vault(&MasterKeyRing::generate());
    vault.add_master_version().unwrap();
    assert!(matches!(
        vault.rotate(10),
        Err(VaultError::MasterKeyMismatch { version: 1 })
    ));
}

fn rotation_rewraps_everything_while_readers_see_no_failure(backend: Backend) {
    const PEOPLE: u128 = 3_000;
    let fixture = Fixture::new(backend);
    let ring = MasterKeyRing::generate();
    let vault = fixture.vault(&ring);
    let people: Vec<(PersonId, FieldKind, String)> = (1..=PEOPLE)
        .map(|raw| {
            (
                person(raw),
                FieldKind::LegalName,
                format!("Person number {raw}"),
            )
        })
        .collect();
    let borrowed: Vec<(PersonId, FieldKind, &str)> = people
        .iter()
        .map(|(id, kind, value)| (*id, *kind, value.as_str()))
        .collect();
    let records = vault.import_people(&borrowed).unwrap();
    let version = vault.add_master_version().unwrap();
    assert_eq!(version, 2);

    let done = AtomicBool::new(false);
    let reads = AtomicU64::new(0);
    let failures = AtomicU64::new(0);
    let report = std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut position = 0usize;
            // At least one full pass, and keep going until the rotation ends.
            while !done.load(Ordering::Acquire) || position < records.len() {
                let record = records[position % records.len()];
                if vault.check_readable(record).is_err() {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                reads.fetch_add(1, Ordering::Relaxed);
                position += 7;
            }
        });
        let report = vault.rotate(100).unwrap();
        done.store(true, Ordering::Release);
        report
    });
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    assert!(reads.load(Ordering::Relaxed) > 0);
    assert_eq!(report.target_version, 2);
    assert_eq!(report.rewrapped, PEOPLE as u64);
    let versions = vault.versions_in_use().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!((versions[0].version, versions[0].data_keys), (1, 0));
    assert_eq!(
        (versions[1].version, versions[1].data_keys),
        (2, PEOPLE as u64)
    );
    vault.retire(1).unwrap();
    assert_eq!(vault.key_ring().unwrap().master_versions(), vec![2]);
    for record in records.iter().step_by(97) {
        vault.check_readable(*record).unwrap();
    }
    // The retired key ring still opens the store; the original one (v1 only) not.
    let retired = vault.key_ring().unwrap();
    drop(vault);
    let reopened = fixture.vault(&retired);
    assert_eq!(
        reopened
            .reveal(&compliance(), &reason(), records[0])
            .unwrap()
            .expose(),
        "Person number 1"
    );
    assert!(matches!(
        Vault::open(fixture.store(), ring),
        Err(VaultError::MasterKeyMissing { version: 2 })
    ));
}

fn retire_refuses_while_a_version_is_in_use(backend: Backend) {
    let fixture = Fixture::new(backend);
    let vault = fixture.vault(&MasterKeyRing::generate());
    vault
        .put_person_field(person(1), FieldKind::LegalName, "Alice")
        .unwrap();
    vault.add_master_version().unwrap();
    vault
        .put_person_field(person(2), FieldKind::LegalName, "Bob")
        .unwrap();
    let error = vault.retire(1).unwrap_err();
    assert!(
        matches!(
            error,
            VaultError::VersionInUse {
                version: 1,
                data_keys: 1
            }
        ),
        "{error}"
    );
    assert!(matches!(
        vault.retire(2),
        Err(VaultError::RetireCurrent { version: 2 })
    ));
    assert!(matches!(
        vault.retire(9),
        Err(VaultError::MasterKeyMissing { version: 9 })
    ));
    assert_eq!(vault.rotate(1).unwrap().rewrapped, 1);
    vault.retire(1).unwrap();
}

/// Two processes on one store: a "server" vault that loaded its key file at start,
/// and a "CLI" vault that adds a version, writes the file and rotates. The server
/// reads the re-wrapped keys, wraps new keys under the new version, and a server
/// whose keys cannot change (environment) refuses to wrap under the old one.
fn a_serving_vault_follows_a_rotation_made_elsewhere(backend: Backend) {
    let fixture = Fixture::new(backend);
    let key_file = fixture.directory.path().join("vault.key");
    MasterKeyRing::generate().write_key_file(&key_file).unwrap();
    let server = Vault::open_with_key_file(fixture.store(), &key_file).unwrap();
    let fixed = fixture.vault(&MasterKeyRing::from_key_file(&key_file).unwrap());
    let alice = server
        .put_person_field(person(1), FieldKind::LegalName, "Alice")
        .unwrap();

    let mut ring = MasterKeyRing::from_key_file(&key_file).unwrap();
    assert_eq!(ring.add_master_version().unwrap(), 2);
    ring.write_key_file(&key_file).unwrap();
    let cli = fixture.vault(&ring);
    assert_eq!(cli.rotate(10).unwrap().rewrapped, 1);
    assert_eq!(cli.newest_recorded_version().unwrap(), Some(2));

    // The server's ring had version 1 only: it re-reads the file and reads on.
    let revealed = server.reveal(&compliance(), &reason(), alice).unwrap();
    assert_eq!(revealed.expose(), "Alice");
    server
        .put_person_field(person(2), FieldKind::LegalName, "Bob")
        .unwrap();
    let versions = cli.versions_in_use().unwrap();
    let under = |version: u32| {
        versions
            .iter()
            .find(|used| used.version == version)
            .map_or(0, |used| used.data_keys)
    };
    assert_eq!((under(1), under(2)), (0, 2), "{versions:?}");

    // Keys given once cannot follow: no read of a re-wrapped key, and no new key
    // under the old version either (it is about to retire).
    assert!(matches!(
        fixed.reveal(&compliance(), &reason(), alice),
        Err(VaultError::MasterKeyMissing { version: 2 })
    ));
    assert!(matches!(
        fixed.put_person_field(person(3), FieldKind::LegalName, "Carol"),
        Err(VaultError::MasterKeyMissing { version: 2 })
    ));
    // The store itself refuses a key wrapped under an older version than recorded.
    let (_, old_wrapped) =
        mizan_vault::DataKey::generate(&MasterKeyRing::generate(), person(4)).unwrap();
    assert_eq!(old_wrapped.master_version, 1);
    assert!(matches!(
        fixture.store().insert_data_key(person(4), &old_wrapped, 1),
        Err(VaultError::StaleMasterVersion {
            version: 1,
            newest: 2
        })
    ));

    // Version 2 is the newest recorded: it cannot retire; version 1 can, and the
    // server still reads everyone.
    assert!(matches!(
        cli.retire(2),
        Err(VaultError::RetireCurrent { version: 2 })
    ));
    cli.retire(1).unwrap();
    cli.key_ring().unwrap().write_key_file(&key_file).unwrap();
    assert_eq!(
        server
            .reveal(&compliance(), &reason(), alice)
            .unwrap()
            .expose(),
        "Alice"
    );
}

/// A service secret (TOTP seed, webhook secret) is used through a closure, is
/// revealed to no role, is left out of exports, and dies with its owner's key.
fn service_secrets_are_used_inside_the_vault_and_revealed_to_no_one(backend: Backend) {
    let fixture = Fixture::new(backend);
    let vault = fixture.vault(&MasterKeyRing::generate());
    let owner = person(7);
    let secret = mizan_core::Secret::new("JBSWY3DPEHPK3PXP".to_owned());
    let record = vault.put_service_secret(owner, &secret).unwrap();
    let length = vault
        .use_service_secret(record, |bytes| {
            assert_eq!(bytes, b"JBSWY3DPEHPK3PXP");
            bytes.len()
        })
        .unwrap();
    assert_eq!(length, 16);
    for role in Role::ALL {
        let accessor = match role {
            Role::DataSubject => Accessor::data_subject(owner),
            other => Accessor::new(other, "tester").unwrap(),
        };
        assert!(matches!(
            vault.reveal(&accessor, &reason(), record),
            Err(VaultError::PermissionDenied { .. })
        ));
    }
    let export = vault
        .export_person(&Accessor::data_subject(owner), &reason(), owner)
        .unwrap();
    assert!(!export.expose().contains("JBSWY3DPEHPK3PXP"));
    let name = vault
        .put_person_field(owner, FieldKind::LegalName, "Owner")
        .unwrap();
    assert!(matches!(
        vault.use_service_secret(name, |_| ()),
        Err(VaultError::InvalidInput(_))
    ));
    assert!(vault.shred_person(owner).unwrap());
    assert!(matches!(
        vault.use_service_secret(record, |_| ()),
        Err(VaultError::Erased)
    ));
}

fn shred_erases_one_person_and_the_rest_still_works(backend: Backend) {
    let fixture = Fixture::new(backend);
    let vault = fixture.vault(&MasterKeyRing::generate());
    let (alice, bob) = (person(1), person(2));
    let alice_name = vault
        .put_person_field(alice, FieldKind::LegalName, "Alice")
        .unwrap();
    vault
        .put_person_field(alice, FieldKind::GovernmentId, "123-45-6789")
        .unwrap();
    let alice_card = vault
        .tokenize_card(alice, &CardNumber::parse(CARD).unwrap())
        .unwrap();
    let bob_name = vault
        .put_person_field(bob, FieldKind::LegalName, "Bob")
        .unwrap();

    assert!(vault.shred_person(alice).unwrap());
    assert!(!vault.shred_person(alice).unwrap());
    let error = vault
        .reveal(&compliance(), &reason(), alice_name)
        .unwrap_err();
    assert!(matches!(error, VaultError::Erased));
    assert_eq!(error.code(), "erased");
    assert!(error.to_string().starts_with("erased"));
    assert!(matches!(
        vault.reveal_token(&processing(), &reason(), &alice_card.token),
        Err(VaultError::Erased)
    ));
    assert!(matches!(
        vault.put_person_field(alice, FieldKind::Address, "anywhere"),
        Err(VaultError::Erased)
    ));
    assert!(vault
        .find_by_blind_index(FieldKind::GovernmentId, "123456789")
        .unwrap()
        .is_empty());
    // The ciphertext is still there; only the key is gone.
    assert!(!fixture.raw_ciphertext(alice_name).is_empty());

    assert_eq!(
        vault
            .reveal(&compliance(), &reason(), bob_name)
            .unwrap()
            .expose(),
        "Bob"
    );
    let carol = person(3);
    vault
        .put_person_field(carol, FieldKind::GovernmentId, "123-45-6789")
        .unwrap();
    assert_eq!(
        vault
            .find_by_blind_index(FieldKind::GovernmentId, "123456789")
            .unwrap()
            .len(),
        1
    );
    vault.add_master_version().unwrap();
    assert_eq!(vault.rotate(10).unwrap().rewrapped, 2);
    let log = vault.access_log(0, 100).unwrap();
    assert!(log
        .iter()
        .any(|entry| entry.record == alice_name && entry.outcome == AccessOutcome::Erased));
}

fn blind_index_finds_duplicates_and_survives_rotation(backend: Backend) {
    let fixture = Fixture::new(backend);
    let vault = fixture.vault(&MasterKeyRing::generate());
    let first = vault
        .put_person_field(person(1), FieldKind::GovernmentId, "123-45-6789")
        .unwrap();
    vault
        .put_person_field(person(2), FieldKind::GovernmentId, "987-65-4321")
        .unwrap();
    // Sign-up of a third person with the first one's number, typed differently.
    let matches = vault
        .find_by_blind_index(FieldKind::GovernmentId, " 123 45 6789 ")
        .unwrap();
    assert_eq!(matches.len(), 1);
    assert_eq!((matches[0].person, matches[0].record), (person(1), first));
    let second = vault
        .put_person_field(person(3), FieldKind::GovernmentId, "123456789")
        .unwrap();
    let mut found: Vec<RecordId> = vault
        .find_by_blind_index(FieldKind::GovernmentId, "123-45-6789")
        .unwrap()
        .into_iter()
        .map(|found| found.record)
        .collect();
    found.sort();
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(found, expected);
    // Same card on two people: a duplicate-card check.
    let card = CardNumber::parse(CARD).unwrap();
    vault.tokenize_card(person(1), &card).unwrap();
    vault.tokenize_card(person(2), &card).unwrap();
    assert_eq!(
        vault
            .find_by_blind_index(FieldKind::CardNumber, CARD_DIGITS)
            .unwrap()
            .len(),
        2
    );
    assert!(vault
        .find_by_blind_index(FieldKind::LegalName, "x")
        .is_err());

    vault.add_master_version().unwrap();
    vault.rotate(2).unwrap();
    vault.retire(1).unwrap();
    assert_eq!(
        vault
            .find_by_blind_index(FieldKind::GovernmentId, "123456789")
            .unwrap()
            .len(),
        2
    );
    // And after a restart with the rotated ring.
    let ring = vault.key_ring().unwrap();
    drop(vault);
    let reopened = fixture.vault(&ring);
    assert_eq!(
        reopened
            .find_by_blind_index(FieldKind::GovernmentId, "123456789")
            .unwrap()
            .len(),
        2
    );
}

fn tokens_keep_last4_and_reject_invalid_numbers(backend: Backend) {
    let fixture = Fixture::new(backend);
    let vault = fixture.vault(&MasterKeyRing::generate());
    let alice = person(1);
    assert!(matches!(
        CardNumber::parse("4111 1111 1111 1112"),
        Err(VaultError::InvalidInput(_))
    ));
    let card = vault
        .tokenize_card(alice, &CardNumber::parse("5555-5555-5555-4444").unwrap())
        .unwrap();
    assert_eq!(card.last4, "4444");
    assert!(card.token.as_str().starts_with("tok_card_"));
    assert!(!card.token.as_str().contains("5555"));
    let bank = vault
        .tokenize_bank_account(
            alice,
            &BankAccountNumber::parse("GB29 NWBK 6016 1331 9268 19").unwrap(),
        )
        .unwrap();
    assert!(bank.token.as_str().starts_with("tok_bank_"));
    assert_eq!(bank.last4, "6819");
    let info = vault
        .token_info(&TokenId::parse(card.token.as_str()).unwrap())
        .unwrap();
    assert_eq!((info.person, info.last4.as_str()), (alice, "4444"));
    assert_eq!(
        vault
            .reveal_token(&processing(), &reason(), &bank.token)
            .unwrap()
            .expose(),
        "GB29NWBK60161331926819"
    );
    let unknown = TokenId::parse(&format!("tok_card_{}", "0".repeat(32))).unwrap();
    assert!(matches!(
        vault.token_info(&unknown),
        Err(VaultError::NotFound("token"))
    ));
}

fn access_log_is_append_only(backend: Backend) {
    let fixture = Fixture::new(backend);
    let vault = fixture.vault(&MasterKeyRing::generate());
    let name = vault
        .put_person_field(person(1), FieldKind::LegalName, "Alice")
        .unwrap();
    vault.reveal(&compliance(), &reason(), name).unwrap();
    assert_eq!(vault.access_log(0, 10).unwrap().len(), 1);
    let update = fixture.raw_execute("UPDATE vault_access_log SET reason = 'nothing to see'");
    assert!(update.unwrap_err().contains("append-only"));
    let delete = fixture.raw_execute("DELETE FROM vault_access_log");
    assert!(delete.unwrap_err().contains("append-only"));
    if backend == Backend::Postgres {
        let truncate = fixture.raw_execute("TRUNCATE vault_access_log");
        assert!(truncate.unwrap_err().contains("append-only"));
    }
    let entries = vault.access_log(0, 10).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].reason, "KYC review of case 4711");
    // Appending still works.
    vault.reveal(&compliance(), &reason(), name).unwrap();
    let entries = vault.access_log(entries[0].sequence, 10).unwrap();
    assert_eq!(entries.len(), 1);
}

fn reveal_enforces_roles_and_logs_every_attempt(backend: Backend) {
    let fixture = Fixture::new(backend);
    let vault = fixture.vault(&MasterKeyRing::generate());
    let alice = person(1);
    let name = vault
        .put_person_field(alice, FieldKind::LegalName, "Alice")
        .unwrap();
    let card = vault
        .tokenize_card(alice, &CardNumber::parse(CARD).unwrap())
        .unwrap();
    for role in [Role::Analytics, Role::Advertising] {
        let accessor = Accessor::new(role, "dashboard").unwrap();
        let error = vault.reveal(&accessor, &reason(), name).unwrap_err();
        assert!(matches!(error, VaultError::PermissionDenied { .. }));
        assert!(vault
            .reveal_token(&accessor, &reason(), &card.token)
            .is_err());
    }
    assert!(vault
        .reveal_token(&compliance(), &reason(), &card.token)
        .is_err());
    // A data subject sees their own name, not someone else's.
    let own = vault
        .reveal(&Accessor::data_subject(alice), &reason(), name)
        .unwrap();
    assert_eq!(own.expose(), "Alice");
    assert!(matches!(
        vault.reveal(&Accessor::data_subject(person(2)), &reason(), name),
        Err(VaultError::PermissionDenied {
            role: Role::DataSubject,
            ..
        })
    ));
    assert!(Reason::parse("why").is_err());
    let log = vault.access_log(0, 100).unwrap();
    let denied = log
        .iter()
        .filter(|entry| entry.outcome == AccessOutcome::Denied)
        .count();
    let granted = log
        .iter()
        .filter(|entry| entry.outcome == AccessOutcome::Granted)
        .count();
    assert_eq!((denied, granted), (6, 1));
    assert!(log
        .windows(2)
        .all(|pair| pair[0].sequence < pair[1].sequence));
    assert!(log
        .iter()
        .all(|entry| !entry.reason.is_empty() && !entry.actor.is_empty()));
}

fn export_contains_own_data_only(backend: Backend) {
    let fixture = Fixture::new(backend);
    let vault = fixture.vault(&MasterKeyRing::generate());
    let (alice, bob) = (person(1), person(2));
    vault
        .put_person_field(alice, FieldKind::LegalName, "Alice Liddell")
        .unwrap();
    vault
        .put_person_field(alice, FieldKind::Address, "1 Rabbit Hole")
        .unwrap();
    vault
        .tokenize_card(alice, &CardNumber::parse(CARD).unwrap())
        .unwrap();
    vault
        .put_person_field(bob, FieldKind::LegalName, "Bob")
        .unwrap();
    let export = vault
        .export_person(&Accessor::data_subject(alice), &reason(), alice)
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(export.expose()).unwrap();
    assert_eq!(json["erased"], false);
    assert_eq!(json["fields"].as_array().unwrap().len(), 2);
    assert_eq!(json["tokens"][0]["last4"], "1111");
    assert!(!export.expose().contains("Bob"));
    assert!(!export.expose().contains(CARD_DIGITS));
    vault.shred_person(alice).unwrap();
    let export = vault
        .export_person(&Accessor::data_subject(alice), &reason(), alice)
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(export.expose()).unwrap();
    assert_eq!(json["erased"], true);
    assert!(json["fields"].as_array().unwrap().is_empty());
}

/// Every role × every field kind, written out: a change of the matrix must change
/// this table, on purpose.
#[test]
fn permission_matrix_is_exactly_as_designed() {
    use FieldKind::*;
    let expected = |role: Role| -> Vec<FieldKind> {
        match role {
            Role::DataSubject => vec![LegalName, DateOfBirth, Address, GovernmentId, SsnLast4],
            Role::SupportAgent => vec![LegalName, DateOfBirth, Address],
            Role::ComplianceOfficer => {
                vec![
                    LegalName,
                    DateOfBirth,
                    Address,
                    GovernmentId,
                    SsnLast4,
                    BankAccountNumber,
                ]
            }
            Role::PaymentProcessing => vec![LegalName, CardNumber, BankAccountNumber],
            Role::Analytics | Role::Advertising => vec![],
        }
    };
    let mut checked = 0;
    for role in Role::ALL {
        for kind in FieldKind::ALL {
            assert_eq!(
                may_reveal(role, kind),
                expected(role).contains(&kind),
                "{role} × {kind}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 48);
    for kind in FieldKind::ALL {
        assert!(!may_reveal(Role::Analytics, kind));
        assert!(!may_reveal(Role::Advertising, kind));
    }
}

/// After storing known values, none of them occurs anywhere in the SQLite files.
#[test]
fn sqlite_files_hold_no_plaintext() {
    let fixture = Fixture::new(Backend::Sqlite);
    let vault = fixture.vault(&MasterKeyRing::generate());
    let alice = person(0xa11ce);
    let name = "Zenobia Quillfeather-Marchbanks";
    vault
        .put_person_field(alice, FieldKind::LegalName, name)
        .unwrap();
    vault
        .put_person_field(alice, FieldKind::GovernmentId, "123-45-6789")
        .unwrap();
    vault
        .put_person_field(alice, FieldKind::Address, "221B Baker Street, London")
        .unwrap();
    vault
        .tokenize_card(alice, &CardNumber::parse(CARD).unwrap())
        .unwrap();
    vault
        .tokenize_bank_account(
            alice,
            &BankAccountNumber::parse("DE89370400440532013000").unwrap(),
        )
        .unwrap();
    drop(vault);
    let needles: [&[u8]; 8] = [
        name.as_bytes(),
        b"Zenobia",
        b"123-45-6789",
        b"123456789",
        b"Baker Street",
        CARD_DIGITS.as_bytes(),
        b"4111 1111",
        b"DE89370400440532013000",
    ];
    let mut scanned = 0;
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", fixture.sqlite_path().display());
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        scanned += bytes.len();
        for needle in needles {
            assert!(
                !bytes.windows(needle.len()).any(|window| window == needle),
                "{} found in {path}",
                String::from_utf8_lossy(needle)
            );
        }
    }
    assert!(scanned > 0);
}

#[test]
fn secrets_print_masked() {
    let card = CardNumber::parse(CARD).unwrap();
    assert!(!format!("{card:?}").contains("41111111"));
    let bank = BankAccountNumber::parse("DE89370400440532013000").unwrap();
    assert!(!format!("{bank:?}").contains("3704004405"));
    let ring = MasterKeyRing::generate();
    let key_file = ring.to_key_file();
    assert_eq!(format!("{key_file:?}"), "***");
    assert!(!format!("{ring:?}").contains('='));
}
