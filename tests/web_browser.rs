//! The page `dcsend signal` serves (`GET /ROOM`: `web/static/`, `web/dist/dcsend-page.js`) in a
//! real headless Chromium, against real dcsend processes, through a real `dcsend signal`, all on
//! loopback. `web/test/browser.mjs` drives the browser with Playwright (`playwright-core`, no
//! browser download: it launches the system's Chromium) and only uses what the page promises to
//! scripts: `body[data-phase|data-role]`, `#pick`, `#stats[data-bytes|data-total]`, `#error` and
//! `#received a[download][data-name|data-bytes|data-sha256]`.
//!
//! - 32 MiB picked in the page arrive at `dcsend recv` byte-exact (dcsend checks the SHA-256).
//!   The page runs in a phone-sized window (390 CSS pixels, touch) and is driven by the keyboard
//!   alone (Tab to the file input, Space, the file chooser); it must need no sideways scrolling.
//!   On the receiving side the download links are activated with Tab and Enter.
//! - 32 MiB from `dcsend FILE` are offered by the page as a download whose `data-sha256` is the
//!   source's, the saved download is byte-exact, and dcsend exits 0 (only the page's ack of a
//!   verified digest lets it).
//! - A wrong secret in the address (the `#` fragment) fails the page with an authentication
//!   error, and dcsend exits 3.
//! - The server's bare address opens a room at once and shows its address; neither the file
//!   picker nor "Save into a folder" shows before a peer joined. `dcsend recv` run with that
//!   address makes the page the sender: then the picker shows (the folder box does not), and
//!   two files arrive. The closing lines read right for one file and for two, and rates are in
//!   MiB/s. A screenshot of the page before anyone joined is left in `target/web-e2e/`.
//! - Folders (the tree extension): a folder set on the page's folder input (webkitdirectory, as
//!   CDP's `DOM.setFileInputFiles` sets it) reaches `dcsend recv -o DIR/` byte-exact with its
//!   relative paths; `dcsend DIR` to the page, whose `showDirectoryPicker` answers the origin
//!   private file system's root (headless Chromium has no picker a script can fill), lands there
//!   with its paths and its empty folder, each file's SHA-256 read back in the page; and to a
//!   page without `showDirectoryPicker` it is refused, in words, on both sides.
//!
//! Chromium runs with the flags a CI machine needs (headless, no sandbox as root, no GPU, no
//! background traffic, WebRTC allowed on loopback) and otherwise as a user's: it hides its host
//! addresses behind mDNS names, and dcsend reaches it anyway (peer-reflexive candidates). Only
//! on a machine whose sole interface is loopback does the driver turn that hiding off, since
//! Chromium cannot announce the names there (see `web/test/browser.mjs`).
//!
//! Both transfers leave a screenshot taken mid-transfer (data-bytes strictly between 0 and the
//! total) in `target/web-e2e/` (the target folder of this build), for a person to look at.
//!
//! `playwright-core` comes from `web/package-lock.json`: `npm ci` into `target/web-e2e/node/`,
//! redone only when `web/package.json` or the lock changed. Needs `node`, `npm` (and the npm
//! registry, or its cache, the first time) and Chromium (`DCSEND_CHROMIUM`, else
//! `/usr/bin/chromium`, else `chromium` on the PATH); each test counts as ignored, with the reason,
//! without them, unless `DCSEND_TEST_REQUIRE_BROWSER=1` (CI), which makes that a failure.
//!
//! Every wait is bounded (the driver bounds itself below this suite's bound and closes Chromium
//! when it gives up); every process is killed by its own handle. Chromium's profile and
//! Playwright's downloads go to each test's temporary folder (`TMPDIR`), so they go away even
//! when a driver is killed.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::browser::*;
use common::*;

/// Payload of each transfer.
const SIZE: usize = 32 << 20;

/// Checks the driver's `screenshot at BYTES of TOTAL` line and the PNG it saved.
fn check_screenshot(log: &str, path: &Path) {
    let at = log.lines().find_map(|l| l.strip_prefix("screenshot at "));
    let (bytes, total) = at
        .and_then(|a| a.split_once(" of "))
        .map(|(b, t)| (b.parse::<u64>().unwrap(), t.parse::<u64>().unwrap()))
        .unwrap_or_else(|| panic!("no 'screenshot at B of T' line:\n{log}"));
    assert_eq!(total, SIZE as u64, "the page's data-total");
    assert!(0 < bytes && bytes < total, "the screenshot was not mid-transfer: {bytes} of {total}");
    let png = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 24,
        "{} is no PNG",
        path.display()
    );
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert!(width > 0 && height > 0, "{} is {width}x{height}", path.display());
}

fn assert_has(log: &str, line: &str) {
    assert!(log.lines().any(|l| l == line), "no {line:?} in the browser's output:\n{log}");
}

fn a_file_picked_in_the_page_arrives_at_dcsend_recv_byte_exact() {
    let Some(b) = browser() else { return };
    let start = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(SIZE, 91);
    let src = dir.path().join("from-browser.bin");
    std::fs::write(&src, &data).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let shot = screenshot_path("browser-to-dcsend.png");

    let (_server, addr) = signal_server(dir.path(), &[]);
    let base = format!("http://{addr}/");
    let mut recv =
        Proc::spawn("recv", peer(&["recv", "-o", out.to_str().unwrap()], &base), dir.path());
    let url = invite(&recv);
    let mut driver = drive(&b, &[Path::new("send"), Path::new(&url), &src, &shot], dir.path());

    let log = driver_log(&mut driver, &recv);
    recv.expect_code(0, WAIT);
    assert_has(&log, "picked with the keyboard");
    assert_has(&log, "role send");
    assert_has(&log, "phase done");
    assert_has(&log, &format!("sent {SIZE}"));
    // The phone-sized window (390 CSS pixels) needed no sideways scrolling.
    assert_has(&log, "fits 390 of 390 px");
    assert_eq!(files_in(&out), ["from-browser.bin"]);
    assert!(std::fs::read(out.join("from-browser.bin")).unwrap() == data, "the bytes differ");
    check_screenshot(&log, &shot);
    eprintln!(
        "browser -> dcsend: 32 MiB in {:.1?} (screenshot: {})",
        start.elapsed(),
        shot.display()
    );
}

fn a_file_from_dcsend_downloads_from_the_page_byte_exact() {
    let Some(b) = browser() else { return };
    let start = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(SIZE, 92);
    let src = dir.path().join("to-browser.bin");
    std::fs::write(&src, &data).unwrap();
    let out = dir.path().join("downloads");
    std::fs::create_dir(&out).unwrap();
    let shot = screenshot_path("dcsend-to-browser.png");

    let (_server, addr) = signal_server(dir.path(), &[]);
    let base = format!("http://{addr}/");
    let mut send = Proc::spawn("send", peer(&[src.to_str().unwrap()], &base), dir.path());
    let url = invite(&send);
    let mut driver = drive(&b, &[Path::new("recv"), Path::new(&url), &out, &shot], dir.path());

    let log = driver_log(&mut driver, &send);
    // dcsend exits 0 only once the page acked the file with a matching SHA-256.
    send.expect_code(0, WAIT);
    assert_has(&log, "role recv");
    assert_has(&log, "phase done");
    // A receiving page offers a folder where the browser can save into one, and no picker.
    let shown = log.lines().find(|l| l.starts_with("boxes with-role")).unwrap_or_default();
    assert!(shown.starts_with("boxes with-role send=false folder="), "{log}");
    assert!(!shown.ends_with("folder=false"), "no folder box on a receiving page: {log}");
    assert_has(
        &log,
        "status Done: received 1 file, its SHA-256 verified. Save it with the link below.",
    );
    assert_mib(&log);
    let saved: Vec<&str> = log.lines().filter_map(|l| l.strip_prefix("saved ")).collect();
    assert_eq!(saved, [format!("to-browser.bin {SIZE} {}", sha256_hex(&data))], "{log}");
    assert_eq!(files_in(&out), ["to-browser.bin"]);
    assert!(std::fs::read(out.join("to-browser.bin")).unwrap() == data, "the bytes differ");
    check_screenshot(&log, &shot);
    eprintln!(
        "dcsend -> browser: 32 MiB in {:.1?} (screenshot: {})",
        start.elapsed(),
        shot.display()
    );
}

/// The `numbers` line gives rates in MiB/s, as dcsend does.
fn assert_mib(log: &str) {
    let numbers = log.lines().find_map(|l| l.strip_prefix("numbers ")).unwrap_or_default();
    assert!(numbers.contains(" MiB/s") && !numbers.contains("MB/s"), "numbers: {numbers:?}");
}

fn the_bare_address_opens_a_room_and_the_controls_wait_for_the_role() {
    let Some(b) = browser() else { return };
    let dir = tempfile::tempdir().unwrap();
    let files = [("a.txt", random_bytes(1000, 93)), ("b.bin", random_bytes(300_000, 94))];
    let mut args = vec![Path::new("open").to_owned()];
    let (_server, addr) = signal_server(dir.path(), &[]);
    let base = format!("http://{addr}/");
    args.push(PathBuf::from(&base));
    let shot = screenshot_path("bare-address.png");
    args.push(shot.clone());
    for (name, data) in &files {
        let path = dir.path().join(name);
        std::fs::write(&path, data).unwrap();
        args.push(path);
    }
    let args: Vec<&Path> = args.iter().map(PathBuf::as_path).collect();
    let mut driver = drive(&b, &args, dir.path());

    // The page opened a room by itself and shows its address.
    let mut url = None;
    wait_until(BROWSER_WAIT, "the page's `invite URL` line", || {
        url =
            driver.stdout_text().lines().find_map(|l| l.strip_prefix("invite ").map(str::to_owned));
        url.is_some() || driver.child.try_wait().unwrap().is_some()
    });
    let url = url
        .unwrap_or_else(|| panic!("no invite: {}{}", driver.stdout_text(), driver.stderr_text()));
    assert!(url.starts_with(&base) && url.len() > base.len() && url.contains('#'), "{url}");
    let out = dir.path().join("out");
    let mut recv = Proc::spawn(
        "recv",
        peer(&["recv", "-o", &format!("{}/", out.display())], &url),
        dir.path(),
    );

    let log = driver_log(&mut driver, &recv);
    recv.expect_code(0, WAIT);
    let shown: Vec<&str> = log.lines().filter(|l| l.starts_with("boxes ")).collect();
    let before = shown.first().copied().unwrap_or_default();
    assert!(before.starts_with("boxes before-peer send=false folder="), "{log}");
    assert!(!before.ends_with("folder=true"), "a folder box before the role: {log}");
    let with_role = shown.get(1).copied().unwrap_or_default();
    assert!(with_role.starts_with("boxes with-role send=true folder="), "{log}");
    assert!(!with_role.ends_with("folder=true"), "a folder box on a sending page: {log}");
    assert_has(&log, "role send");
    assert_has(
        &log,
        "status Done: 2 files (293.9 KiB) delivered, and the receiver confirmed each one's SHA-256.",
    );
    assert_mib(&log);
    assert_eq!(files_in(&out), ["a.txt", "b.bin"]);
    for (name, data) in &files {
        assert!(std::fs::read(out.join(name)).unwrap() == *data, "{name}: the bytes differ");
    }
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("{}: {e}", shot.display()));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{} is no PNG", shot.display());
    eprintln!(
        "bare address: a room, then two files to dcsend recv (screenshot: {})",
        shot.display()
    );
}

fn a_wrong_secret_in_the_address_fails_the_page_and_dcsend_exits_3() {
    let Some(b) = browser() else { return };
    let start = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("secret.txt");
    std::fs::write(&src, b"not for the wrong page").unwrap();

    let (_server, addr) = signal_server(dir.path(), &[]);
    let base = format!("http://{addr}/");
    let mut send = Proc::spawn("send", peer(&[src.to_str().unwrap()], &base), dir.path());
    let url = invite(&send);
    let (room, secret) = url.split_once('#').expect("URL#SECRET");
    let wrong = format!("{room}#not-{secret}");
    let mut driver = drive(&b, &[Path::new("fail"), Path::new(&wrong)], dir.path());

    let log = driver_log(&mut driver, &send);
    send.expect_code(3, WAIT);
    assert_has(&log, "phase failed");
    let error = log.lines().find_map(|l| l.strip_prefix("error ")).unwrap_or_default();
    assert!(error.to_lowercase().contains("authenticat"), "#error does not say why: {log}");
    let err = send.stderr_text();
    assert!(err.contains("could not authenticate the peer"), "{err}");
    eprintln!("wrong secret: failed on both sides in {:.1?}", start.elapsed());
}

/// A tab closed in the middle of the rendezvous (the secret checked, the descriptions not
/// swapped yet) frees its seat: its `pagehide` sends the DELETE, the dcsend side is told that
/// the other side left, and a `dcsend recv` that comes next gets the file byte-exact.
///
/// What holds the rendezvous in the middle: the sender gathers its candidates for the offer
/// with a STUN server that answers only once the tab is closed ([`HeldStun`]), so the page
/// waits for the offer while the driver closes it.
fn a_tab_closed_mid_rendezvous_frees_its_seat_and_dcsend_recv_gets_the_file() {
    let Some(b) = browser() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(1 << 20, 23);
    let src = dir.path().join("second-try.bin");
    std::fs::write(&src, &data).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();

    let (_server, addr) = signal_server(dir.path(), &[]);
    let base = format!("http://{addr}/");
    let stun = HeldStun::start();
    let mut cmd = peer(&[src.to_str().unwrap()], &base);
    cmd.args(["--stun", &format!("stun:{}", stun.addr)]);
    let mut send = Proc::spawn("send", cmd, dir.path());
    let url = invite(&send);
    let mut driver = drive(&b, &[Path::new("leave"), Path::new(&url)], dir.path());
    let log = driver_log(&mut driver, &send);
    stun.release();
    assert_has(&log, "phase connecting");
    assert_has(&log, "closed the tab");
    let told = "left; waiting for someone to join again";
    let closed = Instant::now();
    while !send.stderr_text().contains(told) {
        let err = send.stderr_text();
        assert!(closed.elapsed() < WAIT, "dcsend was not told the page left; stderr:\n{err}");
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("tab closed: dcsend was told after {:.1?}", closed.elapsed());

    let mut recv =
        Proc::spawn("recv", peer(&["recv", "-o", out.to_str().unwrap()], &url), dir.path());
    recv.expect_code(0, WAIT);
    send.expect_code(0, WAIT);
    assert!(std::fs::read(out.join("second-try.bin")).unwrap() == data, "bytes differ");
}

/// The small tree of the folder tests: `photos/` holding a file and `2024/`, which holds two
/// (one with a space and a non-ASCII name). Returns its (path, bytes) files.
fn small_tree(root: &Path) -> Vec<(&'static str, Vec<u8>)> {
    let files = vec![
        ("photos/2024/a b.bin", random_bytes(150_000, 95)),
        ("photos/2024/ü.txt", b"gr\xc3\xbc\xc3\x9fe\n".to_vec()),
        ("photos/notes.txt", random_bytes(1000, 96)),
    ];
    for (path, data) in &files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
    files
}

fn a_folder_picked_in_the_page_arrives_at_dcsend_recv_with_its_paths() {
    let Some(b) = browser() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let files = small_tree(&src);
    let out = dir.path().join("out");

    let (_server, addr) = signal_server(dir.path(), &[]);
    let base = format!("http://{addr}/");
    let mut recv = Proc::spawn(
        "recv",
        peer(&["recv", "-o", &format!("{}/", out.display())], &base),
        dir.path(),
    );
    let url = invite(&recv);
    let folder = src.join("photos");
    let mut driver = drive(&b, &[Path::new("sendfolder"), Path::new(&url), &folder], dir.path());

    let log = driver_log(&mut driver, &recv);
    recv.expect_code(0, WAIT);
    assert_has(&log, "role send");
    assert_has(
        &log,
        "status Done: 3 files (147.5 KiB) delivered, and the receiver confirmed each one's SHA-256.",
    );
    // The folder input kept the relative paths (webkitRelativePath), the picked folder's name
    // first.
    assert_eq!(files_in(&out), ["photos"]);
    assert_eq!(files_in(&out.join("photos")), ["2024", "notes.txt"]);
    for (path, data) in &files {
        let got = std::fs::read(out.join(path)).unwrap_or_else(|e| panic!("{path}: {e}\n{log}"));
        assert!(got == *data, "{path}: the bytes differ");
    }
}

fn a_folder_from_dcsend_is_saved_into_the_folder_picked_in_the_page() {
    let Some(b) = browser() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let files = small_tree(&src);
    std::fs::create_dir(src.join("photos/empty")).unwrap();

    let (_server, addr) = signal_server(dir.path(), &[]);
    let base = format!("http://{addr}/");
    let folder = src.join("photos");
    let mut send = Proc::spawn("send", peer(&[folder.to_str().unwrap()], &base), dir.path());
    let url = invite(&send);
    let mut driver = drive(&b, &[Path::new("recvtree"), Path::new(&url)], dir.path());

    let log = driver_log(&mut driver, &send);
    // dcsend exits 0 only once the page acked every file with a matching SHA-256.
    send.expect_code(0, WAIT);
    assert_has(&log, "role recv");
    assert_has(&log, "status Done: received 3 files, each SHA-256 verified.");
    let listed: Vec<&str> = log.lines().filter(|l| l.starts_with("tree-")).collect();
    let mut want = vec![
        "tree-dir photos".to_owned(),
        "tree-dir photos/2024".to_owned(),
        "tree-dir photos/empty".to_owned(),
    ];
    for (path, data) in &files {
        want.push(format!("tree-file {path} {} {}", data.len(), sha256_hex(data)));
    }
    want.sort_by(|a, b| {
        let key = |l: &str| l.split_once(' ').unwrap().1.split(' ').next().unwrap().to_owned();
        key(a).cmp(&key(b))
    });
    assert_eq!(listed, want, "{log}");
}

fn a_folder_to_a_browser_that_cannot_save_one_is_refused_in_words() {
    let Some(b) = browser() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    small_tree(&src);

    let (_server, addr) = signal_server(dir.path(), &[]);
    let base = format!("http://{addr}/");
    let folder = src.join("photos");
    let mut send = Proc::spawn("send", peer(&[folder.to_str().unwrap()], &base), dir.path());
    let url = invite(&send);
    let mut driver = drive(&b, &[Path::new("recvnofolder"), Path::new(&url)], dir.path());

    let log = driver_log(&mut driver, &send);
    let status = send.wait(WAIT);
    assert!(!status.success(), "dcsend sent a folder to a page that cannot hold one");
    assert_has(&log, "phase failed");
    let error = log.lines().find_map(|l| l.strip_prefix("error ")).unwrap_or_default();
    assert_eq!(
        error,
        "the sender sends a folder (3 files), and this browser cannot save a folder; \
         receive with `dcsend recv -o DIR/`",
        "{log}"
    );
    let err = send.stderr_text();
    // The refusals cross (docs/protocol.md, Trees): dcsend reports its own or the page's.
    let says = ["the browser page cannot save a folder", "this browser cannot save a folder"];
    assert!(
        says.iter().any(|s| err.contains(s)) && err.contains("dcsend recv -o DIR/"),
        "dcsend does not say what to do: {err}"
    );
}

crate::skippable_tests!(
    a_folder_picked_in_the_page_arrives_at_dcsend_recv_with_its_paths,
    a_folder_from_dcsend_is_saved_into_the_folder_picked_in_the_page,
    a_folder_to_a_browser_that_cannot_save_one_is_refused_in_words,
    a_file_picked_in_the_page_arrives_at_dcsend_recv_byte_exact,
    a_file_from_dcsend_downloads_from_the_page_byte_exact,
    a_wrong_secret_in_the_address_fails_the_page_and_dcsend_exits_3,
    the_bare_address_opens_a_room_and_the_controls_wait_for_the_role,
    a_tab_closed_mid_rendezvous_frees_its_seat_and_dcsend_recv_gets_the_file,
);
