//! The shared AWS config and credentials files (`~/.aws/config`, `~/.aws/credentials`): where
//! they are, an INI parser for them, and the [`ProfileSet`] they describe.
//!
//! The format, as the AWS CLI and SDKs read it:
//!
//! - `[default]` and `[profile NAME]` start a profile in the config file; other sections there
//!   (`[sso-session x]`, `[services x]`, or a bare `[NAME]`) are not profiles and are skipped.
//! - `[NAME]` starts a profile in the credentials file.
//! - `key = value` lines; whitespace around both is trimmed. The value is kept whole: a `#` or
//!   `;` inside a value is part of it (as in the AWS CLI), only whole-line comments and comments
//!   after a section header are comments.
//! - An indented line right after a property continues it (sub-properties such as
//!   `s3 =\n  max_concurrent_requests = 10`); the parts are joined with `\n`.
//! - A key in the credentials file overrides the same key of the same profile in the config file.
//!
//! Errors carry the file path and line number, never a line's content: the credentials
//! file holds secrets.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::env::Env;

/// What is wrong with a line of a shared config or credentials file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseProblem {
    /// A `key = value` line before any `[section]`.
    PropertyOutsideSection,
    /// A line that is neither a section, a property, a comment nor a continuation.
    MissingEquals,
    /// A `= value` line with nothing before the `=`.
    EmptyPropertyName,
    /// A `[section` without its `]`.
    UnclosedSection,
    /// A `[]` or `[profile ]` header.
    EmptySectionName,
    /// Text after a section's `]` that is not a comment.
    TextAfterSection,
}

impl fmt::Display for ParseProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PropertyOutsideSection => "property before any [section]",
            Self::MissingEquals => "expected `key = value`, a [section] or a comment",
            Self::EmptyPropertyName => "property with an empty name",
            Self::UnclosedSection => "section header without a closing `]`",
            Self::EmptySectionName => "section header with an empty name",
            Self::TextAfterSection => "text after a section header's `]` that is not a comment",
        })
    }
}

/// A shared config or credentials file could not be read or parsed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// A line of the file is malformed.
    #[error("{}:{line}: {problem}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong with it.
        problem: ParseProblem,
    },
    /// The file exists but could not be read (permissions, not UTF-8, ...).
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: Arc<io::Error>,
    },
}

/// Which of the two shared files a text comes from; they name profiles differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `~/.aws/config`: `[default]` and `[profile NAME]`.
    Config,
    /// `~/.aws/credentials`: `[NAME]`.
    Credentials,
}

/// Property names whose values are not secrets and may appear in `Debug` output.
const SHOWN_PROPERTIES: &[&str] = &[
    "region",
    "role_arn",
    "source_profile",
    "credential_source",
    "role_session_name",
    "web_identity_token_file",
    "duration_seconds",
    "output",
    "endpoint_url",
    "sso_session",
    "sso_account_id",
    "sso_role_name",
    "sso_region",
    "sso_start_url",
];

/// One named profile: its properties, merged from both files.
///
/// Every value is zeroized on drop (the credentials file holds secret keys); `Debug` shows
/// the values of well-known non-secret properties such as `region` and `role_arn` only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Profile {
    name: String,
    properties: BTreeMap<String, Zeroizing<String>>,
}

impl Profile {
    /// The profile's name (`default`, or `NAME` of `[profile NAME]`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value of property `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.properties.get(key).map(|v| v.as_str())
    }

    /// The names of the properties set in this profile.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.properties.keys().map(String::as_str)
    }

    /// `region`.
    pub fn region(&self) -> Option<&str> {
        self.get("region")
    }

    /// `role_arn`: the role to assume (strongroom-aws does the assuming).
    pub fn role_arn(&self) -> Option<&str> {
        self.get("role_arn")
    }

    /// `source_profile`: the profile whose credentials assume [`Profile::role_arn`].
    pub fn source_profile(&self) -> Option<&str> {
        self.get("source_profile")
    }

    /// `credential_source` (`Environment`, `Ec2InstanceMetadata`, `EcsContainer`): the
    /// alternative to `source_profile`.
    pub fn credential_source(&self) -> Option<&str> {
        self.get("credential_source")
    }

    /// `role_session_name`.
    pub fn role_session_name(&self) -> Option<&str> {
        self.get("role_session_name")
    }

    /// `external_id`, passed to AssumeRole.
    pub fn external_id(&self) -> Option<&str> {
        self.get("external_id")
    }

    /// `web_identity_token_file`: with `role_arn`, AssumeRoleWithWebIdentity.
    pub fn web_identity_token_file(&self) -> Option<&str> {
        self.get("web_identity_token_file")
    }

    /// `credential_process`: a command printing credentials as JSON. Parsed, never run here.
    pub fn credential_process(&self) -> Option<&str> {
        self.get("credential_process")
    }

    /// `duration_seconds` of an assumed role session, if set and a number.
    pub fn duration_seconds(&self) -> Option<u32> {
        self.get("duration_seconds")?.parse().ok()
    }

    /// Whether the profile holds an access key id or secret (a static key pair).
    pub fn has_static_credentials(&self) -> bool {
        self.get("aws_access_key_id").is_some() || self.get("aws_secret_access_key").is_some()
    }

    fn set(&mut self, key: String, value: Zeroizing<String>) {
        self.properties.insert(key, value);
    }
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Properties<'a>(&'a BTreeMap<String, Zeroizing<String>>);
        impl fmt::Debug for Properties<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut map = f.debug_map();
                for (key, value) in self.0 {
                    if SHOWN_PROPERTIES.contains(&key.as_str()) {
                        map.entry(key, &value.as_str());
                    } else {
                        map.entry(key, &"[REDACTED]");
                    }
                }
                map.finish()
            }
        }
        f.debug_struct("Profile")
            .field("name", &self.name)
            .field("properties", &Properties(&self.properties))
            .finish()
    }
}

/// All the profiles of the shared files, and which one is selected (`AWS_PROFILE`, else
/// `default`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileSet {
    profiles: BTreeMap<String, Profile>,
    selected: String,
}

impl ProfileSet {
    /// Reads the shared files the environment points at (see [`config_file_path`] and
    /// [`credentials_file_path`]) and selects `AWS_PROFILE`, else `default`. A missing file
    /// counts as empty; an unreadable or malformed one is an error.
    pub fn load(env: &Env) -> Result<Self, ProfileError> {
        let config = read_optional(config_file_path(env))?;
        let credentials = read_optional(credentials_file_path(env))?;
        let selected = env
            .get("AWS_PROFILE")
            .unwrap_or_else(|| "default".to_owned());
        Self::parse(
            config
                .as_ref()
                .map(|(path, text)| (path.as_path(), text.as_str())),
            credentials
                .as_ref()
                .map(|(path, text)| (path.as_path(), text.as_str())),
            selected,
        )
    }

    /// Builds the set from the texts of a config file and a credentials file, each with the
    /// path used in error messages.
    pub fn parse(
        config: Option<(&Path, &str)>,
        credentials: Option<(&Path, &str)>,
        selected: impl Into<String>,
    ) -> Result<Self, ProfileError> {
        let mut set = Self {
            profiles: BTreeMap::new(),
            selected: selected.into(),
        };
        // Config first, so that the credentials file wins for a key set in both.
        for (file, kind) in [
            (config, FileKind::Config),
            (credentials, FileKind::Credentials),
        ] {
            let Some((path, text)) = file else { continue };
            for section in parse_sections(text, path)? {
                let Some(name) = profile_name(&section.header, kind) else {
                    tracing::debug!(file = %path.display(), line = section.line, "skipping a section that is not a profile");
                    continue;
                };
                let profile = set
                    .profiles
                    .entry(name.to_owned())
                    .or_insert_with(|| Profile {
                        name: name.to_owned(),
                        properties: BTreeMap::new(),
                    });
                for (key, value) in section.properties {
                    profile.set(key, value);
                }
            }
        }
        Ok(set)
    }

    /// The name of the selected profile.
    pub fn selected_name(&self) -> &str {
        &self.selected
    }

    /// The selected profile, if either file defines it.
    pub fn selected(&self) -> Option<&Profile> {
        self.get(&self.selected)
    }

    /// The profile called `name`.
    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(name)
    }

    /// The names of all profiles, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.profiles.keys().map(String::as_str)
    }

    /// The same profiles with another one selected.
    #[must_use]
    pub fn with_selected(mut self, name: impl Into<String>) -> Self {
        self.selected = name.into();
        self
    }
}

/// The config file: `AWS_CONFIG_FILE` (a leading `~/` is the home directory), else
/// `~/.aws/config`. `None` when neither is set and there is no home directory.
pub fn config_file_path(env: &Env) -> Option<PathBuf> {
    shared_file_path(env, "AWS_CONFIG_FILE", "config")
}

/// The credentials file: `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`.
pub fn credentials_file_path(env: &Env) -> Option<PathBuf> {
    shared_file_path(env, "AWS_SHARED_CREDENTIALS_FILE", "credentials")
}

fn shared_file_path(env: &Env, variable: &str, default_name: &str) -> Option<PathBuf> {
    match env.get(variable) {
        Some(path) => match path.strip_prefix("~/").or_else(|| path.strip_prefix("~\\")) {
            Some(rest) => Some(env.home_dir()?.join(rest)),
            None if path == "~" => env.home_dir(),
            None => Some(PathBuf::from(path)),
        },
        None => Some(env.home_dir()?.join(".aws").join(default_name)),
    }
}

/// Reads a file that may be absent; the text is zeroized on drop as it may hold secrets.
fn read_optional(
    path: Option<PathBuf>,
) -> Result<Option<(PathBuf, Zeroizing<String>)>, ProfileError> {
    let Some(path) = path else { return Ok(None) };
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some((path, Zeroizing::new(text)))),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(ProfileError::Read {
            path,
            source: Arc::new(err),
        }),
    }
}

/// The profile a section header names in a file of `kind`, or `None` if it is not a profile.
fn profile_name(header: &str, kind: FileKind) -> Option<&str> {
    match kind {
        FileKind::Credentials => Some(header),
        FileKind::Config => {
            if header == "default" {
                return Some(header);
            }
            let rest = header.strip_prefix("profile")?;
            // `[profile x]`, not `[profilex]`.
            if !rest.starts_with(char::is_whitespace) {
                return None;
            }
            Some(rest.trim())
        }
    }
}

/// One `[header]` and the properties under it, in file order.
#[derive(Debug)]
struct Section {
    header: String,
    line: usize,
    properties: Vec<(String, Zeroizing<String>)>,
}

/// Splits a file into sections. Pure: no I/O, `path` is only for error messages.
fn parse_sections(text: &str, path: &Path) -> Result<Vec<Section>, ProfileError> {
    let error = |line: usize, problem: ParseProblem| ProfileError::Parse {
        path: path.to_owned(),
        line,
        problem,
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut sections: Vec<Section> = Vec::new();
    // Whether the line before was a property an indented line may continue.
    let mut in_property = false;
    for (index, raw) in text.lines().enumerate() {
        let line = index.saturating_add(1);
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            continue;
        }
        if trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let indented = raw.starts_with(char::is_whitespace);
        if indented && in_property {
            let Some((_, value)) = sections.last_mut().and_then(|s| s.properties.last_mut()) else {
                return Err(error(line, ParseProblem::PropertyOutsideSection));
            };
            if !value.is_empty() {
                value.push('\n');
            }
            value.push_str(trimmed);
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let Some((name, after)) = rest.split_once(']') else {
                return Err(error(line, ParseProblem::UnclosedSection));
            };
            let after = after.trim_start();
            if !(after.is_empty() || after.starts_with('#') || after.starts_with(';')) {
                return Err(error(line, ParseProblem::TextAfterSection));
            }
            let name = name.trim();
            let bare = name.strip_prefix("profile").map_or(name, str::trim);
            if name.is_empty() || bare.is_empty() {
                return Err(error(line, ParseProblem::EmptySectionName));
            }
            sections.push(Section {
                header: name.to_owned(),
                line,
                properties: Vec::new(),
            });
            in_property = false;
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            return Err(error(line, ParseProblem::MissingEquals));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(error(line, ParseProblem::EmptyPropertyName));
        }
        let Some(section) = sections.last_mut() else {
            return Err(error(line, ParseProblem::PropertyOutsideSection));
        };
        section
            .properties
            .push((key.to_owned(), Zeroizing::new(value.trim().to_owned())));
        in_property = true;
    }
    Ok(sections)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Result<ProfileSet, ProfileError> {
        ProfileSet::parse(Some((Path::new("/cfg"), text)), None, "default")
    }

    fn credentials(text: &str) -> Result<ProfileSet, ProfileError> {
        ProfileSet::parse(None, Some((Path::new("/creds"), text)), "default")
    }

    /// (file text, profile, key, expected value) for the config file.
    const CONFIG_CASES: &[(&str, &str, &str, Option<&str>)] = &[
        (
            "[default]\nregion = us-east-1\n",
            "default",
            "region",
            Some("us-east-1"),
        ),
        (
            "[default]\nregion=us-east-1",
            "default",
            "region",
            Some("us-east-1"),
        ),
        (
            "[profile default]\nregion = eu-west-1",
            "default",
            "region",
            Some("eu-west-1"),
        ),
        (
            "[profile dev]\nregion = eu-west-1",
            "dev",
            "region",
            Some("eu-west-1"),
        ),
        ("[profile   dev  ]\nregion = x", "dev", "region", Some("x")),
        (
            "  [profile dev]  # comment\nregion = x",
            "dev",
            "region",
            Some("x"),
        ),
        (
            "[profile dev] ; comment\nregion = x",
            "dev",
            "region",
            Some("x"),
        ),
        // A bare [dev] is not a profile in the config file.
        ("[dev]\nregion = x", "dev", "region", None),
        ("[profiledev]\nregion = x", "profiledev", "region", None),
        (
            "[sso-session s]\nsso_region = x",
            "sso-session s",
            "sso_region",
            None,
        ),
        // Comments and blank lines.
        (
            "# c\n; c\n\n[default]\n# region = no\n  ; c\nregion = yes\n\n",
            "default",
            "region",
            Some("yes"),
        ),
        // Values keep inner spaces and `#`.
        (
            "[default]\ncredential_process = /bin/x --a 'b c' # not a comment",
            "default",
            "credential_process",
            Some("/bin/x --a 'b c' # not a comment"),
        ),
        ("[default]\nkey = a=b=c", "default", "key", Some("a=b=c")),
        ("[default]\nempty =", "default", "empty", Some("")),
        (
            "\t[default]\r\nregion = crlf\r\n",
            "default",
            "region",
            Some("crlf"),
        ),
        (
            "\u{feff}[default]\nregion = bom",
            "default",
            "region",
            Some("bom"),
        ),
        // Continuation lines.
        (
            "[default]\ns3 =\n  max_concurrent_requests = 10\n  max_queue_size = 1000\nregion = r",
            "default",
            "s3",
            Some("max_concurrent_requests = 10\nmax_queue_size = 1000"),
        ),
        (
            "[default]\ns3 =\n  max_concurrent_requests = 10\nregion = r",
            "default",
            "region",
            Some("r"),
        ),
        // Later wins within a file; sections with the same name merge.
        (
            "[default]\nregion = a\nregion = b",
            "default",
            "region",
            Some("b"),
        ),
        (
            "[default]\nregion = a\n[profile x]\n[default]\noutput = json",
            "default",
            "region",
            Some("a"),
        ),
    ];

    #[test]
    fn config_file_table() {
        for (text, profile, key, expected) in CONFIG_CASES {
            let set = config(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            let got = set.get(profile).and_then(|p| p.get(key));
            assert_eq!(got, *expected, "{text:?}");
        }
    }

    #[test]
    fn credentials_file_names_profiles_bare() {
        let set = credentials(
            "[default]\naws_access_key_id = AKID\naws_secret_access_key = s\n[dev]\naws_access_key_id = DEV\n",
        )
        .unwrap();
        assert_eq!(
            set.get("default").unwrap().get("aws_access_key_id"),
            Some("AKID")
        );
        assert_eq!(
            set.get("dev").unwrap().get("aws_access_key_id"),
            Some("DEV")
        );
        assert_eq!(set.names().collect::<Vec<_>>(), ["default", "dev"]);
    }

    /// (file text, line, problem).
    const ERROR_CASES: &[(&str, usize, ParseProblem)] = &[
        ("region = x", 1, ParseProblem::PropertyOutsideSection),
        ("# c\n\nregion = x", 3, ParseProblem::PropertyOutsideSection),
        ("[default]\nregion", 2, ParseProblem::MissingEquals),
        (
            "[default]\nregion = a\n\nnonsense here",
            4,
            ParseProblem::MissingEquals,
        ),
        ("[default]\n = x", 2, ParseProblem::EmptyPropertyName),
        ("[default\nregion = x", 1, ParseProblem::UnclosedSection),
        ("[]\n", 1, ParseProblem::EmptySectionName),
        ("[profile ]\n", 1, ParseProblem::EmptySectionName),
        ("[default] region = x\n", 1, ParseProblem::TextAfterSection),
    ];

    #[test]
    fn errors_carry_path_and_line() {
        for (text, line, problem) in ERROR_CASES {
            match config(text) {
                Err(ProfileError::Parse {
                    path,
                    line: got_line,
                    problem: got,
                }) => {
                    assert_eq!(path, Path::new("/cfg"), "{text:?}");
                    assert_eq!((got_line, got), (*line, *problem), "{text:?}");
                }
                other => panic!("{text:?}: expected a parse error, got {other:?}"),
            }
        }
    }

    #[test]
    fn error_messages_hold_no_value() {
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        let text = format!("[default]\naws_secret_access_key = {secret}\n{secret}\n");
        let err = credentials(&text).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(shown.contains("/creds:3"), "{shown}");
        assert!(!shown.contains("wJalr"), "{shown}");
    }

    #[test]
    fn credentials_file_overrides_config_file() {
        let set = ProfileSet::parse(
            Some((
                Path::new("c"),
                "[profile dev]\nregion = from-config\noutput = json\n",
            )),
            Some((Path::new("k"), "[dev]\nregion = from-credentials\n")),
            "dev",
        )
        .unwrap();
        let dev = set.selected().unwrap();
        assert_eq!(dev.name(), "dev");
        assert_eq!(dev.region(), Some("from-credentials"));
        assert_eq!(dev.get("output"), Some("json"));
    }

    #[test]
    fn role_fields_are_exposed() {
        let set = config(
            "[profile r]\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = base\n\
             role_session_name = s\nexternal_id = e\nduration_seconds = 900\n\
             web_identity_token_file = /t\ncredential_process = /bin/p\ncredential_source = Environment\n",
        )
        .unwrap();
        let r = set.get("r").unwrap();
        assert_eq!(r.role_arn(), Some("arn:aws:iam::123456789012:role/r"));
        assert_eq!(r.source_profile(), Some("base"));
        assert_eq!(r.role_session_name(), Some("s"));
        assert_eq!(r.external_id(), Some("e"));
        assert_eq!(r.duration_seconds(), Some(900));
        assert_eq!(r.web_identity_token_file(), Some("/t"));
        assert_eq!(r.credential_process(), Some("/bin/p"));
        assert_eq!(r.credential_source(), Some("Environment"));
        assert!(!r.has_static_credentials());
    }

    #[test]
    fn profile_debug_redacts_secrets() {
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        let set = credentials(&format!(
            "[default]\naws_access_key_id = AKID\naws_secret_access_key = {secret}\n\
             aws_session_token = TOKENVALUE\nregion = us-east-1\n"
        ))
        .unwrap();
        let text = format!("{set:?}");
        assert!(text.contains("us-east-1"), "{text}");
        assert!(text.contains("aws_secret_access_key"), "{text}");
        assert!(!text.contains(secret), "{text}");
        assert!(!text.contains("TOKENVALUE"), "{text}");
    }

    #[test]
    fn file_paths_from_env() {
        let env = Env::from_vars([("HOME", "/home/u")]);
        assert_eq!(
            config_file_path(&env),
            Some(PathBuf::from("/home/u/.aws/config"))
        );
        assert_eq!(
            credentials_file_path(&env),
            Some(PathBuf::from("/home/u/.aws/credentials"))
        );
        let env = Env::from_vars([
            ("HOME", "/home/u"),
            ("AWS_CONFIG_FILE", "~/cfg"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/etc/creds"),
        ]);
        assert_eq!(config_file_path(&env), Some(PathBuf::from("/home/u/cfg")));
        assert_eq!(
            credentials_file_path(&env),
            Some(PathBuf::from("/etc/creds"))
        );
        assert_eq!(config_file_path(&Env::from_vars::<&str, &str>([])), None);
    }
}
