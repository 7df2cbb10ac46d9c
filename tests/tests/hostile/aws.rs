//! Secrets Manager against the lying server: every operation the client has, in every mode.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use strongroom_aws::{
    CreateSecret, DeleteMode, ListSecrets, SecretsManagerClient, VersionSelector,
};
use strongroom_core::SecretValue;
use strongroom_itests::hostile::{HostileServer, Mode, Reply};
use strongroom_sigv4::{Credentials, StaticProvider};

use crate::support::{self, BUDGET, Expect, expected_for};

type Call = for<'a> fn(
    &'a SecretsManagerClient,
) -> Pin<
    Box<dyn Future<Output = Result<(), strongroom_aws::AwsError>> + Send + 'a>,
>;

/// One Secrets Manager operation: its name, a call of it, and a well-formed answer to it.
struct Operation {
    name: &'static str,
    call: Call,
    good: &'static str,
}

const WRITE_OK: &str = r#"{"ARN":"arn:aws:secretsmanager:us-east-1:1:secret:app-AbCdEf","Name":"app","VersionId":"11111111-1111-4111-8111-111111111111"}"#;

fn operations() -> Vec<Operation> {
    vec![
        Operation {
            name: "GetSecretValue",
            call: |c| {
                Box::pin(async move {
                    c.get_secret_value("app", &VersionSelector::Current)
                        .await
                        .map(drop)
                })
            },
            good: r#"{"ARN":"a","Name":"app","VersionId":"v1","VersionStages":["AWSCURRENT"],"SecretString":"s3cr3t","CreatedDate":1700000000.5}"#,
        },
        Operation {
            name: "BatchGetSecretValue",
            call: |c| {
                Box::pin(async move {
                    c.batch_get_secret_value(&["app".to_owned()])
                        .await
                        .map(drop)
                })
            },
            good: r#"{"SecretValues":[{"Name":"app","VersionId":"v1","SecretString":"s"}],"Errors":[]}"#,
        },
        Operation {
            name: "CreateSecret",
            call: |c| {
                Box::pin(async move {
                    c.create_secret(&CreateSecret::new("app", SecretValue::from("s3cr3t")))
                        .await
                        .map(drop)
                })
            },
            good: WRITE_OK,
        },
        Operation {
            name: "PutSecretValue",
            call: |c| {
                Box::pin(async move {
                    c.put_secret_value("app", &SecretValue::from("s3cr3t"), None, None)
                        .await
                        .map(drop)
                })
            },
            good: WRITE_OK,
        },
        Operation {
            name: "UpdateSecret",
            call: |c| {
                Box::pin(async move { c.update_secret("app", Some("d"), None).await.map(drop) })
            },
            good: WRITE_OK,
        },
        Operation {
            name: "DeleteSecret",
            call: |c| {
                Box::pin(async move {
                    c.delete_secret("app", DeleteMode::RecoveryWindow(7))
                        .await
                        .map(drop)
                })
            },
            good: WRITE_OK,
        },
        Operation {
            name: "RestoreSecret",
            call: |c| Box::pin(async move { c.restore_secret("app").await.map(drop) }),
            good: WRITE_OK,
        },
        Operation {
            name: "DescribeSecret",
            call: |c| Box::pin(async move { c.describe_secret("app").await.map(drop) }),
            good: r#"{"ARN":"a","Name":"app","VersionIdsToStages":{"v1":["AWSCURRENT"]},"CreatedDate":1700000000}"#,
        },
        Operation {
            name: "ListSecrets",
            call: |c| {
                Box::pin(async move {
                    c.list_secrets(&ListSecrets::with_prefix("app"))
                        .await
                        .map(drop)
                })
            },
            good: r#"{"SecretList":[{"Name":"app","ARN":"a"}]}"#,
        },
        Operation {
            name: "ListSecretVersionIds",
            call: |c| {
                Box::pin(async move { c.list_secret_version_ids("app", true).await.map(drop) })
            },
            good: r#"{"Versions":[{"VersionId":"v1","VersionStages":["AWSCURRENT"]}]}"#,
        },
        Operation {
            name: "UpdateSecretVersionStage",
            call: |c| {
                Box::pin(async move {
                    c.update_secret_version_stage("app", "AWSCURRENT", Some("v2"), Some("v1"))
                        .await
                        .map(drop)
                })
            },
            good: r#"{"ARN":"a","Name":"app"}"#,
        },
        Operation {
            name: "TagResource",
            call: |c| {
                Box::pin(async move {
                    let tags = BTreeMap::from([("team".to_owned(), "a".to_owned())]);
                    c.tag_resource("app", &tags).await
                })
            },
            good: "{}",
        },
        Operation {
            name: "UntagResource",
            call: |c| Box::pin(async move { c.untag_resource("app", &["team".to_owned()]).await }),
            good: "",
        },
    ]
}

pub(crate) fn client(server: &HostileServer) -> SecretsManagerClient {
    SecretsManagerClient::builder()
        .region("us-east-1")
        .endpoint(server.url())
        .credentials(StaticProvider::new(Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        )))
        .http_client(support::http_client())
        .build()
        .expect("a client for the hostile server")
}

/// Every operation x every mode: a typed error in time, then success once the server answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_in_every_mode() {
    support::watch_panics();
    let mut failures = Vec::new();
    for (mode_name, mode) in Mode::catalogue() {
        let mut cases = tokio::task::JoinSet::new();
        for op in operations() {
            let mode = mode.clone();
            cases.spawn(async move {
                let server = HostileServer::start(mode.clone()).await;
                let client = client(&server);
                let started = Instant::now();
                let outcome = (op.call)(&client).await;
                let elapsed = started.elapsed();
                let mut problems = Vec::new();
                let expect = expected_for(&mode);
                let mut kind_seen = None;
                match outcome {
                    Ok(()) => problems.push("succeeded against a lying server".to_owned()),
                    Err(e) => {
                        let text = e.to_string();
                        let body_too_large = matches!(
                            &e,
                            strongroom_aws::AwsError::Http {
                                source: strongroom_http::Error::BodyTooLarge { .. },
                                ..
                            }
                        );
                        let kind = e.into_core(Some("app"), None).kind();
                        kind_seen = Some(kind);
                        if kind != expect.kind() {
                            problems
                                .push(format!("gave {kind:?}, not {:?}: {text}", expect.kind()));
                        }
                        if matches!(expect, Expect::TooLarge) && !body_too_large {
                            problems.push(format!("not BodyTooLarge: {text}"));
                        }
                        if text.contains("s3cr3t") {
                            problems.push("the error holds the secret".to_owned());
                        }
                    }
                }
                if elapsed > BUDGET + support::SLACK {
                    problems.push(format!("took {elapsed:?}"));
                }
                if server.bytes_sent() > support::MAX_ENDLESS_BYTES {
                    problems.push(format!("read on to {} bytes", server.bytes_sent()));
                }
                server.set_mode(Mode::Reply(Reply::amz_json(200, op.good)));
                if let Err(e) = (op.call)(&client).await {
                    problems.push(format!("did not recover: {e}"));
                }
                (op.name, problems, elapsed, kind_seen)
            });
        }
        while let Some(joined) = cases.join_next().await {
            let (op, problems, elapsed, kind) = joined.expect("no case task panics");
            // The figures of docs/reliability.md: `-- --nocapture` prints them.
            println!("secretsmanager | {op} | {mode_name} | {kind:?} | {elapsed:?}");
            for p in problems {
                failures.push(format!("{op} x {mode_name} ({elapsed:?}): {p}"));
            }
        }
    }
    support::assert_no_panics();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A server whose `NextToken` never ends: every paged call stops after `MAX_PAGES` with a
/// typed error instead of looping (and filling memory) for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_next_tokens_stop_after_max_pages() {
    support::watch_panics();
    let server = HostileServer::start(Mode::Numbered(Reply::amz_json(
        200,
        r#"{"SecretList":[{"Name":"app"}],"Versions":[{"VersionId":"v{n}"}],"SecretValues":[],"NextToken":"token-{n}"}"#,
    )))
    .await;
    let client = client(&server);
    let calls: [(&str, Call); 3] = [
        ("ListSecrets", |c| {
            Box::pin(async move { c.list_secrets(&ListSecrets::default()).await.map(drop) })
        }),
        ("ListSecretVersionIds", |c| {
            Box::pin(async move { c.list_secret_version_ids("app", true).await.map(drop) })
        }),
        ("BatchGetSecretValue", |c| {
            Box::pin(async move {
                c.batch_get_secret_value(&["app".to_owned()])
                    .await
                    .map(drop)
            })
        }),
    ];
    for (name, call) in calls {
        let before = server.request_count();
        let err = call(&client).await.expect_err(name);
        assert!(
            matches!(err, strongroom_aws::AwsError::Malformed { .. }),
            "{name}: {err}"
        );
        assert!(err.to_string().contains("NextToken"), "{name}: {err}");
        assert_eq!(
            server.request_count() - before,
            strongroom_aws::MAX_PAGES,
            "{name}: one request per page, no more"
        );
    }
    support::assert_no_panics();
}

const TOKEN: &str = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";

fn exists() -> Mode {
    Mode::Reply(Reply::amz_json(
        400,
        r#"{"__type":"ResourceExistsException","message":"the secret app already exists"}"#,
    ))
}

fn described(version: &str) -> Mode {
    Mode::Reply(Reply::amz_json(
        200,
        format!(
            r#"{{"ARN":"arn:aws:secretsmanager:us-east-1:1:secret:app-AbCdEf","Name":"app","VersionIdsToStages":{{"{version}":["AWSCURRENT"]}}}}"#
        ),
    ))
}

fn tokens_sent(server: &HostileServer, target: &str) -> Vec<String> {
    server
        .requests()
        .iter()
        .filter(|r| r.header("x-amz-target") == Some(target))
        .map(|r| {
            let body: serde_json::Value = serde_json::from_slice(&r.body).expect("a JSON body");
            body["ClientRequestToken"]
                .as_str()
                .expect("a ClientRequestToken")
                .to_owned()
        })
        .collect()
}

/// The cause of the doubled CreateSecret LocalStack logged: a CreateSecret whose first
/// attempt reached the server but whose answer was lost is retried with the same token and
/// meets `ResourceExistsException`. The secret carries that token as a version: success.
#[tokio::test]
async fn a_retried_create_that_meets_its_own_secret_succeeds() {
    let server = HostileServer::start(Mode::Status(500)).await;
    server.route(
        "secretsmanager.CreateSecret",
        Mode::Sequence(vec![Mode::ResetMidBody, exists()]),
    );
    server.route("secretsmanager.DescribeSecret", described(TOKEN));
    let out = client(&server)
        .create_secret(
            &CreateSecret::new("app", SecretValue::from("s3cr3t")).client_request_token(TOKEN),
        )
        .await
        .expect("the retry recognises the secret its first attempt created");
    assert_eq!(out.version_id.as_deref(), Some(TOKEN));
    assert_eq!(out.name, "app");
    assert_eq!(out.version_stages, ["AWSCURRENT"]);
    assert_eq!(
        tokens_sent(&server, "secretsmanager.CreateSecret"),
        [TOKEN, TOKEN],
        "the retry repeats the first attempt's token"
    );
}

/// The same retry meeting a secret someone else created (no version with this call's
/// token) is a conflict, and the generated token is the same on both attempts.
#[tokio::test]
async fn a_retried_create_that_meets_another_secret_is_a_conflict() {
    let server = HostileServer::start(Mode::Status(500)).await;
    server.route(
        "secretsmanager.CreateSecret",
        Mode::Sequence(vec![Mode::ResetMidBody, exists()]),
    );
    server.route(
        "secretsmanager.DescribeSecret",
        described("99999999-9999-4999-8999-999999999999"),
    );
    let err = client(&server)
        .create_secret(&CreateSecret::new("app", SecretValue::from("s3cr3t")))
        .await
        .expect_err("someone else's secret");
    assert_eq!(err.code(), Some("ResourceExistsException"));
    assert_eq!(
        err.into_core(Some("app"), None).kind(),
        strongroom_core::ErrorKind::Conflict
    );
    let tokens = tokens_sent(&server, "secretsmanager.CreateSecret");
    assert_eq!(tokens.len(), 2, "{tokens:?}");
    assert_eq!(tokens[0], tokens[1], "one token per logical create");

    // A first attempt that meets an existing secret is not a retry: nothing to recognise,
    // and DescribeSecret failing leaves the conflict as it is.
    server.route("secretsmanager.CreateSecret", exists());
    server.route("secretsmanager.DescribeSecret", Mode::Status(500));
    let err = client(&server)
        .create_secret(&CreateSecret::new("app", SecretValue::from("s3cr3t")))
        .await
        .expect_err("the name is taken");
    assert_eq!(err.code(), Some("ResourceExistsException"));
}

/// PutSecretValue retried after a lost answer repeats its ClientRequestToken, so the
/// server applies it once.
#[tokio::test]
async fn a_retried_put_repeats_its_token() {
    let server = HostileServer::start(Mode::Sequence(vec![
        Mode::ResetMidBody,
        Mode::StalledHead,
        Mode::Reply(Reply::amz_json(200, WRITE_OK)),
    ]))
    .await;
    client(&server)
        .put_secret_value("app", &SecretValue::from("s3cr3t"), None, None)
        .await
        .expect("the third attempt is answered");
    let tokens = tokens_sent(&server, "secretsmanager.PutSecretValue");
    assert_eq!(tokens.len(), 3, "{tokens:?}");
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
}

/// BatchGetSecretValue answering for only some of the names: a value, an error entry, and
/// no entry at all (a server that drops one). Each key gets its own typed answer, the
/// dropped one NotFound, in the order asked.
#[tokio::test]
async fn batch_get_with_missing_entries() {
    use strongroom_core::{ErrorKind, SecretName, SecretStore};
    let server = HostileServer::start(Mode::Reply(Reply::amz_json(
        200,
        r#"{"SecretValues":[{"Name":"a","VersionId":"v1","SecretString":"value-a"}],
            "Errors":[{"SecretId":"b","ErrorCode":"ResourceNotFoundException","Message":"no b"},
                      {"SecretId":"d","ErrorCode":"AccessDeniedException","Message":"not d"}]}"#,
    )))
    .await;
    let store = strongroom_aws::SecretsManagerStore::new(client(&server));
    let keys: Vec<SecretName> = ["a", "b", "c", "d"]
        .into_iter()
        .map(|k| SecretName::new(k).unwrap())
        .collect();
    let results = store.get_many(&keys).await;
    assert_eq!(results.len(), 4);
    let a = results[0].as_ref().expect("a came back");
    assert_eq!(a.value.expose(), b"value-a");
    assert_eq!(a.version.as_str(), "v1");
    let kinds: Vec<ErrorKind> = results[1..]
        .iter()
        .map(|r| r.as_ref().expect_err("no value").kind())
        .collect();
    assert_eq!(
        kinds,
        [
            ErrorKind::NotFound,
            ErrorKind::NotFound,
            ErrorKind::PermissionDenied
        ],
        "b: an error entry, c: no entry at all, d: denied"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "one batch call, no per-key fallback");
    assert_eq!(
        requests[0].header("x-amz-target"),
        Some("secretsmanager.BatchGetSecretValue")
    );
}
