//! End-to-end tests of the `crackscope` binary: what a user types, what a user sees.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn every_subcommand_explains_itself() {
    for sub in [
        "demo", "synth", "samples", "train", "eval", "predict", "model", "weights",
    ] {
        let out = run(&[sub, "--help"]);
        let help = ok(&out);
        assert!(help.contains("Usage: crackscope"), "{sub} --help:\n{help}");
    }
}

#[test]
fn synth_then_samples_writes_a_labelled_grid() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    ok(&run(&[
        "synth",
        "--out",
        data_s,
        "--per-class",
        "10",
        "--size",
        "64",
        "--seed",
        "3",
    ]));
    assert_eq!(
        std::fs::read_dir(data.join("Negative")).unwrap().count(),
        10
    );
    assert_eq!(
        std::fs::read_dir(data.join("Positive")).unwrap().count(),
        10
    );

    let png = dir.path().join("grid.png");
    ok(&run(&[
        "samples",
        data_s,
        "--count",
        "16",
        "--out",
        png.to_str().unwrap(),
    ]));
    let grid = image::open(&png).unwrap();
    assert!(
        grid.width() >= 4 * 64 && grid.height() >= 4 * 64,
        "{}x{}",
        grid.width(),
        grid.height()
    );
}

#[test]
fn samples_prints_nothing_graphical_and_returns_when_stdout_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    ok(&run(&[
        "synth",
        "--out",
        data.to_str().unwrap(),
        "--per-class",
        "4",
        "--size",
        "48",
    ]));
    // stdout is a pipe here; TERM claims a graphics terminal that will never answer a query.
    let out = run_with_limit(
        crackscope()
            .args(["samples", data.to_str().unwrap()])
            .env("TERM", "xterm-kitty"),
        Duration::from_secs(60),
    );
    let said = ok(&out);
    assert!(
        !said.contains('\u{1b}'),
        "escape sequences written to a pipe:\n{said}"
    );
    assert!(said.contains("not a terminal"), "{said}");
}

#[test]
fn bad_recipe_is_an_error_naming_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("mine.toml");
    std::fs::write(&recipe, "[train]\nbatch_sise = 10\n").unwrap();
    let out = run(&["train", "--config", recipe.to_str().unwrap()]);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("mine.toml") && said.contains("batch_sise"),
        "{said}"
    );
    assert!(!said.contains("panicked"), "{said}");

    let out = run(&["train", "--lr=-1", "--data", dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out).contains("train.learning_rate"), "{}", text(&out));
}

#[test]
fn missing_or_one_class_dataset_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&[
        "train",
        "--data",
        dir.path().join("nope").to_str().unwrap(),
        "--run",
        dir.path().join("r").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("nope"), "{}", text(&out));
}

#[test]
fn model_summary_counts_the_seed_networks_parameters() {
    let said = ok(&run(&["model"]));
    assert!(
        said.contains("relu_conv10") && said.contains("fc_add"),
        "{said}"
    );
    assert!(said.contains("14x14x1000"), "{said}");
    assert!(
        said.contains("total learnable parameters: 1,237,498"),
        "{said}"
    );
}

#[test]
fn corrupt_model_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("model.safetensors");
    std::fs::write(&bad, b"this is not a checkpoint").unwrap();
    let img = dir.path().join("x.png");
    image::RgbImage::new(8, 8).save(&img).unwrap();
    let out = run(&[
        "predict",
        "--model",
        bad.to_str().unwrap(),
        img.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("model.safetensors") && !said.contains("panicked"),
        "{said}"
    );
}

#[test]
fn predict_names_a_cat_or_fox_for_the_kitten_with_imagenet_weights() {
    let (Some(weights), Some(kitten)) = (
        shared_data("pretrained/squeezenet1_1.pth"),
        shared_data("pretrained/kitten.jpg"),
    ) else {
        return;
    };
    let out = run(&[
        "predict",
        "--model",
        weights.to_str().unwrap(),
        kitten.to_str().unwrap(),
        "--input-size",
        "224",
        "--json",
    ]);
    let said = ok(&out);
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {said}"));
    let first = &json[0];
    let label = first["label"].as_str().unwrap();
    assert!(
        [
            "kit fox",
            "tiger cat",
            "lynx",
            "tabby",
            "Egyptian cat",
            "red fox",
            "tabby cat"
        ]
        .iter()
        .any(|name| label.contains(name)),
        "top-1 was {label}"
    );
    assert_eq!(first["probabilities"].as_array().unwrap().len(), 1000);
    assert!(first["index"].as_u64().is_some() && first["path"].as_str().is_some());

    // Bare weights do not record the size they were trained at: no silent default.
    let no_size = run(&[
        "predict",
        "--model",
        weights.to_str().unwrap(),
        kitten.to_str().unwrap(),
    ]);
    assert!(!no_size.status.success());
    assert!(
        text(&no_size).contains("--input-size"),
        "{}",
        text(&no_size)
    );

    let missing = run(&[
        "predict",
        "--model",
        weights.to_str().unwrap(),
        "--input-size",
        "224",
        "no-such-image.jpg",
    ]);
    assert!(!missing.status.success());
    assert!(text(&missing).contains("no-such-image.jpg"));
}

/// `crackscope weights fetch` takes its address from CRACKSCOPE_WEIGHTS_URL and its cache from
/// XDG_CACHE_HOME; once cached, the file is found again with the server gone.
#[test]
fn weights_fetch_caches_from_the_environment_address_and_works_offline() {
    use std::io::{BufRead, Write};
    let dir = tempfile::tempdir().unwrap();
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let source = dir.path().join("body.bin");
    std::fs::write(&source, &body).unwrap();
    let hash = crackscope::model::fetch::sha256_file(&source).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        // One connection, then the server is gone.
        let (mut stream, _) = listener.accept().unwrap();
        let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
            line.clear();
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&body).unwrap();
    });
    let name = format!("squeezenet1_1-{}.pth", &hash[..8]);
    let url = format!("http://{address}/models/{name}");
    let cache = dir.path().join("cache");
    let fetch = || {
        let mut cmd = crackscope();
        cmd.args(["weights", "fetch"])
            .env("CRACKSCOPE_WEIGHTS_URL", &url)
            .env("XDG_CACHE_HOME", &cache);
        run_with_limit(&mut cmd, Duration::from_secs(60))
    };
    let first = fetch();
    let said = ok(&first);
    let cached = cache.join("crackscope").join(&name);
    assert!(said.contains(&cached.display().to_string()), "{said}");
    assert_eq!(
        std::fs::read(&cached).unwrap(),
        std::fs::read(&source).unwrap()
    );
    server.join().unwrap();
    let again = fetch();
    assert!(ok(&again).contains(&cached.display().to_string()));
    let mut list = crackscope();
    list.args(["weights", "list"]).env("XDG_CACHE_HOME", &cache);
    let listed = ok(&run_with_limit(&mut list, Duration::from_secs(60)));
    assert!(
        listed.contains(&name) && listed.contains("checked"),
        "{listed}"
    );
}

/// `watch` on a run it cannot read says what it cannot read, instead of "no config.toml".
#[test]
fn watch_on_an_unreadable_run_names_what_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    std::fs::create_dir(&run_dir).unwrap();
    std::fs::write(run_dir.join("split.json"), "{}").unwrap();
    // A recipe that cannot be read (a link that loops; permissions do not stop root).
    std::os::unix::fs::symlink("config.toml", run_dir.join("config.toml")).unwrap();
    let out = run(&["watch", run_dir.to_str().unwrap()]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("cannot read")
            && said.contains("config.toml")
            && !said.contains("no config.toml"),
        "{said}"
    );
    // A folder without one is still neither a run nor a scan.
    std::fs::remove_file(run_dir.join("config.toml")).unwrap();
    let said = text(&run(&["watch", run_dir.to_str().unwrap()]));
    assert!(said.contains("neither a run directory"), "{said}");
    // Where permissions apply (not as root), an unreadable directory says so too.
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(run_dir.join("config.toml"), "").unwrap();
    std::fs::set_permissions(&run_dir, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read_dir(&run_dir).is_err() {
        let said = text(&run(&["watch", run_dir.to_str().unwrap()]));
        assert!(
            said.contains("cannot read") && !said.contains("no config.toml"),
            "{said}"
        );
    }
    std::fs::set_permissions(&run_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Exit code 2 is clap's for a command line it cannot parse (README, "Exit codes").
#[test]
fn a_bad_command_line_exits_with_code_2() {
    let out = run(&["train", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = run(&["train", "--allow-missing"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--allow-missing needs --resume: {}",
        text(&out)
    );
}
