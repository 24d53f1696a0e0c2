//! WebSocket connections of the network engines (the OpenAI Realtime API, Deepgram's live
//! transcription): TCP, TLS for `wss://` (rustls with the `ring` provider and the Mozilla
//! roots, as reqwest's), the handshake with an `Authorization` header, and a bound on
//! the size of every message read. Errors are redacted like the HTTP engines' (no key,
//! no URL password).
//!
//! Timeouts: the caller bounds the whole connection ([`CONNECT_TIMEOUT`]
//! (crate::net::CONNECT_TIMEOUT) by default) and each read it waits for.

use std::sync::Arc;

use agentbus_llm::ApiKey;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::error::{Result, VoiceError};
use crate::net::remote_error;

/// The transport under the WebSocket: TCP, or TLS over TCP.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Io for T {}

/// An open WebSocket.
pub(crate) type Socket = WebSocketStream<Box<dyn Io>>;

/// Opens a WebSocket to `url` (`ws://` or `wss://`), sending `authorization` as the
/// `Authorization` header when given; messages from the server may be at most
/// `max_message` bytes. A handshake refused with a 4xx (other than 429) is not
/// recoverable; anything else is.
pub(crate) async fn connect(
    engine: &str,
    url: &reqwest::Url,
    authorization: Option<String>,
    key: Option<&ApiKey>,
    max_message: usize,
) -> Result<Socket> {
    let remote = |reason: String, recoverable: bool| remote_error(engine, key, reason, recoverable);
    if !matches!(url.scheme(), "ws" | "wss") {
        return Err(remote(format!("{url} is not a ws:// or wss:// URL"), false));
    }
    let host = url
        .host_str()
        .ok_or_else(|| remote("the URL has no host".into(), false))?
        .to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|error| remote(format!("connecting to {host}:{port}: {error}"), true))?;
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Io> = if url.scheme() == "wss" {
        Box::new(
            tls(&host, tcp)
                .await
                .map_err(|reason| remote(reason, true))?,
        )
    } else {
        Box::new(tcp)
    };
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|error| remote(format!("the request: {error}"), false))?;
    if let Some(value) = authorization {
        let value = value
            .parse()
            .map_err(|_| remote("the API key is not a valid header value".into(), false))?;
        request.headers_mut().insert("authorization", value);
    }
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message));
    let (socket, _) = tokio_tungstenite::client_async_with_config(request, io, Some(config))
        .await
        .map_err(|error| {
            let refused = matches!(
                &error,
                tokio_tungstenite::tungstenite::Error::Http(response)
                    if matches!(response.status().as_u16(), 400..=428 | 430..=499)
            );
            remote(format!("the WebSocket handshake: {error}"), !refused)
        })?;
    Ok(socket)
}

/// TLS over `tcp` to `host`.
async fn tls(
    host: &str,
    tcp: tokio::net::TcpStream,
) -> std::result::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("TLS: {error}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|error| format!("TLS: {host}: {error}"))?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|error| format!("TLS with {host}: {error}"))
}

/// Parses `url`, an error of `engine` when it is not a URL.
pub(crate) fn parse_url(engine: &str, key: Option<&ApiKey>, url: &str) -> Result<reqwest::Url> {
    reqwest::Url::parse(url).map_err(|error| -> VoiceError {
        remote_error(engine, key, format!("the URL {url}: {error}"), false)
    })
}
