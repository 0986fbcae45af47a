//! Test support: throwaway databases on both engines. Public (but hidden from
//! docs) so integration tests in other crates can use it.
//!
//! PostgreSQL comes from `KEYFERRY_TEST_DATABASE_URL`, else `DATABASE_URL`,
//! else `postgres://postgres@127.0.0.1:5432/postgres`. Each [`TestDb`] gets a
//! database of its own, dropped when the value is dropped (even after a
//! failed assertion), so tests run in parallel without seeing each other.
//! Under `CI=true` an unreachable PostgreSQL fails the test instead of
//! skipping it.
//!
//! [`on_both_backends!`](crate::on_both_backends) turns one test function
//! into a test per engine, for the crate's unit tests and for integration
//! tests alike.

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

/// Which database engine a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    /// A SQLite file (for a broker: the one in its data directory).
    Sqlite,
    /// A fresh PostgreSQL database (see [`TestDb::postgres`]).
    Postgres,
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

    /// A fresh database on `engine`: [`TestDb::sqlite`] or
    /// [`TestDb::postgres`].
    pub async fn on(engine: Db) -> Option<TestDb> {
        match engine {
            Db::Sqlite => Some(TestDb::sqlite().await),
            Db::Postgres => TestDb::postgres().await,
        }
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

/// Runs each named test function once per database engine, as
/// `sqlite::<name>` and `postgres::<name>` (multi-threaded tokio tests; the
/// PostgreSQL one skips or, under `CI=true`, fails when the server is
/// unreachable). Invoke it once per module: it defines `mod sqlite` and
/// `mod postgres` next to the functions.
///
/// - `on_both_backends!(a, b)`: `async fn a(store: &Store)`, run on a fresh
///   [`TestDb`] of each engine.
/// - `on_both_backends!(db: a, b)`: `async fn a(db: Db)`, which starts what
///   it needs (a test broker, say) on the [`Db`] it is given.
#[doc(hidden)]
#[macro_export]
macro_rules! on_both_backends {
    (db: $($name:ident),* $(,)?) => {
        $crate::on_both_backends!(@module sqlite, Sqlite, db, $($name),*);
        $crate::on_both_backends!(@module postgres, Postgres, db, $($name),*);
    };
    (@module $module:ident, $engine:ident, db, $($name:ident),*) => {
        mod $module {
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::testing::Db::$engine).await;
                }
            )*
        }
    };
    (@module $module:ident, $engine:ident, store, $($name:ident),*) => {
        mod $module {
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = $crate::testing::TestDb::on($crate::testing::Db::$engine).await
                    else {
                        return;
                    };
                    assert_eq!(db.store.backend(), $crate::storage::Backend::$engine);
                    super::$name(&db.store).await;
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        $crate::on_both_backends!(@module sqlite, Sqlite, store, $($name),*);
        $crate::on_both_backends!(@module postgres, Postgres, store, $($name),*);
    };
}
