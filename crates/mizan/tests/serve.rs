//! `mizan serve` as a person runs it: the real binary, a real port, SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

/// The OFAC list of the repository.
const SANCTIONS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/ofac");

#[test]
fn without_its_sanctions_list_the_binary_refuses_to_start() {
    let directory = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mizan"))
        .args([
            "--data-dir",
            directory.path().to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("MIZAN_SANCTIONS_DIR", directory.path().join("no-list"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("sanctions list"), "{stderr}");
}

#[test]
fn the_binary_serves_and_stops_cleanly_on_sigterm() {
    let directory = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mizan"))
        .args([
            "--data-dir",
            directory.path().to_str().unwrap(),
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        // `serve` loads the sanctions list from `data/ofac` under the working
        // directory (the repository root); tests run in the crate's directory.
        .env("MIZAN_SANCTIONS_DIR", SANCTIONS_DIR)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let health = loop {
        if let Some(response) = get(port, "/healthz") {
            break response;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "mizan serve exited before serving"
        );
        assert!(
            Instant::now() < deadline,
            "mizan serve did not answer in time"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let ready = get(port, "/readyz").unwrap();
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "mizan serve exited with {exit:?}");
    // The ledger was flushed and closed: verify finds the platform accounts intact.
    let verify = Command::new(env!("CARGO_BIN_EXE_mizan"))
        .args([
            "--data-dir",
            directory.path().to_str().unwrap(),
            "ledger",
            "verify",
        ])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(String::from_utf8_lossy(&verify.stdout).contains("2 accounts"));
}
