//! [`KeySpec`]: one way to open an encrypted store, as a `--key` value, an entry of
//! `keys = [...]` in TOML, or an item of `STRONGROOM_KEY`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use strongroom_core::Error;

/// The variable that says which key slot opens an existing store (and, for `init`, which
/// slots a new store gets): one [`KeySpec`] or several separated by commas, tried in order.
pub const KEY_VAR: &str = "STRONGROOM_KEY";

/// The Transit mount a `vault-transit:` key uses when it names none.
pub const DEFAULT_TRANSIT_MOUNT: &str = "transit";

/// A key provider, one per key slot of a store.
///
/// | Spelling | Provider |
/// |---|---|
/// | `file:PATH` | the base64 master key in a file |
/// | `env:VAR` | the base64 master key in an environment variable |
/// | `passphrase` | `STRONGROOM_PASSPHRASE` when set, else asked on the terminal |
/// | `aws-kms:KEY_ID_OR_ARN` | AWS KMS (`alias/app`, a key id or a key or alias ARN) |
/// | `vault-transit:KEY` or `vault-transit:MOUNT/KEY` | Vault/OpenBao Transit (`VAULT_ADDR`, `VAULT_TOKEN`...) |
///
/// ```
/// use strongroom_facade::KeySpec;
///
/// let spec: KeySpec = "aws-kms:alias/app".parse()?;
/// assert_eq!(spec, KeySpec::AwsKms("alias/app".to_owned()));
/// assert_eq!(spec.to_string(), "aws-kms:alias/app");
/// let many = KeySpec::parse_list("vault-transit:app, passphrase")?;
/// assert_eq!(many.len(), 2);
/// # Ok::<(), strongroom_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeySpec {
    /// `file:PATH`: a file holding the base64 master key.
    File(PathBuf),
    /// `env:VAR`: a variable holding the base64 master key.
    Env(String),
    /// `passphrase`: `STRONGROOM_PASSPHRASE`, else the terminal.
    Passphrase,
    /// `aws-kms:KEY`: an AWS KMS key id, key ARN, alias name or alias ARN.
    AwsKms(String),
    /// `vault-transit:[MOUNT/]KEY`: a Transit key.
    VaultTransit {
        /// The secrets engine's mount path (`transit` when not given).
        mount: String,
        /// The key's name.
        key: String,
    },
}

impl KeySpec {
    /// The slot kind this provider opens, as the envelope's slot table and
    /// [`KeyProvider::kind`](strongroom_core::KeyProvider::kind) spell it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::File(_) | Self::Env(_) => "master-key",
            Self::Passphrase => "passphrase",
            Self::AwsKms(_) => "aws-kms",
            Self::VaultTransit { .. } => "vault-transit",
        }
    }

    /// True for a key service reached over the network (KMS, Transit).
    pub fn is_remote(&self) -> bool {
        matches!(self, Self::AwsKms(_) | Self::VaultTransit { .. })
    }

    /// Several specs separated by commas (as in `STRONGROOM_KEY`); blanks around each are
    /// ignored. A file path holding a comma cannot be written here: name it in TOML.
    ///
    /// # Errors
    /// [`Error::Config`] for an empty list or any spec [`FromStr`] refuses.
    pub fn parse_list(text: &str) -> Result<Vec<KeySpec>, Error> {
        let specs = text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<KeySpec>, Error>>()?;
        if specs.is_empty() {
            return Err(Error::config(format!("{KEY_VAR} names no key")));
        }
        Ok(specs)
    }
}

impl FromStr for KeySpec {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        if text == "passphrase" {
            return Ok(Self::Passphrase);
        }
        let Some((scheme, rest)) = text.split_once(':') else {
            return Err(unknown(text));
        };
        let value = |what: &str| {
            if rest.is_empty() {
                Err(Error::config(format!(
                    "the key {text:?} names no {what}: write {scheme}:{}",
                    what.to_uppercase().replace(' ', "_")
                )))
            } else {
                Ok(rest.to_owned())
            }
        };
        match scheme {
            "file" => Ok(Self::File(PathBuf::from(value("file")?))),
            "env" => Ok(Self::Env(value("variable")?)),
            "aws-kms" => Ok(Self::AwsKms(value("key id")?)),
            "vault-transit" => {
                let path = value("key name")?;
                let (mount, key) = match path.rsplit_once('/') {
                    Some((mount, key)) => (mount.trim_matches('/'), key),
                    None => (DEFAULT_TRANSIT_MOUNT, path.as_str()),
                };
                if mount.is_empty() || key.is_empty() {
                    return Err(Error::config(format!(
                        "the key {text:?} is not vault-transit:KEY or vault-transit:MOUNT/KEY"
                    )));
                }
                Ok(Self::VaultTransit {
                    mount: mount.to_owned(),
                    key: key.to_owned(),
                })
            }
            _ => Err(unknown(text)),
        }
    }
}

fn unknown(text: &str) -> Error {
    Error::config(format!(
        "unknown key {text:?}: expected file:PATH, env:VAR, passphrase, aws-kms:KEY_ID or \
         vault-transit:KEY_NAME"
    ))
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "file:{}", path.display()),
            Self::Env(var) => write!(f, "env:{var}"),
            Self::Passphrase => f.write_str("passphrase"),
            Self::AwsKms(key) => write!(f, "aws-kms:{key}"),
            Self::VaultTransit { mount, key } if mount == DEFAULT_TRANSIT_MOUNT => {
                write!(f, "vault-transit:{key}")
            }
            Self::VaultTransit { mount, key } => write!(f, "vault-transit:{mount}/{key}"),
        }
    }
}

impl<'de> serde::Deserialize<'de> for KeySpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_parses_and_prints_back() {
        let table = [
            ("file:/etc/app.key", KeySpec::File("/etc/app.key".into())),
            ("env:APP_KEY", KeySpec::Env("APP_KEY".into())),
            ("passphrase", KeySpec::Passphrase),
            ("aws-kms:alias/app", KeySpec::AwsKms("alias/app".into())),
            (
                "aws-kms:arn:aws:kms:eu-west-1:111122223333:key/1234abcd",
                KeySpec::AwsKms("arn:aws:kms:eu-west-1:111122223333:key/1234abcd".into()),
            ),
            (
                "vault-transit:app",
                KeySpec::VaultTransit {
                    mount: "transit".into(),
                    key: "app".into(),
                },
            ),
            (
                "vault-transit:team/transit/app",
                KeySpec::VaultTransit {
                    mount: "team/transit".into(),
                    key: "app".into(),
                },
            ),
        ];
        for (text, spec) in table {
            assert_eq!(text.parse::<KeySpec>().unwrap(), spec, "{text}");
            assert_eq!(spec.to_string(), text);
        }
    }

    #[test]
    fn bad_spellings_say_what_is_expected() {
        for text in [
            "",
            "kms:alias/app",
            "file:",
            "aws-kms:",
            "vault-transit:",
            "vault-transit:/app",
            "vault-transit:mount/",
            "passphrase:x",
        ] {
            let err = text.parse::<KeySpec>().unwrap_err();
            assert!(matches!(err, Error::Config { .. }), "{text}: {err}");
        }
        let err = "kms:x".parse::<KeySpec>().unwrap_err().to_string();
        assert!(err.contains("aws-kms:KEY_ID"), "{err}");
    }

    #[test]
    fn lists_keep_their_order() {
        let specs = KeySpec::parse_list(" aws-kms:alias/app ,passphrase,").unwrap();
        assert_eq!(
            specs,
            [KeySpec::AwsKms("alias/app".into()), KeySpec::Passphrase]
        );
        assert!(KeySpec::parse_list(" , ").is_err());
    }

    #[test]
    fn kinds_match_the_slot_table() {
        assert_eq!(KeySpec::Passphrase.kind(), "passphrase");
        assert_eq!(KeySpec::Env("K".into()).kind(), "master-key");
        assert!(KeySpec::AwsKms("k".into()).is_remote());
        assert!(!KeySpec::File("f".into()).is_remote());
    }
}
