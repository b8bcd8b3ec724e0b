//! Rust SDK for mdmhub connectors.
//!
//! A connector is one [`Connector`] impl plus one [`export_connector!`] call,
//! built for `wasm32-wasip2`. The SDK wraps the `mdmhub:connector@0.1.0` WIT
//! bindings and adds a request builder ([`http`]), typed paging cursors
//! ([`paging`]), page assembly with per-record errors ([`page`]), lenient
//! JSON readers for vendor quirks ([`lenient`]) and their typed serde
//! counterparts ([`fields`]), Apple model facts
//! ([`apple`]) and logging ([`log`]).
//!
//! ```ignore
//! use mdmhub_sdk::prelude::*;
//! struct Acme;
//! impl Connector for Acme { /* describe, check, list, ... */ }
//! mdmhub_sdk::export_connector!(Acme);
//! ```

pub mod action;
pub mod apple;
pub mod context;
mod elements;
pub mod error;
pub mod fields;
pub mod http;
pub mod lenient;
pub mod log;
pub mod page;
pub mod paging;
pub mod pc;

#[doc(hidden)]
// Generated code: WIT records become many-argument functions.
#[allow(clippy::too_many_arguments)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/0.1.0",
        world: "connector",
        pub_export_macro: true,
        export_macro_name: "__export_world",
        default_bindings_module: "mdmhub_sdk::bindings",
        generate_all,
        additional_derives: [PartialEq],
    });
}

pub use bindings::mdmhub::connector::types::*;

/// Everything a connector usually needs.
pub mod prelude {
    pub use crate::action;
    pub use crate::context::ContextExt;
    pub use crate::error::{ResultExt, invalid_data};
    pub use crate::fields::{Flag, List, Object, Text};
    pub use crate::http::{Item, Request, Response, segment};
    pub use crate::lenient;
    pub use crate::page::{self, Unmappable};
    pub use crate::paging::{NextUrlCursor, OffsetCursor};
    pub use crate::*;
}

/// What a connector implements. `get` and `action` default to `unsupported`.
pub trait Connector {
    /// Static description: config, auth, origins, rate policy, resources, actions.
    fn describe() -> ConnectorInfo;
    /// A cheap real call proving the account's credentials and config.
    fn check(ctx: &Context) -> Result<(), ConnectorError>;
    /// One page of `kind`, starting at `cursor`.
    fn list(
        ctx: &Context,
        kind: ResourceKind,
        cursor: Option<String>,
        options: ListOptions,
    ) -> Result<Page, ConnectorError>;
    /// One object with its details.
    fn get(_ctx: &Context, kind: ResourceKind, _id: String) -> Result<Entity, ConnectorError> {
        Err(ConnectorError::Unsupported(format!("get {kind:?}")))
    }
    /// Runs an action on a device.
    fn action(
        _ctx: &Context,
        _device_id: String,
        request: ActionRequest,
    ) -> Result<ActionOutcome, ConnectorError> {
        Err(ConnectorError::Unsupported(format!(
            "action {:?}",
            request.kind
        )))
    }
}

/// Exports a [`Connector`] impl as the component's `connector` world.
#[macro_export]
macro_rules! export_connector {
    ($ty:ty) => {
        const _: () = {
            struct __MdmhubExport;
            impl $crate::bindings::Guest for __MdmhubExport {
                fn describe() -> $crate::ConnectorInfo {
                    <$ty as $crate::Connector>::describe()
                }
                fn check(ctx: $crate::Context) -> Result<(), $crate::ConnectorError> {
                    <$ty as $crate::Connector>::check(&ctx)
                }
                fn list(
                    ctx: $crate::Context,
                    kind: $crate::ResourceKind,
                    cursor: Option<String>,
                    options: $crate::ListOptions,
                ) -> Result<$crate::Page, $crate::ConnectorError> {
                    <$ty as $crate::Connector>::list(&ctx, kind, cursor, options)
                }
                fn get(
                    ctx: $crate::Context,
                    kind: $crate::ResourceKind,
                    id: String,
                ) -> Result<$crate::Entity, $crate::ConnectorError> {
                    <$ty as $crate::Connector>::get(&ctx, kind, id)
                }
                fn action(
                    ctx: $crate::Context,
                    device_id: String,
                    request: $crate::ActionRequest,
                ) -> Result<$crate::ActionOutcome, $crate::ConnectorError> {
                    <$ty as $crate::Connector>::action(&ctx, device_id, request)
                }
            }
            $crate::bindings::__export_world!(__MdmhubExport);
        };
    };
}
