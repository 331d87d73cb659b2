//! Progress of a tool call, for clients that asked for it (an MCP `progressToken`): a step per
//! model answer and phase, with a message a person can read ("gpt-5 answered (2/6)"). The tools
//! report steps here without knowing the protocol; [`crate::mcp`] turns them into
//! `notifications/progress`, with keep-alives while nothing happens, so clients with an idle
//! timeout keep waiting for a long consult. Without a listener every call is a no-op.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::sync::mpsc;

/// One progress notification: steps done (never decreasing), the total when known, a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    pub progress: f64,
    pub total: Option<f64>,
    pub message: String,
}

#[derive(Debug)]
struct Inner {
    updates: mpsc::UnboundedSender<Update>,
    done: AtomicU32,
    total: AtomicU32,
}

/// The reporter a tool call holds. Cheap to clone; the updates end when every clone is dropped.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    inner: Option<Arc<Inner>>,
}

impl Progress {
    /// A reporter, and the updates it sends, in order.
    pub fn channel() -> (Self, mpsc::UnboundedReceiver<Update>) {
        let (updates, receiver) = mpsc::unbounded_channel();
        let inner = Inner {
            updates,
            done: AtomicU32::new(0),
            total: AtomicU32::new(0),
        };
        (
            Self {
                inner: Some(Arc::new(inner)),
            },
            receiver,
        )
    }

    /// How many steps the call will take (0: unknown).
    pub fn set_total(&self, total: u32) {
        if let Some(inner) = &self.inner {
            inner.total.store(total, Ordering::Relaxed);
        }
    }

    /// One more step done, and what it was.
    pub fn step(&self, message: impl Into<String>) {
        let Some(inner) = &self.inner else {
            return;
        };
        let done = inner.done.fetch_add(1, Ordering::Relaxed) + 1;
        let total = inner.total.load(Ordering::Relaxed);
        let message = message.into();
        let message = if total > 0 {
            format!("{message} ({done}/{total})")
        } else {
            message
        };
        // A listener that went away (the client disconnected) is not an error for the call.
        let _ = inner.updates.send(Update {
            progress: f64::from(done),
            total: (total > 0).then_some(f64::from(total)),
            message,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_count_up_with_the_total_in_the_message() {
        let (p, mut rx) = Progress::channel();
        p.set_total(3);
        p.step("gpt-5 answered");
        p.clone().step("o3 answered");
        drop(p);
        let first = rx.try_recv().unwrap();
        assert_eq!(
            first,
            Update {
                progress: 1.0,
                total: Some(3.0),
                message: "gpt-5 answered (1/3)".into()
            }
        );
        assert_eq!(rx.try_recv().unwrap().message, "o3 answered (2/3)");
        assert!(rx.try_recv().is_err(), "closed once every reporter is gone");
    }

    #[test]
    fn without_a_listener_nothing_happens() {
        let p = Progress::default();
        p.set_total(2);
        p.step("ignored");
    }
}
