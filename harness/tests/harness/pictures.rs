//! The run pages as a person would look at them: each fixture's SVG timeline rasterised
//! with resvg and checked by pixel colour at the positions the layout puts things — lanes,
//! fault bands, violation markers — plus the SVG text of one small fixture as a reviewed
//! snapshot.

use kube_chaos_harness::picture::svg::{self, lane_top, Scale, FLAG_ROW, TOP};
use kube_chaos_harness::picture::{self, Timeline};
use kube_chaos_harness::run::{run, Report};
use kube_chaos_harness::subject::registry;
use kube_chaos_harness::Scenario;
use resvg::tiny_skia::{Pixmap, PremultipliedColorU8, Transform};

use super::fixtures_dir;

fn rasterise(svg_text: &str) -> Pixmap {
    let tree = resvg::usvg::Tree::from_str(svg_text, &resvg::usvg::Options::default())
        .expect("the timeline is valid SVG");
    let size = tree.size().to_int_size();
    let mut pixmap = Pixmap::new(size.width(), size.height()).expect("a non-empty picture");
    resvg::render(&tree, Transform::default(), &mut pixmap.as_mut());
    pixmap
}

fn at(p: &Pixmap, x: f64, y: f64) -> PremultipliedColorU8 {
    p.pixel(x as u32, y as u32).expect("inside the picture")
}

/// Checks `report`'s picture: drawn at all, every lane's background where the layout puts
/// it, every fault window shaded orange, every violation a red marker.
pub fn check_page(name: &str, scenario: &Scenario, report: &Report) {
    let timeline = Timeline::new(scenario, report);
    let p = rasterise(&svg::svg(&timeline));
    let inked = p
        .pixels()
        .iter()
        .filter(|c| c.red() < 200 || c.blue() < 200)
        .count();
    assert!(
        inked > 500,
        "{name}: the picture is nearly empty ({inked} inked pixels)"
    );
    for (i, lane) in timeline.lanes.iter().enumerate() {
        let c = at(&p, 2.0, lane_top(i) + 2.0);
        let want = if i % 2 == 0 {
            (0xf3, 0xf5, 0xf8)
        } else {
            (0xff, 0xff, 0xff)
        };
        assert_eq!(
            (c.red(), c.green(), c.blue()),
            want,
            "{name}: lane {}",
            lane.label
        );
    }
    let scale = Scale::new(timeline.end);
    for b in &timeline.bands {
        let x = (scale.x(b.from) + scale.x(b.to).max(scale.x(b.from) + 2.0)) / 2.0;
        let c = at(&p, x, TOP + 2.0);
        assert!(
            i32::from(c.red()) - i32::from(c.blue()) > 40,
            "{name}: fault {} not shaded at x={x:.0}: {c:?}",
            b.label
        );
    }
    for f in &timeline.flags {
        let c = at(&p, scale.x(f.at), TOP + FLAG_ROW / 2.0);
        assert!(
            c.red() > 180 && c.green() < 90 && c.blue() < 90,
            "{name}: violation at {:?} has no red marker: {c:?}",
            f.at
        );
    }
    let expected = !report.expected.is_empty();
    assert_eq!(
        !timeline.flags.is_empty(),
        expected,
        "{name}: violations drawn iff expected"
    );
}

#[test]
fn the_timeline_of_stream_drop_is_its_reviewed_snapshot_and_the_same_bytes_twice() {
    let path = fixtures_dir().join("stream-drop.json");
    let s = Scenario::load(&path, registry()).unwrap();
    let (a, b) = (run(&s, None).unwrap(), run(&s, None).unwrap());
    assert_eq!(
        picture::page(&s, &a),
        picture::page(&s, &b),
        "same seed, same page"
    );
    let svg_text = svg::svg(&Timeline::new(&s, &a));
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_description("the SVG timeline of fixtures/stream-drop.json");
    settings.bind(|| insta::assert_snapshot!("picture-stream-drop", svg_text));
}

/// Headless Chromium, if installed (`.ci/run` installs Debian's `chromium`).
fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            std::process::Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

#[test]
fn a_page_in_headless_chromium_shows_the_fault_band_and_the_violation_markers() {
    // The page as a browser draws it: a screenshot of lagging-replica-time-travel must show
    // the orange band of its cache pause and crash and the red markers of its three
    // violations (counted by colour; the page's layout decides where they are).
    let Some(browser) = chromium() else {
        eprintln!("SKIPPED: no chromium on PATH (.ci/run installs Debian's chromium where it can)");
        return;
    };
    let s = Scenario::load(
        &fixtures_dir().join("lagging-replica-time-travel.json"),
        registry(),
    )
    .unwrap();
    let report = run(&s, None).unwrap();
    let dir = std::env::temp_dir().join(format!("kube-chaos-page-{}", std::process::id()));
    let page = picture::write_page(&dir, &s.name, &s, &report).unwrap();
    let shot = dir.join("shot.png");
    let out = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1240,700",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = Pixmap::decode_png(&std::fs::read(&shot).unwrap()).expect("a PNG");
    let count =
        |f: &dyn Fn(PremultipliedColorU8) -> bool| png.pixels().iter().filter(|c| f(**c)).count();
    let band = count(&|c| c.red() > 235 && (150..=225).contains(&c.green()) && c.blue() < 190);
    let red = count(&|c| c.red() > 190 && c.green() < 80 && c.blue() < 80);
    assert!(band > 5_000, "{band} band pixels");
    assert!(red > 100, "{red} violation-marker pixels");
    std::fs::remove_dir_all(&dir).ok();
}
