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

/// One HTTP/1.1 request with a JSON body; answers the status and the body.
fn call(port: u16, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let authorization = token
        .map(|token| format!("Authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{authorization}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

const OPERATOR_TOKEN: &str = "serve-test-operator-token-0123456789";

/// Writes a small list in the official SDN CSV format: one individual per name.
fn write_list(directory: &std::path::Path, names: &[&str]) {
    let mut sdn = String::new();
    for (index, name) in names.iter().enumerate() {
        sdn.push_str(&format!(
            "{},\"{name}\",\"individual\",\"SDGT\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \r\n",
            900_001 + index
        ));
    }
    std::fs::create_dir_all(directory).unwrap();
    std::fs::write(directory.join("sdn.csv"), sdn).unwrap();
    std::fs::write(directory.join("alt.csv"), "").unwrap();
}

/// `mizan serve` on `data` with the list in `list`, its log in `log`; answers the
/// child and its port once it serves.
fn start(
    data: &std::path::Path,
    list: &std::path::Path,
    log: &std::path::Path,
) -> (std::process::Child, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mizan"))
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("MIZAN_SANCTIONS_DIR", list)
        .env("MIZAN_OPERATOR_TOKEN", OPERATOR_TOKEN)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(port, "/healthz").is_none() {
        assert!(child.try_wait().unwrap().is_none(), "mizan serve exited");
        assert!(Instant::now() < deadline, "mizan serve did not answer");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, port)
}

fn stop(mut child: std::process::Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
}

/// Polls `log` until it holds `text` (the start re-screening runs in the background).
fn wait_for_log(log: &std::path::Path, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let written = std::fs::read_to_string(log).unwrap_or_default();
        if written.contains(text) {
            return written;
        }
        assert!(Instant::now() < deadline, "no {text:?} in {written}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_start_with_a_changed_list_screens_everyone_again() {
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path().join("data");
    let list = directory.path().join("ofac");
    write_list(&list, &["PETROV, Anatoly Sergeyevich"]);

    let first_log = directory.path().join("first.log");
    let (child, port) = start(&data, &list, &first_log);
    let signup = r#"{"handle":"vera","email":"vera@example.com","password":"correct horse battery","legal_name":"Vera Ostrova"}"#;
    let (status, body) = call(port, "POST", "/v1/people", None, signup);
    assert_eq!(status, 201, "{body}");
    // A first start has no digest stored: everyone (nobody yet) is screened.
    wait_for_log(&first_log, "re-screened everyone");
    let (status, queue) = call(port, "GET", "/v1/cases", Some(OPERATOR_TOKEN), "");
    assert_eq!(status, 200, "{queue}");
    assert!(queue.contains("\"cases\":[]"), "a clear name: {queue}");
    stop(child);

    // A new snapshot names Vera: the next start screens her without being asked.
    write_list(&list, &["PETROV, Anatoly Sergeyevich", "OSTROVA, Vera"]);
    let second_log = directory.path().join("second.log");
    let (child, port) = start(&data, &list, &second_log);
    wait_for_log(&second_log, "re-screened everyone");
    let (status, queue) = call(port, "GET", "/v1/cases", Some(OPERATOR_TOKEN), "");
    assert_eq!(status, 200, "{queue}");
    assert!(queue.contains("\"trigger\":\"list_reload\""), "{queue}");
    assert!(queue.contains("\"handle\":\"vera\""), "{queue}");
    assert!(queue.contains("\"ent_num\":900002"), "{queue}");
    assert!(
        !queue.contains("Vera Ostrova"),
        "the queue holds no name: {queue}"
    );
    stop(child);

    // The same list again: nobody is screened at start.
    let third_log = directory.path().join("third.log");
    let (child, _port) = start(&data, &list, &third_log);
    let written = wait_for_log(&third_log, "sanctions list unchanged");
    assert!(!written.contains("re-screened everyone"), "{written}");
    stop(child);
}
