//! [`FaultProxy`]: a loopback TCP proxy in front of a real dependency (the
//! database, a KMS emulator, an IdP, the peer coordinator) that misbehaves
//! on demand. It stands in for the network between the broker and the
//! dependency, not for the dependency: what passes through it is the real
//! protocol, byte for byte.
//!
//! A change of [`Fault`] applies to connections already open as well as to
//! new ones, as a real outage would: a pooled database connection hangs or
//! is cut in the middle of its life, not only at the next connect.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How the proxy treats traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forwards everything.
    None,
    /// Cuts every open connection and resets every new one: the dependency
    /// is down.
    Refuse,
    /// Forwards nothing in either direction and closes nothing; bytes wait
    /// until the fault changes: a partition, or a dependency that stopped
    /// answering.
    Hang,
    /// Cuts every open connection and answers each new one `HTTP/1.1 503`
    /// (HTTP dependencies only): a dependency that is up but failing.
    ServerError,
    /// Forwards in chunks of at most 512 bytes, each after this delay: a
    /// congested link or an overloaded dependency.
    Slow(Duration),
    /// Forwards what the client sends, then cuts the connection as the
    /// first bytes of the answer arrive: the dependency did the work (a
    /// commit, a stored handover) but the client never learns it.
    LoseAnswers,
}

/// Which way a [`pump`] copies.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    ToUpstream,
    ToClient,
}

/// A proxy on `127.0.0.1:<port>` forwarding to `upstream`; stops when
/// dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    fault: Arc<watch::Sender<Fault>>,
    accept: JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        // Ends every connection task too: they watch this channel.
        self.fault.send_replace(Fault::Refuse);
    }
}

impl FaultProxy {
    /// Starts forwarding to `upstream` with no fault.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fault proxy");
        let addr = listener.local_addr().expect("fault proxy address");
        let fault = Arc::new(watch::Sender::new(Fault::None));
        let accept = tokio::spawn(accept_loop(listener, upstream, fault.clone()));
        FaultProxy {
            addr,
            fault,
            accept,
        }
    }

    /// Starts in front of the host and port of `url` (`http://127.0.0.1:1234/...`).
    pub async fn in_front_of(url: &str) -> FaultProxy {
        let authority = url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split(['/', '?']).next())
            .and_then(|authority| authority.rsplit('@').next())
            .unwrap_or_else(|| panic!("no host:port in {url}"));
        let upstream = tokio::net::lookup_host(authority)
            .await
            .ok()
            .and_then(|mut addrs| addrs.find(SocketAddr::is_ipv4))
            .unwrap_or_else(|| panic!("cannot resolve {authority}"));
        FaultProxy::start(upstream).await
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `url` with its host and port replaced by the proxy's.
    pub fn url_for(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("a URL");
        let (authority, tail) = match rest.find(['/', '?']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let userinfo = authority
            .rsplit_once('@')
            .map(|(user, _)| format!("{user}@"))
            .unwrap_or_default();
        format!("{scheme}://{userinfo}{}{tail}", self.addr)
    }

    /// Changes the fault, for open connections too.
    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    fault: Arc<watch::Sender<Fault>>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let watch = fault.subscribe();
        tokio::spawn(connection(client, upstream, watch));
    }
}

async fn connection(client: TcpStream, upstream: SocketAddr, mut fault: watch::Receiver<Fault>) {
    let current = *fault.borrow_and_update();
    match current {
        Fault::Refuse => return reset(client),
        Fault::ServerError => return answer_503(client).await,
        Fault::None | Fault::Hang | Fault::Slow(_) | Fault::LoseAnswers => {}
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return reset(client);
    };
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = pump(
        client_read,
        server_write,
        Direction::ToUpstream,
        fault.clone(),
    );
    let down = pump(server_read, client_write, Direction::ToClient, fault);
    tokio::pin!(up, down);
    // A direction that ends in order lets the other finish; a cut one ends
    // both (dropping the other pump drops its halves).
    tokio::select! {
        ended = &mut up => if ended == Ended::InOrder { down.await; },
        ended = &mut down => if ended == Ended::InOrder { up.await; },
    }
}

/// How a [`pump`] ended.
#[derive(PartialEq, Eq)]
enum Ended {
    /// Its source closed, or its destination failed.
    InOrder,
    /// The fault cut the connection; both sockets reset when dropped.
    Cut,
}

/// Copies `from` to `to` as the fault allows.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    direction: Direction,
    mut fault: watch::Receiver<Fault>,
) -> Ended {
    let cut = |from: &OwnedReadHalf, to: &OwnedWriteHalf| {
        // A zero linger makes the close an RST, as a dead host's would be.
        let _ = from.as_ref().set_zero_linger();
        let _ = to.as_ref().set_zero_linger();
        Ended::Cut
    };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let limit = match usable(&mut fault).await {
            Some(Fault::Slow(_)) => 512,
            Some(_) => buf.len(),
            None => return cut(&from, &to),
        };
        let read = tokio::select! {
            read = from.read(&mut buf[..limit]) => read,
            // A new fault applies before the next read.
            _ = fault.changed() => continue,
        };
        let n = match read {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return Ended::InOrder;
            }
            Ok(n) => n,
        };
        // What was read is held through a hang and delayed when slow.
        match usable(&mut fault).await {
            Some(Fault::Slow(delay)) => tokio::time::sleep(delay).await,
            Some(Fault::LoseAnswers) if direction == Direction::ToClient => {
                return cut(&from, &to);
            }
            Some(_) => {}
            None => return cut(&from, &to),
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return Ended::InOrder;
        }
    }
}

/// Waits out a [`Fault::Hang`]; `None` when the connection must be cut.
async fn usable(fault: &mut watch::Receiver<Fault>) -> Option<Fault> {
    loop {
        let current = *fault.borrow_and_update();
        match current {
            Fault::Refuse | Fault::ServerError => return None,
            Fault::Hang => {
                if fault.changed().await.is_err() {
                    return None;
                }
            }
            other => return Some(other),
        }
    }
}

fn reset(stream: TcpStream) {
    // A zero linger makes the close an RST: "connection reset", at once.
    let _ = stream.set_zero_linger();
    drop(stream);
}

async fn answer_503(mut client: TcpStream) {
    // Read the request head (or whatever comes within a moment) so the
    // client sees an answer, not a reset, then close.
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(200), client.read(&mut buf)).await;
    let body = r#"{"error":"injected fault"}"#;
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(head.as_bytes()).await;
    let _ = client.shutdown().await;
}
