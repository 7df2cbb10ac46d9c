//! The local providers against real files and an injected environment (never the process
//! environment, which other tests share).

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use strongroom_sigv4::{
    CachingProvider, Credentials, CredentialsError, Env, EnvProvider, ProfileError,
    ProfileProvider, ProvideCredentials, StaticProvider, resolve_region,
};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// Runs a future that never waits (the local providers), with no runtime at all.
fn now<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a local provider should not wait"),
    }
}

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new(config: Option<&str>, credentials: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".aws")).unwrap();
        if let Some(text) = config {
            std::fs::write(dir.path().join(".aws/config"), text).unwrap();
        }
        if let Some(text) = credentials {
            std::fs::write(dir.path().join(".aws/credentials"), text).unwrap();
        }
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn env(&self, extra: &[(&str, &str)]) -> Env {
        let mut vars = vec![("HOME".to_owned(), self.path().display().to_string())];
        vars.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        Env::from_vars(vars)
    }
}

const CREDENTIALS: &str = "\
# shared credentials
[default]
aws_access_key_id = AKIDDEFAULT
aws_secret_access_key = wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY

[dev]
aws_access_key_id=AKIDDEV
aws_secret_access_key=devsecret
aws_session_token=devtoken
";

const CONFIG: &str = "\
[default]
region = us-east-1

[profile dev]
region = eu-west-1
output = json

[profile assume]
role_arn = arn:aws:iam::123456789012:role/app
source_profile = dev
";

#[test]
fn default_profile_from_home() {
    let home = Home::new(Some(CONFIG), Some(CREDENTIALS));
    let creds = ProfileProvider::with_env(home.env(&[])).load().unwrap();
    assert_eq!(creds.access_key_id(), "AKIDDEFAULT");
    assert_eq!(creds.secret_access_key(), SECRET);
    assert_eq!(creds.session_token(), None);
    assert_eq!(
        resolve_region(&home.env(&[])).unwrap().as_deref(),
        Some("us-east-1")
    );
}

#[test]
fn aws_profile_selects_and_with_profile_overrides() {
    let home = Home::new(Some(CONFIG), Some(CREDENTIALS));
    let env = home.env(&[("AWS_PROFILE", "dev")]);
    let creds = now(ProfileProvider::with_env(env.clone()).provide_credentials()).unwrap();
    assert_eq!(creds.access_key_id(), "AKIDDEV");
    assert_eq!(creds.session_token(), Some("devtoken"));
    assert_eq!(resolve_region(&env).unwrap().as_deref(), Some("eu-west-1"));

    let creds = ProfileProvider::with_env(env)
        .with_profile("default")
        .load()
        .unwrap();
    assert_eq!(creds.access_key_id(), "AKIDDEFAULT");
}

#[test]
fn file_locations_from_env() {
    let home = Home::new(None, None);
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("creds"), CREDENTIALS).unwrap();
    std::fs::write(
        elsewhere.path().join("cfg"),
        "[default]\nregion = ap-south-1\n",
    )
    .unwrap();
    let creds_path = elsewhere.path().join("creds").display().to_string();
    let cfg_path = elsewhere.path().join("cfg").display().to_string();
    let env = home.env(&[
        ("AWS_SHARED_CREDENTIALS_FILE", &creds_path),
        ("AWS_CONFIG_FILE", &cfg_path),
    ]);
    assert_eq!(
        ProfileProvider::with_env(env.clone())
            .load()
            .unwrap()
            .access_key_id(),
        "AKIDDEFAULT"
    );
    assert_eq!(resolve_region(&env).unwrap().as_deref(), Some("ap-south-1"));
}

#[test]
fn region_env_wins_over_profile() {
    let home = Home::new(Some(CONFIG), None);
    let both = home.env(&[
        ("AWS_REGION", "sa-east-1"),
        ("AWS_DEFAULT_REGION", "ca-central-1"),
    ]);
    assert_eq!(resolve_region(&both).unwrap().as_deref(), Some("sa-east-1"));
    let default_only = home.env(&[("AWS_DEFAULT_REGION", "ca-central-1")]);
    assert_eq!(
        resolve_region(&default_only).unwrap().as_deref(),
        Some("ca-central-1")
    );
    let none = Home::new(None, None);
    assert_eq!(resolve_region(&none.env(&[])).unwrap(), None);
}

#[test]
fn missing_files_mean_not_loaded() {
    let home = Home::new(None, None);
    let err = ProfileProvider::with_env(home.env(&[])).load().unwrap_err();
    assert!(err.is_not_loaded(), "{err:?}");
    // A named profile that does not exist is a configuration error instead.
    let err = ProfileProvider::with_env(home.env(&[("AWS_PROFILE", "nope")]))
        .load()
        .unwrap_err();
    assert!(
        matches!(err, CredentialsError::InvalidConfiguration { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn role_profile_is_parsed_but_not_assumed() {
    let home = Home::new(Some(CONFIG), Some(CREDENTIALS));
    let env = home.env(&[("AWS_PROFILE", "assume")]);
    let set = strongroom_sigv4::ProfileSet::load(&env).unwrap();
    let profile = set.selected().unwrap();
    assert_eq!(
        profile.role_arn(),
        Some("arn:aws:iam::123456789012:role/app")
    );
    assert_eq!(profile.source_profile(), Some("dev"));
    let err = ProfileProvider::with_env(env).load().unwrap_err();
    assert!(err.is_not_loaded(), "{err:?}");
}

#[test]
fn malformed_credentials_file_names_file_and_line_only() {
    let home = Home::new(
        None,
        Some("[default]\naws_access_key_id = AKID\nwJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n"),
    );
    let err = ProfileProvider::with_env(home.env(&[])).load().unwrap_err();
    let CredentialsError::Profile(ProfileError::Parse { path, line, .. }) = &err else {
        panic!("{err:?}");
    };
    assert_eq!(path, &home.path().join(".aws/credentials"));
    assert_eq!(*line, 3);
    let shown = format!(
        "{err} / {err:?} / {}",
        std::error::Error::source(&err)
            .map(ToString::to_string)
            .unwrap_or_default()
    );
    assert!(shown.contains("credentials:3"), "{shown}");
    assert!(!shown.contains(SECRET), "{shown}");
}

#[test]
fn unreadable_file_is_an_error() {
    let home = Home::new(None, None);
    // A directory where the file should be cannot be read as text.
    std::fs::create_dir(home.path().join(".aws/credentials")).unwrap();
    let err = ProfileProvider::with_env(home.env(&[])).load().unwrap_err();
    assert!(
        matches!(err, CredentialsError::Profile(ProfileError::Read { .. })),
        "{err:?}"
    );
}

#[test]
fn providers_are_object_safe_and_compose() {
    let home = Home::new(None, Some(CREDENTIALS));
    let providers: Vec<Arc<dyn ProvideCredentials>> = vec![
        Arc::new(StaticProvider::new(Credentials::new("AKIDSTATIC", SECRET))),
        Arc::new(EnvProvider::with_env(Env::from_vars([
            ("AWS_ACCESS_KEY_ID", "AKIDENV"),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ]))),
        Arc::new(ProfileProvider::with_env(home.env(&[]))),
        Arc::new(CachingProvider::new(ProfileProvider::with_env(
            home.env(&[]),
        ))),
    ];
    let ids: Vec<String> = providers
        .iter()
        .map(|p| {
            now(p.provide_credentials())
                .unwrap()
                .access_key_id()
                .to_owned()
        })
        .collect();
    assert_eq!(ids, ["AKIDSTATIC", "AKIDENV", "AKIDDEFAULT", "AKIDDEFAULT"]);
}

#[test]
fn caching_provider_reads_the_files_once() {
    let home = Home::new(None, Some(CREDENTIALS));
    let provider = CachingProvider::new(ProfileProvider::with_env(home.env(&[])));
    assert_eq!(
        now(provider.provide_credentials()).unwrap().access_key_id(),
        "AKIDDEFAULT"
    );
    // The file changes, but static keys never expire: the cache keeps serving them...
    std::fs::write(
        home.path().join(".aws/credentials"),
        "[default]\naws_access_key_id = AKIDNEW\naws_secret_access_key = s\n",
    )
    .unwrap();
    assert_eq!(
        now(provider.provide_credentials()).unwrap().access_key_id(),
        "AKIDDEFAULT"
    );
    // ...until invalidated.
    provider.invalidate();
    assert_eq!(
        now(provider.provide_credentials()).unwrap().access_key_id(),
        "AKIDNEW"
    );
}

#[test]
fn debug_of_providers_and_errors_shows_no_secret() {
    let home = Home::new(None, Some(CREDENTIALS));
    let env = Env::from_vars([
        ("AWS_ACCESS_KEY_ID", "AKID"),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
    ]);
    let texts = [
        format!(
            "{:?}",
            StaticProvider::new(Credentials::new("AKID", SECRET).with_session_token("TOKENVALUE"))
        ),
        format!("{:?}", EnvProvider::with_env(env)),
        format!(
            "{:?}",
            CachingProvider::new(StaticProvider::new(Credentials::new("AKID", SECRET)))
        ),
        format!(
            "{:?}",
            strongroom_sigv4::ProfileSet::load(&home.env(&[])).unwrap()
        ),
    ];
    for text in texts {
        assert!(!text.contains(SECRET), "{text}");
        assert!(!text.contains("TOKENVALUE"), "{text}");
        assert!(!text.contains("devsecret"), "{text}");
        assert!(!text.contains("devtoken"), "{text}");
    }
}
