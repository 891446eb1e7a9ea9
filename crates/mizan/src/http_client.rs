//! A lean HTTP/1.1 client for the measured loop of `mizan bench http`: one keep-alive
//! connection with one request in flight, each request written in one `write` and
//! its answer read by `Content-Length`.
//!
//! The load generator shares the server's two cores, so what it spends per request
//! is taken from the server: reqwest (hyper's pooled client) cost about 30 µs of CPU
//! per request here, this about a fifth of that. Set-up and the balance checks still
//! use reqwest; only the measured requests go through this.

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest response head accepted.
const HEAD_BYTES_MAX: usize = 16 * 1024;
/// Longest response body accepted.
const BODY_BYTES_MAX: usize = 1024 * 1024;
const READ_CHUNK_BYTES: usize = 16 * 1024;

pub struct Connection {
    stream: TcpStream,
    host: String,
    request: Vec<u8>,
    response: Vec<u8>,
}

impl Connection {
    /// Connects to `base`, written `http://host:port`.
    pub async fn connect(base: &str) -> anyhow::Result<Connection> {
        let host = base
            .strip_prefix("http://")
            .context("only http:// bases are supported")?
            .trim_end_matches('/')
            .to_owned();
        let stream = TcpStream::connect(&host).await?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            host,
            request: Vec::with_capacity(1024),
            response: Vec::with_capacity(READ_CHUNK_BYTES),
        })
    }

    /// Sends one request and reads its whole answer; returns the status code.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        json_body: Option<&[u8]>,
    ) -> anyhow::Result<u16> {
        self.request.clear();
        let head = format!("{method} {path} HTTP/1.1\r\nhost: {}\r\n", self.host);
        self.request.extend_from_slice(head.as_bytes());
        for (name, value) in headers {
            for part in [name.as_bytes(), b": ", value.as_bytes(), b"\r\n"] {
                self.request.extend_from_slice(part);
            }
        }
        if let Some(body) = json_body {
            let length = format!(
                "content-type: application/json\r\ncontent-length: {}\r\n",
                body.len()
            );
            self.request.extend_from_slice(length.as_bytes());
        }
        self.request.extend_from_slice(b"\r\n");
        if let Some(body) = json_body {
            self.request.extend_from_slice(body);
        }
        self.stream.write_all(&self.request).await?;
        self.read_response().await
    }

    async fn read_response(&mut self) -> anyhow::Result<u16> {
        self.response.clear();
        let head_end = loop {
            if let Some(at) = find(&self.response, b"\r\n\r\n") {
                break at + 4;
            }
            if self.response.len() > HEAD_BYTES_MAX {
                bail!("response head longer than {HEAD_BYTES_MAX} bytes");
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.response[..head_end]).context("response head")?;
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse::<u16>().ok())
            .context("response status line")?;
        let mut body_bytes = 0;
        for line in head.split("\r\n").skip(1) {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            if name.eq_ignore_ascii_case("content-length") {
                body_bytes = value.trim().parse::<usize>().context("content-length")?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                bail!("chunked responses are not supported");
            }
        }
        if body_bytes > BODY_BYTES_MAX {
            bail!("response body longer than {BODY_BYTES_MAX} bytes");
        }
        while self.response.len() < head_end + body_bytes {
            self.fill().await?;
        }
        if self.response.len() > head_end + body_bytes {
            bail!("more bytes than one response: the server answered twice");
        }
        Ok(status)
    }

    async fn fill(&mut self) -> anyhow::Result<()> {
        let start = self.response.len();
        self.response.resize(start + READ_CHUNK_BYTES, 0);
        let read = self.stream.read(&mut self.response[start..]).await?;
        self.response.truncate(start + read);
        if read == 0 {
            bail!("the server closed the connection");
        }
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
