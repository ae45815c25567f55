//! Compiles `programs/*.bpf.c` into the committed objects in `programs/obj/`.
//!
//! ```text
//! cargo run -p programs-build              # rebuild programs/obj/
//! cargo run -p programs-build -- --check   # rebuild into a temp dir, fail on any difference
//! cargo run -p programs-build -- --out DIR # build somewhere else
//! ```
//!
//! Needs clang-19 and llvm-strip-19 (`apt-get install clang-19 llvm-19`), or
//! the tools named by `$CLANG` / `$LLVM_STRIP`. `cargo build` of the loader
//! never runs this: the objects are committed.
//!
//! Objects are byte-identical from any checkout path: clang runs inside
//! `programs/` on relative file names, and `-ffile-prefix-map` maps the
//! absolute directory to `.`, so the file names BTF line info records are
//! the same everywhere. DWARF is stripped (`llvm-strip -g`); BTF stays.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Flags every object is built with; `-mcpu` comes from the variant.
const BASE_FLAGS: &[&str] = &[
    "-target",
    "bpfel",
    "-O2",
    "-nostdinc",
    "-I",
    "include",
    "-Wall",
    "-Werror",
    "-fdebug-compilation-dir=.",
];

/// The compiler the committed objects were built with: another clang version
/// emits other bytes, so `--check` names both when it fails.
const COMMITTED_WITH: &str = "Debian clang version 19.1.7";

/// Extra builds of a source with other toolchain settings: (source stem,
/// variant name, whether to emit BTF, -mcpu). Every source is also built as
/// `NAME.bpf.o` with BTF and `-mcpu=v3`.
const VARIANTS: &[(&str, &str, bool, &str)] = &[
    ("pipeline", "v1", true, "v1"),
    ("pipeline", "v2", true, "v2"),
    ("legacy_maps", "nobtf", false, "v3"),
];

struct Build {
    source: String,
    object: String,
    btf: bool,
    mcpu: &'static str,
}

const USAGE: &str = "usage: programs-build [--check | --out DIR]";

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("programs-build: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Bad usage: exit status 2, as the rawbpf CLI does.
fn usage(msg: &str) -> Result<ExitCode, String> {
    eprintln!("programs-build: {msg}\n{USAGE}");
    Ok(ExitCode::from(2))
}

fn run() -> Result<ExitCode, String> {
    let mut args = std::env::args_os().skip(1);
    let mut check = false;
    let mut out: Option<PathBuf> = None;
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--check") => check = true,
            Some("--out") => match args.next() {
                Some(dir) => out = Some(dir.into()),
                None => return usage("--out needs a directory"),
            },
            Some("-h" | "--help") => {
                println!("{USAGE}");
                return Ok(ExitCode::SUCCESS);
            }
            _ => return usage(&format!("unknown argument {arg:?}")),
        }
    }
    if check && out.is_some() {
        return usage("--check builds into a temporary directory; it takes no --out");
    }
    let programs = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../programs")
        .canonicalize()
        .map_err(|e| format!("programs/: {e}"))?;
    let committed = programs.join("obj");
    let builds = builds(&programs)?;
    let tools = Tools::find()?;

    if !check {
        let dir = out.unwrap_or(committed);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for b in &builds {
            tools.build(&programs, b, &dir)?;
            println!("built {}", dir.join(&b.object).display());
        }
        return Ok(ExitCode::SUCCESS);
    }

    let tmp = TempDir::new()?;
    let mut problems = Vec::new();
    for b in &builds {
        tools.build(&programs, b, &tmp.0)?;
        let fresh = std::fs::read(tmp.0.join(&b.object)).map_err(|e| e.to_string())?;
        match std::fs::read(committed.join(&b.object)) {
            Ok(old) if old == fresh => println!("match   {}", b.object),
            Ok(_) => {
                println!("DIFFERS {}", b.object);
                problems.push(format!(
                    "{}: differs from what {} compiles to",
                    b.object, b.source
                ))
            }
            Err(_) => {
                println!("MISSING {}", b.object);
                problems.push(format!("{}: missing (built from {})", b.object, b.source))
            }
        }
    }
    let expected: Vec<&str> = builds.iter().map(|b| b.object.as_str()).collect();
    for entry in
        std::fs::read_dir(&committed).map_err(|e| format!("{}: {e}", committed.display()))?
    {
        let name = entry.map_err(|e| e.to_string())?.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".o") && !expected.contains(&name.as_ref()) {
            problems.push(format!("{name}: no source in programs/ produces it"));
        }
    }
    if problems.is_empty() {
        println!(
            "programs-build --check: all {} objects match their sources",
            builds.len()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &problems {
            eprintln!("programs/obj/{p}");
        }
        eprintln!(
            "programs-build --check: {} problem(s) with {}; run `cargo run -p programs-build` \
             and commit programs/obj/ (the committed objects come from {COMMITTED_WITH})",
            problems.len(),
            tools.clang_version()
        );
        Ok(ExitCode::FAILURE)
    }
}

/// Every source's default build plus the variants, sorted by object name.
fn builds(programs: &Path) -> Result<Vec<Build>, String> {
    let mut sources: Vec<String> = std::fs::read_dir(programs)
        .map_err(|e| format!("{}: {e}", programs.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".bpf.c"))
        .collect();
    sources.sort();
    let mut builds = Vec::new();
    for source in sources {
        let stem = source.trim_end_matches(".bpf.c").to_owned();
        builds.push(Build {
            object: format!("{stem}.bpf.o"),
            source: source.clone(),
            btf: true,
            mcpu: "v3",
        });
        for &(base, variant, btf, mcpu) in VARIANTS.iter().filter(|v| v.0 == stem) {
            builds.push(Build {
                object: format!("{base}.{variant}.bpf.o"),
                source: source.clone(),
                btf,
                mcpu,
            });
        }
    }
    for (base, variant, ..) in VARIANTS {
        if !builds.iter().any(|b| b.source == format!("{base}.bpf.c")) {
            return Err(format!(
                "variant {base}.{variant}: no programs/{base}.bpf.c"
            ));
        }
    }
    builds.sort_by(|a, b| a.object.cmp(&b.object));
    Ok(builds)
}

struct Tools {
    clang: OsString,
    strip: OsString,
}

impl Tools {
    /// `$CLANG`/`$LLVM_STRIP`, else the versioned tools, else the plain ones.
    fn find() -> Result<Tools, String> {
        let pick = |var: &str, names: &[&str]| -> Result<OsString, String> {
            if let Some(v) = std::env::var_os(var) {
                return Ok(v);
            }
            names
                .iter()
                .find(|n| {
                    Command::new(n)
                        .arg("--version")
                        .output()
                        .is_ok_and(|o| o.status.success())
                })
                .map(OsString::from)
                .ok_or_else(|| {
                    format!(
                        "{} not found (set ${var}): apt-get install clang-19 llvm-19",
                        names[0]
                    )
                })
        };
        Ok(Tools {
            clang: pick("CLANG", &["clang-19", "clang"])?,
            strip: pick("LLVM_STRIP", &["llvm-strip-19", "llvm-strip"])?,
        })
    }

    /// The first line of `clang --version`, for messages.
    fn clang_version(&self) -> String {
        Command::new(&self.clang)
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| {
                let text = String::from_utf8_lossy(&o.stdout).into_owned();
                text.lines().next().map(|l| l.trim().to_owned())
            })
            .unwrap_or_else(|| format!("{:?}", self.clang))
    }

    fn build(&self, programs: &Path, b: &Build, out_dir: &Path) -> Result<(), String> {
        let out = out_dir.join(&b.object);
        let mut prefix_map = OsString::from("-ffile-prefix-map=");
        prefix_map.push(programs.as_os_str());
        prefix_map.push("=.");
        let mut clang = Command::new(&self.clang);
        clang
            .current_dir(programs)
            .args(BASE_FLAGS)
            .arg(prefix_map)
            .arg(format!("-mcpu={}", b.mcpu));
        if b.btf {
            clang.arg("-g");
        }
        clang.arg("-c").arg(&b.source).arg("-o").arg(&out);
        run_tool(&mut clang, &b.source)?;
        run_tool(Command::new(&self.strip).arg("-g").arg(&out), &b.object)
    }
}

fn run_tool(cmd: &mut Command, what: &str) -> Result<(), String> {
    let output = cmd
        .output()
        .map_err(|e| format!("{what}: cannot run {:?}: {e}", cmd.get_program()))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what}: {:?} failed ({})\n{}",
        cmd.get_program(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, String> {
        let dir = std::env::temp_dir().join(format!("programs-build-{}", std::process::id()));
        // A directory left by an earlier process with the same pid.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
