//! An error told in one line, with every cause: what a log line or a stored reason needs.

/// `error`, then each of its sources, joined by ": " (anyhow's alternate form).
pub fn error_chain(error: impl std::error::Error + Send + Sync + 'static) -> String {
    format!("{:#}", anyhow::Error::new(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot reach the server")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn every_cause_is_told() {
        let error = Outer(std::io::Error::other("connection refused"));
        assert_eq!(
            error_chain(error),
            "cannot reach the server: connection refused"
        );
    }
}
