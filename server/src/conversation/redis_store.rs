//! Conversations in Redis, so every replica of a Deployment can continue any
//! conversation. One key per conversation (`converse:conv:<id>`), JSON, with a
//! sliding TTL (`GETEX … EX` on read). Redis's own memory policy bounds the
//! number of conversations; each one is bounded in messages and bytes here.

use async_trait::async_trait;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use super::{Conversation, ConversationStore, Limits, StoreError, enforce_limits};

const PREFIX: &str = "converse:conv:";

pub struct RedisStore {
    connection: ConnectionManager,
    limits: Limits,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: never print it.
        f.debug_struct("RedisStore").finish_non_exhaustive()
    }
}

fn unavailable(e: &redis::RedisError) -> StoreError {
    // Redis errors do not include the URL or password.
    StoreError::Unavailable(format!("redis: {e}"))
}

impl RedisStore {
    /// Connects (with automatic reconnection afterwards). Fails when the first
    /// connection cannot be made, so a wrong REDIS_URL is seen at start-up.
    pub async fn connect(url: &str, limits: Limits) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::Unavailable(format!("invalid REDIS_URL: {e}")))?;
        let connection = ConnectionManager::new(client)
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(Self { connection, limits })
    }

    fn ttl_secs(&self) -> u64 {
        self.limits.ttl.as_secs().max(1)
    }
}

#[async_trait]
impl ConversationStore for RedisStore {
    async fn load(&self, id: &str) -> Result<Option<Conversation>, StoreError> {
        let mut c = self.connection.clone();
        let raw: Option<String> = redis::cmd("GETEX")
            .arg(format!("{PREFIX}{id}"))
            .arg("EX")
            .arg(self.ttl_secs())
            .query_async(&mut c)
            .await
            .map_err(|e| unavailable(&e))?;
        // A record that does not parse (another version wrote it) is treated as
        // absent rather than failing the call.
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }

    async fn save(&self, id: &str, mut conversation: Conversation) -> Result<(), StoreError> {
        enforce_limits(&mut conversation.messages, &self.limits);
        let json = serde_json::to_string(&conversation)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let mut c = self.connection.clone();
        c.set_ex::<_, _, ()>(format!("{PREFIX}{id}"), json, self.ttl_secs())
            .await
            .map_err(|e| unavailable(&e))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut c = self.connection.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut c)
            .await
            .map(|_| ())
            .map_err(|e| unavailable(&e))
    }
}
