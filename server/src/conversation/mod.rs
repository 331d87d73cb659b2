//! Conversation continuation: history per continuation id, bounded in count,
//! messages and bytes, and forgotten after a TTL.
//!
//! The store is a trait so that several replicas can share conversations through
//! Redis; the in-memory store is the default for a single process.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::providers::{Message, Part};

pub mod redis_store;
pub use redis_store::RedisStore;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub messages: Vec<Message>,
    /// Provider and model of the last turn (reported back to the caller).
    pub provider: String,
    pub model: String,
    /// The principal that created it; another principal cannot continue it.
    #[serde(default)]
    pub owner: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("conversation store unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait ConversationStore: Send + Sync + std::fmt::Debug {
    async fn load(&self, id: &str) -> Result<Option<Conversation>, StoreError>;
    async fn save(&self, id: &str, conversation: Conversation) -> Result<(), StoreError>;
    /// Readiness: can the store serve requests now?
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Bounds applied to every stored conversation.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub ttl: Duration,
    pub max_conversations: usize,
    pub max_messages: usize,
    pub max_bytes: usize,
}

/// A fresh, unguessable continuation id.
pub fn new_id() -> String {
    format!("conv_{}", uuid::Uuid::new_v4().simple())
}

/// Approximate size of a message in bytes (text plus base64 image data).
pub fn message_bytes(message: &Message) -> usize {
    message
        .parts
        .iter()
        .map(|p| match p {
            Part::Text { text } => text.len(),
            Part::Image { data, .. } => data.len(),
        })
        .sum()
}

/// Drops the oldest turns until the conversation fits the limits. Messages are
/// removed in user/assistant pairs so the history keeps starting with a user turn.
pub fn enforce_limits(messages: &mut Vec<Message>, limits: &Limits) {
    let total = |m: &[Message]| m.iter().map(message_bytes).sum::<usize>();
    while messages.len() > 1
        && (messages.len() > limits.max_messages || total(messages) > limits.max_bytes)
    {
        let drop = if messages.len() >= 3 { 2 } else { 1 };
        messages.drain(..drop);
    }
}

#[derive(Debug)]
struct Entry {
    conversation: Conversation,
    last_access: Instant,
}

/// In-process store: a map with TTL expiry and least-recently-used eviction.
#[derive(Debug)]
pub struct MemoryStore {
    limits: Limits,
    entries: Mutex<HashMap<String, Entry>>,
}

impl MemoryStore {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn expire(&self, entries: &mut HashMap<String, Entry>, now: Instant) {
        entries.retain(|_, e| now.duration_since(e.last_access) < self.limits.ttl);
    }
}

#[async_trait]
impl ConversationStore for MemoryStore {
    async fn load(&self, id: &str) -> Result<Option<Conversation>, StoreError> {
        let mut entries = self.entries.lock().await;
        let now = Instant::now();
        match entries.get_mut(id) {
            Some(e) if now.duration_since(e.last_access) < self.limits.ttl => {
                e.last_access = now;
                Ok(Some(e.conversation.clone()))
            }
            Some(_) => {
                entries.remove(id);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn save(&self, id: &str, mut conversation: Conversation) -> Result<(), StoreError> {
        enforce_limits(&mut conversation.messages, &self.limits);
        let mut entries = self.entries.lock().await;
        let now = Instant::now();
        if !entries.contains_key(id) && entries.len() >= self.limits.max_conversations {
            self.expire(&mut entries, now);
            if entries.len() >= self.limits.max_conversations
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.last_access)
                    .map(|(k, _)| k.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            id.to_string(),
            Entry {
                conversation,
                last_access: now,
            },
        );
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Role;

    fn msg(role: Role, text: &str) -> Message {
        Message {
            role,
            parts: vec![Part::Text { text: text.into() }],
        }
    }

    fn limits() -> Limits {
        Limits {
            ttl: Duration::from_secs(60),
            max_conversations: 2,
            max_messages: 4,
            max_bytes: 1000,
        }
    }

    fn conv(n: usize) -> Conversation {
        Conversation {
            messages: (0..n)
                .map(|i| {
                    msg(
                        if i % 2 == 0 {
                            Role::User
                        } else {
                            Role::Assistant
                        },
                        &format!("m{i}"),
                    )
                })
                .collect(),
            provider: "openai".into(),
            model: "gpt-5".into(),
            owner: None,
        }
    }

    #[tokio::test]
    async fn keeps_the_newest_messages_starting_with_a_user_turn() {
        let store = MemoryStore::new(limits());
        store.save("a", conv(7)).await.unwrap();
        let got = store.load("a").await.unwrap().unwrap();
        let texts: Vec<_> = got
            .messages
            .iter()
            .map(|m| match &m.parts[0] {
                Part::Text { text } => text.clone(),
                Part::Image { .. } => unreachable!(),
            })
            .collect();
        assert_eq!(texts, ["m4", "m5", "m6"]);
        assert_eq!(got.messages[0].role, Role::User);
    }

    #[tokio::test]
    async fn byte_limit_trims_history() {
        let store = MemoryStore::new(Limits {
            max_bytes: 10,
            ..limits()
        });
        let mut c = conv(2);
        c.messages.push(msg(Role::User, "0123456789"));
        store.save("a", c).await.unwrap();
        assert_eq!(store.load("a").await.unwrap().unwrap().messages.len(), 1);
    }

    #[tokio::test]
    async fn evicts_least_recently_used_when_full() {
        let store = MemoryStore::new(limits());
        store.save("a", conv(1)).await.unwrap();
        store.save("b", conv(1)).await.unwrap();
        store.load("a").await.unwrap();
        store.save("c", conv(1)).await.unwrap();
        assert!(store.load("a").await.unwrap().is_some());
        assert!(store.load("b").await.unwrap().is_none());
        assert!(store.load("c").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn expires_after_ttl() {
        let store = MemoryStore::new(Limits {
            ttl: Duration::from_millis(20),
            ..limits()
        });
        store.save("a", conv(1)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(store.load("a").await.unwrap().is_none());
    }

    #[test]
    fn ids_are_unique_and_prefixed() {
        let (a, b) = (new_id(), new_id());
        assert!(a.starts_with("conv_") && a.len() == 37);
        assert_ne!(a, b);
    }
}
