//! Customer profiles: the `Users` table of the contract. Every write here reaches
//! `db.changes.users` through change data capture (the capture triggers see it like any other
//! client's write).

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// A row of `Users`, with the table's own column names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserProfile {
    #[serde(rename = "UserId")]
    pub user_id: String,
    #[serde(rename = "Email")]
    pub email: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Phone")]
    pub phone: Option<String>,
    #[serde(rename = "CreatedAt")]
    pub created_at: String,
    #[serde(rename = "UpdatedAt")]
    pub updated_at: String,
}

/// The writable part of a profile (PUT replaces all of it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileUpdate {
    pub email: String,
    pub name: String,
    pub phone: Option<String>,
}

/// The tables whose rows keep a customer from being deleted.
const PRODUCTS: [(&str, &str); 4] =
    [("accounts", "accounts"), ("cards", "cards"), ("loans", "loans"), ("financial_profiles", "a financial profile")];

pub fn get(conn: &Connection, user_id: &str) -> rusqlite::Result<Option<UserProfile>> {
    conn.query_row(
        "SELECT UserId, Email, Name, Phone, CreatedAt, UpdatedAt FROM Users WHERE UserId = ?1",
        [user_id],
        |r| {
            Ok(UserProfile {
                user_id: r.get(0)?,
                email: r.get(1)?,
                name: r.get(2)?,
                phone: r.get(3)?,
                created_at: r.get(4)?,
                updated_at: r.get(5)?,
            })
        },
    )
    .optional()
}

pub fn exists(conn: &Connection, user_id: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM Users WHERE UserId = ?1)")?.query_row([user_id], |r| r.get(0))
}

/// Creates or replaces the profile; returns it and whether it was created. The change carries
/// `traceparent` into capture (see [`crate::trace_context`]).
pub fn put(
    conn: &mut Connection,
    user_id: &str,
    update: &ProfileUpdate,
    traceparent: Option<&str>,
) -> rusqlite::Result<(UserProfile, bool)> {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let tx = crate::store::sqlite::write_transaction(conn)?;
    crate::trace_context::set(&tx, traceparent)?;
    let existed = exists(&tx, user_id)?;
    tx.execute(
        "INSERT INTO Users (UserId, Email, Name, Phone, CreatedAt, UpdatedAt) VALUES (?1, ?2, ?3, ?4, ?5, ?5)
         ON CONFLICT (UserId) DO UPDATE SET Email = excluded.Email, Name = excluded.Name, Phone = excluded.Phone,
                                            UpdatedAt = excluded.UpdatedAt",
        params![user_id, update.email, update.name, update.phone, now],
    )?;
    let profile = get(&tx, user_id)?.expect("just written");
    crate::trace_context::clear(&tx, traceparent)?;
    tx.commit()?;
    Ok((profile, !existed))
}

/// What a delete did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deleted {
    Deleted,
    NotFound,
    /// The customer still holds these products; nothing was deleted.
    HoldsProducts(Vec<&'static str>),
}

/// Deletes the profile unless the customer still holds products with the bank.
pub fn delete(conn: &mut Connection, user_id: &str, traceparent: Option<&str>) -> rusqlite::Result<Deleted> {
    let tx = crate::store::sqlite::write_transaction(conn)?;
    if !exists(&tx, user_id)? {
        return Ok(Deleted::NotFound);
    }
    let mut held = Vec::new();
    for (table, what) in PRODUCTS {
        let any: bool =
            tx.query_row(&format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE user_id = ?1)"), [user_id], |r| {
                r.get(0)
            })?;
        if any {
            held.push(what);
        }
    }
    if !held.is_empty() {
        return Ok(Deleted::HoldsProducts(held));
    }
    crate::trace_context::set(&tx, traceparent)?;
    tx.execute("DELETE FROM Users WHERE UserId = ?1", [user_id])?;
    crate::trace_context::clear(&tx, traceparent)?;
    tx.commit()?;
    Ok(Deleted::Deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::tests_support::bank;

    #[test]
    fn put_creates_then_replaces_and_delete_respects_products() {
        let (_dir, mut conn) = bank();
        let up = ProfileUpdate { email: "new@example.com".into(), name: "New".into(), phone: None };
        let (p, created) = put(&mut conn, "u-2001", &up, None).unwrap();
        assert!(created);
        assert_eq!(p.email, "new@example.com");
        let (p2, created) = put(&mut conn, "u-2001", &ProfileUpdate { name: "Renamed".into(), ..up }, None).unwrap();
        assert!(!created);
        assert_eq!((p2.name.as_str(), p2.created_at.as_str()), ("Renamed", p.created_at.as_str()));
        assert_eq!(delete(&mut conn, "u-2001", None).unwrap(), Deleted::Deleted);
        assert_eq!(delete(&mut conn, "u-2001", None).unwrap(), Deleted::NotFound);
        assert!(
            matches!(delete(&mut conn, "u-1001", None).unwrap(), Deleted::HoldsProducts(p) if p.contains(&"cards"))
        );
        assert!(get(&conn, "u-1001").unwrap().is_some());
    }
}
