//! `rawbpf load` and `rawbpf run`.

use crate::cli::Parsed;
use crate::json::Json;
use crate::Failure;
use rawbpf::load::{hex, Collection, Entry, LoadOptions, RunInput, TestRunResult};
use rawbpf::uapi::ProgramType;
use rawbpf::{Error, LoadError, ObjectSpec};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Parses the object and loads it with the command's `--tail` flags.
fn load_object(p: &Parsed, file: &str) -> Result<(ObjectSpec, Collection), Failure> {
    let spec = ObjectSpec::from_file(file)?;
    let collection = load_spec(p, file, &spec)?;
    Ok((spec, collection))
}

/// Loads a parsed object with the command's `--tail` and `--pin` flags.
fn load_spec(p: &Parsed, file: &str, spec: &ObjectSpec) -> Result<Collection, Failure> {
    let mut opts = LoadOptions::for_file(Path::new(file));
    for t in p.values("--tail") {
        let slot = crate::cli::tail_slot(t)
            .map_err(|reason| Failure::Usage(format!("--tail {t}: {reason}")))?;
        opts.tails.push(slot);
    }
    opts.pin_by_name_dir = p
        .value("--pin-maps")
        .or(p.value("--pin"))
        .map(PathBuf::from);
    opts.target_btf = p.value("--btf").map(PathBuf::from);
    opts.globals = set_flags(p, spec)?;
    Collection::load(spec, &opts).map_err(|e| in_file(file, e))
}

/// Where an attach pins the maps its object pins by name: `--pin-maps DIR`,
/// or libbpf's default, the bpffs root, so that the object's own tools and
/// every other chain or group of it find and share them.
pub(crate) fn pin_maps_dir(p: &Parsed) -> Option<PathBuf> {
    Some(PathBuf::from(
        p.value("--pin-maps").unwrap_or(PIN_BY_NAME_ROOT),
    ))
}

/// libbpf's `pin_root_path` default.
pub(crate) const PIN_BY_NAME_ROOT: &str = "/sys/fs/bpf";

/// Each `--set NAME=VALUE`, checked against the object's globals: a bad
/// one (unknown, an extern, a value that does not fit its type) is bad
/// usage, found before anything is loaded.
pub(crate) fn set_flags(
    p: &Parsed,
    spec: &ObjectSpec,
) -> Result<Vec<(String, rawbpf::obj::GlobalValue)>, Failure> {
    let mut globals = Vec::new();
    for s in p.values("--set") {
        let (name, value) = s
            .split_once('=')
            .filter(|(n, _)| !n.trim().is_empty())
            .ok_or_else(|| Failure::Usage(format!("--set {s}: expected NAME=VALUE")))?;
        globals.push((
            name.trim().to_owned(),
            rawbpf::obj::GlobalValue::Text(value.to_owned()),
        ));
    }
    rawbpf::load::globals::check(spec, &globals)
        .map_err(|e| Failure::Usage(format!("--set: {e}")))?;
    Ok(globals)
}

fn in_file(file: &str, source: LoadError) -> Failure {
    Failure::from(Error::Load {
        path: file.into(),
        source,
    })
}

fn tag(t: &[u8; 8]) -> String {
    hex(t)
}

/// `rawbpf load OBJ [--tail MAP:KEY=PROG]... [--pin DIR] [--json]`
pub fn load(p: &Parsed) -> Result<String, Failure> {
    let file = &p.positional[0];
    let (_, c) = load_object(p, file)?;
    let pinned = match p.value("--pin") {
        Some(dir) => Some(c.pin(Path::new(dir)).map_err(|e| in_file(file, e))?),
        None => None,
    };
    if p.switch("--json") {
        return Ok(load_json(file, &c, pinned.as_deref()));
    }
    let mut out = String::new();
    for w in &c.warnings {
        crate::warn(w);
    }
    let _ = writeln!(
        out,
        "{file}: the kernel accepted {} programs and {} maps",
        c.programs.len(),
        c.maps.len()
    );
    for p in &c.programs {
        let _ = writeln!(
            out,
            "  program {:<20} {:<12} id {:<6} tag {}",
            p.name,
            p.prog_type.to_string(),
            p.id,
            tag(&p.tag)
        );
    }
    for m in &c.maps {
        let _ = writeln!(
            out,
            "  map     {:<20} {:<12} id {:<6} key {} value {} max_entries {}",
            m.name(),
            m.map_type().to_string(),
            m.id(),
            m.key_size(),
            m.value_size(),
            m.max_entries()
        );
    }
    match pinned {
        Some(paths) => {
            let _ = writeln!(
                out,
                "pinned {} objects under {}",
                paths.len(),
                p.value("--pin").unwrap_or("")
            );
        }
        None => out.push_str("released (nothing pinned: pass --pin DIR to keep them)\n"),
    }
    Ok(out)
}

/// `rawbpf load --json`: out of line, off the plain `load`'s path.
#[inline(never)]
fn load_json(file: &str, c: &Collection, pinned: Option<&[PathBuf]>) -> String {
    let doc = Json::Obj(vec![
        ("file", file.into()),
        (
            "programs",
            Json::Arr(
                c.programs
                    .iter()
                    .map(|p| {
                        Json::Obj(vec![
                            ("name", p.name.as_str().into()),
                            ("type", p.prog_type.to_string().into()),
                            ("id", p.id.into()),
                            ("tag", tag(&p.tag).into()),
                        ])
                    })
                    .collect(),
            ),
        ),
        (
            "maps",
            Json::Arr(
                c.maps
                    .iter()
                    .map(|m| {
                        Json::Obj(vec![
                            ("name", m.name().into()),
                            ("kernel_name", m.kernel_name().into()),
                            ("type", m.map_type().to_string().into()),
                            ("id", m.id().into()),
                            ("key_size", m.key_size().into()),
                            ("value_size", m.value_size().into()),
                            ("max_entries", m.max_entries().into()),
                        ])
                    })
                    .collect(),
            ),
        ),
        (
            "pinned",
            Json::opt(pinned.as_ref(), |paths| {
                Json::Arr(
                    paths
                        .iter()
                        .map(|p| p.display().to_string().into())
                        .collect(),
                )
            }),
        ),
        (
            "warnings",
            Json::Arr(c.warnings.iter().map(|w| w.as_str().into()).collect()),
        ),
    ]);
    format!("{doc}\n")
}

/// `rawbpf run OBJ --prog NAME [--tail ...] [--data-in FILE] [--ctx-in FILE] [--repeat N] [--dump MAP]... [--json]`
///
/// A packet program runs on `--data-in` (or the built-in frame), with
/// `--ctx-in` as its `struct __sk_buff`/`xdp_md` if given. A program that
/// takes no packet (raw tracepoint, tracing) runs once on `--ctx-in` (or a
/// zeroed context): `--data-in` or `--repeat` above 1 is a usage error.
pub fn run(p: &Parsed) -> Result<String, Failure> {
    let file = &p.positional[0];
    let prog_name = p
        .value("--prog")
        .ok_or_else(|| Failure::Usage("run: --prog NAME is required".into()))?;
    let repeat = run_repeat(p)?;
    let spec = ObjectSpec::from_file(file)?;
    check_run_flags(p, &spec, prog_name, repeat)?;
    let input = TestRunInput::read(p, repeat)?;
    let c = load_spec(p, file, &spec)?;
    let ran = test_run(&c, file, prog_name, input)?;
    let dumps = dump_maps(p, &c, file)?;
    if p.switch("--json") {
        return Ok(run_json(&ran, &dumps, &c.warnings));
    }
    for w in &c.warnings {
        crate::warn(w);
    }
    Ok(run_text(&ran, &dumps))
}

/// `--repeat N`: 1 if not given.
fn run_repeat(p: &Parsed) -> Result<u32, Failure> {
    match p.value("--repeat") {
        None => Ok(1),
        Some(r) => r.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
            Failure::Usage(format!("run: --repeat {r}: expected a whole number from 1"))
        }),
    }
}

/// Flags the program's type cannot take are bad usage, found before
/// anything is loaded. (An unknown --prog is reported by the load.)
fn check_run_flags(
    p: &Parsed,
    spec: &ObjectSpec,
    prog_name: &str,
    repeat: u32,
) -> Result<(), Failure> {
    let Some(prog) = spec.program(prog_name) else {
        return Ok(());
    };
    if let RunInput::Context { .. } = RunInput::of(prog.prog_type) {
        let what = format!("{prog_name} is a {} program", prog.prog_type);
        if let Some(path) = p.value("--data-in") {
            return Err(Failure::Usage(format!(
                "run: --data-in {path}: {what}, which takes no packet (BPF_PROG_TEST_RUN gives it no data_in); give its context with --ctx-in FILE"
            )));
        }
        if repeat > 1 {
            return Err(Failure::Usage(format!(
                "run: --repeat {repeat}: {what}, which the kernel runs once per test run (BPF_PROG_TEST_RUN takes no repeat for it)"
            )));
        }
    }
    Ok(())
}

/// What BPF_PROG_TEST_RUN is given: `--data-in`, `--ctx-in`, `--repeat`.
struct TestRunInput {
    /// The packet: `--data-in`, or the built-in frame.
    data: Vec<u8>,
    /// The context, `--ctx-in`.
    ctx: Option<Vec<u8>>,
    repeat: u32,
}

impl TestRunInput {
    /// Reads `--data-in` and `--ctx-in` (before the load: a missing file
    /// is found without touching the kernel).
    fn read(p: &Parsed, repeat: u32) -> Result<Self, Failure> {
        let read = |flag: &str, path: &str| {
            std::fs::read(path).map_err(|e| Failure::Error(format!("{flag} {path}: {e}")))
        };
        let data = match p.value("--data-in") {
            Some(path) => read("--data-in", path)?,
            None => rawbpf::packet::ipv4_udp_frame(0).to_vec(),
        };
        let ctx = p
            .value("--ctx-in")
            .map(|path| read("--ctx-in", path))
            .transpose()?;
        Ok(Self { data, ctx, repeat })
    }
}

/// One test run, as `run` reports it.
struct TestRun<'a> {
    prog_name: &'a str,
    prog_type: ProgramType,
    /// A packet run (repeated, timed), not a context-only one.
    packet: bool,
    repeat: u32,
    result: TestRunResult,
    /// The context the program ran on: `--ctx-in`, or for a context-only
    /// run the zeroed default.
    ctx_in: Option<Vec<u8>>,
}

/// Runs the loaded program once (or `--repeat` times, on a packet).
fn test_run<'a>(
    c: &Collection,
    file: &str,
    prog_name: &'a str,
    input: TestRunInput,
) -> Result<TestRun<'a>, Failure> {
    let prog = c.program(prog_name).map_err(|e| in_file(file, e))?;
    let run_input = RunInput::of(prog.prog_type);
    let (result, ctx_in) = match run_input {
        RunInput::Packet => {
            let result = prog
                .test_run_with(&input.data, input.ctx.as_deref(), input.repeat)
                .map_err(|e| in_file(file, e))?;
            (result, input.ctx)
        }
        RunInput::Context { default_len, .. } => {
            let ctx = input.ctx.unwrap_or_else(|| vec![0; default_len]);
            let result = prog.test_run_ctx(&ctx).map_err(|e| in_file(file, e))?;
            (result, Some(ctx))
        }
    };
    Ok(TestRun {
        prog_name,
        prog_type: prog.prog_type,
        packet: run_input == RunInput::Packet,
        repeat: input.repeat,
        result,
        ctx_in,
    })
}

/// The entries of each `--dump MAP`, after the run.
fn dump_maps<'a>(
    p: &'a Parsed,
    c: &Collection,
    file: &str,
) -> Result<Vec<(&'a str, Vec<Entry>)>, Failure> {
    let mut dumps = Vec::new();
    for name in p.values("--dump") {
        let map = c.map(name).map_err(|e| in_file(file, e))?;
        dumps.push((name, map.entries().map_err(|e| in_file(file, e))?));
    }
    Ok(dumps)
}

/// `rawbpf run --json`.
fn run_json(ran: &TestRun, dumps: &[(&str, Vec<Entry>)], warnings: &[String]) -> String {
    let result = &ran.result;
    let packet = ran.packet;
    let doc = Json::Obj(vec![
        ("prog", ran.prog_name.into()),
        ("retval", result.retval.into()),
        // Context-only runs are not timed: null, not a made-up 0.
        (
            "duration_ns",
            Json::opt(packet.then_some(result.duration_ns), Json::from),
        ),
        ("repeat", if packet { ran.repeat } else { 1 }.into()),
        ("data_out", hex(&result.data_out).into()),
        (
            "ctx_out",
            Json::opt((packet && ran.ctx_in.is_some()).then_some(()), |()| {
                hex(&result.ctx_out).into()
            }),
        ),
        (
            "maps",
            Json::Map(
                dumps
                    .iter()
                    .map(|(name, entries)| {
                        let rows = entries
                            .iter()
                            .map(|(k, v)| {
                                Json::Obj(vec![("key", hex(k).into()), ("value", hex(v).into())])
                            })
                            .collect();
                        (name.to_string(), Json::Arr(rows))
                    })
                    .collect(),
            ),
        ),
        (
            "warnings",
            Json::Arr(warnings.iter().map(|w| w.as_str().into()).collect()),
        ),
    ]);
    format!("{doc}\n")
}

/// `rawbpf run`'s plain report: the return code, the packet (or the
/// context) and the dumped maps.
fn run_text(ran: &TestRun, dumps: &[(&str, Vec<Entry>)]) -> String {
    let result = &ran.result;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: retval {}{}",
        ran.prog_name,
        result.retval,
        retval_name(ran.prog_type, result.retval)
    );
    if ran.packet {
        let _ = writeln!(
            out,
            "duration {} ns per run ({} runs)",
            result.duration_ns, ran.repeat
        );
        let _ = writeln!(
            out,
            "data out ({} bytes): {}",
            result.data_out.len(),
            hex(&result.data_out)
        );
        if ran.ctx_in.is_some() {
            let _ = writeln!(
                out,
                "context out ({} bytes): {}",
                result.ctx_out.len(),
                hex(&result.ctx_out)
            );
        }
    } else {
        let ctx_in = ran.ctx_in.as_deref().unwrap_or_default();
        let _ = writeln!(
            out,
            "ran once, not timed (the kernel times only packet runs)\ncontext in ({} bytes): {}",
            ctx_in.len(),
            hex(ctx_in)
        );
    }
    for (name, entries) in dumps {
        let _ = writeln!(out, "map {name}: {} entries", entries.len());
        for (k, v) in entries {
            let _ = writeln!(out, "  key {} value {}", hex(k), hex(v));
        }
    }
    out
}

/// The return code's name where the program type gives it one.
fn retval_name(t: rawbpf::uapi::ProgramType, v: u32) -> &'static str {
    use rawbpf::uapi::ProgramType as P;
    match (t, v) {
        (P::SCHED_CLS | P::SCHED_ACT, 0) => " (TC_ACT_OK)",
        (P::SCHED_CLS | P::SCHED_ACT, 2) => " (TC_ACT_SHOT)",
        (P::SCHED_CLS | P::SCHED_ACT, 7) => " (TC_ACT_REDIRECT)",
        (P::XDP, 1) => " (XDP_DROP)",
        (P::XDP, 2) => " (XDP_PASS)",
        _ => "",
    }
}
