//! Plain-HTTP/1.x connections, served without hyper.
//!
//! Why: a boot storm is hundreds of phones that each open a fresh connection for one small
//! file. Per request, hyper's generic connection machinery (a large connection future moved
//! into every task, its dispatcher and write queue) cost more CPU than the rest of our user
//! space together. This loop reads the head into one buffer, parses it with httparse,
//! asks the shared [`Handler`] for the response and sends head and body in one vectored
//! write. HTTPS stays on hyper, which also speaks HTTP/2 to clients that offer it.
//!
//! What it speaks: HTTP/1.1 with keep-alive and pipelining; HTTP/1.0 and `Connection:
//! close` get one response, then the connection closes. Every method reaches the handler
//! (which answers 405 to all but GET and HEAD). A request body announced by a small
//! Content-Length is read and dropped; any other body closes the connection after the
//! response. Heads over [`MAX_HEAD`] get 431 and unparsable heads 400; like hyper's, those
//! never reach the handler and make no event, since there is no name to report.
//!
//! A fresh connection usually has its request waiting in the socket when it is accepted,
//! and an empty send buffer. On Unix the accept loop therefore serves that first request
//! itself ([`serve_at_once`]) and spawns a task for the connection only if it stays open
//! or has to wait ([`Resume`] says where the task goes on). In the task, too, every read
//! and write is first tried at once on the socket ([`now`]); only when that would block
//! does it wait for the runtime's readiness events.
//!
//! Invariants: a head must arrive within `head_timeout` of the server starting to wait for
//! it, idle keep-alive time included (slow-loris guard); once shutdown begins, idle
//! connections close at once and a response in flight is finished unless the hard stop
//! comes first.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::{Method, StatusCode, Uri};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Shared;
use super::handler::{Reply, RequestHead, Wanted, text_response};

/// Largest request head accepted; phones send a few hundred bytes.
const MAX_HEAD: usize = 16 * 1024;
/// Header lines accepted in one head.
const MAX_HEADERS: usize = 64;
/// Bytes asked of the socket per read while a head is incomplete.
const READ_CHUNK: usize = 4096;
/// A request body up to this size is read and dropped so the connection can be kept.
const MAX_DISCARDED_BODY: u64 = 64 * 1024;
/// How much unread input is drained, and for how long, before a refused connection closes.
const LINGER_BYTES: usize = 256 * 1024;
const LINGER_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// Where a connection's task takes over from [`serve_at_once`] (or starts afresh).
pub(super) enum Resume {
    /// Read the next request. `input` holds what was read of it so far; the head, when
    /// already parsed, is still to have its body read or dropped.
    Read(BytesMut, Option<Box<ParsedHead>>),
    /// Finish sending this response, then go on reading if it keeps the connection.
    Send(BytesMut, Box<Unsent>),
}

impl Resume {
    #[cfg(not(unix))]
    pub(super) fn fresh() -> Resume {
        Resume::Read(BytesMut::with_capacity(READ_CHUNK), None)
    }
}

/// What the accept loop does with a connection after [`serve_at_once`].
#[cfg(unix)]
pub(super) enum AtOnce {
    /// Nothing more is owed on it: close it.
    Close,
    /// Hand it to a task on the runtime, which goes on from here.
    Continue(Resume),
}

/// Serves a freshly accepted connection's first request without a task, when it is already
/// waiting in the socket and its answer fits the socket's send buffer: the usual case in a
/// boot storm, with TCP_DEFER_ACCEPT on the listener. Anything else (no request yet, half a
/// head, a body to read, a refusal to linger over, a send buffer full) is left, where it
/// stands, to a task: see [`AtOnce::Continue`].
///
/// Why: a task per connection, with its spawn, its epoll registration and removal and its
/// timer, was a fifth of the server's CPU per request.
#[cfg(unix)]
pub(super) fn serve_at_once(socket: &socket2::Socket, peer: SocketAddr, shared: &Shared) -> AtOnce {
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    match now::read(socket, &mut input) {
        Ok(0) => return AtOnce::Close,
        Ok(_) => {}
        Err(e) if now::must_wait(&e) => return AtOnce::Continue(Resume::Read(input, None)),
        Err(_) => return AtOnce::Close,
    }
    let head = match parse_head(&mut input) {
        Ok(Some(head)) => head,
        Ok(None) => return AtOnce::Continue(Resume::Read(input, None)),
        Err(RequestError::Refuse(status, text)) => {
            let refusal = Box::new(Unsent::refusal(status, text));
            return AtOnce::Continue(Resume::Send(input, refusal));
        }
        Err(RequestError::Closed) => return AtOnce::Close,
    };
    if !matches!(head.body, BodyFraming::None) {
        return AtOnce::Continue(Resume::Read(input, Some(Box::new(head))));
    }
    let mut unsent = respond(shared, head.parsed, peer);
    match unsent.send_now(socket) {
        // Without a body there is nothing unread to linger over.
        Ok(true) if unsent.keep_alive => AtOnce::Continue(Resume::Read(input, None)),
        Ok(true) => AtOnce::Close,
        Ok(false) => AtOnce::Continue(Resume::Send(input, Box::new(unsent))),
        // Dropping the response records how far it got.
        Err(_) => AtOnce::Close,
    }
}

/// Serves requests on one plain-HTTP connection, from `resume`, until the client or the
/// server closes it.
pub(super) async fn serve(
    stream: &mut TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    mut resume: Resume,
) {
    loop {
        let (input, unsent) = match resume {
            Resume::Send(input, unsent) => (input, *unsent),
            Resume::Read(mut input, head) => {
                let waited = tokio::select! {
                    biased;
                    read = tokio::time::timeout(shared.head_timeout, next_request(stream, &mut input, head)) => read,
                    // Between requests nothing is owed to anyone: close at once.
                    () = shared.shutdown.cancelled() => return,
                };
                let unsent = match waited {
                    Ok(Ok(parsed)) => respond(shared, parsed, peer),
                    Ok(Err(RequestError::Refuse(status, text))) => Unsent::refusal(status, text),
                    // The client closed, reset, or was too slow to send a head: nothing to
                    // answer.
                    Ok(Err(RequestError::Closed)) | Err(_) => return,
                };
                (input, unsent)
            }
        };
        if !send(stream, unsent, shared).await {
            return;
        }
        resume = Resume::Read(input, None);
    }
}

/// The handler's answer to `parsed`, ready to send.
fn respond(shared: &Shared, parsed: Parsed, peer: SocketAddr) -> Unsent {
    let response = shared.handler.handle(&parsed.request, peer);
    let keep_alive = parsed.keep_alive && !shared.shutdown.is_cancelled();
    Unsent::new(response, keep_alive, parsed.unread_body)
}

/// Sends the rest of `unsent`; returns whether the connection may carry another request.
async fn send(stream: &mut TcpStream, mut unsent: Unsent, shared: &Shared) -> bool {
    let written = tokio::select! {
        biased;
        written = unsent.send(stream) => written,
        // Dropping the response unfinished records a failed fetch.
        () = shared.hard_stop.cancelled() => return false,
    };
    if written.is_err() || !unsent.keep_alive {
        if written.is_ok() && unsent.linger {
            linger(stream).await;
        }
        return false;
    }
    true
}

/// Closes our side, then reads and drops what the client still sends (bounded in bytes and
/// time) before the socket is closed. Closing a socket with unread input makes the kernel
/// send a reset, and a client that is still writing may then lose the answer it was sent.
async fn linger(stream: &mut TcpStream) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let mut budget = LINGER_BYTES;
    let drain = async {
        while budget > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(n) => budget = budget.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

/// One parsed request and whether the connection may carry another after it.
struct Parsed {
    request: PlainRequest,
    keep_alive: bool,
    /// A body follows that is not read; the connection closes after the response.
    unread_body: bool,
}

enum RequestError {
    /// Answer with this status and text, then close.
    Refuse(StatusCode, &'static str),
    Closed,
}

impl From<io::Error> for RequestError {
    fn from(_: io::Error) -> RequestError {
        RequestError::Closed
    }
}

/// Reads until `input` holds a whole head (unless `head` is one already parsed), parses
/// it, and consumes a small body if the request announced one.
async fn next_request(
    stream: &mut TcpStream,
    input: &mut BytesMut,
    head: Option<Box<ParsedHead>>,
) -> Result<Parsed, RequestError> {
    if let Some(head) = head {
        return finish_body(stream, input, *head).await;
    }
    loop {
        if !input.is_empty() {
            if let Some(head) = parse_head(input)? {
                return finish_body(stream, input, head).await;
            }
            if input.len() >= MAX_HEAD {
                return Err(too_large());
            }
        }
        if read_more(stream, input).await? == 0 {
            // End of stream; half a head is not worth an answer.
            return Err(RequestError::Closed);
        }
    }
}

/// Appends what the socket holds to `input`, waiting for it only if there is nothing yet.
async fn read_more(stream: &mut TcpStream, input: &mut BytesMut) -> io::Result<usize> {
    match now::read(stream, input) {
        Err(e) if now::must_wait(&e) => {
            input.reserve(READ_CHUNK);
            stream.read_buf(input).await
        }
        done => done,
    }
}

fn too_large() -> RequestError {
    RequestError::Refuse(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "request head too large\n",
    )
}

fn malformed() -> RequestError {
    RequestError::Refuse(StatusCode::BAD_REQUEST, "bad request\n")
}

/// What a head says about the body that follows it.
enum BodyFraming {
    None,
    Discard(u64),
    /// Chunked, or too big to read and drop: answer, then close.
    Unread,
}

pub(super) struct ParsedHead {
    parsed: Parsed,
    body: BodyFraming,
}

/// A parsed plain-HTTP request: its method and target, and the headers the handler reads
/// ([`Wanted`]) as ranges of the head's bytes.
pub(super) struct PlainRequest {
    method: Method,
    uri: Uri,
    head: Bytes,
    wanted: [Option<Range<usize>>; Wanted::ALL.len()],
}

impl RequestHead for PlainRequest {
    fn method(&self) -> &Method {
        &self.method
    }

    fn path(&self) -> &str {
        self.uri.path()
    }

    fn path_and_query(&self) -> &str {
        self.uri.path_and_query().map_or("/", |pq| pq.as_str())
    }

    fn header(&self, wanted: Wanted) -> Option<&[u8]> {
        // The ranges were taken from this head while it was parsed, so `get` always finds
        // them; it is there so a mistake could only lose a header, never panic.
        self.wanted[wanted as usize]
            .clone()
            .and_then(|range| self.head.get(range))
    }

    fn has_client_identity(&self) -> bool {
        false
    }
}

/// Parses a complete head off the front of `input` (leaving any pipelined bytes), or
/// returns `None` if more bytes are needed.
///
/// Header names and values need no check of their own: httparse accepts exactly the bytes
/// `http::HeaderName` and `HeaderValue` do (token characters; visible ASCII, tab and
/// obs-text without DEL).
fn parse_head(input: &mut BytesMut) -> Result<Option<ParsedHead>, RequestError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut raw = httparse::Request::new(&mut slots);
    let length = match raw.parse(input) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(too_large()),
        Err(_) => return Err(malformed()),
    };
    // The head is split off as shared bytes, so the URI and header values are views into
    // it rather than copies; httparse's slices are turned into ranges first.
    let base = input.as_ptr() as usize;
    let range = |part: &[u8]| -> Range<usize> {
        let start = part.as_ptr() as usize - base;
        start..start + part.len()
    };
    // A complete head always has both; the check keeps a parser surprise from panicking.
    let (Some(method), Some(path)) = (raw.method, raw.path) else {
        return Err(malformed());
    };
    let method = Method::from_bytes(method.as_bytes()).map_err(|_| malformed())?;
    let target = range(path.as_bytes());
    let mut framing = Framing::default();
    // HTTP/1.1 keeps the connection unless told to close; HTTP/1.0 always closes (phones
    // speak 1.1, and 1.0's keep-alive extension is not worth its corner cases).
    let mut keep_alive = raw.version == Some(1);
    let mut wanted: [Option<Range<usize>>; Wanted::ALL.len()] = Default::default();
    for header in raw.headers.iter() {
        let name = header.name;
        if let Some(which) = Wanted::ALL
            .iter()
            .find(|w| name.eq_ignore_ascii_case(w.header_name().as_str()))
        {
            // The first value counts, as `HeaderMap::get` gives it.
            wanted[*which as usize].get_or_insert_with(|| range(header.value));
        } else if name.eq_ignore_ascii_case(CONNECTION.as_str()) {
            keep_alive &= !lists_close(header.value);
        } else {
            framing.note(name, header.value)?;
        }
    }
    let body = framing.body()?;
    let head = input.split_to(length).freeze();
    let uri = Uri::from_maybe_shared(head.slice(target)).map_err(|_| malformed())?;
    let unread_body = matches!(body, BodyFraming::Unread);
    Ok(Some(ParsedHead {
        parsed: Parsed {
            request: PlainRequest {
                method,
                uri,
                head,
                wanted,
            },
            keep_alive: keep_alive && !unread_body,
            unread_body,
        },
        body,
    }))
}

/// Whether a `Connection` value lists `close`.
fn lists_close(value: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"))
}

/// The body headers of a head, gathered while its headers are read.
#[derive(Default)]
struct Framing<'h> {
    chunked: bool,
    length: Option<&'h [u8]>,
}

impl<'h> Framing<'h> {
    fn note(&mut self, name: &str, value: &'h [u8]) -> Result<(), RequestError> {
        if name.eq_ignore_ascii_case(TRANSFER_ENCODING.as_str()) {
            self.chunked = true;
        } else if name.eq_ignore_ascii_case(CONTENT_LENGTH.as_str()) {
            match self.length {
                None => self.length = Some(value),
                // Two different lengths are a request-smuggling attempt, not a client
                // mistake.
                Some(first) if first != value => return Err(malformed()),
                Some(_) => {}
            }
        }
        Ok(())
    }

    fn body(&self) -> Result<BodyFraming, RequestError> {
        if self.chunked {
            return Ok(BodyFraming::Unread);
        }
        let Some(length) = self.length else {
            return Ok(BodyFraming::None);
        };
        let length: u64 = std::str::from_utf8(length)
            .ok()
            .filter(|text| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|text| text.parse().ok())
            .ok_or_else(malformed)?;
        Ok(match length {
            0 => BodyFraming::None,
            n if n <= MAX_DISCARDED_BODY => BodyFraming::Discard(n),
            _ => BodyFraming::Unread,
        })
    }
}

async fn finish_body(
    stream: &mut TcpStream,
    input: &mut BytesMut,
    head: ParsedHead,
) -> Result<Parsed, RequestError> {
    let BodyFraming::Discard(mut left) = head.body else {
        return Ok(head.parsed);
    };
    loop {
        let buffered = (input.len() as u64).min(left);
        let _ = input.split_to(buffered as usize);
        left -= buffered;
        if left == 0 {
            return Ok(head.parsed);
        }
        if read_more(stream, input).await? == 0 {
            return Err(RequestError::Closed);
        }
    }
}

/// A response on its way out: its encoded head and the body chunk being written, with how
/// much of each the socket has taken. The fetch event is sent when it is dropped, finished
/// or not.
pub(super) struct Unsent {
    response: Reply,
    head: Vec<u8>,
    head_sent: usize,
    chunk: Bytes,
    chunk_sent: usize,
    keep_alive: bool,
    /// Linger before closing: the client may still be sending what we did not read.
    linger: bool,
}

impl Unsent {
    fn new(mut response: Reply, keep_alive: bool, linger: bool) -> Unsent {
        let mut head = Vec::with_capacity(256);
        encode_head(&response, keep_alive, &mut head);
        let chunk = response.body.next_chunk().unwrap_or_default();
        Unsent {
            response,
            head,
            head_sent: 0,
            chunk,
            chunk_sent: 0,
            keep_alive,
            linger,
        }
    }

    /// A 400 or 431 with no event (there is no name to report), then close.
    fn refusal(status: StatusCode, text: &'static str) -> Unsent {
        Unsent::new(text_response(status, text), false, true)
    }

    /// What is left to write now, or `None` when the whole response is written.
    fn parts(&mut self) -> Option<[IoSlice<'_>; 2]> {
        if self.head_sent == self.head.len() && self.chunk_sent == self.chunk.len() {
            self.chunk = self.response.body.next_chunk()?;
            self.chunk_sent = 0;
        }
        Some([
            IoSlice::new(&self.head[self.head_sent..]),
            IoSlice::new(&self.chunk[self.chunk_sent..]),
        ])
    }

    fn advance(&mut self, mut written: usize) -> io::Result<()> {
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let from_head = written.min(self.head.len() - self.head_sent);
        self.head_sent += from_head;
        written -= from_head;
        self.chunk_sent += written;
        Ok(())
    }

    /// Writes what the socket takes without waiting; `true` once everything is written.
    #[cfg(unix)]
    fn send_now(&mut self, socket: &socket2::Socket) -> io::Result<bool> {
        loop {
            let written = match self.parts() {
                None => return Ok(true),
                Some(parts) => now::write(socket, &parts),
            };
            match written {
                Err(e) if now::must_wait(&e) => return Ok(false),
                written => self.advance(written?)?,
            }
        }
    }

    /// Writes the rest, a vectored write at a time: head and body in one system call when
    /// the socket takes them.
    async fn send(&mut self, stream: &mut TcpStream) -> io::Result<()> {
        loop {
            let written = match self.parts() {
                None => return Ok(()),
                Some(parts) => match now::write(stream, &parts) {
                    Err(e) if now::must_wait(&e) => stream.write_vectored(&parts).await,
                    done => done,
                },
            };
            self.advance(written?)?;
        }
    }
}

/// Socket calls made at once, whatever the runtime last knew of the socket's readiness.
///
/// Why this is sound with tokio: the runtime's readiness is only a hint that is re-checked
/// by the call itself. If we drain the socket here, the runtime's next attempt sees
/// `WouldBlock`, clears the hint and waits for the next edge, which new data always brings.
/// Only on Unix, where that reasoning is checked by the tests; elsewhere every call goes
/// through the runtime.
mod now {
    use std::io::{self, IoSlice};

    use bytes::BytesMut;

    /// The error means "try again through the runtime", not a failed connection.
    pub(super) fn must_wait(error: &io::Error) -> bool {
        matches!(
            error.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
        )
    }

    /// Reads into `input`'s spare capacity, which is not zeroed first: zeroing 4 KB a
    /// request to read a head of a few hundred bytes showed in a storm's profile.
    #[cfg(unix)]
    pub(super) fn read(stream: &impl std::os::fd::AsFd, input: &mut BytesMut) -> io::Result<usize> {
        input.reserve(super::READ_CHUNK);
        let socket = socket2::SockRef::from(stream);
        let spare = &mut input.spare_capacity_mut()[..super::READ_CHUNK];
        let read = socket.recv(spare)?;
        let filled = input.len() + read.min(super::READ_CHUNK);
        // SAFETY: recv wrote (initialised) the first `read` bytes of the spare capacity, and
        // never more than the slice it was given.
        unsafe { input.set_len(filled) };
        Ok(read)
    }

    #[cfg(unix)]
    pub(super) fn write(
        stream: &impl std::os::fd::AsFd,
        parts: &[IoSlice<'_>],
    ) -> io::Result<usize> {
        use std::io::Write as _;
        let socket = socket2::SockRef::from(stream);
        (&*socket).write_vectored(parts)
    }

    #[cfg(not(unix))]
    pub(super) fn read<S>(_: &S, _: &mut BytesMut) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }

    #[cfg(not(unix))]
    pub(super) fn write<S>(_: &S, _: &[IoSlice<'_>]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
}

fn encode_head(response: &Reply, keep_alive: bool, out: &mut Vec<u8>) {
    out.clear();
    let status = response.status;
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    if response.header(&DATE).is_none() {
        out.extend_from_slice(b"date: ");
        push_date(out);
        out.extend_from_slice(b"\r\n");
    }
    // A 304 describes the representation the client already has; a length here would be
    // read as that of an empty one. HEAD responses come with the GET length already set.
    let sends_length = status != StatusCode::NOT_MODIFIED
        && status != StatusCode::NO_CONTENT
        && !status.is_informational();
    if sends_length && response.header(&CONTENT_LENGTH).is_none() {
        out.extend_from_slice(b"content-length: ");
        let mut digits = [0; 20];
        out.extend_from_slice(format_length(response.body.remaining(), &mut digits));
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in &response.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// `length` in decimal, written into the end of `buffer`.
fn format_length(mut length: usize, buffer: &mut [u8; 20]) -> &[u8] {
    let mut at = buffer.len();
    loop {
        at -= 1;
        buffer[at] = b'0' + (length % 10) as u8;
        length /= 10;
        if length == 0 {
            return &buffer[at..];
        }
    }
}

/// The IMF-fixdate of now, formatted once per second per thread.
fn push_date(out: &mut Vec<u8>) {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};
    thread_local! {
        static CACHED: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHED.with_borrow_mut(|(cached_second, text)| {
        if *cached_second != second {
            *text = httpdate::fmt_http_date(now);
            *cached_second = second;
        }
        out.extend_from_slice(text.as_bytes());
    });
}

/// One request and its answer as a connection sends it; see [`fuzz_connection`].
pub(crate) struct FuzzExchange {
    /// `None` for a head refused before it had a method (400, 431).
    pub(crate) method: Option<Method>,
    pub(crate) status: StatusCode,
    /// The encoded response head, status line to blank line.
    pub(crate) head: Vec<u8>,
    pub(crate) body: Vec<u8>,
}

/// The fuzz hook behind `crate::fuzzing::http_head`: reads `input` as the bytes of one
/// connection the way [`serve`] does (pipelined heads; a body announced by a small
/// Content-Length is skipped; any other body, a refusal or `Connection: close` ends it),
/// answers each request with `handler` and encodes each response. Panics if the framing
/// breaks an invariant the loop relies on; returns the exchanges for the caller's checks.
pub(crate) fn fuzz_connection(
    input: &[u8],
    handler: &super::handler::Handler,
    peer: SocketAddr,
) -> Vec<FuzzExchange> {
    let mut input = BytesMut::from(input);
    let mut exchanges = Vec::new();
    loop {
        let before = input.len();
        let head = match parse_head(&mut input) {
            Ok(Some(head)) => head,
            Ok(None) | Err(RequestError::Closed) => return exchanges,
            Err(RequestError::Refuse(status, text)) => {
                let unsent = Unsent::refusal(status, text);
                assert!(!unsent.keep_alive, "a refused head kept its connection");
                exchanges.push(drain(None, unsent));
                return exchanges;
            }
        };
        assert!(input.len() < before, "a parsed head consumed no input");
        let mut last = !head.parsed.keep_alive;
        match head.body {
            BodyFraming::None => {}
            BodyFraming::Discard(length) => {
                assert!(
                    (1..=MAX_DISCARDED_BODY).contains(&length),
                    "discarding a body of {length} bytes"
                );
                let length = usize::try_from(length).unwrap_or(usize::MAX);
                // A body cut short by the end of the input: the connection would wait for
                // the rest, then answer.
                last |= length > input.len();
                let _ = input.split_to(length.min(input.len()));
            }
            BodyFraming::Unread => {
                assert!(
                    !head.parsed.keep_alive,
                    "an unread body kept its connection"
                );
                last = true;
            }
        }
        let method = head.parsed.request.method.clone();
        let response = handler.handle(&head.parsed.request, peer);
        let unsent = Unsent::new(response, head.parsed.keep_alive, head.parsed.unread_body);
        exchanges.push(drain(Some(method), unsent));
        if last {
            return exchanges;
        }
    }
}

/// The whole of a response, as the socket would take it.
fn drain(method: Option<Method>, mut unsent: Unsent) -> FuzzExchange {
    let mut body = unsent.chunk.to_vec();
    while let Some(chunk) = unsent.response.body.next_chunk() {
        body.extend_from_slice(&chunk);
    }
    FuzzExchange {
        method,
        status: unsent.response.status,
        head: std::mem::take(&mut unsent.head),
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<ParsedHead>, RequestError> {
        parse_head(&mut BytesMut::from(text.as_bytes()))
    }

    fn parsed(text: &str) -> ParsedHead {
        match parse(text) {
            Ok(Some(head)) => head,
            Ok(None) => panic!("incomplete: {text:?}"),
            Err(RequestError::Refuse(status, _)) => panic!("refused {status}: {text:?}"),
            Err(RequestError::Closed) => panic!("closed: {text:?}"),
        }
    }

    fn refused_with(text: &str) -> StatusCode {
        match parse(text) {
            Err(RequestError::Refuse(status, _)) => status,
            Ok(Some(_)) => panic!("accepted: {text:?}"),
            _ => panic!("not refused: {text:?}"),
        }
    }

    #[test]
    fn parses_a_head_and_leaves_the_next_one() {
        let mut input = BytesMut::from(
            &b"GET /cfg000b82123456.xml?x=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: Grandstream\r\n\r\nGET /n"[..],
        );
        let head = parse_head(&mut input).ok().flatten().expect("complete");
        let request = &head.parsed.request;
        assert_eq!(request.method(), Method::GET);
        assert_eq!(request.path(), "/cfg000b82123456.xml");
        assert_eq!(request.path_and_query(), "/cfg000b82123456.xml?x=1");
        assert_eq!(request.header(Wanted::UserAgent), Some(&b"Grandstream"[..]));
        assert_eq!(request.header(Wanted::Authorization), None);
        assert!(head.parsed.keep_alive);
        assert!(matches!(head.body, BodyFraming::None));
        assert_eq!(&input[..], b"GET /n");
    }

    #[test]
    fn keeps_the_wanted_headers_whatever_their_case_first_value_first() {
        let head = parsed(
            "GET /a HTTP/1.1\r\nuser-AGENT: phone\r\nX-Other: 1\r\nAUTHORIZATION: Digest x\r\n\
             If-None-Match: \"e\"\r\nif-range: \"r\"\r\nRange: bytes=0-1\r\n\
             Range: bytes=5-6\r\nUser-Agent: second\r\n\r\n",
        );
        let request = &head.parsed.request;
        let value = |wanted| {
            request
                .header(wanted)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        assert_eq!(value(Wanted::UserAgent).as_deref(), Some("phone"));
        assert_eq!(value(Wanted::Authorization).as_deref(), Some("Digest x"));
        assert_eq!(value(Wanted::IfNoneMatch).as_deref(), Some("\"e\""));
        assert_eq!(value(Wanted::IfRange).as_deref(), Some("\"r\""));
        assert_eq!(value(Wanted::Range).as_deref(), Some("bytes=0-1"));
        assert_eq!(request.path_and_query(), "/a");
    }

    #[test]
    fn reads_the_path_of_an_absolute_target() {
        let head = parsed("GET http://10.0.0.5:8080/prov/cfg.xml?a=b HTTP/1.1\r\n\r\n");
        assert_eq!(head.parsed.request.path(), "/prov/cfg.xml");
        assert_eq!(head.parsed.request.path_and_query(), "/prov/cfg.xml?a=b");
    }

    #[test]
    fn waits_for_the_rest_of_a_head() {
        assert!(matches!(parse("GET /cfg.xml HTTP/1.1\r\nHost:"), Ok(None)));
    }

    #[test]
    fn decides_keep_alive_from_version_and_connection() {
        let keep = |text: &str| parsed(text).parsed.keep_alive;
        assert!(keep("GET / HTTP/1.1\r\n\r\n"));
        assert!(keep("GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n"));
        assert!(!keep("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n"));
        assert!(!keep("GET / HTTP/1.1\r\nConnection: te, close\r\n\r\n"));
        assert!(!keep("GET / HTTP/1.0\r\n\r\n"));
        assert!(!keep("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
        assert!(!keep(
            "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        ));
        assert!(!keep("POST / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n"));
    }

    #[test]
    fn frames_request_bodies() {
        let framing = |text: &str| parsed(text).body;
        assert!(matches!(
            framing("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"),
            BodyFraming::Discard(5)
        ));
        assert!(matches!(
            framing("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
            BodyFraming::None
        ));
        assert!(matches!(
            framing("GET / HTTP/1.1\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n"),
            BodyFraming::Discard(7)
        ));
        for bad in [
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        ] {
            assert_eq!(refused_with(bad), StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn refuses_malformed_and_oversized_heads() {
        for bad in [
            "GET\r\n\r\n",
            "GET / HTTP/2.0\r\n\r\n",
            "G(T / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
            "GET / HTTP/1.1\r\nX: a\u{1}b\r\n\r\n",
        ] {
            assert_eq!(refused_with(bad), StatusCode::BAD_REQUEST, "{bad:?}");
        }
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: y\r\n")).collect();
        assert_eq!(
            refused_with(&format!("GET / HTTP/1.1\r\n{many}\r\n")),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
    }

    fn encoded(mut response: Reply, keep_alive: bool) -> String {
        let mut out = Vec::new();
        encode_head(&response, keep_alive, &mut out);
        let body = response.body.next_chunk().unwrap_or_default();
        out.extend_from_slice(&body);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn encodes_status_date_length_headers_and_close() {
        let text = encoded(text_response(StatusCode::NOT_FOUND, "not found\n"), false);
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let mut lines = head.split("\r\n");
        assert_eq!(lines.next(), Some("HTTP/1.1 404 Not Found"));
        let lines: Vec<&str> = lines.collect();
        let date = lines.iter().find_map(|l| l.strip_prefix("date: ")).unwrap();
        assert!(httpdate::parse_http_date(date).is_ok(), "{date}");
        assert!(lines.contains(&"content-length: 10"));
        assert!(lines.contains(&"content-type: text/plain; charset=utf-8"));
        assert!(lines.contains(&"connection: close"));
        assert_eq!(body, "not found\n");

        let kept = encoded(text_response(StatusCode::OK, "x"), true);
        assert!(!kept.contains("connection:"), "{kept}");
    }

    #[test]
    fn a_not_modified_answer_has_no_length() {
        let mut response = text_response(StatusCode::OK, "");
        response.status = StatusCode::NOT_MODIFIED;
        let text = encoded(response, true);
        assert!(text.starts_with("HTTP/1.1 304 Not Modified\r\n"), "{text}");
        assert!(!text.contains("content-length"), "{text}");
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_parser() {
        let valid = b"GET /cfg000b82123456.xml HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n";
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            // A valid head with a few bytes flipped, cut at a random place.
            let mut bytes = valid.to_vec();
            for _ in 0..(next() % 4) {
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] = next() as u8;
            }
            bytes.truncate((next() % (bytes.len() as u64 + 1)) as usize);
            let mut input = BytesMut::from(&bytes[..]);
            if let Ok(Some(head)) = parse_head(&mut input) {
                assert!(input.len() < bytes.len(), "a parsed head consumed bytes");
                let _ = head.parsed.request.path();
            }
        }
    }

    #[test]
    fn formats_lengths() {
        let mut buffer = [0; 20];
        for n in [0usize, 7, 10, 20480, usize::MAX] {
            assert_eq!(format_length(n, &mut buffer), n.to_string().as_bytes());
        }
    }
}
