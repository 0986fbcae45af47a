//! Fixed-window counters shared by replicas (`rate_limits`).

use super::{Store, StoreError};

impl Store {
    /// Counts one more event in `bucket`'s window starting at
    /// `window_start_ms`; returns the window's count including it. One
    /// statement, so concurrent replicas never lose a count.
    pub async fn count_in_window(
        &self,
        bucket: &str,
        window_start_ms: i64,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO rate_limits (bucket, window_start, count) VALUES ($1, $2, 1) \
             ON CONFLICT (bucket, window_start) DO UPDATE SET count = rate_limits.count + 1 \
             RETURNING count",
        )
        .bind(bucket)
        .bind(window_start_ms)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Deletes windows that started before `before_ms`; returns how many.
    pub async fn purge_rate_windows(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM rate_limits WHERE window_start < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
