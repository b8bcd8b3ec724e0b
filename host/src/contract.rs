//! The connector contract's types, as the host sees them (the newest WIT
//! version). Older versions would be converted into these.

pub use crate::runtime::bindings::mdmhub::connector::http::{
    Header, HttpError, Paging, Request as HttpRequest, Response as HttpResponse,
};
pub use crate::runtime::bindings::mdmhub::connector::types::*;

/// The WIT package version this host implements.
pub const CONTRACT_VERSION: &str = "0.1.0";
