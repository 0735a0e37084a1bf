//! A real SMTP server for the tests: mailin's protocol state machine on a TCP port of its own,
//! collecting every message it accepts. Its answers can be scripted (451 then 250, 550 for one
//! recipient); it can hang after accepting a connection, or stall after DATA (the message has
//! arrived, the answer never comes) until released.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use mailin::{Action, Handler, Response, SessionBuilder};

/// One message the server accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// RCPT TO addresses.
    pub to: Vec<String>,
    /// The raw message.
    pub data: String,
}

impl Received {
    /// A header's value (unfolded), case-insensitive name.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded.split("\r\n").find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }
}

/// Undoes quoted-printable encoding (soft line breaks and `=XX`), as the message parts are sent.
pub fn qp_decode(text: &str) -> String {
    let joined = text.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).expect("a quoted-printable part decodes to UTF-8")
}

#[derive(Default)]
struct Shared {
    received: Vec<Received>,
    /// Answers to give to MAIL FROM, in order; when empty, 250. (mailin keeps a session in its
    /// DATA state after a refusal at the end of DATA, so failures are given at MAIL FROM.)
    mail_answers: VecDeque<(u16, String)>,
    /// A recipient to refuse and how.
    refuse: Option<(String, u16, String)>,
    hang: bool,
    /// How long to wait before accepting each message (a slow server).
    delay: Duration,
    /// Answer this many messages, then keep each later one (it has arrived) without answering
    /// until `released`.
    stall_after: Option<usize>,
    /// Messages held without an answer so far.
    stalled: usize,
    released: bool,
}

/// A running SMTP server.
#[derive(Clone)]
pub struct SmtpServer {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    /// Signalled whenever a message stalls or stalled ones are released.
    changed: Arc<Condvar>,
}

#[derive(Clone)]
struct Session {
    shared: Arc<Mutex<Shared>>,
    changed: Arc<Condvar>,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Session {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, _from: &str) -> Response {
        match self.shared.lock().unwrap().mail_answers.pop_front() {
            Some((code, text)) => Response::custom(code, text),
            None => Response::custom(250, "OK".into()),
        }
    }

    fn rcpt(&mut self, to: &str) -> Response {
        let shared = self.shared.lock().unwrap();
        if let Some((address, code, text)) = &shared.refuse
            && to.eq_ignore_ascii_case(address)
        {
            return Response::custom(*code, text.clone());
        }
        Response::custom(250, "OK".into())
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.to = to.to_vec();
        self.data.clear();
        Response::custom(250, "OK".into())
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let delay = self.shared.lock().unwrap().delay;
        std::thread::sleep(delay);
        let mut shared = self.shared.lock().unwrap();
        shared.received.push(Received {
            to: std::mem::take(&mut self.to),
            data: String::from_utf8_lossy(&self.data).into_owned(),
        });
        if shared
            .stall_after
            .is_some_and(|n| shared.received.len() > n && !shared.released)
        {
            shared.stalled += 1;
            self.changed.notify_all();
            let _released = self.changed.wait_while(shared, |s| !s.released).unwrap();
        }
        Response::custom(250, "OK queued".into())
    }
}

impl SmtpServer {
    /// Starts a server on a free port.
    pub fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let changed = Arc::new(Condvar::new());
        let server = SmtpServer {
            addr,
            shared: shared.clone(),
            changed: changed.clone(),
        };
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let (shared, changed) = (shared.clone(), changed.clone());
                std::thread::spawn(move || serve(stream, shared, changed));
            }
        });
        server
    }

    /// `smtp://127.0.0.1:PORT` for the config.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Everything accepted so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().unwrap().received.clone()
    }

    /// Refuses the next transaction with this answer (e.g. 451); later ones get 250.
    pub fn fail_next_transaction(&self, code: u16, text: &str) {
        self.shared
            .lock()
            .unwrap()
            .mail_answers
            .push_back((code, text.into()));
    }

    /// Refuse one recipient with this answer.
    pub fn refuse_recipient(&self, address: &str, code: u16, text: &str) {
        self.shared.lock().unwrap().refuse = Some((address.into(), code, text.into()));
    }

    /// Accept connections but never answer.
    pub fn hang(&self) {
        self.shared.lock().unwrap().hang = true;
    }

    /// Wait this long before accepting each message from now on.
    pub fn delay_each_message(&self, delay: Duration) {
        self.shared.lock().unwrap().delay = delay;
    }

    /// Answer `answered` messages, then stall after DATA: each later message is received (it
    /// has reached the server) but never answered, until [`SmtpServer::release`].
    pub fn stall_after(&self, answered: usize) {
        let mut shared = self.shared.lock().unwrap();
        shared.stall_after = Some(answered);
        shared.released = false;
    }

    /// Waits (without polling) until `count` messages are stalled; false after `limit`.
    pub fn wait_for_stalled(&self, count: usize, limit: Duration) -> bool {
        let shared = self.shared.lock().unwrap();
        let (shared, _) = self
            .changed
            .wait_timeout_while(shared, limit, |s| s.stalled < count)
            .unwrap();
        shared.stalled >= count
    }

    /// Answers the stalled messages (to whoever is still connected), and stalls no more.
    pub fn release(&self) {
        self.shared.lock().unwrap().released = true;
        self.changed.notify_all();
    }

    /// Answer again (new connections).
    pub fn answer(&self) {
        self.shared.lock().unwrap().hang = false;
    }
}

fn serve(stream: TcpStream, shared: Arc<Mutex<Shared>>, changed: Arc<Condvar>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    if shared.lock().unwrap().hang {
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let peer: IpAddr = stream
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or([127, 0, 0, 1].into());
    let handler = Session {
        shared,
        changed,
        to: Vec::new(),
        data: Vec::new(),
    };
    let mut session = SessionBuilder::new("test-smtp").build(peer, handler);
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    if session.greeting().write_to(&mut writer).is_err() {
        return;
    }
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let response = session.process(&line);
        match response.action {
            Action::Reply => {
                if response.write_to(&mut writer).is_err() {
                    return;
                }
            }
            Action::Close => {
                let _ = response.write_to(&mut writer);
                let _ = writer.flush();
                return;
            }
            Action::UpgradeTls | Action::NoReply => {}
        }
    }
}
