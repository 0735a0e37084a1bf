//! Asking the running service to reload, the way SIGHUP does, and hearing how it went: the service
//! (server.rs) answers each request with the reload's result.

use tokio::sync::{mpsc, oneshot};

/// One request for a reload; answer it with [`ReloadRequest::answer`].
pub struct ReloadRequest {
    answer: oneshot::Sender<Result<(), String>>,
}

impl ReloadRequest {
    /// Tells the asker how the reload went (the error in words when it was refused).
    pub fn answer(self, result: &anyhow::Result<()>) {
        let _ = self
            .answer
            .send(result.as_ref().map(|_| ()).map_err(|e| format!("{e:#}")));
    }
}

/// The sending side, held by the workshop. Cheap to clone.
#[derive(Clone)]
pub struct Reloader {
    requests: mpsc::Sender<ReloadRequest>,
}

impl Reloader {
    /// A reloader and the requests it sends, for the service to answer.
    pub fn channel() -> (Reloader, mpsc::Receiver<ReloadRequest>) {
        let (requests, receiver) = mpsc::channel(16);
        (Reloader { requests }, receiver)
    }

    /// Asks for a reload and waits for its result.
    pub async fn reload(&self) -> Result<(), String> {
        let (answer, answered) = oneshot::channel();
        self.requests
            .send(ReloadRequest { answer })
            .await
            .map_err(|_| {
                "the service is stopping; the change applies at the next start".to_string()
            })?;
        answered
            .await
            .map_err(|_| "the service stopped before the reload finished".to_string())?
    }
}
