//! Structured logging through the host (attributed to connector and account).

use crate::bindings::mdmhub::connector::log::{self as wit, Field, Level};

fn write(level: Level, message: &str, fields: &[(&str, &str)]) {
    let fields: Vec<Field> = fields
        .iter()
        .map(|(k, v)| Field {
            key: (*k).into(),
            value: (*v).into(),
        })
        .collect();
    wit::write(level, message, &fields);
}

/// Logs at debug level.
pub fn debug(message: &str, fields: &[(&str, &str)]) {
    write(Level::Debug, message, fields)
}
/// Logs at info level.
pub fn info(message: &str, fields: &[(&str, &str)]) {
    write(Level::Info, message, fields)
}
/// Logs at warn level.
pub fn warn(message: &str, fields: &[(&str, &str)]) {
    write(Level::Warn, message, fields)
}
