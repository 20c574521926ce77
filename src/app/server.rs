//! The HTTP/1.1 connection loop, in place of `axum::serve` (which offers no way to configure
//! hyper): a cap on open connections and a deadline for each request's headers, so that slow
//! or idle clients cannot hold connections. Hyper starts that deadline whenever it waits for a
//! request head, that is from accept and again after every answer, so it is also the idle
//! keep-alive limit; a response being streamed (Server-Sent Events) is not waiting for a head.
//! Body and whole-request deadlines are tower layers in `http`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;
use tower_http::normalize_path::NormalizePath;

use crate::app::config::Limits;

/// Serves `app` on `listener` until `shutdown` completes, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    app: NormalizePath<Router>,
    limits: &Limits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_timeout_secs.max(1)));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // At the cap, further clients wait in the listen backlog until a connection closes.
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => tokio::select! {
                    _ = &mut shutdown => break,
                    accepted = listener.accept() => accepted.map(|a| (a, slot)),
                },
                Err(_) => break,
            },
        };
        let ((stream, remote), slot) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let service = app
            .clone()
            .map_request(move |req: Request<Incoming>| with_peer(req, remote));
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    graceful.shutdown().await;
}

/// The request as axum handlers expect it, with the client's address (`ConnectInfo`).
fn with_peer(req: Request<Incoming>, remote: SocketAddr) -> Request {
    let mut req = req.map(axum::body::Body::new);
    req.extensions_mut().insert(ConnectInfo(remote));
    req
}
