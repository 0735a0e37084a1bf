#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Debian package (`cargo deb`: metadata in Cargo.toml, scripts and units in deploy/debian/):
//! what it holds, that lintian finds no error in it and shellcheck none in its scripts, and a real
//! install, upgrade, remove and purge on this machine, as the README's Deploying guide promises.
//!
//! The package is built from the binary this test run built (a debug build, which `cargo deb`
//! strips), so CI compiles no release build for it; `release/build.sh` packages the release one.
//! Needs cargo-deb, dpkg-deb, lintian and shellcheck (`.ci/run` installs them): with CI=true a
//! missing one fails the test, elsewhere the test says it skipped. The install round changes the
//! machine (a system user, /etc/quicket-followup, /var/lib/quicket-followup, all removed again), so
//! it runs as root with CI=true or QF_PACKAGE_INSTALL=1 only, one test run at a time.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

const PACKAGE: &str = "quicket-followup";
const STATE_DIR: &str = "/var/lib/quicket-followup";
const CONFIG_DIR: &str = "/etc/quicket-followup";
const CONFIG: &str = "/etc/quicket-followup/quicket-followup.toml";
const SECRETS: &str = "/etc/quicket-followup/secrets.env";
const ADMIN: &str = "/usr/sbin/quicket-followup-admin";
const UNITS: [&str; 3] = [
    "quicket-followup.service",
    "quicket-followup-backup.service",
    "quicket-followup-backup.timer",
];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_quicket-followup")
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true")
}

/// Whether `program args` runs; when it does not, a failure under CI=true, else a skip said.
fn have(program: &str, args: &[&str], what: &str, install: &str) -> bool {
    let runs = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !runs {
        assert!(
            !in_ci(),
            "{what} is needed and missing ({install}; .ci/run installs it)"
        );
        eprintln!("skipped: {what} is not installed ({install})");
    }
    runs
}

fn run(command: &mut Command) -> Output {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The two packages the tests use: this version, and the same files as a newer version (for the
/// upgrade).
struct Packages {
    first: PathBuf,
    second: PathBuf,
    first_version: String,
    second_version: String,
}

/// Built once per test run, by the first test that needs them; None when cargo-deb is missing.
fn packages() -> Option<&'static Packages> {
    static PACKAGES: OnceLock<Option<Packages>> = OnceLock::new();
    PACKAGES
        .get_or_init(|| {
            let tools = have(
                env!("CARGO"),
                &["deb", "--version"],
                "cargo-deb",
                "cargo install --locked cargo-deb",
            ) && have(
                "dpkg-deb",
                &["--version"],
                "dpkg-deb",
                "apt-get install dpkg",
            );
            tools.then(build_packages)
        })
        .as_ref()
}

fn build_packages() -> Packages {
    // cargo-deb packages `target/release/quicket-followup` of the target directory it is given:
    // here a directory holding a copy of the binary this test run built.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("package");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("release")).unwrap();
    fs::copy(binary(), dir.join("release/quicket-followup")).unwrap();

    let started = std::time::Instant::now();
    let first_version = format!("{}-1", env!("CARGO_PKG_VERSION"));
    let second_version = format!("{first_version}+next");
    let build = |version: &str| {
        let deb = dir.join(format!("{PACKAGE}_{version}_amd64.deb"));
        run(Command::new(env!("CARGO"))
            .args(["deb", "--no-build", "--fast", "--strip", "--deb-version"])
            .arg(version)
            .arg("--output")
            .arg(&deb)
            .env("CARGO_TARGET_DIR", &dir)
            .current_dir(repo()));
        assert!(deb.exists(), "cargo deb wrote no {}", deb.display());
        deb
    };
    let first = build(&first_version);
    // The upgrade: the same package under a newer version, repacked by dpkg-deb without
    // compression (cheaper than a second cargo deb, which strips and compresses again).
    let unpacked = dir.join("next");
    run(Command::new("dpkg-deb")
        .arg("-R")
        .arg(&first)
        .arg(&unpacked));
    let control = unpacked.join("DEBIAN/control");
    let fields = fs::read_to_string(&control).unwrap();
    let old_line = format!("Version: {first_version}\n");
    assert!(fields.contains(&old_line), "{fields}");
    fs::write(
        &control,
        fields.replace(&old_line, &format!("Version: {second_version}\n")),
    )
    .unwrap();
    let second = dir.join(format!("{PACKAGE}_{second_version}_amd64.deb"));
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Znone", "--build"])
        .arg(&unpacked)
        .arg(&second));
    // Only the two packages are needed from here on (the copy of the binary is 200+ MB).
    let _ = fs::remove_file(dir.join("release/quicket-followup"));
    let _ = fs::remove_dir_all(&unpacked);
    let packages = Packages {
        first,
        second,
        first_version,
        second_version,
    };
    eprintln!("built both packages in {:.1?}", started.elapsed());
    packages
}

/// `dpkg-deb --contents`: each path (without the leading `.`) with its mode and owner.
fn contents(deb: &Path) -> BTreeMap<String, (String, String)> {
    let output = run(Command::new("dpkg-deb").arg("--contents").arg(deb));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let path = fields.get(5)?.trim_start_matches('.').trim_end_matches('/');
            // Listed by number or by name, depending on who built the archive.
            let owner = match fields[1] {
                "0/0" | "root/root" => "root",
                other => other,
            };
            (!path.is_empty())
                .then(|| (path.to_string(), (fields[0].to_string(), owner.to_string())))
        })
        .collect()
}

/// Every file under `dir`, as paths relative to it.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(next) = todo.pop() {
        for entry in fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn the_package_holds_what_the_deploying_guide_installs() {
    if !have(
        "dpkg-deb",
        &["--version"],
        "dpkg-deb",
        "apt-get install dpkg",
    ) {
        return;
    }
    let Some(packages) = packages() else { return };
    let listed = contents(&packages.first);
    assert_eq!(
        contents(&packages.second),
        listed,
        "the upgrade's package holds the same files"
    );
    let expect = |path: &str, mode: &str| {
        let (found_mode, owner) = listed
            .get(path)
            .unwrap_or_else(|| panic!("the package has no {path}; it has:\n{listed:#?}"));
        assert_eq!(found_mode, mode, "the mode of {path}");
        assert_eq!(owner, "root", "the owner of {path}");
    };
    expect("/usr/bin/quicket-followup", "-rwxr-xr-x");
    expect(ADMIN, "-rwxr-xr-x");
    for unit in UNITS {
        expect(&format!("/lib/systemd/system/{unit}"), "-rw-r--r--");
    }
    // postinst gives the configuration to root:quicket-followup 0640 (the user does not exist yet
    // when dpkg unpacks it); the secrets are root's alone from the start.
    expect(CONFIG, "-rw-r--r--");
    expect(SECRETS, "-rw-------");
    expect("/usr/share/man/man1/quicket-followup.1.gz", "-rw-r--r--");
    expect(
        "/usr/share/man/man8/quicket-followup-admin.8.gz",
        "-rw-r--r--",
    );
    expect("/usr/share/doc/quicket-followup/copyright", "-rw-r--r--");
    expect(
        "/usr/share/doc/quicket-followup/changelog.Debian.gz",
        "-rw-r--r--",
    );
    let templates = repo().join("templates/emails");
    let shipped = files_under(&templates);
    assert!(shipped.len() >= 9, "{shipped:?}");
    for file in &shipped {
        expect(
            &format!(
                "/usr/share/quicket-followup/templates/emails/{}",
                file.display()
            ),
            "-rw-r--r--",
        );
    }
    // The state directory is made by postinst (owned by the service's user); nothing goes under
    // /usr/local, which is the administrator's.
    for path in listed.keys() {
        assert!(
            !path.starts_with("/var") && !path.starts_with("/usr/local"),
            "the package should not ship {path}"
        );
    }

    // Exactly the two files in /etc are conffiles: dpkg keeps their edits on upgrades.
    let conffiles = run(Command::new("dpkg-deb")
        .arg("--info")
        .arg(&packages.first)
        .arg("conffiles"));
    let mut conffiles: Vec<String> = String::from_utf8_lossy(&conffiles.stdout)
        .lines()
        .map(|line| line.trim().to_string())
        .collect();
    conffiles.sort();
    assert_eq!(conffiles, [CONFIG, SECRETS]);

    let field = |name: &str| {
        let output = run(Command::new("dpkg-deb")
            .arg("--field")
            .arg(&packages.first)
            .arg(name));
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    assert_eq!(field("Package"), PACKAGE);
    assert_eq!(field("Version"), packages.first_version);
    assert_eq!(field("Architecture"), "amd64");
    let depends = field("Depends");
    assert!(
        depends.contains("libc6") && depends.contains("adduser"),
        "{depends}"
    );

    // What is unpacked is what the repository holds: the production configuration, the shipped
    // templates, a secrets file with no secret in it, and a binary that runs.
    let root = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb")
        .arg("-x")
        .arg(&packages.first)
        .arg(root.path()));
    let unpacked = |path: &str| root.path().join(path.trim_start_matches('/'));
    assert_eq!(
        fs::read(unpacked(CONFIG)).unwrap(),
        fs::read(repo().join("deploy/quicket-followup.toml")).unwrap()
    );
    // The schedule file postinst copies into the state directory.
    assert_eq!(
        fs::read(unpacked("/usr/share/quicket-followup/schedule.toml")).unwrap(),
        fs::read(repo().join("deploy/schedule.toml")).unwrap()
    );
    for file in &shipped {
        assert_eq!(
            fs::read(unpacked("/usr/share/quicket-followup/templates/emails").join(file)).unwrap(),
            fs::read(templates.join(file)).unwrap(),
            "templates/emails/{}",
            file.display()
        );
    }
    let secrets = fs::read_to_string(unpacked(SECRETS)).unwrap();
    assert!(
        secrets
            .lines()
            .all(|line| line.trim().is_empty() || line.starts_with('#')),
        "secrets.env should hold only comments:\n{secrets}"
    );
    let version = run(Command::new(unpacked("/usr/bin/quicket-followup")).arg("--version"));
    assert!(text(&version).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn lintian_finds_no_error_in_the_package() {
    if !have(
        "lintian",
        &["--version"],
        "lintian",
        "apt-get install lintian",
    ) {
        return;
    }
    let Some(packages) = packages() else { return };
    let output = Command::new("lintian")
        .args(["--fail-on", "error", "--tag-display-limit", "0"])
        .arg(&packages.first)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = text(&output);
    eprintln!("lintian:\n{said}");
    assert!(
        output.status.success(),
        "lintian found errors in the package:\n{said}"
    );
}

#[test]
fn the_maintainer_scripts_and_helpers_pass_shellcheck() {
    if !have(
        "shellcheck",
        &["--version"],
        "shellcheck",
        "apt-get install shellcheck",
    ) || !have(
        "dpkg-deb",
        &["--version"],
        "dpkg-deb",
        "apt-get install dpkg",
    ) {
        return;
    }
    let Some(packages) = packages() else { return };
    // The scripts as they are in the package (cargo-deb could add to them), and the helpers.
    let control = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb")
        .arg("-e")
        .arg(&packages.first)
        .arg(control.path()));
    let mut scripts: Vec<PathBuf> = ["preinst", "postinst", "prerm", "postrm"]
        .iter()
        .map(|name| control.path().join(name))
        .collect();
    scripts.push(repo().join("deploy/debian/quicket-followup-admin"));
    scripts.push(repo().join("release/build.sh"));
    for script in &scripts {
        assert!(script.exists(), "{} is missing", script.display());
    }
    run(Command::new("shellcheck").args(&scripts));
}

/// Directive lines (no comments, no blank lines) with the installed binary's path.
fn directives(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            line.replace(
                "/usr/local/bin/quicket-followup",
                "/usr/bin/quicket-followup",
            )
        })
        .collect()
}

#[test]
fn the_packaged_units_are_the_deploy_units_with_the_binary_in_usr_bin() {
    // deploy/ has the units for a binary installed by hand in /usr/local/bin (checked by
    // systemd-analyze in tests/deploy.rs); the package's must not drift from them.
    for unit in UNITS {
        let by_hand = fs::read_to_string(repo().join("deploy").join(unit)).unwrap();
        let packaged = fs::read_to_string(repo().join("deploy/debian").join(unit)).unwrap();
        assert!(!packaged.contains("/usr/local/"), "deploy/debian/{unit}");
        assert_eq!(
            directives(&packaged),
            directives(&by_hand),
            "deploy/debian/{unit} differs from deploy/{unit} in more than the binary's path"
        );
    }
}

#[test]
fn the_manual_page_names_every_command() {
    let help = run(Command::new(binary()).arg("--help"));
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .collect();
    assert!(commands.contains(&"serve"), "{help}");
    let page = fs::read_to_string(repo().join("deploy/debian/quicket-followup.1")).unwrap();
    for command in commands {
        let escaped = command.replace('-', "\\-");
        let inline = format!("\\fB{escaped}\\fP");
        let as_macro = page.lines().any(|line| {
            line.starts_with(".B") && line.split_whitespace().nth(1) == Some(escaped.as_str())
        });
        assert!(
            page.contains(&inline) || as_macro,
            "deploy/debian/quicket-followup.1 does not describe the command {command}"
        );
    }
}

// ---- the real install round ----

/// Left while the install round runs; found at the start of a run, it says that what is installed
/// is a killed earlier round's (to clean up), not an operator's.
const MARKER: &str = "/var/tmp/quicket-followup-package-test.marker";

fn dpkg(args: &[&str], deb: Option<&Path>, envs: &[(&str, &str)]) -> String {
    let mut command = Command::new("dpkg");
    command
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .env_remove("QUICKET_FOLLOWUP_PURGE_DATA")
        .env_remove("QUICKET_FOLLOWUP_SKIP_BACKUP")
        .envs(envs.iter().copied());
    if let Some(deb) = deb {
        command.arg(deb);
    }
    let said = text(&run(&mut command));
    eprintln!("dpkg {}:\n{said}", args.join(" "));
    said
}

fn package_state() -> String {
    let output = Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Status}", PACKAGE])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let state = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if state.is_empty() {
        "not-installed".to_string()
    } else {
        state
    }
}

fn id_of(database: &str, name: &str) -> Option<u32> {
    let output = Command::new("getent")
        .args([database, name])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&output.stdout).into_owned();
    line.split(':').nth(2)?.trim().parse().ok()
}

/// Everything the round may leave, gone: the package (data too), the user and group, the dirs.
fn clean_up() {
    if package_state() != "not-installed" {
        let _ = Command::new("dpkg")
            .args(["--purge", PACKAGE])
            .env("QUICKET_FOLLOWUP_PURGE_DATA", "yes")
            .stdin(Stdio::null())
            .output();
    }
    for (command, name) in [("userdel", PACKAGE), ("groupdel", PACKAGE)] {
        let _ = Command::new(command)
            .arg(name)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let _ = fs::remove_dir_all(STATE_DIR);
    let _ = fs::remove_dir_all(CONFIG_DIR);
    let _ = fs::remove_file(MARKER);
}

/// Cleans up however the round ends, an assertion failing included.
struct CleanUp;

impl Drop for CleanUp {
    fn drop(&mut self) {
        clean_up();
    }
}

fn mode_and_owner(path: &str) -> (u32, u32, u32) {
    let meta = fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    (meta.mode() & 0o7777, meta.uid(), meta.gid())
}

fn admin(args: &[&str], envs: &[(&str, &str)]) -> String {
    text(&run(Command::new(ADMIN)
        .args(args)
        .env_remove("QUICKET_FOLLOWUP_CONFIG")
        .envs(envs.iter().copied())))
}

/// Whether this run may install the package for real; says why not when it may not.
fn may_install() -> bool {
    let asked = in_ci() || std::env::var("QF_PACKAGE_INSTALL").is_ok_and(|value| value == "1");
    if !asked {
        eprintln!(
            "skipped: the install round changes this machine; it runs with CI=true or QF_PACKAGE_INSTALL=1"
        );
        return false;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0");
    if !root {
        assert!(!in_ci(), "the install round needs root (dpkg -i)");
        eprintln!("skipped: the install round needs root (dpkg -i)");
        return false;
    }
    have("dpkg", &["--version"], "dpkg", "a Debian machine")
        && have(
            "runuser",
            &["--version"],
            "runuser",
            "apt-get install util-linux",
        )
}

#[test]
fn install_upgrade_remove_and_purge_for_real() {
    if !may_install() {
        return;
    }
    let Some(packages) = packages() else { return };

    // One round at a time on this machine (another checkout's test run may be at it too).
    let lock = fs::File::create("/tmp/quicket-followup-package-test.lock").unwrap();
    lock.lock().unwrap();

    if Path::new(MARKER).exists() {
        eprintln!("cleaning up what a killed earlier round left");
        clean_up();
    }
    let untouched = package_state() == "not-installed"
        && id_of("passwd", PACKAGE).is_none()
        && !Path::new(STATE_DIR).exists()
        && !Path::new(CONFIG_DIR).exists();
    if !untouched {
        let why = format!(
            "quicket-followup is installed on this machine (package: {}, or its user or directories exist), not by this test; remove it first",
            package_state()
        );
        assert!(!in_ci(), "{why}");
        eprintln!("skipped: {why}");
        return;
    }
    fs::write(MARKER, "tests/package.rs\n").unwrap();
    let _clean_up = CleanUp;
    let systemd_runs = Path::new("/run/systemd/system").exists();
    eprintln!(
        "systemd {} running here",
        if systemd_runs { "is" } else { "is not" }
    );

    // 1. A first install: the user, the directories and owners of the guide, nothing started.
    let said = dpkg(&["--install"], Some(&packages.first), &[]);
    assert!(
        said.contains("systemctl enable --now quicket-followup"),
        "{said}"
    );
    let uid = id_of("passwd", PACKAGE).expect("the install creates the user");
    let gid = id_of("group", PACKAGE).expect("the install creates the group");
    assert!(uid < 1000, "a system user, not uid {uid}");
    let passwd = text(&run(Command::new("getent").args(["passwd", PACKAGE])));
    assert!(
        passwd
            .trim()
            .ends_with(":/var/lib/quicket-followup:/usr/sbin/nologin"),
        "{passwd}"
    );
    assert_eq!(mode_and_owner(STATE_DIR), (0o750, uid, gid));
    assert_eq!(
        mode_and_owner("/var/lib/quicket-followup/backups"),
        (0o750, uid, gid)
    );
    assert_eq!(mode_and_owner(CONFIG_DIR), (0o750, 0, gid));
    assert_eq!(mode_and_owner(CONFIG), (0o640, 0, gid));
    assert_eq!(mode_and_owner(SECRETS), (0o600, 0, 0));
    // The editable files are the service's own (the browser saves them), in the state directory.
    let templates = "/var/lib/quicket-followup/templates/emails";
    assert_eq!(mode_and_owner(templates), (0o750, uid, gid));
    assert_eq!(
        mode_and_owner(&format!("{templates}/abandoned/subject.txt")),
        (0o640, uid, gid)
    );
    let schedule = "/var/lib/quicket-followup/schedule.toml";
    assert_eq!(mode_and_owner(schedule), (0o640, uid, gid));
    assert_eq!(
        fs::read(schedule).unwrap(),
        fs::read(repo().join("deploy/schedule.toml")).unwrap()
    );
    assert_eq!(
        files_under(Path::new(templates)),
        files_under(&repo().join("templates/emails"))
    );
    // deb-systemd-helper keeps its record of the units, so that a purge removes their links.
    let dsh = Path::new("/var/lib/systemd/deb-systemd-helper-enabled");
    assert!(
        dsh.join("quicket-followup.service.dsh-also").exists(),
        "no deb-systemd-helper record of the service"
    );

    // The installed units, as systemd will read them: the binary and the user are there now.
    if have(
        "systemd-analyze",
        &["--version"],
        "systemd-analyze",
        "apt-get install systemd",
    ) {
        let output = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .args(UNITS.map(|unit| format!("/lib/systemd/system/{unit}")))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let said = text(&output);
        assert!(
            output.status.success() && said.trim().is_empty(),
            "systemd-analyze verify complained about the installed units:\n{said}"
        );
    }

    // The guide's `systemctl enable` (it only makes links, so it works without systemd running);
    // the package must keep the link on upgrades and remove it on purge.
    let enabled = Path::new("/etc/systemd/system/multi-user.target.wants/quicket-followup.service");
    let can_enable = have(
        "systemctl",
        &["--version"],
        "systemctl",
        "apt-get install systemd",
    );
    if can_enable {
        run(Command::new("systemctl").args(["enable", "quicket-followup.service"]));
        assert!(enabled.is_symlink());
    }

    // 2. The operator's edits (outbox instead of SMTP, until the account is there; a line in an
    // email), then `check` as the service's user passes and the database is the user's.
    let config = fs::read_to_string(CONFIG).unwrap();
    assert!(config.contains("transport = \"smtp\""));
    let edited = config.replace("transport = \"smtp\"", "transport = \"outbox\"")
        + "\n# edited by tests/package.rs\n";
    fs::write(CONFIG, &edited).unwrap();
    let subject = format!("{templates}/abandoned/subject.txt");
    let edited_subject = "Your tickets are waiting, {{ buyer.first_name }}\n";
    fs::write(&subject, edited_subject).unwrap();
    // No DNS here: check's questions about the From domain go to a port where nothing answers.
    let said = admin(
        &["check"],
        &[("QUICKET_FOLLOWUP_DNS_SERVER", "127.0.0.1:9")],
    );
    assert!(said.contains("ok"), "{said}");
    assert_eq!(
        admin(&["unsubscribe", "lerato@example.co.za"], &[]).trim(),
        "unsubscribed"
    );
    let database = "/var/lib/quicket-followup/followup.sqlite";
    let (mode, owner, _) = mode_and_owner(database);
    assert_eq!(
        (mode, owner),
        (0o600, uid),
        "the database is the service user's alone"
    );

    // 3. An upgrade: a backup first (by the binary still installed), the edits kept, the data too.
    let said = dpkg(&["--install"], Some(&packages.second), &[]);
    assert!(
        said.contains("backed up the database before the upgrade"),
        "{said}"
    );
    let backups: Vec<PathBuf> = fs::read_dir("/var/lib/quicket-followup/backups")
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    let expected_name = format!("-before-upgrade-from-{}.sqlite", packages.first_version);
    assert_eq!(backups.len(), 1, "{backups:?}");
    let backup = &backups[0];
    let name = backup.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("followup-") && name.ends_with(&expected_name),
        "{name}: named so that the nightly clean-up drops it after 14 days"
    );
    let (mode, owner, _) = mode_and_owner(backup.to_str().unwrap());
    assert_eq!((mode, owner), (0o600, uid));
    assert_eq!(
        fs::read_to_string(CONFIG).unwrap(),
        edited,
        "the edited conffile was kept"
    );
    assert_eq!(fs::read_to_string(&subject).unwrap(), edited_subject);
    assert_eq!(
        fs::read(schedule).unwrap(),
        fs::read(repo().join("deploy/schedule.toml")).unwrap(),
        "the schedule file is never overwritten (nor changed) by an upgrade"
    );
    assert_eq!(mode_and_owner(CONFIG), (0o640, 0, gid));
    assert_eq!(
        admin(&["unsubscribe", "lerato@example.co.za"], &[]).trim(),
        "already unsubscribed"
    );
    // The backup holds what the database held before the upgrade.
    let copy = tempfile::tempdir().unwrap();
    fs::copy(backup, copy.path().join("copy.sqlite")).unwrap();
    let copy_config = copy.path().join("quicket-followup.toml");
    fs::write(
        &copy_config,
        format!(
            "[database]\npath = \"{}\"\n",
            copy.path().join("copy.sqlite").display()
        ),
    )
    .unwrap();
    let said = text(&run(Command::new(binary())
        .arg("--config")
        .arg(&copy_config)
        .args(["unsubscribe", "lerato@example.co.za"])
        .current_dir(copy.path())));
    assert_eq!(
        said.trim(),
        "already unsubscribed",
        "the backup lacks the data"
    );
    let installed = text(&run(Command::new("dpkg-query").args([
        "-W",
        "-f=${Version}",
        PACKAGE,
    ])));
    assert_eq!(installed.trim(), packages.second_version);
    assert_eq!(
        enabled.is_symlink(),
        can_enable,
        "the upgrade kept the service enabled"
    );

    // The same version again (apt install --reinstall): every step of the scripts is idempotent.
    let said = dpkg(&["--install"], Some(&packages.second), &[]);
    assert!(
        said.contains("backed up the database before the upgrade"),
        "{said}"
    );
    assert_eq!(fs::read_to_string(CONFIG).unwrap(), edited);
    assert_eq!(mode_and_owner(CONFIG), (0o640, 0, gid));
    assert_eq!(mode_and_owner(STATE_DIR), (0o750, uid, gid));
    assert_eq!(id_of("passwd", PACKAGE), Some(uid));

    // 4. Remove: the program goes, the configuration and the data stay.
    dpkg(&["--remove", PACKAGE], None, &[]);
    assert!(!Path::new("/usr/bin/quicket-followup").exists());
    assert!(!Path::new(ADMIN).exists());
    assert!(!Path::new("/lib/systemd/system/quicket-followup.service").exists());
    assert!(Path::new(database).exists());
    assert_eq!(fs::read_to_string(CONFIG).unwrap(), edited);
    assert!(id_of("passwd", PACKAGE).is_some());

    // 5. Purge: the configuration goes; the database, its backups and the user stay, and it says so.
    let said = dpkg(&["--purge", PACKAGE], None, &[]);
    assert!(said.contains("kept /var/lib/quicket-followup"), "{said}");
    assert!(said.contains("QUICKET_FOLLOWUP_PURGE_DATA=yes"), "{said}");
    assert!(
        !Path::new(CONFIG_DIR).exists(),
        "purge leaves /etc/quicket-followup"
    );
    assert!(Path::new(database).exists());
    assert!(backup.exists());
    assert!(id_of("passwd", PACKAGE).is_some());
    let overrides = text(&run(Command::new("dpkg-statoverride").arg("--list")));
    assert!(!overrides.contains(CONFIG_DIR), "{overrides}");
    assert!(!dsh.join("quicket-followup.service.dsh-also").exists());
    assert!(!enabled.is_symlink(), "purge leaves the service enabled");
    for unit in UNITS {
        let mask = Path::new("/etc/systemd/system").join(unit);
        assert!(!mask.is_symlink(), "purge leaves {} masked", mask.display());
    }

    // 6. Installed again, it finds the data it left (a fresh configuration: SMTP, so the URL comes
    // from the environment here).
    dpkg(&["--install"], Some(&packages.second), &[]);
    let smtp = [("QUICKET_FOLLOWUP_SMTP_URL", "smtp://127.0.0.1:25")];
    assert_eq!(
        admin(&["unsubscribe", "lerato@example.co.za"], &smtp).trim(),
        "already unsubscribed"
    );

    // 7. Purge, asking for the data to go too: nothing is left.
    let said = dpkg(
        &["--purge", PACKAGE],
        None,
        &[("QUICKET_FOLLOWUP_PURGE_DATA", "yes")],
    );
    assert!(said.contains("removed /var/lib/quicket-followup"), "{said}");
    assert!(!Path::new(STATE_DIR).exists());
    assert!(!Path::new(CONFIG_DIR).exists());
    assert!(id_of("passwd", PACKAGE).is_none(), "the user is left");
    assert!(id_of("group", PACKAGE).is_none(), "the group is left");
    assert_eq!(package_state(), "not-installed");
}
