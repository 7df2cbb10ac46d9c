//! Where a service is: `AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL`, or the region's
//! public endpoint.

use http::Uri;
use strongroom_sigv4::Env;

use crate::error::AwsError;

/// The endpoint of `service` (`secretsmanager`, `sts`) in `region`.
///
/// `env_suffix` is the service's part of the variable name (`SECRETS_MANAGER`, `STS`), as
/// in the AWS SDKs' "service-specific endpoints". `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`
/// turns both variables off.
pub(crate) fn resolve(
    env: &Env,
    env_suffix: &str,
    service: &str,
    region: &str,
) -> Result<Uri, AwsError> {
    let ignore = env
        .get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let configured = if ignore {
        None
    } else {
        env.get(&format!("AWS_ENDPOINT_URL_{env_suffix}"))
            .or_else(|| env.get("AWS_ENDPOINT_URL"))
    };
    match configured {
        Some(url) => parse(&url),
        None => {
            check_region(region)?;
            parse(&default_endpoint(service, region))
        }
    }
}

/// The longest region name accepted (the longest AWS region today has 14 characters).
pub(crate) const MAX_REGION_LEN: usize = 32;

/// Refuses a region that is not 1 to [`MAX_REGION_LEN`] of `[a-z0-9-]`: a region becomes
/// part of a host name (`secretsmanager.<region>.amazonaws.com`) and of the signature's
/// scope, and one read from a variable or a profile could otherwise point requests, and
/// the credentials signing them, at another host (`evil.example/` or `x.attacker.net#`).
pub(crate) fn check_region(region: &str) -> Result<(), AwsError> {
    let valid = (1..=MAX_REGION_LEN).contains(&region.len())
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(AwsError::Config(format!(
            "region {:?} is not a region name: expected 1 to {MAX_REGION_LEN} of a-z, 0-9 and \
             `-`, such as eu-west-1",
            region.chars().take(MAX_REGION_LEN + 8).collect::<String>()
        )))
    }
}

/// `https://<service>.<region>.amazonaws.com`, or `.amazonaws.com.cn` in the China regions.
pub(crate) fn default_endpoint(service: &str, region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://{service}.{region}.{suffix}")
}

/// Parses an endpoint URL: absolute `http` or `https`, with a host. The path, if any, is
/// kept (requests are sent to it).
pub(crate) fn parse(url: &str) -> Result<Uri, AwsError> {
    let uri: Uri = url
        .trim()
        .parse()
        .map_err(|_| AwsError::Config(format!("endpoint {url:?} is not a valid URL")))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(host)) if !host.is_empty() => Ok(uri),
        _ => Err(AwsError::Config(format!(
            "endpoint {url:?} must be an absolute http:// or https:// URL"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_variable_wins_over_general_one() {
        let env = Env::from_vars([
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:2"),
        ]);
        let uri = resolve(&env, "SECRETS_MANAGER", "secretsmanager", "eu-west-1").unwrap();
        assert_eq!(uri.port_u16(), Some(2));
        let uri = resolve(&env, "STS", "sts", "eu-west-1").unwrap();
        assert_eq!(uri.port_u16(), Some(1));
    }

    #[test]
    fn default_is_the_regional_endpoint() {
        let env = Env::from_vars([
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ]);
        let uri = resolve(&env, "STS", "sts", "eu-west-1").unwrap();
        assert_eq!(uri.to_string(), "https://sts.eu-west-1.amazonaws.com/");
        assert_eq!(
            default_endpoint("secretsmanager", "cn-north-1"),
            "https://secretsmanager.cn-north-1.amazonaws.com.cn"
        );
    }

    #[test]
    fn regions_must_be_region_names() {
        for good in ["eu-west-1", "us-gov-west-1", "cn-north-1", "local", "a"] {
            assert!(check_region(good).is_ok(), "{good}");
        }
        let long = "a".repeat(MAX_REGION_LEN + 1);
        for bad in [
            "",
            "EU-WEST-1",
            "eu west 1",
            "evil.example/",
            "x.attacker.net#",
            "eu-west-1.attacker",
            "us-east-1@evil",
            "é",
            long.as_str(),
        ] {
            assert!(
                matches!(check_region(bad), Err(AwsError::Config(_))),
                "{bad:?}"
            );
            let env = Env::from_vars([("AWS_REGION", bad)]);
            assert!(resolve(&env, "STS", "sts", bad).is_err(), "{bad:?}");
        }
        // A configured endpoint does not put the region in a host name; it is still checked
        // where the client is built (see the client builders).
    }

    #[test]
    fn bad_endpoints_are_config_errors() {
        for bad in ["", "not a url", "ftp://x", "/relative"] {
            assert!(matches!(parse(bad), Err(AwsError::Config(_))), "{bad}");
        }
    }
}
