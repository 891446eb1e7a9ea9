//! `mizan sanctions screen` end to end: the real binary, the real SDN snapshot, names
//! piped in, one JSON object per input line read back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn list_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/ofac")
}

/// Runs `mizan sanctions screen` with `input` on standard input; returns the parsed
/// output lines.
fn screen(input: &[u8]) -> Vec<serde_json::Value> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mizan"))
        .args(["sanctions", "screen", "--list-dir"])
        .arg(list_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn screens_names_one_json_object_per_line() {
    let lines = screen("Manuel Noriega\nJohn Smith\nnoriega, manuel antonio\nAli\n".as_bytes());
    assert_eq!(lines.len(), 4);
    for (index, line) in lines.iter().enumerate() {
        assert_eq!(line["line"], index as u64 + 1);
        assert!(line.get("error").is_none(), "{line}");
    }
    assert_eq!(lines[0]["name"], "Manuel Noriega");
    assert_eq!(lines[0]["decision"], "block");
    let first = &lines[0]["matches"][0];
    assert_eq!(first["ent_num"], 1572);
    assert_eq!(first["name"], "NORIEGA, Manuel Antonio");
    assert_eq!(first["type"], "individual");
    let score = first["score"].as_f64().unwrap();
    assert!((0.9..=1.0).contains(&score), "{score}");
    assert_eq!(lines[1]["decision"], "clear");
    assert_eq!(lines[1]["matches"].as_array().unwrap().len(), 0);
    assert_eq!(lines[2]["decision"], "block");
    assert_eq!(lines[2]["matches"][0]["score"], 1.0);
    assert_eq!(lines[3]["decision"], "clear");
}

#[test]
fn unreadable_lines_get_an_error_and_fail_closed() {
    let mut input = Vec::new();
    input.extend_from_slice(b"\n");
    input.extend_from_slice(&vec![b'a'; 100_000]);
    input.extend_from_slice(b"\n");
    input.extend_from_slice(b"Jos\xe9 \xff\n");
    input.extend_from_slice(b"  ,.-  \r\n");
    input.extend_from_slice(b"Ayman al-Zawahiri"); // no final newline
    let lines = screen(&input);
    assert_eq!(lines.len(), 5, "{lines:?}");
    let codes: Vec<&str> = lines[..4]
        .iter()
        .map(|line| line["error"]["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        ["empty_name", "name_too_long", "invalid_utf8", "empty_name"]
    );
    for line in &lines[..4] {
        assert_eq!(line["decision"], "review");
        assert!(line["error"]["message"].as_str().is_some());
    }
    assert_eq!(lines[4]["decision"], "block");
    assert_eq!(lines[4]["matches"][0]["ent_num"], 2676);
}

#[test]
fn a_missing_list_fails_loudly() {
    let output = Command::new(env!("CARGO_BIN_EXE_mizan"))
        .args(["sanctions", "screen", "--list-dir", "/nonexistent/ofac"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("sanctions list"));
}
