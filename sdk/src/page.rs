//! Building a [`Page`] from vendor items: each item maps to a record or,
//! when it cannot be mapped, to a per-record error that does not block the
//! rest of the page.

use crate::{ConnectorError, Entity, ListOptions, Page, RecordError};

/// Why one vendor item could not become a record.
#[derive(Debug, Clone, PartialEq)]
pub struct Unmappable {
    /// The vendor's id of the item, if it has one.
    pub remote_id: Option<String>,
    /// What is wrong with it.
    pub message: String,
}

impl Unmappable {
    /// An item without a usable id.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            remote_id: None,
            message: message.into(),
        }
    }
}

impl From<&str> for Unmappable {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

/// The device a per-device listing (`scope: per-device`) is for, or
/// `invalid-config` when the host passed none.
pub fn parent_id(options: ListOptions) -> Result<String, ConnectorError> {
    options.parent_id.ok_or_else(|| {
        ConnectorError::InvalidConfig("this resource is listed per device: pass a parent id".into())
    })
}

/// A page of the mapped `items`, continuing at `next` (`None`: the last page).
pub fn from_items<I>(items: I, next: Option<&str>) -> Page
where
    I: IntoIterator<Item = Result<Entity, Unmappable>>,
{
    let mut page = Page {
        records: Vec::new(),
        next_cursor: next.map(str::to_owned),
        errors: Vec::new(),
    };
    for item in items {
        match item {
            Ok(e) => page.records.push(e),
            Err(u) => page.errors.push(RecordError {
                remote_id: u.remote_id,
                message: u.message,
            }),
        }
    }
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Organization, OrganizationKind};

    #[test]
    fn bad_items_become_record_errors() {
        let org = Entity::Organization(Organization {
            remote_id: "1".into(),
            name: "x".into(),
            kind: OrganizationKind::Tenant,
            remote_data: "{}".into(),
            extra: vec![],
        });
        let page = from_items([Ok(org), Err("no id".into())], Some("2"));
        assert_eq!(page.records.len(), 1);
        assert_eq!(page.errors[0].message, "no id");
        assert_eq!(page.next_cursor.as_deref(), Some("2"));
    }
}
