//! A small HTTP/1.1 client over `TcpStream` for tests and benches: one
//! request per connection (`Connection: close`), connecting from inside a
//! network namespace when asked, reading whole answers or following a
//! chunked NDJSON stream line by line as it arrives.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::time::Duration;

/// Connects to `addr`, from inside network namespace `netns` when given
/// (a thread enters it; the socket stays there).
pub fn connect(addr: SocketAddr, netns: Option<&str>) -> std::io::Result<TcpStream> {
    let Some(ns) = netns else {
        return TcpStream::connect_timeout(&addr, Duration::from_secs(5));
    };
    let path = format!("/var/run/netns/{ns}");
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(&path)?;
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)?;
            TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        })
        .join()
        .expect("the connecting thread panicked")
    })
}

/// A request being built.
pub struct Request {
    addr: SocketAddr,
    netns: Option<String>,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// An answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.text()))
    }

    /// Asserts the status, showing the body when it differs.
    pub fn expect(self, status: u16) -> Response {
        assert_eq!(self.status, status, "status; body: {}", self.text());
        self
    }

    /// Asserts an error answer: `status` and one JSON line whose `error`
    /// contains `words`.
    pub fn expect_error(self, status: u16, words: &str) -> Response {
        let r = self.expect(status);
        let text = r.text();
        assert_eq!(text.lines().count(), 1, "one line: {text:?}");
        let error = r.json()["error"].as_str().unwrap_or_default().to_owned();
        assert!(error.contains(words), "{words:?} not in {error:?}");
        r
    }
}

impl Request {
    /// `method path` to `addr`, from inside `netns` when given.
    pub fn new(addr: SocketAddr, netns: Option<&str>, method: &str, path: &str) -> Request {
        Request {
            addr,
            netns: netns.map(str::to_owned),
            method: method.to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets a JSON body.
    pub fn json(self, body: &serde_json::Value) -> Request {
        self.header("Content-Type", "application/json")
            .body(body.to_string().into_bytes())
    }

    /// Sets the body.
    pub fn body(mut self, body: Vec<u8>) -> Request {
        self.body = body;
        self
    }

    fn head(&self, content_length: Option<usize>) -> String {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.method, self.path, self.addr
        );
        for (n, v) in &self.headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        if let Some(n) = content_length {
            head.push_str(&format!("Content-Length: {n}\r\n"));
        }
        head.push_str("\r\n");
        head
    }

    /// Opens the connection and sends the head and the body.
    pub fn open(&self) -> TcpStream {
        let mut stream = connect(self.addr, self.netns.as_deref()).expect("connecting");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let length = (!self.body.is_empty() || self.method == "POST").then_some(self.body.len());
        stream.write_all(self.head(length).as_bytes()).unwrap();
        stream.write_all(&self.body).unwrap();
        stream
    }

    /// Sends the head only, announcing `length` body bytes that never come.
    pub fn open_without_body(&self, length: usize) -> TcpStream {
        let mut stream = connect(self.addr, self.netns.as_deref()).expect("connecting");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        stream
            .write_all(self.head(Some(length)).as_bytes())
            .unwrap();
        stream
    }

    /// Sends it and reads the whole answer.
    pub fn send(self) -> Response {
        read_response(self.open())
    }

    /// Sends it and follows the answer's body line by line as it arrives.
    pub fn stream_lines(self) -> (Response, Box<dyn Iterator<Item = String>>) {
        let mut reader = BufReader::new(self.open());
        let (status, headers) = read_head(&mut reader);
        let head = Response {
            status,
            headers,
            body: Vec::new(),
        };
        let lines = BufReader::new(Chunked {
            inner: reader,
            left: 0,
            done: false,
        })
        .lines()
        .map_while(Result::ok);
        (head, Box::new(lines))
    }
}

fn read_head(reader: &mut BufReader<TcpStream>) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .expect("reading the status line");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).expect("reading a header");
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((n, v)) = l.split_once(':') {
            headers.push((n.trim().to_owned(), v.trim().to_owned()));
        }
    }
    (status, headers)
}

/// Reads a whole answer (the server closes after it: `Connection: close`).
pub fn read_response(stream: TcpStream) -> Response {
    let mut reader = BufReader::new(stream);
    let (status, headers) = read_head(&mut reader);
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let mut body = Vec::new();
    if chunked {
        Chunked {
            inner: reader,
            left: 0,
            done: false,
        }
        .read_to_end(&mut body)
        .expect("reading a chunked body");
    } else {
        reader.read_to_end(&mut body).expect("reading the body");
    }
    Response {
        status,
        headers,
        body,
    }
}

/// A chunked transfer-encoded body.
struct Chunked {
    inner: BufReader<TcpStream>,
    left: usize,
    done: bool,
}

impl Read for Chunked {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        if self.left == 0 {
            let mut size = String::new();
            self.inner.read_line(&mut size)?;
            if size.trim().is_empty() {
                // The CRLF closing the previous chunk.
                size.clear();
                self.inner.read_line(&mut size)?;
            }
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| std::io::Error::other(format!("bad chunk size {size:?}")))?;
            if n == 0 {
                self.done = true;
                return Ok(0);
            }
            self.left = n;
        }
        let want = buf.len().min(self.left);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.left -= n;
        Ok(n)
    }
}
