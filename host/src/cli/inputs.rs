//! Reading account inputs from the command line: `KEY=VALUE` pairs and
//! secrets given as `@FILE`, `env:VAR`, `-` (stdin) or a literal, so that a
//! secret need not appear in the process list.

use std::collections::BTreeMap;
use std::io::Read;

use anyhow::{Context as _, bail};

use crate::account::{AccountSpec, Endpoint, Secret};
use crate::accounts::AccountInput;
use crate::http::ratelimit::RateOverride;

/// Splits `KEY=VALUE`.
pub fn pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

/// Reads a secret's value from its source.
pub fn secret_value(source: &str, stdin_used: &mut bool) -> anyhow::Result<Secret> {
    let value = if let Some(path) = source.strip_prefix('@') {
        std::fs::read_to_string(path).with_context(|| format!("reading secret file {path}"))?
    } else if let Some(var) = source.strip_prefix("env:") {
        std::env::var(var).with_context(|| format!("reading secret from ${var}"))?
    } else if source == "-" {
        if *stdin_used {
            bail!("only one secret can come from stdin (`-`)");
        }
        *stdin_used = true;
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading secret from stdin")?;
        s
    } else {
        source.to_owned()
    };
    // Files and pipes usually end with a newline that is not part of the secret.
    let value = value.trim_end_matches(['\r', '\n']).to_owned();
    if value.is_empty() {
        bail!("the secret from `{source}` is empty");
    }
    Ok(Secret::new(value))
}

/// The account options shared by `call` and `accounts add`.
#[derive(Debug, clap::Args)]
pub struct AccountArgs {
    /// A config value, `KEY=VALUE` (repeatable).
    #[arg(long = "config", value_parser = pair, value_name = "KEY=VALUE")]
    pub config: Vec<(String, String)>,
    /// A secret, `KEY=@FILE`, `KEY=env:VAR`, `KEY=-` (stdin) or `KEY=VALUE` (repeatable).
    #[arg(long = "secret", value_parser = pair, value_name = "KEY=SOURCE")]
    pub secrets: Vec<(String, String)>,
    /// Send requests to this base URL instead: `URL` for every origin, `HOST=URL` for one (repeatable).
    #[arg(long = "endpoint", value_name = "[HOST=]URL")]
    pub endpoints: Vec<Endpoint>,
    /// Override the connector's rate policy, e.g. `5/s`, `300/m`, `1000/h`.
    #[arg(long)]
    pub rate_limit: Option<RateOverride>,
}

impl AccountArgs {
    /// The account spec, reading every secret from its source.
    pub fn spec(&self, id: &str) -> anyhow::Result<AccountSpec> {
        Ok(AccountSpec {
            id: id.into(),
            config: self.config.iter().cloned().collect(),
            secrets: self.read_secrets()?,
            endpoints: self.endpoints.clone(),
            rate: self.rate_limit,
        })
    }

    /// The inputs of a saved account, reading every secret from its source.
    pub fn input(&self, interval_secs: Option<i64>) -> anyhow::Result<AccountInput> {
        Ok(AccountInput {
            config: self.config.iter().cloned().collect(),
            secrets: self.read_secrets()?,
            endpoints: self.endpoints.iter().map(|e| e.to_string()).collect(),
            rate_limit: self.rate_limit.map(|r| r.to_string()),
            interval_secs,
        })
    }

    fn read_secrets(&self) -> anyhow::Result<BTreeMap<String, Secret>> {
        let mut stdin_used = false;
        let mut secrets = BTreeMap::new();
        for (key, source) in &self.secrets {
            let value =
                secret_value(source, &mut stdin_used).with_context(|| format!("secret `{key}`"))?;
            secrets.insert(key.clone(), value);
        }
        Ok(secrets)
    }
}

/// Parses a duration such as `30m`, `6h`, `1d` or `90s` into seconds.
pub fn interval(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("interval `{s}`: add a unit (s, m, h or d)"))?;
    let n: i64 = s[..split]
        .parse()
        .map_err(|_| format!("interval `{s}`: expected a number and a unit, e.g. 6h"))?;
    let unit = match &s[split..] {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => {
            return Err(format!(
                "interval `{s}`: unknown unit `{other}` (s, m, h or d)"
            ));
        }
    };
    let secs = n * unit;
    if secs < 60 {
        return Err(format!("interval `{s}`: at least one minute"));
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_sources() {
        let dir = std::env::temp_dir().join(format!("mdmhub-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "s3cret\n").unwrap();
        let mut used = false;
        let from_file = secret_value(&format!("@{}", file.display()), &mut used).unwrap();
        assert_eq!(from_file.expose(), "s3cret");
        assert_eq!(
            secret_value("literal", &mut used).unwrap().expose(),
            "literal"
        );
        assert!(secret_value("env:MDMHUB_SURELY_UNSET_VAR", &mut used).is_err());
        assert!(secret_value("@/nonexistent/file", &mut used).is_err());
        assert_eq!(pair("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert!(pair("novalue").is_err());
        assert_eq!(interval("6h"), Ok(6 * 3600));
        assert_eq!(interval("1d"), Ok(86_400));
        assert!(interval("10s").is_err());
        assert!(interval("5").is_err());
    }
}
