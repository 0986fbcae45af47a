//! The broker's database: one [`Store`] over SQLite (the embedded default) or
//! PostgreSQL (production, several replicas), chosen by the URL's scheme.
//!
//! Queries are written once, in the SQL both engines accept (`$1` parameters,
//! `RETURNING`, `ON CONFLICT`), and run through sqlx's `Any` driver. Each
//! engine has its own migration folder because their DDL differs (`BLOB` vs
//! `BYTEA`, identity columns); the two must describe the same tables.
//! Values crossing the boundary are kept to what both engines store alike:
//! `i64` (times as Unix milliseconds, booleans as 0/1), text (JSON documents)
//! and bytes.
//!
//! One module per table group: `adtechs`, `issuers`, `mappings`, `nonces`,
//! `audit`, `signing_keys` (with the lock that serialises rotation), `keys`
//! (key records, wrapped splits, and the lifecycle's small state),
//! `rate_limits` (counters replicas share).

mod admin_tokens;
mod adtechs;
mod audit_log;
mod columns;
mod governance;
mod issuers;
mod keys;
mod mappings;
mod nonces;
mod rate_limits;
mod signing_keys;
mod witness;

use std::path::Path;
use std::sync::Once;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

pub use adtechs::AdTech;
pub use audit_log::{AuditTx, OutboxEntry, StoredEntry, StoredHead};
pub use governance::{GovMember, GovernanceTx, StoredBallot, StoredPolicy, StoredProposal};
pub use issuers::StoredIssuer;
pub use keys::{KeyGenerationTx, KeyRecord, StoredSplit, status};
pub use mappings::{MappingFilter, MappingRecord};
pub use nonces::{NonceOutcome, NonceOwner};
pub use signing_keys::{SigningKeysTx, StoredSigningKey};
pub use witness::StoredWitnessState;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Which engine a [`Store`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL (or a compatible distributed SQL database).
    Postgres,
}

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No row with that identity.
    #[error("{0} not found")]
    NotFound(String),
    /// A row with that identity (or unique value) already exists.
    #[error("{0} already exists")]
    Conflict(String),
    /// A stored value does not decode: the database was edited by hand or
    /// is from an incompatible version.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database (or the audit writer in front of it) cannot take the
    /// write now; retry later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The URL names no supported engine.
    #[error("unsupported storage URL scheme (expected sqlite:// or postgres://)")]
    UnsupportedUrl,
    /// Migrations failed; the database is at an unknown version.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The database could not be reached or refused the statement.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            // A value that does not decode (bad JSON, a boolean that is
            // neither 0 nor 1) was written by hand, not by this broker.
            sqlx::Error::ColumnDecode { index, source } => {
                StoreError::Corrupt(format!("column {index}: {source}"))
            }
            e => StoreError::Database(e),
        }
    }
}

/// Maps a unique-constraint violation to [`StoreError::Conflict`].
fn conflict_or(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what()),
        _ => StoreError::Database(e),
    }
}

/// A handle to the database. Cloning is cheap (the pool is shared).
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects, creating a SQLite file (and its 0700 directory) if needed,
    /// and runs the migrations of the URL's engine.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(install_default_drivers);

        let (backend, url) = if let Some(path) = url.strip_prefix("sqlite://") {
            let file = path.split('?').next().unwrap_or(path);
            if let Some(dir) = Path::new(file)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                crate::files::create_private_dir(dir).map_err(|e| {
                    StoreError::Database(sqlx::Error::Configuration(
                        format!("cannot create {}: {e}", dir.display()).into(),
                    ))
                })?;
            }
            if !file.is_empty() && file != ":memory:" {
                crate::files::create_private_file(Path::new(file)).map_err(|e| {
                    StoreError::Database(sqlx::Error::Configuration(
                        format!("cannot create {file}: {e}").into(),
                    ))
                })?;
            }
            // mode=rwc: create the file on first start.
            let url = if url.contains('?') {
                url.to_owned()
            } else {
                format!("{url}?mode=rwc")
            };
            (Backend::Sqlite, url)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_owned())
        } else {
            return Err(StoreError::UnsupportedUrl);
        };

        let mut options = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5));
        if backend == Backend::Sqlite {
            options = options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL lets readers run beside the writer; the busy timeout
                    // makes concurrent writers queue instead of failing.
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                    )
                    .await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(&url).await?;
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        Ok(Store { pool, backend })
    }

    /// Which engine this store uses.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A round trip to the database, for `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Runs statements as given. For tests that play an attacker with
    /// database access; nothing in the broker calls it.
    #[doc(hidden)]
    pub async fn execute_raw(&self, sql: &str) -> Result<(), StoreError> {
        self.pool.execute(sql).await?;
        Ok(())
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Serialising plain data structs and serde_json::Value cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

#[cfg(test)]
mod suite;
