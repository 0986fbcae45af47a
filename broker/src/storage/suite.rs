//! The storage suite, run once per engine: every test below exists as
//! `sqlite::<name>` and `postgres::<name>`.

use super::*;

/// An audit entry for a change made by a test.
fn noted() -> OutboxEntry {
    OutboxEntry {
        at_ms: 1,
        kind: "test.change".into(),
        body: r#"{"actor":"test","details":{}}"#.into(),
    }
}

fn adtech(id: &str) -> AdTech {
    AdTech {
        id: id.into(),
        name: format!("Ad tech {id}"),
        sites: vec![format!("https://{id}.example")],
        use_cases: vec!["aggregation-service".into()],
        enabled: true,
        created_at: 1_000,
        updated_at: 1_000,
    }
}

fn mapping(id: &str, adtech: &str, subject: &str) -> MappingRecord {
    MappingRecord {
        id: id.into(),
        adtech: adtech.into(),
        cloud: "gcp".into(),
        issuer: "https://accounts.google.com".into(),
        subject: subject.into(),
        conditions: serde_json::json!([{"claim": "google.compute_engine.project_id", "op": "eq", "value": "p"}]),
        scopes: vec!["keys:read".into()],
        enabled: true,
        created_at: 2_000,
    }
}

async fn adtechs_round_trip_and_refuse_duplicates(store: &Store) {
    store
        .insert_adtech(&adtech("acme"), &noted())
        .await
        .expect("insert");
    store
        .insert_adtech(&adtech("zeta"), &noted())
        .await
        .expect("insert");
    assert_eq!(store.adtech("acme").await.expect("get"), adtech("acme"));
    assert!(matches!(
        store.insert_adtech(&adtech("acme"), &noted()).await,
        Err(StoreError::Conflict(_))
    ));
    let ids: Vec<_> = store
        .adtechs()
        .await
        .expect("list")
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(ids, ["acme", "zeta"]);
    assert!(matches!(
        store.adtech("nobody").await,
        Err(StoreError::NotFound(_))
    ));
}

async fn disabling_an_adtech_hides_its_mappings(store: &Store) {
    store
        .insert_adtech(&adtech("acme"), &noted())
        .await
        .expect("insert");
    store
        .insert_mapping(&mapping("m-1", "acme", "111"), 0, |_| Ok(()), &noted())
        .await
        .expect("insert mapping");
    let iss = "https://accounts.google.com";
    assert_eq!(
        store
            .active_mappings_for(iss, "111")
            .await
            .expect("lookup")
            .len(),
        1
    );
    let updated = store
        .set_adtech_enabled("acme", false, 5_000, &noted())
        .await
        .expect("disable");
    assert!(!updated.enabled);
    assert_eq!(updated.updated_at, 5_000);
    assert!(
        store
            .active_mappings_for(iss, "111")
            .await
            .expect("lookup")
            .is_empty()
    );
    store
        .set_adtech_enabled("acme", true, 6_000, &noted())
        .await
        .expect("enable");
    assert_eq!(
        store
            .active_mappings_for(iss, "111")
            .await
            .expect("lookup")
            .len(),
        1
    );
    assert!(matches!(
        store.set_adtech_enabled("nobody", false, 0, &noted()).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn mappings_filter_delete_and_need_an_adtech(store: &Store) {
    store
        .insert_adtech(&adtech("acme"), &noted())
        .await
        .expect("insert");
    store
        .insert_adtech(&adtech("zeta"), &noted())
        .await
        .expect("insert");
    let m1 = mapping("m-1", "acme", "111");
    let mut m2 = mapping("m-2", "zeta", "222");
    m2.cloud = "azure".into();
    m2.issuer = "https://login.microsoftonline.com/t/v2.0".into();
    store
        .insert_mapping(&m1, 0, |_| Ok(()), &noted())
        .await
        .expect("insert");
    store
        .insert_mapping(&m2, 0, |_| Ok(()), &noted())
        .await
        .expect("insert");
    assert!(matches!(
        store.insert_mapping(&m1, 0, |_| Ok(()), &noted()).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .insert_mapping(&mapping("m-3", "nobody", "333"), 0, |_| Ok(()), &noted())
            .await,
        Err(StoreError::NotFound(_))
    ));
    // The check sees the existing rules for the same issuer and subject.
    let mut seen = Vec::new();
    let refused = store
        .insert_mapping(
            &mapping("m-4", "zeta", "111"),
            0,
            |existing| {
                seen = existing.iter().map(|m| m.id.clone()).collect();
                Err("overlaps m-1".into())
            },
            &noted(),
        )
        .await;
    assert!(matches!(refused, Err(StoreError::Conflict(msg)) if msg == "overlaps m-1"));
    assert_eq!(seen, ["m-1"]);

    let all = store
        .mappings(&MappingFilter::default())
        .await
        .expect("list");
    assert_eq!(all, [m1.clone(), m2.clone()]);
    let only = |f: MappingFilter| async move {
        store
            .mappings(&f)
            .await
            .expect("list")
            .into_iter()
            .map(|m| m.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        only(MappingFilter {
            adtech: Some("zeta".into()),
            ..Default::default()
        })
        .await,
        ["m-2"]
    );
    assert_eq!(
        only(MappingFilter {
            cloud: Some("gcp".into()),
            ..Default::default()
        })
        .await,
        ["m-1"]
    );
    assert_eq!(
        only(MappingFilter {
            issuer: Some(m2.issuer.clone()),
            cloud: Some("gcp".into()),
            ..Default::default()
        })
        .await,
        Vec::<String>::new()
    );

    store
        .set_adtech_enabled("acme", false, 1, &noted())
        .await
        .expect("disable");
    let for_subject = store
        .mappings_for_subject(&m1.issuer, "111")
        .await
        .expect("lookup");
    assert_eq!(for_subject, [(m1.clone(), false)]);
    store
        .set_adtech_enabled("acme", false, 1, &noted())
        .await
        .expect("disable");
    let for_subject = store
        .mappings_for_subject(&m1.issuer, "111")
        .await
        .expect("lookup");
    assert_eq!(for_subject, [(m1.clone(), false)]);
    assert_eq!(
        store
            .delete_mapping("m-1", |_| noted())
            .await
            .expect("delete"),
        m1
    );
    assert!(matches!(
        store.delete_mapping("m-1", |_| noted()).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn issuers_round_trip_and_refuse_duplicates(store: &Store) {
    let issuer = StoredIssuer {
        name: "eks-prod".into(),
        kind: "aws".into(),
        issuer: "https://oidc.eks.us-east-1.amazonaws.com/id/ABC".into(),
        document: serde_json::json!({"audience": "sts.amazonaws.com"}),
        created_at: 7,
    };
    store
        .insert_issuer(&issuer, &noted())
        .await
        .expect("insert");
    let mut same_url = issuer.clone();
    same_url.name = "other".into();
    assert!(matches!(
        store.insert_issuer(&same_url, &noted()).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.issuers().await.expect("list"),
        std::slice::from_ref(&issuer)
    );
    // Its mappings go with it, so trusting the URL again revives none.
    store
        .insert_adtech(&adtech("acme"), &noted())
        .await
        .expect("adtech");
    let mut of_issuer = mapping("m-1", "acme", "system:serviceaccount:ns:sa");
    of_issuer.issuer = issuer.issuer.clone();
    store
        .insert_mapping(&of_issuer, 0, |_| Ok(()), &noted())
        .await
        .expect("mapping");
    let other = mapping("m-2", "acme", "system:serviceaccount:ns:other");
    store
        .insert_mapping(&other, 0, |_| Ok(()), &noted())
        .await
        .expect("mapping");
    let (removed, mappings) = store
        .delete_issuer("eks-prod", |_, _| vec![noted()])
        .await
        .expect("delete");
    assert_eq!(removed, issuer);
    assert_eq!(mappings, vec![of_issuer]);
    assert!(store.issuers().await.expect("list").is_empty());
    let left = store
        .mappings(&MappingFilter::default())
        .await
        .expect("list");
    assert_eq!(
        left.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ["m-2"]
    );
}

const OWNER: NonceOwner<'static> = NonceOwner {
    adtech: "acme",
    subject: "adtech:acme",
};

async fn a_nonce_is_consumed_once(store: &Store) {
    store
        .insert_nonce(b"nonce-1", OWNER, 10_000)
        .await
        .expect("insert");
    store
        .insert_nonce(b"nonce-2", OWNER, 10_000)
        .await
        .expect("insert");
    assert!(matches!(
        store.insert_nonce(b"nonce-1", OWNER, 10_000).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .consume_nonce(b"nonce-1", OWNER, 9_999)
            .await
            .expect("consume"),
        NonceOutcome::Consumed
    );
    assert_eq!(
        store
            .consume_nonce(b"nonce-1", OWNER, 9_999)
            .await
            .expect("consume"),
        NonceOutcome::Unknown
    );
    assert_eq!(
        store
            .consume_nonce(b"nonce-2", OWNER, 10_000)
            .await
            .expect("consume"),
        NonceOutcome::Expired
    );
    assert_eq!(
        store
            .consume_nonce(b"never", OWNER, 0)
            .await
            .expect("consume"),
        NonceOutcome::Unknown
    );
}

async fn a_nonce_is_consumed_only_by_its_owner(store: &Store) {
    store
        .insert_nonce(b"mine", OWNER, 10_000)
        .await
        .expect("insert");
    for other in [
        NonceOwner {
            adtech: "beta",
            subject: OWNER.subject,
        },
        NonceOwner {
            adtech: OWNER.adtech,
            subject: "adtech:beta",
        },
    ] {
        assert_eq!(
            store
                .consume_nonce(b"mine", other, 0)
                .await
                .expect("consume"),
            NonceOutcome::OtherOwner
        );
    }
    // Still there for its owner: another caller cannot burn it.
    assert_eq!(
        store
            .consume_nonce(b"mine", OWNER, 0)
            .await
            .expect("consume"),
        NonceOutcome::Consumed
    );
}

async fn concurrent_consumers_of_one_nonce_have_one_winner(store: &Store) {
    for round in 0..5u8 {
        let nonce = [round; 32];
        store
            .insert_nonce(&nonce, OWNER, i64::MAX)
            .await
            .expect("insert");
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .consume_nonce(&nonce, OWNER, 0)
                        .await
                        .expect("consume")
                })
            })
            .collect();
        let mut consumed = 0;
        for task in tasks {
            if task.await.expect("task") == NonceOutcome::Consumed {
                consumed += 1;
            }
        }
        assert_eq!(consumed, 1, "round {round}");
    }
}

async fn expired_nonces_are_purged(store: &Store) {
    store
        .insert_nonce(b"old", OWNER, 100)
        .await
        .expect("insert");
    store
        .insert_nonce(b"new", OWNER, 300)
        .await
        .expect("insert");
    assert_eq!(store.purge_expired_nonces(200).await.expect("purge"), 1);
    assert_eq!(
        store
            .consume_nonce(b"new", OWNER, 200)
            .await
            .expect("consume"),
        NonceOutcome::Consumed
    );
}

async fn admin_token_hashes_are_replaced_by_label(store: &Store) {
    store
        .replace_admin_token("bootstrap", &[1; 32], "admin", 1)
        .await
        .expect("store");
    store
        .replace_admin_token("bootstrap", &[2; 32], "admin", 2)
        .await
        .expect("replace");
    store
        .replace_admin_token("other", &[3; 32], "auditor", 3)
        .await
        .expect("store");
    let mut hashes = store.admin_token_hashes().await.expect("list");
    hashes.sort();
    assert_eq!(
        hashes,
        [
            (vec![2; 32], "admin".to_owned(), "bootstrap".to_owned()),
            (vec![3; 32], "auditor".to_owned(), "other".to_owned())
        ]
    );
}

async fn migrations_are_idempotent(store: &Store) {
    store
        .insert_adtech(&adtech("acme"), &noted())
        .await
        .expect("insert");
    store.ping().await.expect("ping");
    // Every start re-runs the migrator: it must be a no-op that keeps data.
    match store.backend() {
        Backend::Sqlite => SQLITE_MIGRATIONS.run(&store.pool).await.expect("rerun"),
        Backend::Postgres => POSTGRES_MIGRATIONS.run(&store.pool).await.expect("rerun"),
    }
    assert_eq!(store.adtech("acme").await.expect("get").id, "acme");
}

async fn a_hand_edited_column_reads_as_corrupt_not_as_a_default(store: &Store) {
    store
        .insert_adtech(&adtech("acme"), &noted())
        .await
        .expect("insert");
    store
        .insert_adtech(&adtech("beta"), &noted())
        .await
        .expect("insert");
    // Rows are decoded through `FromRow` and the JSON/boolean column types:
    // a value this broker never writes is refused with the column named.
    sqlx::query("UPDATE adtechs SET sites = '[\"https://a.example\"' WHERE id = 'acme'")
        .execute(&store.pool)
        .await
        .expect("edit");
    sqlx::query("UPDATE adtechs SET enabled = 7 WHERE id = 'beta'")
        .execute(&store.pool)
        .await
        .expect("edit");
    for (id, column) in [("acme", "sites"), ("beta", "enabled")] {
        match store.adtech(id).await {
            Err(StoreError::Corrupt(message)) => assert!(message.contains(column), "{message}"),
            other => panic!("{id}: expected Corrupt, got {other:?}"),
        }
    }
    assert!(matches!(store.adtechs().await, Err(StoreError::Corrupt(_))));
}

async fn wrapped_secrets_are_deleted_by_prefix_with_wildcards_taken_literally(store: &Store) {
    let secret = StoredSplit {
        kek_uri: "local-kek://storage".into(),
        ciphertext: vec![1, 2, 3],
    };
    for name in [
        "handover_key",
        "handover_key/1",
        "handover_key/2",
        "handover_key/3",
        "handoverXkey/1",
        "public_key_signer",
    ] {
        store
            .insert_wrapped_secret_if_absent(name, &secret, 1)
            .await
            .expect("insert");
    }
    let keep = ["handover_key/3".to_owned(), "handover_key/2".to_owned()];
    assert_eq!(
        store
            .delete_wrapped_secrets_with_prefix("handover_key", &keep)
            .await
            .expect("delete"),
        2
    );
    for (name, kept) in [
        ("handover_key", false),
        ("handover_key/1", false),
        ("handover_key/2", true),
        ("handover_key/3", true),
        // `_` is a LIKE wildcard; the prefix means it literally.
        ("handoverXkey/1", true),
        ("public_key_signer", true),
    ] {
        let found = store.wrapped_secret(name).await.expect("read").is_some();
        assert_eq!(found, kept, "{name}");
    }
}

crate::on_both_backends!(
    wrapped_secrets_are_deleted_by_prefix_with_wildcards_taken_literally,
    a_hand_edited_column_reads_as_corrupt_not_as_a_default,
    adtechs_round_trip_and_refuse_duplicates,
    disabling_an_adtech_hides_its_mappings,
    mappings_filter_delete_and_need_an_adtech,
    issuers_round_trip_and_refuse_duplicates,
    a_nonce_is_consumed_once,
    a_nonce_is_consumed_only_by_its_owner,
    concurrent_consumers_of_one_nonce_have_one_winner,
    expired_nonces_are_purged,
    migrations_are_idempotent,
    admin_token_hashes_are_replaced_by_label,
);

#[tokio::test]
async fn an_unknown_url_scheme_is_refused() {
    assert!(matches!(
        Store::connect("mysql://x", 1).await,
        Err(StoreError::UnsupportedUrl)
    ));
}

#[tokio::test]
async fn sqlite_creates_its_directory_private() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nested = dir.path().join("data");
    let store = Store::connect(&format!("sqlite://{}/kf.db", nested.display()), 1)
        .await
        .expect("connect");
    store.ping().await.expect("ping");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&nested)
            .expect("stat")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700);
    }
}

#[cfg(unix)]
#[tokio::test]
async fn the_sqlite_file_is_private_even_in_an_existing_directory() {
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    // The directory exists (an operator made it, 0755): only the file's own
    // mode keeps the database private.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let file = dir.path().join("kf.db");
    let store = Store::connect(&format!("sqlite://{}", file.display()), 1)
        .await
        .expect("connect");
    store
        .insert_adtech(&adtech("acme"), &noted())
        .await
        .expect("write");
    assert_eq!(mode(&file), 0o600);
    for side in ["kf.db-wal", "kf.db-shm"] {
        let path = dir.path().join(side);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{side}");
        }
    }
    store.close().await;

    // A file an earlier version left readable by others is tightened.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let store = Store::connect(&format!("sqlite://{}", file.display()), 1)
        .await
        .expect("connect");
    assert_eq!(mode(&file), 0o600);
    assert_eq!(store.adtech("acme").await.expect("kept").id, "acme");
}

async fn rate_windows_are_counted_across_replicas(db: crate::testing::Db) {
    let Some(first) = crate::testing::TestDb::on(db).await else {
        return;
    };
    // A second replica: its own pool on the same database.
    let second = Store::connect(&first.url, 2).await.expect("second replica");
    let mut counts = Vec::new();
    for i in 0..6 {
        let replica = if i % 2 == 0 { &first.store } else { &second };
        counts.push(
            replica
                .count_in_window("bucket", 60_000)
                .await
                .expect("count"),
        );
    }
    assert_eq!(counts, [1, 2, 3, 4, 5, 6], "one count, whichever replica");
    assert_eq!(
        second
            .count_in_window("bucket", 120_000)
            .await
            .expect("count"),
        1
    );
    assert_eq!(
        second
            .count_in_window("other", 60_000)
            .await
            .expect("count"),
        1
    );
    assert_eq!(
        first
            .store
            .purge_rate_windows(120_000)
            .await
            .expect("purge"),
        2
    );
    assert_eq!(
        first
            .store
            .count_in_window("bucket", 120_000)
            .await
            .expect("count"),
        2
    );
    second.close().await;
}

/// Writers on two replicas commit outbox entries while the log's writer
/// takes them: every entry is taken exactly once. (On PostgreSQL a writer
/// can commit a lower `seq` after a higher one is visible.)
async fn outbox_entries_committed_out_of_order_are_each_taken_once(db: crate::testing::Db) {
    let Some(first) = crate::testing::TestDb::on(db).await else {
        return;
    };
    let second = Store::connect(&first.url, 4).await.expect("second replica");
    const WRITERS: usize = 4;
    const EACH: usize = 150;
    let writers = (0..WRITERS).map(|w| {
        let store = if w % 2 == 0 {
            first.store.clone()
        } else {
            second.clone()
        };
        tokio::spawn(async move {
            for i in 0..EACH {
                let mut tx = store.pool.begin().await.expect("begin");
                let entry = OutboxEntry {
                    body: format!(r#"{{"actor":"w{w}","details":{{"i":{i}}}}}"#),
                    ..noted()
                };
                audit_log::insert_outbox_in(&mut tx, &entry)
                    .await
                    .expect("insert");
                // Commit late now and then, after later writers.
                if i % 3 == 0 {
                    tokio::task::yield_now().await;
                }
                tx.commit().await.expect("commit");
            }
        })
    });
    let writers: Vec<_> = writers.collect();
    let mut taken = Vec::new();
    loop {
        let done = writers.iter().all(|w| w.is_finished());
        let mut tx = first.store.lock_audit(1).await.expect("lock");
        taken.extend(tx.take_outbox().await.expect("take"));
        tx.commit().await.expect("commit");
        if done {
            break;
        }
    }
    let mut bodies: Vec<String> = taken.into_iter().map(|e| e.body).collect();
    let all = bodies.len();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), all, "none twice");
    assert_eq!(all, WRITERS * EACH, "none lost");
    second.close().await;
}

mod replicas {
    crate::on_both_backends!(
        db: rate_windows_are_counted_across_replicas,
        outbox_entries_committed_out_of_order_are_each_taken_once
    );
    use super::{
        outbox_entries_committed_out_of_order_are_each_taken_once,
        rate_windows_are_counted_across_replicas,
    };
}
