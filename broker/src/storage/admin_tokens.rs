use super::{Store, StoreError};

impl Store {
    /// Every stored operator token hash with its role and label.
    pub async fn admin_token_hashes(&self) -> Result<Vec<(Vec<u8>, String, String)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT token_hash, role, label FROM admin_tokens")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Replaces the token stored under `label` (one bootstrap token at a time).
    pub async fn replace_admin_token(
        &self,
        label: &str,
        token_hash: &[u8],
        role: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM admin_tokens WHERE label = $1")
            .bind(label)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO admin_tokens (token_hash, role, label, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(role)
        .bind(label)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
