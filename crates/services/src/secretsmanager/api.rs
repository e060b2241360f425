//! What other services use of Secrets Manager, inside their own write transaction: RDS
//! keeps a managed master password as a secret (`rds!db-<uuid>`, OwningService `rds`), made,
//! read and deleted with the database. Secrets made here obey the same rules as the API's
//! (a name is taken once, labels move the same way), and users cannot change or delete
//! them through the API: only their owning service can.

use super::secrets::{NewValue, new_secret, put_version};
use super::{CURRENT, Secret, find, not_found};
use crate::{Ctx, Result};
use kumori_store::Tx;

/// Makes secret `name` holding `secret_string` as its AWSCURRENT version, managed by
/// `owning_service`; its ARN.
pub async fn create_managed(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    name: &str,
    secret_string: &str,
    kms_key_id: Option<&str>,
    owning_service: &str,
) -> Result<String> {
    let mut s = new_secret(ctx, tx, name, None, kms_key_id.map(str::to_string)).await?;
    s.owning_service = Some(owning_service.to_string());
    let version = uuid::Uuid::new_v4().to_string();
    put_version(
        &mut s,
        &version,
        NewValue {
            string: Some(secret_string.to_string()),
            binary: None,
        },
        &[CURRENT.to_string()],
    )?;
    crate::resource::insert(ctx, tx, &s).await?;
    Ok(s.arn)
}

/// Puts `secret_string` as a new AWSCURRENT version of the managed secret `arn` (the old
/// one becomes AWSPREVIOUS), as the owning service does when it rotates the value.
pub async fn put_managed(ctx: &Ctx<'_>, tx: &mut Tx, arn: &str, secret_string: &str) -> Result<()> {
    let mut s: Secret = find(ctx, tx, arn, true).await?.ok_or_else(not_found)?;
    let version = uuid::Uuid::new_v4().to_string();
    put_version(
        &mut s,
        &version,
        NewValue {
            string: Some(secret_string.to_string()),
            binary: None,
        },
        &[CURRENT.to_string()],
    )?;
    crate::resource::update(ctx, tx, &s).await
}

/// The AWSCURRENT string of the secret `arn` (or name) names; `None` when it has none.
pub async fn current_value(ctx: &Ctx<'_>, tx: &mut Tx, arn: &str) -> Result<Option<String>> {
    let s: Secret = find(ctx, tx, arn, false).await?.ok_or_else(not_found)?;
    Ok(s.version_with(CURRENT).and_then(|(_, v)| v.string.clone()))
}

/// Deletes the secret `arn` names at once (its name is free again), as its owning service
/// does when what it belongs to goes. A secret already gone is no error.
pub async fn delete_managed(ctx: &Ctx<'_>, tx: &mut Tx, arn: &str) -> Result<()> {
    if let Some(s) = find(ctx, tx, arn, true).await? {
        tx.delete(ctx.scope(), &s.id).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;

    #[tokio::test]
    async fn managed_secrets_are_made_read_and_deleted_in_the_callers_transaction() {
        let store = kumori_store::Store::open_memory().await.unwrap();
        let limits = Limits::default();
        let ctx = Ctx::root(&store, "000000000000", "us-east-1", &limits);
        let mut tx = store.write().await.unwrap();
        let arn = create_managed(&ctx, &mut tx, "rds!db-1234", "pw", None, "rds")
            .await
            .unwrap();
        assert!(
            arn.starts_with("arn:aws:secretsmanager:us-east-1:000000000000:secret:rds!db-1234-")
        );
        assert_eq!(
            current_value(&ctx, &mut tx, &arn).await.unwrap().as_deref(),
            Some("pw")
        );
        // The name is taken.
        assert!(
            create_managed(&ctx, &mut tx, "rds!db-1234", "x", None, "rds")
                .await
                .is_err()
        );
        tx.commit().await.unwrap();

        // Users cannot delete it through the API.
        let del = super::super::secrets::delete_secret(
            &ctx,
            &serde_json::json!({ "SecretId": arn, "ForceDeleteWithoutRecovery": true }),
        )
        .await;
        assert_eq!(del.unwrap_err().0.code, "InvalidRequestException");

        let mut tx = store.write().await.unwrap();
        delete_managed(&ctx, &mut tx, &arn).await.unwrap();
        assert!(current_value(&ctx, &mut tx, &arn).await.is_err());
        tx.commit().await.unwrap();
    }
}
