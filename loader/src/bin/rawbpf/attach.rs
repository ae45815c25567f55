//! `rawbpf attach`, `detach` and `list`.

use crate::cli::Parsed;
use crate::json::Json;
use crate::Failure;
use rawbpf::attach::{self, AttachOptions, Target};
use rawbpf::load::{hex, TailSlot};
use rawbpf::tc::Direction;
use rawbpf::{AttachError, ObjectSpec};
use std::fmt::Write as _;
use std::path::Path;

fn target(p: &Parsed) -> Result<Target, Failure> {
    let dev = p
        .value("--dev")
        .ok_or_else(|| Failure::Usage(format!("{}: --dev IFACE is required", p.command.name)))?;
    Ok(Target {
        netns: p.value("--netns").map(str::to_owned),
        dev: dev.to_owned(),
        direction: if p.switch("--egress") {
            Direction::Egress
        } else {
            Direction::Ingress
        },
    })
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
    match (file, &e) {
        (Some(f), AttachError::Load(_)) => Failure::Error(format!("{f}: {e}")),
        _ => Failure::Error(e.to_string()),
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
    let file = p.positional[0].as_str();
    let target = target(p)?;
    let mode = match p.value("--mode") {
        None | Some("tc") => attach::Mode::Tc,
        Some("tcx") => attach::Mode::Tcx,
        Some("auto") => attach::Mode::Auto,
        Some(other) => {
            return Err(Failure::Usage(format!(
                "attach: --mode {other}: expected auto, tc or tcx"
            )))
        }
    };
    let mut tails = Vec::new();
    for t in p.values("--tail") {
        tails.push(
            t.parse::<TailSlot>()
                .map_err(|reason| Failure::Usage(format!("--tail {t}: {reason}")))?,
        );
    }
    let opts = AttachOptions {
        target: target.clone(),
        program: p.value("--prog").map(str::to_owned),
        tails,
        priority: priority(p)?.unwrap_or(1),
        replace: p.switch("--replace"),
        mode,
        target_btf: p.value("--btf").map(std::path::PathBuf::from),
    };
    let spec = ObjectSpec::from_file(file)?;
    let a = attach::attach(Path::new(file), &spec, &opts).map_err(|e| attach_err(Some(file), e))?;
    if p.switch("--json") {
        let doc = Json::Obj(vec![
            ("file", file.into()),
            ("dev", target.dev.as_str().into()),
            ("netns", Json::opt(target.netns.as_deref(), Json::from)),
            ("direction", target.direction.name().into()),
            ("priority", u32::from(opts.priority).into()),
            ("mode", a.mode.name().into()),
            ("program", a.program.as_str().into()),
            ("prog_id", a.prog_id.into()),
            ("filter_name", a.filter_name.as_str().into()),
            ("ifindex", a.ifindex.into()),
            ("created_qdisc", a.created_qdisc.into()),
            ("pin_dir", a.pin_dir.display().to_string().into()),
            ("programs", pairs(&a.programs)),
            ("maps", pairs(&a.maps)),
            (
                "warnings",
                Json::Arr(a.warnings.iter().map(|w| w.as_str().into()).collect()),
            ),
        ]);
        return Ok(format!("{doc}\n"));
    }
    for w in &a.warnings {
        crate::warn(w);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "attached {} to {}{} {} at priority {} (mode {}{})",
        a.filter_name,
        target.dev,
        target
            .netns
            .as_deref()
            .map_or(String::new(), |n| format!(" (netns {n})")),
        target.direction.name(),
        opts.priority,
        a.mode.name(),
        if a.created_qdisc {
            ", clsact qdisc added"
        } else {
            ""
        },
    );
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
        a.pin_dir.display()
    );
    Ok(out)
}

/// `rawbpf detach --dev IFACE [--netns NAME] [--ingress|--egress] [--priority N|--all]`
pub fn detach(p: &Parsed) -> Result<String, Failure> {
    let target = target(p)?;
    let prio = priority(p)?;
    if prio.is_some() && p.switch("--all") {
        return Err(Failure::Usage(
            "detach: --priority and --all exclude each other".into(),
        ));
    }
    let prio = if p.switch("--all") {
        None
    } else {
        Some(prio.unwrap_or(1))
    };
    let d = attach::detach(&target, prio).map_err(|e| attach_err(None, e))?;
    if p.switch("--json") {
        let doc = Json::Obj(vec![
            ("dev", target.dev.as_str().into()),
            ("direction", target.direction.name().into()),
            (
                "priorities",
                Json::Arr(d.priorities.iter().map(|&p| u32::from(p).into()).collect()),
            ),
            ("deleted_qdisc", d.deleted_qdisc.into()),
        ]);
        return Ok(format!("{doc}\n"));
    }
    let prios: Vec<String> = d.priorities.iter().map(u16::to_string).collect();
    Ok(format!(
        "detached {} {} priority {} and removed its pins{}\n",
        target.dev,
        target.direction.name(),
        prios.join(","),
        if d.deleted_qdisc {
            "; deleted the clsact qdisc rawbpf had added"
        } else {
            ""
        }
    ))
}

/// `rawbpf list [--dev IFACE] [--netns NAME] [--json]`
pub fn list(p: &Parsed) -> Result<String, Failure> {
    let found =
        attach::list(p.value("--netns"), p.value("--dev")).map_err(|e| attach_err(None, e))?;
    if p.switch("--json") {
        let rows = found
            .iter()
            .map(|l| {
                Json::Obj(vec![
                    ("dev", l.dev.as_str().into()),
                    ("direction", l.filter.direction.name().into()),
                    ("priority", u32::from(l.filter.priority).into()),
                    ("handle", l.filter.handle.into()),
                    ("mode", l.mode.name().into()),
                    ("name", l.filter.name.as_str().into()),
                    ("prog_id", l.filter.prog_id.into()),
                    ("tag", hex(&l.filter.tag).into()),
                    ("direct_action", l.filter.direct_action.into()),
                    (
                        "pin_dir",
                        Json::opt(l.pin_dir.as_ref(), |d| d.display().to_string().into()),
                    ),
                ])
            })
            .collect();
        return Ok(format!(
            "{}\n",
            Json::Obj(vec![("filters", Json::Arr(rows))])
        ));
    }
    if found.is_empty() {
        return Ok("no BPF filters attached\n".into());
    }
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
    for l in &found {
        rows.push(vec![
            l.dev.clone(),
            l.filter.direction.name().to_owned(),
            l.mode.name().to_owned(),
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
    let mut out = String::new();
    crate::inspect::table(&mut out, &rows);
    Ok(out)
}

/// `rawbpf swap --dev IFACE [--netns NAME] [--ingress|--egress] [--priority N] MAP:KEY=OBJ:PROG`
pub fn swap(p: &Parsed) -> Result<String, Failure> {
    let target = target(p)?;
    let arg = &p.positional[0];
    let spec: attach::SwapSpec = arg
        .parse()
        .map_err(|reason| Failure::Usage(format!("swap {arg}: {reason}")))?;
    let object = ObjectSpec::from_file(&spec.object)?;
    let prio = priority(p)?.unwrap_or(1);
    let s = attach::swap(&target, prio, &spec, &object)
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
    Ok(format!(
        "swapped {}:{} of {} {} priority {prio} to {} (id {}) in one update\n",
        spec.map,
        spec.key,
        target.dev,
        target.direction.name(),
        s.program,
        s.prog_id
    ))
}
