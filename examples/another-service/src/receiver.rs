//! A receiver on 127.0.0.1: it answers `200 OK` to the first `POST` it gets
//! and hands over what it received.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// What a delivery brought: its Standard Webhooks headers and its body.
#[derive(Debug)]
pub struct Delivered {
    pub webhook_id: String,
    pub webhook_timestamp: i64,
    pub webhook_signature: String,
    pub body: String,
}

/// A receiver listening on a free loopback port.
pub struct Receiver {
    address: SocketAddr,
    delivered: oneshot::Receiver<anyhow::Result<Delivered>>,
}

impl Receiver {
    /// Binds 127.0.0.1:0 and waits for one request in the background.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (tell, delivered) = oneshot::channel();
        tokio::spawn(async move {
            let received = match listener.accept().await {
                Ok((stream, _)) => receive(stream).await,
                Err(err) => Err(err.into()),
            };
            // The program may have given up waiting; nothing else to do then.
            let _ = tell.send(received);
        });
        Ok(Self { address, delivered })
    }

    /// The webhook URL of this receiver.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.address)
    }

    /// The first request, once it has arrived.
    pub async fn delivered(self) -> anyhow::Result<Delivered> {
        self.delivered
            .await
            .context("the receiver stopped before a request came")?
    }
}

/// Reads one HTTP/1.1 request with a `content-length` body and answers 200.
async fn receive(mut stream: TcpStream) -> anyhow::Result<Delivered> {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let read = stream.read(&mut chunk).await?;
        anyhow::ensure!(read > 0, "the connection closed before the headers ended");
        raw.extend_from_slice(&chunk[..read]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let header = |name: &str| {
        head.lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(key, _)| key.trim().eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim().to_owned())
            .with_context(|| format!("no {name} header"))
    };
    let length: usize = header("content-length")?.parse()?;
    while raw.len() < head_end + length {
        let read = stream.read(&mut chunk).await?;
        anyhow::ensure!(read > 0, "the connection closed before the body ended");
        raw.extend_from_slice(&chunk[..read]);
    }
    let body = String::from_utf8(raw[head_end..head_end + length].to_vec())?;
    stream
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        .await?;
    Ok(Delivered {
        webhook_id: header("webhook-id")?,
        webhook_timestamp: header("webhook-timestamp")?.parse()?,
        webhook_signature: header("webhook-signature")?,
        body,
    })
}
