//! `crackscope bench --json` on a tiny workload: one object with the five figures the PyTorch script
//! also prints, each a positive finite number, and the context that says what was measured.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn bench_json_has_the_five_figures_and_its_context() {
    let out = run_with_limit(
        crackscope().args([
            "bench",
            "--json",
            "--batch",
            "2",
            "--size",
            "64",
            "--reps",
            "1",
            "--threads",
            "2",
        ]),
        Duration::from_secs(120),
    );
    ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}):\n{stdout}"));
    let object = json.as_object().expect("a JSON object");
    for key in [
        "train_images_per_s",
        "infer_images_per_s",
        "gradcam_ms",
        "pipeline_images_per_s",
        "pipeline_streaming_images_per_s",
        "scan_megapixels_per_s",
        "scan_window_by_window_megapixels_per_s",
        "peak_rss_mb",
        "oneclass_fit_images_per_s",
        "oneclass_score_images_per_s",
        "jpeg_decode_images_per_s",
        "jpeg_decode_images_per_s_image_crate",
        "augment_images_per_s",
        "augment_all_images_per_s",
    ] {
        let value = object
            .get(key)
            .and_then(|v| v.as_f64())
            .unwrap_or_else(|| panic!("{key} is missing or not a number:\n{stdout}"));
        assert!(value.is_finite() && value > 0.0, "{key} = {value}");
    }
    assert_eq!(object["device"], "cpu");
    assert_eq!(object["threads"], 2);
    assert_eq!(object["batch"], 2);
    assert_eq!(object["size"], 64);
    let engine = object["engine"].as_str().expect("engine is a string");
    assert_eq!(engine, format!("crackscope {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn bench_refuses_an_empty_batch() {
    let out = run(&["bench", "--batch", "0", "--size", "64", "--reps", "1"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("--batch must be at least 1"),
        "{}",
        text(&out)
    );
}
