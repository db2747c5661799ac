//! `canister-vm bench`: canbench's workflow on the `bench` test canister (canbench-rs 0.7).
//!
//! No instruction count is written down here: the report is checked against the results file
//! and the CSV the same run writes, and changes against values derived from them. Heap and
//! stable growth are the pages the canister's benchmarks grow (`test-canisters/bench`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::canisters::test_canister;
use crate::support::Run;

/// The benchmarks of the `bench` canister (by name; the report lists them in export order).
const BENCHMARKS: [&str; 8] = [
    "compute",
    "from_init",
    "heap_grow",
    "may_trap",
    "odd",
    "scopes",
    "stable_file",
    "stable_grow",
];
/// Pages `heap_grow` and `stable_grow` add (`test-canisters/bench/src/lib.rs`).
const HEAP_PAGES: u64 = 4;
const STABLE_PAGES: u64 = 3;

/// The `bench` canister's init argument.
#[derive(candid::CandidType, Clone, Copy)]
struct Init {
    pages: u32,
    trap: bool,
    bad_reply: bool,
}

fn init(pages: u32) -> Init {
    Init {
        pages,
        trap: false,
        bad_reply: false,
    }
}

/// `init_args` of canbench.yml for `init` (`opt record { ... }`, as hex).
fn init_hex(init: Init) -> String {
    hex::encode(candid::encode_one(Some(init)).unwrap())
}

/// A canbench.yml for the `bench` canister with a no-op build command.
fn config(wasm: &Path, init: Option<Init>, extra: &str) -> String {
    let mut yml = format!("build_cmd: \"true\"\nwasm_path: {}\n", wasm.display());
    if let Some(init) = init {
        yml.push_str(&format!("init_args:\n  hex: {}\n", init_hex(init)));
    }
    yml.push_str(extra);
    yml
}

/// Runs `canister-vm bench args...` in `dir`.
fn bench(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_canister-vm"))
        .current_dir(dir)
        .env_remove("CANBENCH_CFG_FILE")
        .env_remove("NO_COLOR")
        .arg("bench")
        .args(args)
        .output()
        .expect("the canister-vm binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A temporary directory with a canbench.yml.
fn project(yml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("canbench.yml"), yml).unwrap();
    dir
}

fn wasm() -> PathBuf {
    test_canister("bench")
}

/// The benchmark names in the order the module exports them (the order canbench runs them in).
fn export_order(wasm: &Path) -> Vec<String> {
    let bytes = std::fs::read(wasm).unwrap();
    let mut names = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
        if let wasmparser::Payload::ExportSection(reader) = payload.unwrap() {
            for export in reader {
                let export = export.unwrap();
                if let Some(name) = export.name.strip_prefix("canister_query __canbench__") {
                    names.push(name.to_string());
                }
            }
        }
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, BENCHMARKS);
    names
}

// The results file, with serde structs of its own (canbench's format, read independently).
#[derive(serde::Deserialize, Debug, Clone, Copy, PartialEq)]
#[serde(deny_unknown_fields)]
struct Measurement {
    calls: u64,
    instructions: u64,
    heap_increase: u64,
    stable_memory_increase: u64,
}

#[derive(serde::Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
struct BenchResult {
    total: Measurement,
    scopes: BTreeMap<String, Measurement>,
}

#[derive(serde::Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Results {
    benches: BTreeMap<String, BenchResult>,
    version: String,
}

fn read_results(dir: &Path) -> (String, Results) {
    let text = std::fs::read_to_string(dir.join("canbench_results.yml")).unwrap();
    let parsed = serde_norway::from_str(&text).unwrap();
    (text, parsed)
}

/// One benchmark of the report: `section -> metric -> "value (annotation)"`, the section being
/// `total` or a scope's name.
#[derive(Debug, Default)]
struct Reported {
    new: bool,
    sections: BTreeMap<String, BTreeMap<String, String>>,
}

/// The per-benchmark part of a report, in order.
fn parse_report(stdout: &str) -> Vec<(String, Reported)> {
    let mut out: Vec<(String, Reported)> = Vec::new();
    let mut section = String::new();
    for line in stdout.lines() {
        if line == "Summary:" {
            break;
        }
        if let Some(rest) = line.strip_prefix("Benchmark: ") {
            let (name, new) = match rest.strip_suffix(" (new)") {
                Some(name) => (name, true),
                None => (rest, false),
            };
            out.push((
                name.to_string(),
                Reported {
                    new,
                    ..Default::default()
                },
            ));
        } else if line == "  total:" {
            section = "total".into();
        } else if let Some(scope) = line
            .strip_prefix("  ")
            .and_then(|l| l.strip_suffix(" (scope):"))
        {
            section = scope.to_string();
        } else if let Some(metric) = line.strip_prefix("    ") {
            let (name, value) = metric.split_once(": ").expect("a metric line");
            let (_, bench) = out.last_mut().expect("a metric after a benchmark line");
            bench
                .sections
                .entry(section.clone())
                .or_default()
                .insert(name.to_string(), value.to_string());
        }
    }
    out
}

/// A value as canbench prints it in a benchmark's lines.
fn readable(value: u64) -> String {
    let v = value as f64;
    if value < 10_000 {
        value.to_string()
    } else if value < 1_000_000 {
        format!("{:.2} K", v / 1e3)
    } else if value < 1_000_000_000 {
        format!("{:.2} M", v / 1e6)
    } else {
        format!("{:.2} B", v / 1e9)
    }
}

/// The value a metric line shows, as it would print `m`'s metric.
fn shown(metric: &str, m: &Measurement) -> String {
    let v = match metric {
        "calls" => return readable(m.calls),
        "instructions" => return readable(m.instructions),
        "heap_increase" => m.heap_increase,
        "stable_memory_increase" => m.stable_memory_increase,
        other => panic!("unknown metric {other}"),
    };
    format!("{} pages", readable(v))
}

/// The CSV rows by name (`bench` or `bench::scope`): the columns by header.
fn read_csv(dir: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let text = std::fs::read_to_string(dir.join("canbench_results.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            assert_eq!(cells.len(), header.len(), "{l}");
            let row: BTreeMap<String, String> = header
                .iter()
                .zip(&cells)
                .map(|(h, c)| (h.to_string(), c.to_string()))
                .collect();
            (row["name"].clone(), row)
        })
        .collect()
}

/// Checks that every value of the report equals the results file's.
fn assert_report_matches(report: &[(String, Reported)], results: &Results) {
    let names: Vec<&str> = report.iter().map(|(n, _)| n.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        results
            .benches
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    for (name, reported) in report {
        let result = &results.benches[name];
        let mut expected: Vec<(&str, &Measurement)> = vec![("total", &result.total)];
        expected.extend(result.scopes.iter().map(|(s, m)| (s.as_str(), m)));
        assert_eq!(
            reported.sections.keys().collect::<Vec<_>>().len(),
            expected.len(),
            "{name}: {reported:?}"
        );
        for (section, m) in expected {
            let metrics = &reported.sections[section];
            for (metric, value) in metrics {
                let value = value.split(" (").next().unwrap();
                assert_eq!(value, shown(metric, m), "{name} {section} {metric}");
            }
            let wanted = if section == "total" { 3 } else { 4 };
            assert_eq!(metrics.len(), wanted, "{name} {section}: {metrics:?}");
        }
    }
}

/// The percentage canbench prints for a change from `old` to `new`.
fn pct(new: u64, old: u64) -> f64 {
    (new as f64 - old as f64) / old as f64 * 100.0
}

#[test]
fn bench_reports_persists_and_compares_like_canbench() {
    let wasm = wasm();
    let dir = project(&config(&wasm, Some(init(2)), ""));
    let d = dir.path();

    // First run: everything is new.
    let first = bench(d, &["--persist", "--csv"]);
    let stdout = first.ok();
    let report = parse_report(&stdout);
    assert_eq!(
        report
            .iter()
            .map(|(n, _)| n.to_string())
            .collect::<Vec<_>>(),
        export_order(&wasm),
        "{stdout}"
    );
    for (name, r) in &report {
        assert!(r.new, "{name} is not new: {stdout}");
        let total = &r.sections["total"];
        assert!(
            total.values().all(|v| v.ends_with(" (new)")),
            "{name}: {total:?}"
        );
        let instructions = total["instructions"].split(' ').next().unwrap();
        assert_ne!(instructions, "0", "{name} executed no instructions");
    }
    let by_name: BTreeMap<&str, &Reported> = report.iter().map(|(n, r)| (n.as_str(), r)).collect();
    let metric = |bench: &str, section: &str, metric: &str| {
        by_name[bench].sections[section][metric]
            .split(" (")
            .next()
            .unwrap()
            .to_string()
    };
    // Growth follows from the canister's code.
    assert_eq!(metric("compute", "total", "heap_increase"), "0 pages");
    assert_eq!(
        metric("compute", "total", "stable_memory_increase"),
        "0 pages"
    );
    assert_eq!(
        metric("heap_grow", "total", "heap_increase"),
        format!("{HEAP_PAGES} pages")
    );
    assert_eq!(
        metric("heap_grow", "total", "stable_memory_increase"),
        "0 pages"
    );
    assert_eq!(
        metric("stable_grow", "total", "stable_memory_increase"),
        format!("{STABLE_PAGES} pages")
    );
    assert_eq!(metric("stable_grow", "total", "heap_increase"), "0 pages");
    // Beyond canbench: the 4 KiB pages each benchmark wrote. `stable_grow` writes one byte in
    // each new 64 KiB stable page, `heap_grow` one in each new heap page (besides what the
    // framework writes on the heap), `compute` no stable memory.
    let dirty = |bench: &str| -> (u64, u64) {
        let section = stdout
            .split("Benchmark: ")
            .find(|s| s.starts_with(bench) && s[bench.len()..].starts_with([' ', '\n']))
            .unwrap_or_else(|| panic!("no report of {bench}: {stdout}"));
        let line = section
            .lines()
            .find_map(|l| l.strip_prefix("  dirty 4 KiB pages: heap "))
            .unwrap_or_else(|| panic!("no dirty pages line for {bench}: {section}"));
        let (heap, stable) = line.split_once(", stable ").unwrap();
        (heap.parse().unwrap(), stable.parse().unwrap())
    };
    assert_eq!(dirty("stable_grow").1, STABLE_PAGES);
    assert_eq!(dirty("compute").1, 0);
    assert!(
        dirty("heap_grow").0 >= HEAP_PAGES,
        "{:?}",
        dirty("heap_grow")
    );
    assert_eq!(dirty("heap_grow").1, 0);
    // The init argument (pages: 2) took effect.
    assert_eq!(
        metric("from_init", "total", "stable_memory_increase"),
        "2 pages"
    );
    assert_eq!(metric("stable_file", "total", "heap_increase"), "0 pages");
    // Scopes, with their call counts.
    let scopes = &by_name["scopes"].sections;
    assert_eq!(
        scopes.keys().map(String::as_str).collect::<Vec<_>>(),
        ["setup", "step", "total"]
    );
    assert_eq!(metric("scopes", "setup", "calls"), "1");
    assert_eq!(metric("scopes", "step", "calls"), "3");
    assert!(by_name["from_init"].sections.contains_key("work"));
    assert!(
        stdout.contains("status:   New benchmarks added ➕"),
        "{stdout}"
    );
    assert!(
        stdout.contains("counts:   [total 8 | regressed 0 | improved 0 | new 8 | unchanged 0]"),
        "{stdout}"
    );
    assert!(stdout.contains("Only significant changes:"), "{stdout}");
    assert!(stdout.contains("Successfully persisted results to canbench_results.yml"));
    assert!(stdout.contains("CSV results saved to canbench_results.csv"));

    // The results file: canbench's layout and the report's values.
    let (text, results) = read_results(d);
    assert_eq!(results.version, "0.7.0");
    assert!(text.starts_with("benches:\n"), "{text}");
    assert!(text.ends_with("version: 0.7.0\n"), "{text}");
    assert!(
        text.contains("  compute:\n    total:\n      calls: 1\n      instructions: "),
        "{text}"
    );
    assert!(text.contains("    scopes: {}\n"), "{text}");
    assert_report_matches(&report, &results);
    assert_eq!(results.benches["scopes"].scopes["step"].calls, 3);
    // The CSV has the same values in full.
    let csv = read_csv(d);
    for (name, r) in &results.benches {
        let row = &csv[name];
        assert_eq!(row["status"], "new");
        assert_eq!(row["instructions"], r.total.instructions.to_string());
        assert_eq!(row["heap_increase"], r.total.heap_increase.to_string());
        assert_eq!(
            row["stable_memory_increase"],
            r.total.stable_memory_increase.to_string()
        );
        for (scope, m) in &r.scopes {
            let row = &csv[&format!("{name}::{scope}")];
            assert_eq!(row["scope_calls"], m.calls.to_string());
            assert_eq!(row["instructions"], m.instructions.to_string());
        }
    }
    // The scopes' instructions lie within the benchmark's.
    let scoped = &results.benches["scopes"];
    assert!(
        scoped.scopes.values().map(|m| m.instructions).sum::<u64>() <= scoped.total.instructions
    );

    // Second run, same canister and argument: no change anywhere (instruction counts are
    // deterministic).
    let second = bench(d, &[]).ok();
    let report = parse_report(&second);
    assert_report_matches(&report, &results);
    for (name, r) in &report {
        assert!(!r.new, "{name}");
        for (section, metrics) in &r.sections {
            for (metric, value) in metrics {
                assert!(
                    value.ends_with(" (no change)"),
                    "{name} {section} {metric}: {value}"
                );
            }
        }
    }
    for metric in ["instructions", "heap_increase", "stable_memory_increase"] {
        assert!(
            second.contains(&format!(
                "  {metric}:\n    status:   No significant changes 👍\n    counts:   [total 8 | \
                 regressed 0 | improved 0 | new 0 | unchanged 8]\n    change:   [max 0 | p75 0 \
                 | median 0 | p25 0 | min 0]\n    change %: [max 0.00% | p75 0.00% | median \
                 0.00% | p25 0.00% | min 0.00%]"
            )),
            "{second}"
        );
    }
    assert!(!second.contains("Only significant changes"), "{second}");
    assert!(!second.contains("persisted"), "{second}");

    // A larger init argument: from_init grows 3 pages instead of 2 and loops 1.5x as long.
    std::fs::write(d.join("canbench.yml"), config(&wasm, Some(init(3)), "")).unwrap();
    let third = bench(d, &["--csv"]).ok();
    let csv = read_csv(d);
    let old = &results.benches["from_init"];
    let new_instructions: u64 = csv["from_init"]["instructions"].parse().unwrap();
    assert!(new_instructions > old.total.instructions);
    let up = pct(new_instructions, old.total.instructions);
    assert!(up >= 2.0, "{up}");
    assert!(
        third.contains(&format!(
            "Benchmark: from_init\n  total:\n    instructions: {} (regressed by {up:.2}%)\n    \
             heap_increase: 0 pages (no change)\n    stable_memory_increase: 3 pages (regressed \
             by 50.00%)\n",
            readable(new_instructions)
        )),
        "{third}"
    );
    let work_now: u64 = csv["from_init::work"]["instructions"].parse().unwrap();
    let work_pct = pct(work_now, old.scopes["work"].instructions);
    assert!(
        third.contains(&format!(
            "  work (scope):\n    calls: 1 (no change)\n    instructions: {} (regressed by \
             {work_pct:.2}%)",
            readable(work_now)
        )),
        "{third}"
    );
    assert_eq!(
        csv["from_init"]["instructions Δ%"],
        format!("{up:.2}%"),
        "{csv:?}"
    );
    assert_eq!(csv["from_init"]["stable_memory_increase Δ%"], "50.00%");
    for name in BENCHMARKS.iter().filter(|n| **n != "from_init") {
        assert_eq!(csv[*name]["instructions Δ"], "0", "{name}");
    }
    assert!(third.contains("  stable_memory_increase:\n    status:   Regressions detected 🔴"));
    assert!(
        third.contains("[total 8 | regressed 1 | improved 0 | new 0 | unchanged 7]"),
        "{third}"
    );
    assert!(third.contains("|   +    | from_init "), "{third}");

    // Back to the persisted argument, with the results file edited: compute "used to" take
    // twice its instructions (an improvement), scopes 1% more (noise at the 2% threshold).
    std::fs::write(d.join("canbench.yml"), config(&wasm, Some(init(2)), "")).unwrap();
    let total_line = |name: &str, instructions: u64| {
        format!("  {name}:\n    total:\n      calls: 1\n      instructions: {instructions}\n")
    };
    let compute = results.benches["compute"].total.instructions;
    let scopes = results.benches["scopes"].total.instructions;
    let noisy = scopes + scopes / 100;
    assert!(text.contains(&total_line("compute", compute)), "{text}");
    assert!(text.contains(&total_line("scopes", scopes)), "{text}");
    let edited = text
        .replace(
            &total_line("compute", compute),
            &total_line("compute", compute * 2),
        )
        .replace(&total_line("scopes", scopes), &total_line("scopes", noisy));
    std::fs::write(d.join("canbench_results.yml"), &edited).unwrap();
    let fourth = bench(d, &[]).ok();
    let down = pct(compute, compute * 2);
    assert!(
        fourth.contains(&format!(
            "    instructions: {} (improved by {:.2}%)",
            readable(compute),
            down.abs()
        )),
        "{fourth}"
    );
    let noise = pct(scopes, noisy);
    assert!(noise < -0.5 && noise > -2.0, "{noise}");
    assert!(
        fourth.contains(&format!(
            "    instructions: {} ({noise:.2}%) (change within noise threshold)",
            readable(scopes)
        )),
        "{fourth}"
    );
    assert!(fourth.contains("  instructions:\n    status:   Improvements detected 🟢"));
    // Under a lower threshold the same change counts.
    let strict = bench(d, &["--noise-threshold", "0.5"]).ok();
    assert!(
        strict.contains(&format!(
            "    instructions: {} (improved by {:.2}%)",
            readable(scopes),
            noise.abs()
        )),
        "{strict}"
    );
    // --less-verbose leaves out the summary; --hide-results the benchmarks.
    let quiet = bench(d, &["--less-verbose"]).ok();
    assert!(quiet.contains("Benchmark: compute") && !quiet.contains("Summary:"));
    let hidden = bench(d, &["--hide-results"]).ok();
    assert!(!hidden.contains("Benchmark: compute") && hidden.contains("Summary:"));
    // The canister's debug output, on request only.
    let shown = bench(d, &["may_trap", "--show-canister-output"]);
    assert!(
        shown.stderr.contains("[canister] may_trap ran"),
        "{shown:?}"
    );
    shown.ok();
    let silent = bench(d, &["may_trap"]);
    assert!(!silent.stderr.contains("may_trap ran"), "{silent:?}");
}

#[test]
fn bench_pattern_selects_benchmarks() {
    let dir = project(&config(&wasm(), None, ""));
    let d = dir.path();
    let names = |out: &str| {
        parse_report(out)
            .into_iter()
            .map(|(n, _)| n)
            .collect::<Vec<_>>()
    };
    // canbench's rule: the name contains the pattern.
    let out = bench(d, &["stable"]).ok();
    let order = export_order(&wasm());
    let matching = |p: &str| {
        order
            .iter()
            .filter(|n| n.contains(p))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&out), matching("stable"));
    assert_eq!(names(&out).len(), 2);
    let out = bench(d, &["--pattern", "grow", "--persist"]).ok();
    assert_eq!(names(&out), matching("grow"));
    assert_eq!(names(&out).len(), 2);
    assert!(out.contains("[total 2 | regressed 0 | improved 0 | new 2 | unchanged 0]"));
    // As canbench does, --persist with a pattern writes the benchmarks that ran.
    let (_, results) = read_results(d);
    assert_eq!(
        results.benches.keys().collect::<Vec<_>>(),
        ["heap_grow", "stable_grow"]
    );
    // Without an init argument from_init grows the canister's default (1 page).
    let out = bench(d, &["from_init"]).ok();
    assert!(
        out.contains("stable_memory_increase: 1 pages (new)"),
        "{out}"
    );
    assert!(bench(d, &["no_such_benchmark"]).ok().contains("[total 0 |"));
}

#[test]
fn bench_loads_stable_memory_file_and_gzipped_wasm() {
    let tmp = tempfile::tempdir().unwrap();
    // A gzipped module, as dfx writes them.
    let gz = tmp.path().join("bench.wasm.gz");
    {
        use std::io::Write;
        let mut enc =
            flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), Default::default());
        enc.write_all(&std::fs::read(wasm()).unwrap()).unwrap();
        enc.finish().unwrap();
    }
    // The first byte of stable memory tells stable_file how many heap pages to grow.
    let mut contents = vec![0u8; 70_000];
    contents[0] = 5;
    contents[69_999] = 9;
    std::fs::write(tmp.path().join("stable.bin"), &contents).unwrap();
    let yml = format!(
        "build_cmd: \"true\"\nwasm_path: {}\nstable_memory:\n  file: stable.bin\n",
        gz.display()
    );
    std::fs::write(tmp.path().join("canbench.yml"), yml).unwrap();
    let out = bench(tmp.path(), &["stable"]).ok();
    assert!(
        out.contains("Benchmark: stable_file (new)\n  total:\n    instructions: "),
        "{out}"
    );
    assert!(out.contains("    heap_increase: 5 pages (new)"), "{out}");
    // stable_grow still adds its pages on top of the loaded two (70 000 bytes: 2 pages).
    assert!(
        out.contains(&format!(
            "    stable_memory_increase: {STABLE_PAGES} pages (new)"
        )),
        "{out}"
    );
}

#[test]
fn bench_trapping_benchmark_exits_1_after_the_others() {
    let trap = Init {
        trap: true,
        ..init(1)
    };
    let dir = project(&config(&wasm(), Some(trap), ""));
    let d = dir.path();
    let run = bench(d, &["--persist"]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr
            .contains("error: benchmark may_trap failed: reject code 5"),
        "{run:#?}"
    );
    assert!(
        run.stderr.contains("may_trap was asked to trap"),
        "{run:#?}"
    );
    let names: Vec<String> = parse_report(&run.stdout)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let mut others = export_order(&wasm());
    others.retain(|n| n != "may_trap");
    assert_eq!(names, others);
    assert!(
        run.stderr
            .contains("canbench_results.yml not written: 1 benchmark failed")
    );
    assert!(!d.join("canbench_results.yml").exists());
}

#[test]
fn bench_reply_that_is_not_a_bench_result_is_exit_2() {
    let odd = Init {
        bad_reply: true,
        ..init(1)
    };
    let dir = project(&config(&wasm(), Some(odd), ""));
    let run = bench(dir.path(), &["odd"]);
    let err = run.fails(2);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(
            "error: benchmark odd: the reply of __canbench__odd is not a canbench-rs BenchResult"
        ),
        "{err}"
    );
}

#[test]
fn bench_bad_input_is_one_line_and_exit_2() {
    let wasm = wasm();
    let w = wasm.display();
    let cases: Vec<(String, &str)> = vec![
        (
            "wasm_path: [unclosed\n".into(),
            "canbench.yml: not valid YAML",
        ),
        (
            "build_cmd: \"true\"\n".into(),
            "canbench.yml: not a canbench configuration: missing field `wasm_path`",
        ),
        (
            format!("build_cmd: \"exit 3\"\nwasm_path: {w}\n"),
            "canbench.yml: build_cmd `exit 3` failed (exit status: 3)",
        ),
        (
            "wasm_path: missing.wasm\n".into(),
            "canbench.yml: wasm_path missing.wasm",
        ),
        (
            format!("wasm_path: {w}\ninit_args:\n  hex: xyz\n"),
            "canbench.yml: init_args.hex is not valid hex",
        ),
        (
            format!("wasm_path: {w}\nstable_memory:\n  file: nowhere.bin\n"),
            "canbench.yml: stable_memory.file nowhere.bin",
        ),
        (
            format!("wasm_path: {w}\nenv_vars:\n  file: env.csv\n"),
            "canbench.yml: env_vars is not supported",
        ),
        (
            format!("wasm_path: {w}\nresults_path: bad.yml\n"),
            "bad.yml: not a canbench results file",
        ),
        (
            format!("wasm_path: {w}\nresults_path: future.yml\n"),
            "future.yml: written by canbench 9.0.0",
        ),
    ];
    for (yml, expected) in cases {
        let dir = project(&yml);
        std::fs::write(dir.path().join("bad.yml"), "benches: 7\nversion: 0.7.0\n").unwrap();
        std::fs::write(
            dir.path().join("future.yml"),
            "benches: {}\nversion: 9.0.0\n",
        )
        .unwrap();
        let run = bench(dir.path(), &[]);
        let err = run.fails(2);
        assert_eq!(err.lines().count(), 1, "{yml}: {err}");
        assert!(
            err.starts_with(&format!("error: {expected}")),
            "{yml}: expected {expected:?}, got {err}"
        );
    }
    // No canbench.yml at all; and --config names another file.
    let empty = tempfile::tempdir().unwrap();
    let err = bench(empty.path(), &[]).fails(2);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: canbench.yml: no such file"),
        "{err}"
    );
    std::fs::write(
        empty.path().join("other.yml"),
        format!("wasm_path: {w}\nunknown_key: 1\n"),
    )
    .unwrap();
    let run = bench(empty.path(), &["--config", "other.yml", "compute"]);
    assert!(
        run.stderr
            .contains("warning: other.yml: unknown key unknown_key ignored")
    );
    assert!(run.ok().contains("Benchmark: compute (new)"));
}

#[cfg(not(feature = "wasmtime"))]
#[test]
fn bench_engine_wasmtime_needs_the_feature() {
    let dir = project(&config(&wasm(), None, ""));
    let err = bench(dir.path(), &["--engine", "wasmtime"]).fails(2);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("wasmtime"), "{err}");
}

#[cfg(feature = "wasmtime")]
#[test]
fn bench_engine_wasmtime_measures_what_wasmi_does() {
    let dir = project(&config(&wasm(), Some(init(2)), ""));
    let d = dir.path();
    bench(d, &["--persist"]).ok();
    let out = bench(d, &["--engine", "wasmtime"]).ok();
    assert!(out.contains("[total 8 | regressed 0 | improved 0 | new 0 | unchanged 8]"));
    assert!(!out.contains("Only significant changes"), "{out}");
}
