//! Webhooks: events rendered where changes happen and stored in the outbox
//! with them (`events`), signed per Standard Webhooks (`signing`), and
//! delivered with retries by the dispatcher of `mdmhub serve` (`deliver`).

pub mod deliver;
pub mod events;
pub mod signing;

/// Every event type a subscription can ask for.
pub const EVENT_TYPES: [&str; 7] = [
    events::DEVICE_CREATED,
    events::DEVICE_UPDATED,
    events::DEVICE_REMOVED,
    events::DEVICE_COMPLIANCE_CHANGED,
    events::SYNC_COMPLETED,
    events::SYNC_FAILED,
    events::ACTION_COMPLETED,
];
