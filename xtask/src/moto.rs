//! moto's server, started so that it checks SigV4 signatures: the first
//! [`NO_AUTH_ACTIONS`] calls (our seeding: IAM user, policy, attachment, access key) go
//! unauthenticated, every later call must be signed with a key moto knows.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use crate::http;
use crate::process::Launch;

/// The region the suites sign for.
pub(crate) const REGION: &str = "us-east-1";
/// The IAM user the seeded access key belongs to.
const USER: &str = "strongroom-itest";
/// The seeding calls below, one per unauthenticated action moto allows.
const NO_AUTH_ACTIONS: usize = 4;

/// How to start moto on `port`.
pub(crate) fn launch(venv: &Path, port: u16) -> Launch {
    let env = server_env();
    Launch {
        program: venv.join("bin/python"),
        args: vec![
            venv.join("bin/moto_server").display().to_string(),
            "-H".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
        ],
        env,
        log: crate::layout::log_file("moto"),
    }
}

/// moto's settings on either runtime: the unauthenticated budget our seeding spends.
pub(crate) fn server_env() -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert(
        "INITIAL_NO_AUTH_ACTION_COUNT".to_owned(),
        NO_AUTH_ACTIONS.to_string(),
    );
    env
}

/// Healthy once moto's own API answers.
pub(crate) fn healthy(addr: SocketAddr) -> bool {
    http::request(addr, "GET", "/moto-api/", &[], "").is_ok_and(|r| r.status == 200)
}

/// One IAM query-API call. Unsigned calls are allowed while the no-auth budget lasts; the
/// Authorization header is only there so moto routes the call to IAM.
fn iam(addr: SocketAddr, params: &str) -> Result<String, String> {
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240101/{REGION}/iam/aws4_request, \
         SignedHeaders=host, Signature=0"
    );
    let body = format!("{params}&Version=2010-05-08");
    let response = http::request(
        addr,
        "POST",
        "/",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &body,
    )?;
    if response.status == 200 {
        Ok(response.body)
    } else {
        let action = params.split('&').next().unwrap_or(params);
        Err(format!("moto IAM {action} answered {}", response.status))
    }
}

/// Creates the user, a policy allowing Secrets Manager and STS, and an access key; returns
/// the environment with the key pair.
pub(crate) fn seed(addr: SocketAddr) -> Result<BTreeMap<String, String>, String> {
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:*","sts:*"],"Resource":"*"}]}"#;
    let encoded: String = policy
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    iam(addr, &format!("Action=CreateUser&UserName={USER}"))?;
    let created = iam(
        addr,
        &format!("Action=CreatePolicy&PolicyName=itest-secrets&PolicyDocument={encoded}"),
    )?;
    let arn = element(&created, "Arn").ok_or("moto CreatePolicy returned no Arn")?;
    iam(
        addr,
        &format!("Action=AttachUserPolicy&UserName={USER}&PolicyArn={arn}"),
    )?;
    let key = iam(addr, &format!("Action=CreateAccessKey&UserName={USER}"))?;
    let id = element(&key, "AccessKeyId").ok_or("moto CreateAccessKey returned no key id")?;
    let secret =
        element(&key, "SecretAccessKey").ok_or("moto CreateAccessKey returned no secret key")?;
    let mut env = BTreeMap::new();
    env.insert(
        "STRONGROOM_ITEST_MOTO_ENDPOINT".to_owned(),
        format!("http://{addr}"),
    );
    env.insert("STRONGROOM_ITEST_MOTO_ACCESS_KEY_ID".to_owned(), id);
    env.insert("STRONGROOM_ITEST_MOTO_SECRET_ACCESS_KEY".to_owned(), secret);
    env.insert("STRONGROOM_ITEST_MOTO_USER".to_owned(), USER.to_owned());
    Ok(env)
}

/// The text of the first `<name>` element of an XML document.
fn element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    Some(xml[start..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_finds_the_first_match() {
        let xml = "<A><Arn>arn:1</Arn><Arn>arn:2</Arn></A>";
        assert_eq!(element(xml, "Arn").as_deref(), Some("arn:1"));
        assert_eq!(element(xml, "Missing"), None);
    }
}
