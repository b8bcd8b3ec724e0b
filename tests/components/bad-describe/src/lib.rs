//! A connector whose `describe()` is absurd (bad id, plain-http origin):
//! mdmhub must reject it with the reason.

use mdmhub_sdk::prelude::*;

struct Bad;

impl Connector for Bad {
    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            id: "Bad Connector!".into(),
            name: "bad".into(),
            version: "0.0.1".into(),
            config: vec![],
            auth: AuthScheme::None,
            origins: vec!["http://example.com".into()],
            rate_policy: RatePolicy {
                buckets: vec![],
                max_concurrent: 1,
            },
            resources: vec![],
            actions: vec![],
            device_url_template: None,
        }
    }
    fn check(_: &Context) -> Result<(), ConnectorError> {
        Ok(())
    }
    fn list(
        _: &Context,
        _: ResourceKind,
        _: Option<String>,
        _: ListOptions,
    ) -> Result<Page, ConnectorError> {
        Ok(Page {
            records: vec![],
            next_cursor: None,
            errors: vec![],
        })
    }
}

mdmhub_sdk::export_connector!(Bad);
