//! Test support: throwaway databases on both engines. Public (but hidden from
//! docs) so integration tests in other crates can use it.
//!
//! PostgreSQL comes from `KEYFERRY_TEST_DATABASE_URL`, else `DATABASE_URL`,
//! else `postgres://postgres@127.0.0.1:5432/postgres`. Each [`TestDb`] gets a
//! database of its own, dropped when the value is dropped (even after a
//! failed assertion), so tests run in parallel without seeing each other.
//! Under `CI=true` an unreachable PostgreSQL fails the test instead of
//! skipping it.

use std::path::PathBuf;

use sqlx::Connection;

use crate::storage::Store;

/// The admin URL of the PostgreSQL server tests use.
pub fn postgres_admin_url() -> String {
    std::env::var("KEYFERRY_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// True when running under CI, where missing services are failures.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A database that exists for one test.
pub struct TestDb {
    /// The connected, migrated store.
    pub store: Store,
    /// Its URL, for starting a broker on it.
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    /// A SQLite file in a fresh temporary directory.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("keyferry.db").display());
        let store = Store::connect(&url, 5).await.expect("open SQLite");
        TestDb {
            store,
            url,
            cleanup: Cleanup::Sqlite(dir),
        }
    }

    /// A fresh PostgreSQL database, or `None` (with a printed reason) when
    /// the server is unreachable outside CI.
    pub async fn postgres() -> Option<TestDb> {
        let admin_url = postgres_admin_url();
        let mut admin = match sqlx::PgConnection::connect(&admin_url).await {
            Ok(conn) => conn,
            Err(e) if in_ci() => panic!("PostgreSQL at {admin_url} is required under CI=true: {e}"),
            Err(e) => {
                eprintln!("skipping: PostgreSQL at {admin_url} is unreachable: {e}");
                return None;
            }
        };
        let name = format!("keyferry_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let _ = admin.close().await;
        let url = database_url(&admin_url, &name);
        let store = Store::connect(&url, 5).await.expect("open PostgreSQL");
        Some(TestDb {
            store,
            url,
            cleanup: Cleanup::Postgres { admin_url, name },
        })
    }

    /// The temporary directory of a SQLite database.
    pub fn sqlite_dir(&self) -> Option<PathBuf> {
        match &self.cleanup {
            Cleanup::Sqlite(dir) => Some(dir.path().to_owned()),
            Cleanup::Postgres { .. } => None,
        }
    }
}

/// `admin_url` with its database name replaced.
fn database_url(admin_url: &str, name: &str) -> String {
    let mut url = url::Url::parse(admin_url).expect("PostgreSQL URL");
    url.set_path(name);
    url.to_string()
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Cleanup::Postgres { admin_url, name } = &self.cleanup else {
            return;
        };
        let (admin_url, name) = (admin_url.clone(), name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on;
        // a short-lived thread with its own runtime drops the database.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut admin)
                        .await;
                }
            });
        })
        .join();
    }
}

/// Runs raw SQL on a store (tests that tamper with the database).
pub async fn execute(store: &Store, sql: &str) {
    store.execute_raw(sql).await.expect("raw SQL");
}
