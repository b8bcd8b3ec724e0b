//! `{name}` templates over an account's config and variables (origins,
//! token URLs, deep links).

use std::collections::BTreeMap;

/// Expands every `{name}` in `template` from `vars`; an unknown name or an
/// unclosed brace is an error naming it.
pub fn expand(template: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed `{{` in template `{template}`"))?;
        let name = &after[..end];
        let value = vars
            .get(name)
            .ok_or_else(|| format!("template `{template}` uses `{{{name}}}`, which is not set"))?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The names a template uses.
pub fn names(template: &str) -> Vec<&str> {
    template
        .split('{')
        .skip(1)
        .filter_map(|s| s.split_once('}').map(|(n, _)| n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_and_reports_unknown_names() {
        let vars = BTreeMap::from([
            ("subdomain".into(), "acme".into()),
            ("api_host".into(), "api.kandji.io".into()),
        ]);
        assert_eq!(
            expand("https://{subdomain}.{api_host}", &vars).unwrap(),
            "https://acme.api.kandji.io"
        );
        assert!(
            expand("https://{tenant}.x", &vars)
                .unwrap_err()
                .contains("{tenant}")
        );
        assert!(expand("https://{oops", &vars).is_err());
        assert_eq!(names("https://{a}.{b}/x"), vec!["a", "b"]);
    }
}
