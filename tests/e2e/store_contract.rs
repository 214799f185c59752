//! Both store adapters pass the same contract: the embedded one always, the DynamoDB one against
//! DynamoDB Local.

use baton_testkit::store_contract;

use crate::support::{dynamodb_store, embedded_store};

#[tokio::test]
async fn embedded_store_meets_the_contract() {
    store_contract::run_all(&embedded_store(), "emb").await;
    store_contract::run_handoff(&embedded_store(), "emb").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_store_meets_the_contract() {
    let Some((store, _)) = dynamodb_store().await else {
        return;
    };
    store_contract::run_all(&store, "ddb").await;
    store_contract::run_handoff(&store, "ddb").await;
}

#[tokio::test]
async fn embedded_store_keeps_everything_across_a_reopen() {
    use baton_local::redb_store::RedbStore;
    use baton_shared::domain::{BatchOrigin, ConversationKey, build_batch};
    use baton_shared::store::{ConversationReader, DeliveryStore};
    let dir = std::env::temp_dir().join(crate::support::unique("baton-reopen"));
    let body =
        baton_testkit::bodies::texts("reopen", "16505550100", &[("wamid.p1", 1), ("wamid.p2", 2)]);
    let batch = build_batch(body.into(), 5, BatchOrigin::Webhook);
    {
        let store = RedbStore::open(&dir).unwrap();
        assert_eq!(store.write_batch(&batch).await.unwrap().messages_new, 2);
    }
    let store = RedbStore::open(&dir).unwrap();
    let again = store.write_batch(&batch).await.unwrap();
    assert_eq!((again.delivery_new, again.messages_duplicate), (false, 2));
    let page = store
        .messages_page(&ConversationKey::new("reopen", "16505550100"), None, 10)
        .await
        .unwrap();
    assert_eq!(page.messages.len(), 2);
}
