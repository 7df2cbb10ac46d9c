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
        None => parse(&default_endpoint(service, region)),
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
    fn bad_endpoints_are_config_errors() {
        for bad in ["", "not a url", "ftp://x", "/relative"] {
            assert!(matches!(parse(bad), Err(AwsError::Config(_))), "{bad}");
        }
    }
}
