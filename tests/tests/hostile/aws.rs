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
