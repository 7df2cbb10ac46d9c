//! moto's server, started so that it checks SigV4 signatures: the first
//! [`NO_AUTH_ACTIONS`] calls (our seeding: three IAM users, each with a policy, its
//! attachment and an access key; one role with an inline policy; one KMS key and its
//! alias) go unauthenticated, every later call must be signed with a key moto knows, and
//! moto enforces each user's IAM policy. moto's server serves every service it has, KMS
//! among them, on the one port.
//!
//! The KMS key is what the key-provider suite wraps data keys with; the third user may
//! `kms:Encrypt` and `kms:GenerateDataKey` but not `kms:Decrypt`, so a refused unwrap is a
//! real IAM decision.
//!
//! The second user holds the IAM policy docs/security.md documents, read from that file
//! here, so the least-privilege suite proves the actions users copy, not a copy of them.
//! Its `Resource` elements become `*`: moto checks every Secrets Manager call against the
//! resource `*` (it has no resource-level checks for this service), so a scoped ARN would
//! deny everything there while AWS allows it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use crate::http;
use crate::process::Launch;

/// The region the suites sign for.
pub(crate) const REGION: &str = "us-east-1";
/// The IAM user the seeded access key belongs to.
const USER: &str = "strongroom-itest";
/// The IAM user that holds exactly the documented policy.
const LEAST_USER: &str = "strongroom-itest-least";
/// The IAM role the AssumeRole and role-profile suites assume: moto applies the role's own
/// policy to calls signed with its session credentials, so the role must exist.
const ROLE: &str = "strongroom-itest-role";
/// The IAM user that may wrap with the KMS key but not unwrap.
const KMS_NO_DECRYPT_USER: &str = "strongroom-itest-kms-nodecrypt";
/// The alias of the seeded KMS key.
const KMS_ALIAS: &str = "alias/strongroom-itest";
/// The seeding calls below, one per unauthenticated action moto allows: four per user,
/// two for the role, two for the KMS key.
const NO_AUTH_ACTIONS: usize = 16;

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

/// Creates the users (one allowed all of Secrets Manager, SSM, KMS and STS, one holding the documented
/// policy), their policies and access keys; returns the environment with both key pairs.
pub(crate) fn seed(addr: SocketAddr) -> Result<BTreeMap<String, String>, String> {
    let full = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:*","sts:*","ssm:*","kms:*"],"Resource":"*"}]}"#;
    let (id, secret) = user_with_policy(addr, USER, "itest-secrets", full)?;
    let documented = documented_policy()?;
    let (least_id, least_secret) =
        user_with_policy(addr, LEAST_USER, "itest-documented", &documented)?;
    let role_arn = role_with_policy(addr, ROLE, full)?;
    let no_decrypt = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Encrypt","kms:GenerateDataKey","kms:DescribeKey"],"Resource":"*"}]}"#;
    let (kms_id, kms_secret) = user_with_policy(
        addr,
        KMS_NO_DECRYPT_USER,
        "itest-kms-no-decrypt",
        no_decrypt,
    )?;
    let (key_id, key_arn) = kms_key(addr, KMS_ALIAS)?;
    let mut env = BTreeMap::new();
    env.insert(
        "STRONGROOM_ITEST_MOTO_ENDPOINT".to_owned(),
        format!("http://{addr}"),
    );
    env.insert("STRONGROOM_ITEST_MOTO_ACCESS_KEY_ID".to_owned(), id);
    env.insert("STRONGROOM_ITEST_MOTO_SECRET_ACCESS_KEY".to_owned(), secret);
    env.insert("STRONGROOM_ITEST_MOTO_USER".to_owned(), USER.to_owned());
    env.insert(
        "STRONGROOM_ITEST_MOTO_LEAST_ACCESS_KEY_ID".to_owned(),
        least_id,
    );
    env.insert(
        "STRONGROOM_ITEST_MOTO_LEAST_SECRET_ACCESS_KEY".to_owned(),
        least_secret,
    );
    env.insert("STRONGROOM_ITEST_MOTO_ROLE_ARN".to_owned(), role_arn);
    env.insert("STRONGROOM_ITEST_MOTO_KMS_KEY_ID".to_owned(), key_id);
    env.insert("STRONGROOM_ITEST_MOTO_KMS_KEY_ARN".to_owned(), key_arn);
    env.insert(
        "STRONGROOM_ITEST_MOTO_KMS_ALIAS".to_owned(),
        KMS_ALIAS.to_owned(),
    );
    env.insert(
        "STRONGROOM_ITEST_MOTO_KMS_NO_DECRYPT_ACCESS_KEY_ID".to_owned(),
        kms_id,
    );
    env.insert(
        "STRONGROOM_ITEST_MOTO_KMS_NO_DECRYPT_SECRET_ACCESS_KEY".to_owned(),
        kms_secret,
    );
    Ok(env)
}

/// One KMS JSON 1.1 call, unsigned while the no-auth budget lasts; returns the answer.
fn kms(
    addr: SocketAddr,
    operation: &str,
    body: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240101/{REGION}/kms/aws4_request, \
         SignedHeaders=host, Signature=0"
    );
    let target = format!("TrentService.{operation}");
    let response = http::request(
        addr,
        "POST",
        "/",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Target", &target),
        ],
        &body.to_string(),
    )?;
    if response.status == 200 {
        response.json(&format!("moto KMS {operation}"))
    } else {
        Err(format!(
            "moto KMS {operation} answered {}: {}",
            response.status,
            response.body.chars().take(300).collect::<String>()
        ))
    }
}

/// Creates a symmetric encryption key and points `alias` at it (two calls); returns the
/// key's id and ARN.
fn kms_key(addr: SocketAddr, alias: &str) -> Result<(String, String), String> {
    let created = kms(
        addr,
        "CreateKey",
        &serde_json::json!({
            "Description": "strongroom itest: wraps data keys",
            "KeyUsage": "ENCRYPT_DECRYPT",
            "KeySpec": "SYMMETRIC_DEFAULT",
        }),
    )?;
    let metadata = &created["KeyMetadata"];
    let id = metadata["KeyId"]
        .as_str()
        .ok_or("moto KMS CreateKey returned no KeyId")?
        .to_owned();
    let arn = metadata["Arn"]
        .as_str()
        .ok_or("moto KMS CreateKey returned no Arn")?
        .to_owned();
    kms(
        addr,
        "CreateAlias",
        &serde_json::json!({"AliasName": alias, "TargetKeyId": id}),
    )?;
    Ok((id, arn))
}

/// Creates `role`, which any principal of the account may assume, with `policy` inline (two
/// calls); returns its ARN.
fn role_with_policy(addr: SocketAddr, role: &str, policy: &str) -> Result<String, String> {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#;
    let created = iam(
        addr,
        &format!(
            "Action=CreateRole&RoleName={role}&AssumeRolePolicyDocument={}",
            form_encode(trust)
        ),
    )?;
    let arn = element(&created, "Arn").ok_or("moto CreateRole returned no Arn")?;
    iam(
        addr,
        &format!(
            "Action=PutRolePolicy&RoleName={role}&PolicyName=itest-role&PolicyDocument={}",
            form_encode(policy)
        ),
    )?;
    Ok(arn)
}

/// Percent-encodes `text` for an `application/x-www-form-urlencoded` body.
fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Creates `user` with the managed policy `policy` attached and an access key (four calls);
/// returns the key id and secret key.
fn user_with_policy(
    addr: SocketAddr,
    user: &str,
    name: &str,
    policy: &str,
) -> Result<(String, String), String> {
    let encoded = form_encode(policy);
    iam(addr, &format!("Action=CreateUser&UserName={user}"))?;
    let created = iam(
        addr,
        &format!("Action=CreatePolicy&PolicyName={name}&PolicyDocument={encoded}"),
    )?;
    let arn = element(&created, "Arn").ok_or("moto CreatePolicy returned no Arn")?;
    iam(
        addr,
        &format!("Action=AttachUserPolicy&UserName={user}&PolicyArn={arn}"),
    )?;
    let key = iam(addr, &format!("Action=CreateAccessKey&UserName={user}"))?;
    let id = element(&key, "AccessKeyId").ok_or("moto CreateAccessKey returned no key id")?;
    let secret =
        element(&key, "SecretAccessKey").ok_or("moto CreateAccessKey returned no secret key")?;
    Ok((id, secret))
}

/// The IAM policy docs/security.md gives (the first `json` block under its
/// `### AWS Secrets Manager` heading), each statement's resource widened to `*` for moto.
fn documented_policy() -> Result<String, String> {
    let path = crate::layout::root().join("docs/security.md");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let block = policy_block(&text).ok_or_else(|| {
        format!(
            "{} has no ```json block under '### AWS Secrets Manager'",
            path.display()
        )
    })?;
    let mut policy: serde_json::Value = serde_json::from_str(&block)
        .map_err(|e| format!("the IAM policy in {} is not JSON: {e}", path.display()))?;
    let statements = policy["Statement"]
        .as_array_mut()
        .ok_or("the documented IAM policy has no Statement list")?;
    for statement in statements {
        statement["Resource"] = serde_json::Value::from("*");
    }
    Ok(policy.to_string())
}

fn policy_block(doc: &str) -> Option<String> {
    let section = &doc[doc.find("### AWS Secrets Manager")?..];
    let start = section.find("```json\n")? + "```json\n".len();
    let end = start + section[start..].find("```")?;
    Some(section[start..end].to_owned())
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
    fn the_documented_policy_is_found_and_is_json() {
        let policy = documented_policy().unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&policy).unwrap();
        assert_eq!(parsed["Version"], "2012-10-17");
        assert!(policy_block("### AWS Secrets Manager\nno block").is_none());
    }

    #[test]
    fn element_finds_the_first_match() {
        let xml = "<A><Arn>arn:1</Arn><Arn>arn:2</Arn></A>";
        assert_eq!(element(xml, "Arn").as_deref(), Some("arn:1"));
        assert_eq!(element(xml, "Missing"), None);
    }
}
