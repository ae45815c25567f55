//! `rawbpf attach`, `detach` and `list`.

use crate::cli::Parsed;
use crate::json::Json;
use crate::Failure;
use rawbpf::attach::{self, AttachOptions, Hook, Mode, Target, XdpMode};
use rawbpf::load::hex;
use rawbpf::{AttachError, LoadOptions, ObjectSpec};
use std::fmt::Write as _;
use std::path::Path;

fn target(p: &Parsed) -> Result<Target, Failure> {
    let dev = p
        .value("--dev")
        .ok_or_else(|| Failure::Usage(format!("{}: --dev IFACE is required", p.command.name)))?;
    let hooks = ["--ingress", "--egress", "--xdp"];
    let chosen: Vec<&str> = hooks.into_iter().filter(|h| p.switch(h)).collect();
    if chosen.len() > 1 {
        return Err(Failure::Usage(format!(
            "{}: {} exclude each other",
            p.command.name,
            chosen.join(" and ")
        )));
    }
    Ok(Target {
        netns: p.value("--netns").map(str::to_owned),
        dev: dev.to_owned(),
        hook: match chosen.first() {
            Some(&"--egress") => Hook::Egress,
            Some(&"--xdp") => Hook::Xdp,
            _ => Hook::Ingress,
        },
    })
}

/// Runs a netlink command on a current-thread runtime: only attach,
/// detach, list and demo start one.
fn block_on<T>(
    netns: Option<&str>,
    f: impl std::future::Future<Output = Result<T, AttachError>>,
) -> Result<T, Failure> {
    run_netlink(netns, f)?.map_err(|e| attach_err(None, e))
}

/// Runs `f` on a current-thread runtime that is then left for the
/// process's exit to tear down: the command ends right after, and exit
/// closes the netlink socket anyway, so cancelling the connection task and
/// deregistering the socket first would be work for nothing. The command
/// works in one namespace: the thread enters it once instead of in and out
/// for each step (if it cannot, the step that needs it says why).
fn run_netlink<T>(
    netns: Option<&str>,
    f: impl std::future::Future<Output = T>,
) -> Result<T, Failure> {
    let _inside = netns.and_then(|ns| rawbpf::netns::enter(ns).ok());
    let rt = rawbpf::blocking::runtime()
        .map_err(|e| Failure::Error(format!("starting the netlink runtime: {e}")))?;
    let out = rt.block_on(f);
    std::mem::forget(rt);
    Ok(out)
}

fn priority(p: &Parsed) -> Result<Option<u16>, Failure> {
    p.value("--priority")
        .map(|v| {
            v.parse::<u16>().ok().filter(|&n| n > 0).ok_or_else(|| {
                Failure::Usage(format!("--priority {v}: expected a number from 1 to 65535"))
            })
        })
        .transpose()
}

fn attach_err(file: Option<&str>, e: AttachError) -> Failure {
    // The library names the hook a program needs and what is in the way;
    // the CLI names the flags that change it.
    let hint = match &e {
        AttachError::WrongProgramType { prog_type, .. } => match Hook::for_program(*prog_type) {
            Some(Hook::Xdp) => " (use --xdp)".to_owned(),
            Some(_) => " (use --ingress or --egress)".to_owned(),
            None => String::new(),
        },
        AttachError::AlreadyAttached {
            hook: Hook::Xdp, ..
        } => " (detach it, or pass --replace)".to_owned(),
        AttachError::AlreadyAttached { .. } => {
            " (detach it, pass --replace, or choose another --priority)".to_owned()
        }
        AttachError::XdpBusy { .. } => " (pass --replace to replace it)".to_owned(),
        AttachError::ModeMismatch { attached, .. } => {
            format!(" (pass --mode {})", attached.name())
        }
        _ => String::new(),
    };
    match (file, &e) {
        (Some(f), AttachError::Load(l)) => Failure::Error(format!("{f}: {}", crate::load_err(l))),
        _ => Failure::Error(format!("{e}{hint}")),
    }
}

fn pairs(items: &[(String, u32)]) -> Json {
    Json::Arr(
        items
            .iter()
            .map(|(n, id)| Json::Obj(vec![("name", n.as_str().into()), ("id", (*id).into())]))
            .collect(),
    )
}

/// `rawbpf attach OBJ --dev IFACE [...]`
pub fn attach(p: &Parsed) -> Result<String, Failure> {
    if p.value("--dev").is_none() {
        return crate::group::attach(p);
    }
    refuse_group_flags(p)?;
    let file = p.positional[0].as_str();
    let target = target(p)?;
    let mode = tc_mode(p)?;
    let xdp_mode = xdp_mode(p)?;
    let xdp = target.hook == Hook::Xdp;
    flags_fit_hook(p, xdp)?;
    let tails = tail_slots(p)?;
    let opts = AttachOptions {
        target: target.clone(),
        program: p.value("--prog").map(str::to_owned),
        priority: priority(p)?.unwrap_or(1),
        replace: p.switch("--replace"),
        mode: if xdp { Mode::Xdp } else { mode },
        xdp_mode,
    };
    let spec = ObjectSpec::from_file(file)?;
    let load = LoadOptions {
        tails,
        target_btf: p.value("--btf").map(std::path::PathBuf::from),
        globals: crate::load::set_flags(p, &spec)?,
        pin_by_name_dir: crate::load::pin_maps_dir(p),
        ..LoadOptions::for_file(Path::new(file))
    };
    let a = run_netlink(
        target.netns.as_deref(),
        attach::attach(Path::new(file), &spec, &load, &opts),
    )?
    .map_err(|e| attach_err(Some(file), e))?;
    if p.switch("--json") {
        return Ok(format!("{}\n", attached_json(file, &opts, &a)));
    }
    for w in &a.warnings {
        crate::warn(w);
    }
    Ok(attached_text(&opts, &a))
}

/// A device attach takes no group flags and one `--prog`.
fn refuse_group_flags(p: &Parsed) -> Result<(), Failure> {
    if let Some(flag) = crate::group::GROUP_ONLY
        .iter()
        .find(|f| p.value(f).is_some() || p.switch(f))
    {
        return Err(Failure::Usage(format!(
            "attach: {flag} is for group attaches (without --dev)"
        )));
    }
    if p.values("--prog").count() > 1 {
        return Err(Failure::Usage("attach: option '--prog' given twice".into()));
    }
    Ok(())
}

/// `--mode`: how a TC program is attached.
fn tc_mode(p: &Parsed) -> Result<Mode, Failure> {
    match p.value("--mode") {
        None | Some("tc") => Ok(Mode::Tc),
        Some("tcx") => Ok(Mode::Tcx),
        Some("auto") => Ok(Mode::Auto),
        Some(other) => Err(Failure::Usage(format!(
            "attach: --mode {other}: expected auto, tc or tcx"
        ))),
    }
}

/// `--xdp-mode`: where an XDP program runs.
fn xdp_mode(p: &Parsed) -> Result<XdpMode, Failure> {
    match p.value("--xdp-mode") {
        None | Some("auto") => Ok(XdpMode::Auto),
        Some("native") => Ok(XdpMode::Native),
        Some("generic") => Ok(XdpMode::Generic),
        Some("offload") => Ok(XdpMode::Offload),
        Some(other) => Err(Failure::Usage(format!(
            "attach: --xdp-mode {other}: expected auto, native, generic or offload"
        ))),
    }
}

/// `--xdp-mode` is for the XDP hook; `--mode` and `--priority` for TC.
fn flags_fit_hook(p: &Parsed, xdp: bool) -> Result<(), Failure> {
    for (flag, applies) in [("--xdp-mode", xdp), ("--mode", !xdp), ("--priority", !xdp)] {
        if !applies && p.value(flag).is_some() {
            return Err(Failure::Usage(format!(
                "attach: {flag} {}",
                if xdp {
                    "is for TC attaches, not --xdp"
                } else {
                    "needs --xdp"
                }
            )));
        }
    }
    Ok(())
}

/// Each `--tail MAP:KEY=PROG`, parsed.
fn tail_slots(p: &Parsed) -> Result<Vec<rawbpf::TailSlot>, Failure> {
    p.values("--tail")
        .map(|t| {
            crate::cli::tail_slot(t)
                .map_err(|reason| Failure::Usage(format!("--tail {t}: {reason}")))
        })
        .collect()
}

/// `attach --json`: what was attached where, and what it pinned.
fn attached_json(file: &str, opts: &AttachOptions, a: &attach::Attached) -> Json {
    let target = &opts.target;
    let xdp = target.hook == Hook::Xdp;
    Json::Obj(vec![
        ("file", file.into()),
        ("dev", target.dev.as_str().into()),
        ("netns", Json::opt(target.netns.as_deref(), Json::from)),
        ("direction", target.hook.name().into()),
        (
            "priority",
            Json::opt((!xdp).then_some(u32::from(opts.priority)), Json::from),
        ),
        ("mode", a.xdp_mode.unwrap_or(a.mode.name()).into()),
        ("program", a.program.as_str().into()),
        ("prog_id", a.prog_id.into()),
        ("filter_name", a.filter_name.as_str().into()),
        ("ifindex", a.ifindex.into()),
        ("created_qdisc", a.created_qdisc.into()),
        (
            "pin_dir",
            Json::opt(a.pin_dir.as_ref(), |d| d.display().to_string().into()),
        ),
        ("programs", pairs(&a.programs)),
        ("maps", pairs(&a.maps)),
        (
            "warnings",
            Json::Arr(a.warnings.iter().map(|w| w.as_str().into()).collect()),
        ),
    ])
}

/// `attach`'s report: the hook, the programs and maps, the pin directory.
fn attached_text(opts: &AttachOptions, a: &attach::Attached) -> String {
    let target = &opts.target;
    let mut out = String::new();
    let netns = target
        .netns
        .as_deref()
        .map_or(String::new(), |n| format!(" (netns {n})"));
    if let Some(xdp_mode) = a.xdp_mode {
        let _ = writeln!(
            out,
            "attached {} to {}{netns} xdp (mode {xdp_mode})",
            a.filter_name, target.dev,
        );
    } else {
        let _ = writeln!(
            out,
            "attached {} to {}{netns} {} at priority {} (mode {}{})",
            a.filter_name,
            target.dev,
            target.hook.name(),
            opts.priority,
            a.mode.name(),
            if a.created_qdisc {
                ", clsact qdisc added"
            } else {
                ""
            },
        );
    }
    for (name, id) in &a.programs {
        let entry = if *name == a.program { " (entry)" } else { "" };
        let _ = writeln!(out, "  program {name} id {id}{entry}");
    }
    for (name, id) in &a.maps {
        let _ = writeln!(out, "  map     {name} id {id}");
    }
    let _ = writeln!(
        out,
        "pinned under {} (rawbpf detach removes them)",
        a.pin_dir.as_deref().unwrap_or(Path::new("-")).display()
    );
    out
}

/// `rawbpf detach --dev IFACE [--netns NAME] [--ingress|--egress] [--priority N|--all]`
pub fn detach(p: &Parsed) -> Result<String, Failure> {
    if p.value("--dev").is_none() && (p.value("--name").is_some() || p.switch("--all")) {
        return crate::group::detach(p);
    }
    if p.value("--name").is_some() {
        return Err(Failure::Usage(
            "detach: --name is for groups, not with --dev".into(),
        ));
    }
    let target = target(p)?;
    let prio = detach_priority(p, &target)?;
    let d = block_on(target.netns.as_deref(), attach::detach(&target, prio))?;
    if p.switch("--json") {
        return Ok(format!("{}\n", detached_json(&target, &d)));
    }
    Ok(detached_text(&target, &d))
}

/// The TC priority to detach: `--priority N` (1 if not given), or every
/// one for `--all` (`None`).
fn detach_priority(p: &Parsed, target: &Target) -> Result<Option<u16>, Failure> {
    let prio = priority(p)?;
    if prio.is_some() && p.switch("--all") {
        return Err(Failure::Usage(
            "detach: --priority and --all exclude each other".into(),
        ));
    }
    if prio.is_some() && target.hook == Hook::Xdp {
        return Err(Failure::Usage(
            "detach: --priority is for TC hooks, not --xdp".into(),
        ));
    }
    Ok(if p.switch("--all") {
        None
    } else {
        Some(prio.unwrap_or(1))
    })
}

/// `detach --json`: what was removed, and which leftovers were reconciled.
fn detached_json(target: &Target, d: &attach::Detached) -> Json {
    Json::Obj(vec![
        ("dev", target.dev.as_str().into()),
        ("direction", target.hook.name().into()),
        ("removed_xdp", d.removed_xdp.into()),
        (
            "priorities",
            Json::Arr(d.priorities.iter().map(|&p| u32::from(p).into()).collect()),
        ),
        ("deleted_qdisc", d.deleted_qdisc.into()),
        (
            "reconciled",
            Json::Arr(
                d.reconciled
                    .iter()
                    .map(|l| {
                        Json::Obj(vec![
                            ("path", l.path.display().to_string().into()),
                            ("what", l.kind.to_string().into()),
                        ])
                    })
                    .collect(),
            ),
        ),
    ])
}

/// `detach`'s report: the reconciled leftovers, then what was removed.
fn detached_text(target: &Target, d: &attach::Detached) -> String {
    let mut out = String::new();
    for l in &d.reconciled {
        let _ = writeln!(out, "reconciled {}: {}", l.path.display(), l.kind);
    }
    let nothing = d.priorities.is_empty() && !d.removed_xdp && !d.deleted_qdisc;
    if nothing {
        let _ = writeln!(
            out,
            "nothing was attached on {} {}; only what a stopped rawbpf left was removed",
            target.dev,
            target.hook.name()
        );
    } else if target.hook == Hook::Xdp {
        let _ = writeln!(
            out,
            "detached {} xdp and removed its pins{}",
            target.dev,
            if d.removed_xdp {
                ""
            } else {
                " (the device no longer ran rawbpf's program; only the pins went)"
            }
        );
    } else if d.priorities.is_empty() {
        let _ = writeln!(
            out,
            "deleted the clsact qdisc rawbpf had added on {}",
            target.dev
        );
    } else {
        let prios: Vec<String> = d.priorities.iter().map(u16::to_string).collect();
        let _ = writeln!(
            out,
            "detached {} {} priority {} and removed its pins{}",
            target.dev,
            target.hook.name(),
            prios.join(","),
            if d.deleted_qdisc {
                "; deleted the clsact qdisc rawbpf had added"
            } else {
                ""
            }
        );
    }
    out
}

/// A leftover as `list` shows it: path, what it is, and what clears it.
type LeftoverRow = (String, String, String);

/// `rawbpf list [--dev IFACE] [--netns NAME] [--json]`
pub fn list(p: &Parsed) -> Result<String, Failure> {
    let netns = p.value("--netns");
    let listing = block_on(netns, attach::list(netns, p.value("--dev")))?;
    let links = links_to_list(p)?;
    let found = &listing.attached;
    let leftovers: Vec<LeftoverRow> = listing
        .leftovers
        .iter()
        .map(|l| {
            (
                l.path.display().to_string(),
                l.kind.to_string(),
                clears(l, netns),
            )
        })
        .collect();
    if p.switch("--json") {
        let mut doc = vec![
            ("filters", filters_json(found)),
            ("leftovers", leftovers_json(&leftovers)),
        ];
        if let Some(links) = &links {
            doc.extend(links.json());
        }
        return Ok(format!("{}\n", Json::Obj(doc)));
    }
    let mut out = String::new();
    if found.is_empty() {
        out.push_str("no BPF filters, links or XDP programs attached\n");
    } else {
        crate::inspect::table(&mut out, &filter_rows(found));
        slot_lines(&mut out, found);
    }
    for (path, what, clears) in &leftovers {
        let _ = writeln!(out, "half-done: {path}: {what}; cleared by {clears}");
    }
    if let Some(links) = &links {
        links.text(&mut out);
    }
    Ok(out)
}

/// Links are the kernel's, in no namespace: shown when no device is named.
/// Without the privileges for bpf(2) and the pin root, the device view
/// is still shown (as before links were listed), with a warning.
fn links_to_list(p: &Parsed) -> Result<Option<crate::group::Links>, Failure> {
    if p.value("--dev").is_some() {
        return Ok(None);
    }
    match crate::group::read() {
        Ok(links) => Ok(Some(links)),
        Err(Failure::Error(msg)) => {
            crate::warn(&format!("BPF links are not listed: {msg}"));
            Ok(None)
        }
        Err(other) => Err(other),
    }
}

/// `list --json`'s filters: one object per TC filter or XDP program.
fn filters_json(found: &[attach::Listed]) -> Json {
    Json::Arr(
        found
            .iter()
            .map(|l| {
                Json::Obj(vec![
                    ("dev", l.dev.as_str().into()),
                    ("direction", l.hook.name().into()),
                    ("priority", u32::from(l.filter.priority).into()),
                    ("handle", l.filter.handle.into()),
                    ("mode", l.xdp_mode.unwrap_or(l.mode.name()).into()),
                    ("name", l.filter.name.as_str().into()),
                    ("prog_id", l.filter.prog_id.into()),
                    ("tag", hex(&l.filter.tag).into()),
                    ("direct_action", l.filter.direct_action.into()),
                    (
                        "pin_dir",
                        Json::opt(l.pin_dir.as_ref(), |d| d.display().to_string().into()),
                    ),
                    ("slots", slots_json(&l.slots)),
                ])
            })
            .collect(),
    )
}

/// What the prog arrays of each rawbpf chain hold, a line per chain.
fn slot_lines(out: &mut String, found: &[attach::Listed]) {
    for l in found.iter().filter(|l| !l.slots.is_empty()) {
        let at = if l.hook == Hook::Xdp {
            String::new()
        } else {
            format!(" priority {}", l.filter.priority)
        };
        let slots: Vec<String> = l
            .slots
            .iter()
            .map(|s| format!("{}[{}] = {} (id {})", s.map, s.key, s.program, s.prog_id))
            .collect();
        let _ = writeln!(
            out,
            "  {} {}{at}: {}",
            l.dev,
            l.hook.name(),
            slots.join(", ")
        );
    }
}

/// `list --json`'s slots of a chain's prog arrays.
fn slots_json(slots: &[attach::Slot]) -> Json {
    Json::Arr(
        slots
            .iter()
            .map(|s| {
                Json::Obj(vec![
                    ("map", s.map.as_str().into()),
                    ("key", s.key.into()),
                    ("prog_id", s.prog_id.into()),
                    ("program", s.program.as_str().into()),
                ])
            })
            .collect(),
    )
}

/// `list --json`'s leftovers.
fn leftovers_json(leftovers: &[LeftoverRow]) -> Json {
    Json::Arr(
        leftovers
            .iter()
            .map(|(path, what, clears)| {
                Json::Obj(vec![
                    ("path", path.as_str().into()),
                    ("what", what.as_str().into()),
                    ("clears_it", clears.as_str().into()),
                ])
            })
            .collect(),
    )
}

/// `list`'s table of TC filters and XDP programs, header first.
fn filter_rows(found: &[attach::Listed]) -> Vec<Vec<String>> {
    let mut rows = vec![[
        "DEV",
        "DIRECTION",
        "MODE",
        "PRIO",
        "NAME",
        "PROG_ID",
        "TAG",
        "DIRECT_ACTION",
        "PINNED",
    ]
    .map(String::from)
    .to_vec()];
    for l in found {
        rows.push(vec![
            l.dev.clone(),
            l.hook.name().to_owned(),
            l.xdp_mode.unwrap_or(l.mode.name()).to_owned(),
            l.filter.priority.to_string(),
            l.filter.name.clone(),
            l.filter.prog_id.to_string(),
            hex(&l.filter.tag),
            if l.filter.direct_action { "yes" } else { "no" }.to_owned(),
            l.pin_dir
                .as_ref()
                .map_or("-".to_owned(), |d| d.display().to_string()),
        ]);
    }
    rows
}

/// The command that reconciles a leftover: any command on its hook does;
/// `detach --all` also removes what it finishes.
fn clears(l: &attach::Leftover, netns: Option<&str>) -> String {
    let hook = match l.hook {
        Hook::Ingress => "",
        Hook::Egress => " --egress",
        Hook::Xdp => " --xdp",
    };
    let ns = netns.map_or(String::new(), |n| format!(" --netns {n}"));
    format!(
        "the next attach or detach there (rawbpf detach --all --dev {}{ns}{hook})",
        l.dev
    )
}

/// `rawbpf swap --dev IFACE [--netns NAME] [--ingress|--egress|--xdp] [--priority N] MAP:KEY=OBJ:PROG`
pub fn swap(p: &Parsed) -> Result<String, Failure> {
    let target = target(p)?;
    let arg = &p.positional[0];
    let spec = crate::cli::swap_spec(arg)
        .map_err(|reason| Failure::Usage(format!("swap {arg}: {reason}")))?;
    let object = ObjectSpec::from_file(&spec.object)?;
    let prio = priority(p)?.unwrap_or(1);
    let load = LoadOptions {
        globals: crate::load::set_flags(p, &object)?,
        pin_by_name_dir: crate::load::pin_maps_dir(p),
        ..LoadOptions::for_file(&spec.object)
    };
    let s = attach::swap(&target, prio, &spec, &object, &load)
        .map_err(|e| attach_err(spec.object.to_str(), e))?;
    if p.switch("--json") {
        let doc = Json::Obj(vec![
            ("map", spec.map.as_str().into()),
            ("key", spec.key.into()),
            ("program", s.program.as_str().into()),
            ("prog_id", s.prog_id.into()),
            ("map_id", s.map_id.into()),
        ]);
        return Ok(format!("{doc}\n"));
    }
    let at = if target.hook == Hook::Xdp {
        String::new()
    } else {
        format!(" priority {prio}")
    };
    Ok(format!(
        "swapped {}:{} of {} {}{at} to {} (id {}) in one update\n",
        spec.map,
        spec.key,
        target.dev,
        target.hook.name(),
        s.program,
        s.prog_id
    ))
}
