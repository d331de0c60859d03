//! A bare HTTP/1.1 client on a loopback socket, for requests no HTTP library
//! would send: bytes written exactly as given, bodies trickled, and the
//! answer read back as the server wrote it.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout};

/// Longer than any answer a test waits for.
const PATIENCE: Duration = Duration::from_secs(15);

/// One answer as it came off the socket.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    /// Names in lower case, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body as JSON; panics, showing the answer, when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON: {self:?}"))
    }
}

pub struct RawConnection {
    incoming: Incoming,
    writer: OwnedWriteHalf,
}

impl RawConnection {
    /// Connects to `port` on 127.0.0.1.
    pub async fn open(port: u16) -> RawConnection {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect to the application");
        let (reader, writer) = stream.into_split();
        RawConnection {
            incoming: Incoming {
                reader,
                buffer: Vec::new(),
            },
            writer,
        }
    }

    /// Writes `bytes` as they are. A server that answers and closes before
    /// reading everything makes the write fail; the answer may still be read.
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes).await?;
        self.writer.flush().await
    }

    /// Closes the sending half: the server reads the end of the request.
    pub async fn finish_sending(&mut self) {
        self.writer.shutdown().await.unwrap();
    }

    /// Writes `bytes` one at a time, `every` apart, until an answer comes;
    /// returns that answer (which may come before all bytes are written).
    pub async fn trickle(&mut self, bytes: &[u8], every: Duration) -> RawAnswer {
        let writer = &mut self.writer;
        let trickle = async move {
            for byte in bytes {
                sleep(every).await;
                if writer.write_all(std::slice::from_ref(byte)).await.is_err() {
                    break;
                }
            }
            std::future::pending::<()>().await
        };
        tokio::select! {
            answer = self.incoming.read_answer() => answer,
            () = trickle => unreachable!("a pending future never ends"),
        }
    }

    /// Reads one answer: the head, then `content-length` bytes of body.
    pub async fn read_answer(&mut self) -> RawAnswer {
        self.incoming.read_answer().await
    }

    /// Like [`RawConnection::read_answer`], but `None` when the connection
    /// ends first: a server that closes with request bytes still unread
    /// resets the connection, which can discard an answer already sent.
    pub async fn try_read_answer(&mut self) -> Option<RawAnswer> {
        self.incoming.try_read_answer().await
    }

    /// Whether the server closes the connection within `wait`, sending
    /// nothing more.
    pub async fn closes_within(&mut self, wait: Duration) -> bool {
        let mut byte = [0; 1];
        match timeout(wait, self.incoming.reader.read(&mut byte)).await {
            Ok(Ok(0)) | Ok(Err(_)) => true,
            Ok(Ok(_)) => panic!("more bytes after the answer: {byte:?}"),
            Err(_) => false,
        }
    }
}

/// The reading half, with what was read but not yet consumed.
struct Incoming {
    reader: OwnedReadHalf,
    buffer: Vec<u8>,
}

impl Incoming {
    async fn read_answer(&mut self) -> RawAnswer {
        match self.try_read_answer().await {
            Some(answer) => answer,
            None => panic!(
                "the connection closed before an answer; got {:?}",
                String::from_utf8_lossy(&self.buffer)
            ),
        }
    }

    async fn try_read_answer(&mut self) -> Option<RawAnswer> {
        let head_end = loop {
            if let Some(at) = find(&self.buffer, b"\r\n\r\n") {
                break at;
            }
            if self.fill().await == 0 {
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buffer[..head_end]).into_owned();
        self.buffer.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not a status line: {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(name, _)| name == "content-length")
            .and_then(|(_, value)| value.parse().ok())
            .unwrap_or(0);
        while self.buffer.len() < length {
            assert!(self.fill().await > 0, "the body was cut short");
        }
        let body = self.buffer.drain(..length).collect();
        Some(RawAnswer {
            status,
            headers,
            body,
        })
    }

    /// Reads what has arrived; 0 when the server closed the connection.
    async fn fill(&mut self) -> usize {
        let mut chunk = [0; 8192];
        let read = timeout(PATIENCE, self.reader.read(&mut chunk))
            .await
            .expect("the server answers in time")
            .unwrap_or(0);
        self.buffer.extend_from_slice(&chunk[..read]);
        read
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
