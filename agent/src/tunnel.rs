//! TURN over TCP and over TLS for a WebRTC stack that reaches TURN servers over UDP only.
//!
//! webrtc-rs 0.21 skips `turn:…?transport=tcp` and `turns:` URLs, yet a customer behind a
//! firewall that drops UDP can reach the relay only that way. So the agent opens a local
//! UDP port per such URL and hands WebRTC `turn:127.0.0.1:<port>?transport=udp` instead:
//! every datagram a local socket sends there goes to the real server over a TCP (or TLS)
//! stream of its own (one stream per local socket, as one TURN allocation is one 5-tuple),
//! and what the server sends back comes out of the local port. TURN messages delimit
//! themselves on a stream (RFC 8656 §12.5): a STUN message by its header's length, a
//! ChannelData message by its length padded to four bytes. Credentials and message
//! integrity do not depend on the transport, so nothing else changes.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A stream nobody has sent anything through for this long is closed: ICE keeps a live
/// one busy every few seconds, and an ICE restart leaves the old sockets' streams idle.
const IDLE: Duration = Duration::from_secs(30);
/// The longest TURN message we carry (a UDP datagram's worth).
const MAX_MESSAGE: usize = 65_535 + 4;

/// How the real server is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Tls,
}

/// A local UDP port that stands for one TURN server reached over TCP or TLS.
pub struct Tunnel {
    pub local: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Tunnel {
    /// Listen on a local port for `host:port` over `transport`. Nothing is connected until
    /// the first datagram arrives.
    pub async fn open(host: String, port: u16, transport: Transport) -> anyhow::Result<Tunnel> {
        let socket = UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
            .await
            .context("could not open a local port for TURN over TCP")?;
        let local = socket.local_addr()?;
        let task = tokio::spawn(run(Arc::new(socket), host, port, transport));
        Ok(Tunnel { local, task })
    }
}

async fn run(socket: Arc<UdpSocket>, host: String, port: u16, transport: Transport) {
    let mut streams: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>> = HashMap::new();
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            return;
        };
        let datagram = buf[..n].to_vec();
        streams.retain(|_, tx| !tx.is_closed());
        let tx = streams.entry(from).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(256);
            tokio::spawn(carry(
                Arc::clone(&socket),
                from,
                host.clone(),
                port,
                transport,
                rx,
            ));
            tx
        });
        // A full queue means the stream is stuck: drop the datagram, as UDP would.
        let _ = tx.try_send(datagram);
    }
}

/// One local socket's stream to the server, both ways, until either side closes or it
/// idles.
async fn carry(
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    host: String,
    port: u16,
    transport: Transport,
    rx: mpsc::Receiver<Vec<u8>>,
) {
    let tcp = match TcpStream::connect((host.as_str(), port)).await {
        Ok(tcp) => tcp,
        Err(e) => {
            crate::peers::trace(&format!("TURN over TCP to {host}:{port}: {e}"));
            return;
        }
    };
    let _ = tcp.set_nodelay(true);
    match transport {
        Transport::Tcp => pump(tcp, socket, local, rx).await,
        Transport::Tls => match tls_connect(&host, tcp).await {
            Ok(tls) => pump(tls, socket, local, rx).await,
            Err(e) => crate::peers::trace(&format!("TURN over TLS to {host}:{port}: {e:#}")),
        },
    }
}

async fn tls_connect(
    host: &str,
    tcp: TcpStream,
) -> anyhow::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    // The system's CAs, and SSL_CERT_FILE / SSL_CERT_DIR, as for the WebSocket.
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .with_context(|| format!("{host:?} is not a valid server name"))?;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?)
}

async fn pump<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    mut rx: mpsc::Receiver<Vec<u8>>,
) {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let inbound = async {
        loop {
            match read_message(&mut reader).await {
                Ok(Some(message)) => {
                    if socket.send_to(&message, local).await.is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    };
    let outbound = async {
        loop {
            let datagram = match tokio::time::timeout(IDLE, rx.recv()).await {
                Ok(Some(datagram)) => datagram,
                _ => return,
            };
            if writer.write_all(&framed(datagram)).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = inbound => {}
        () = outbound => {}
    }
}

/// A datagram as it goes on a stream: ChannelData padded to a multiple of four bytes.
fn framed(mut datagram: Vec<u8>) -> Vec<u8> {
    if is_channel_data(&datagram) {
        datagram.resize(datagram.len().next_multiple_of(4), 0);
    }
    datagram
}

fn is_channel_data(message: &[u8]) -> bool {
    message.first().is_some_and(|b| (0x40..=0x7f).contains(b))
}

/// The next TURN message on the stream, without ChannelData's padding; `None` at the end.
async fn read_message<R: AsyncRead + Unpin>(reader: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = [0u8; 4];
    match reader.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let length = usize::from(u16::from_be_bytes([head[2], head[3]]));
    let (total, keep) = if is_channel_data(&head) {
        (4 + length.next_multiple_of(4), 4 + length)
    } else if head[0] & 0xc0 == 0 {
        (20 + length, 20 + length)
    } else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a TURN message",
        ));
    };
    let mut message = vec![0u8; total];
    message[..4].copy_from_slice(&head);
    reader.read_exact(&mut message[4..]).await?;
    message.truncate(keep);
    Ok(Some(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_are_cut_from_the_stream_by_their_own_lengths() {
        // A STUN binding request (20-byte header, 8 bytes of attributes), then ChannelData
        // of 5 bytes padded to 8, then ChannelData of 4 bytes (no padding).
        let mut stun = vec![0x00, 0x01, 0x00, 0x08];
        stun.extend([0x21, 0x12, 0xa4, 0x42]);
        stun.extend([7u8; 12]);
        stun.extend([1u8; 8]);
        let channel = vec![0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5];
        let even = vec![0x40, 0x01, 0x00, 0x04, 9, 9, 9, 9];
        let mut wire = stun.clone();
        wire.extend(framed(channel.clone()));
        wire.extend(framed(even.clone()));
        assert_eq!(wire.len(), 28 + 12 + 8, "ChannelData padded on the stream");
        let mut reader = &wire[..];
        assert_eq!(read_message(&mut reader).await.expect("stun"), Some(stun));
        assert_eq!(read_message(&mut reader).await.expect("cd"), Some(channel));
        assert_eq!(read_message(&mut reader).await.expect("cd"), Some(even));
        assert_eq!(read_message(&mut reader).await.expect("end"), None);
    }

    #[tokio::test]
    async fn garbage_on_the_stream_is_an_error_not_a_hang() {
        let wire = [0xffu8, 0, 0, 4, 1, 2, 3, 4];
        let mut reader = &wire[..];
        assert!(read_message(&mut reader).await.is_err());
        let truncated = [0x00u8, 0x01, 0x00, 0x08, 1, 2];
        let mut reader = &truncated[..];
        assert!(read_message(&mut reader).await.is_err());
    }

    #[tokio::test]
    async fn datagrams_cross_a_tcp_stream_both_ways() {
        // A stand-in TURN server that echoes each message it reads back on the stream.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listen");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.expect("accept");
            while let Ok(Some(message)) = read_message(&mut tcp).await {
                tcp.write_all(&framed(message)).await.expect("echo");
            }
        });
        let tunnel = Tunnel::open("127.0.0.1".into(), port, Transport::Tcp)
            .await
            .expect("tunnel");
        let client = UdpSocket::bind("127.0.0.1:0").await.expect("client");
        let datagram = vec![0x40, 0x00, 0x00, 0x03, 7, 8, 9];
        client.send_to(&datagram, tunnel.local).await.expect("send");
        let mut buf = [0u8; 64];
        let (n, from) = tokio::time::timeout(Duration::from_secs(30), client.recv_from(&mut buf))
            .await
            .expect("an answer in time")
            .expect("recv");
        assert_eq!(from, tunnel.local);
        assert_eq!(&buf[..n], &datagram[..], "unpadded again on the UDP side");
    }
}
