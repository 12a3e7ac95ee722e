//! The family tree of a snapshot and the filters that keep it readable: a match is shown
//! with its ancestors and descendants (procs #181, htop #76), a `--pid` with its subtree and,
//! on request, the chain above it. Built from a pid map, so a missing parent makes a root and
//! a cycle (pid reuse between two reads) cannot loop.

use std::collections::HashMap;

use crate::read::Process;

/// Parent and children links between the processes of a snapshot (indexes into it).
#[derive(Debug)]
pub struct Forest {
    parent: Vec<Option<usize>>,
    children: Vec<Vec<usize>>,
}

impl Forest {
    /// Links `processes`, which are ordered by pid, so every child list is too.
    pub fn new(processes: &[Process]) -> Self {
        let index: HashMap<u32, usize> = processes
            .iter()
            .enumerate()
            .map(|(i, p)| (p.stat.pid, i))
            .collect();
        let mut parent: Vec<Option<usize>> = processes
            .iter()
            .map(|p| {
                if p.stat.ppid == p.stat.pid {
                    None
                } else {
                    index.get(&p.stat.ppid).copied()
                }
            })
            .collect();
        break_cycles(&mut parent);
        let mut children = vec![Vec::new(); processes.len()];
        for (i, up) in parent.iter().enumerate() {
            if let Some(up) = up {
                children[*up].push(i);
            }
        }
        Self { parent, children }
    }

    /// Marks `i` and everything below it.
    fn mark_subtree(&self, i: usize, marks: &mut [bool]) {
        let mut stack = vec![i];
        while let Some(i) = stack.pop() {
            marks[i] = true;
            stack.extend_from_slice(&self.children[i]);
        }
    }

    /// Marks the ancestors of `i`, stopping early at one already marked.
    fn mark_ancestors(&self, mut i: usize, marks: &mut [bool]) {
        while let Some(up) = self.parent[i] {
            if marks[up] {
                break;
            }
            marks[up] = true;
            i = up;
        }
    }

    /// Whether `i` has a child that is shown.
    pub fn has_shown_children(&self, i: usize, shown: &[bool]) -> bool {
        self.children[i].iter().any(|&c| shown[c])
    }

    /// Visits the `shown` processes depth first, children by pid, as the lines of the tree.
    pub fn walk(&self, shown: &[bool], mut visit: impl FnMut(Visit<'_>)) {
        // Each stack entry is a process and whether it is its parent's last shown child.
        let mut stack: Vec<(usize, u32, bool)> = Vec::new();
        let mut lasts: Vec<bool> = Vec::new();
        let push_children = |stack: &mut Vec<(usize, u32, bool)>, list: &[usize], depth: u32| {
            let mut last = true;
            for &child in list.iter().rev().filter(|&&c| shown[c]) {
                stack.push((child, depth, last));
                last = false;
            }
        };
        // A shown process whose parent is hidden starts a tree of its own.
        let tops: Vec<usize> = (0..shown.len())
            .filter(|&i| shown[i] && self.parent[i].is_none_or(|up| !shown[up]))
            .collect();
        push_children(&mut stack, &tops, 0);
        while let Some((i, depth, last)) = stack.pop() {
            let depth_index = depth as usize;
            lasts.truncate(depth_index.saturating_sub(1));
            if depth > 0 {
                lasts.push(last);
            }
            visit(Visit {
                index: i,
                depth,
                lasts: &lasts,
            });
            push_children(&mut stack, &self.children[i], depth + 1);
        }
    }
}

/// One line of the tree.
#[derive(Debug)]
pub struct Visit<'a> {
    pub index: usize,
    pub depth: u32,
    /// For each level from 1 to `depth`: whether the process's ancestor at that level (the
    /// process itself at the last) is the last shown child of its parent.
    pub lasts: &'a [bool],
}

/// Cuts the parent link of one process on each cycle, making it a root.
fn break_cycles(parent: &mut [Option<usize>]) {
    // 0: not seen, 1: on the current path, 2: done.
    let mut seen = vec![0u8; parent.len()];
    for start in 0..parent.len() {
        let mut path = Vec::new();
        let mut i = start;
        loop {
            match seen[i] {
                2 => break,
                1 => {
                    parent[i] = None;
                    break;
                }
                _ => {}
            }
            seen[i] = 1;
            path.push(i);
            match parent[i] {
                Some(up) => i = up,
                None => break,
            }
        }
        for i in path {
            seen[i] = 2;
        }
    }
}

/// What to show.
#[derive(Debug, Default)]
pub struct Filter {
    /// Show these processes and their descendants (and nothing else).
    pub pids: Vec<u32>,
    /// Show these processes alone, without their descendants: ps's `-p`, which `-p` is with
    /// `-o`. Together with `pids`, what either takes.
    pub alone: Vec<u32>,
    /// With `pids`: also the chain of their ancestors.
    pub ancestors: bool,
    /// Match processes of these effective uids; `None`: of any. Empty when every --user
    /// named was unknown: then nothing matches.
    pub uids: Option<Vec<u32>>,
    /// Match processes whose name matches one of these globs.
    pub names: Vec<Glob>,
    /// Hide kernel threads.
    pub hide_kthreads: bool,
}

impl Filter {
    fn matches(&self, process: &Process) -> bool {
        (self
            .uids
            .as_ref()
            .is_none_or(|uids| process.uid.is_some_and(|uid| uids.contains(&uid))))
            && (self.names.is_empty() || self.names.iter().any(|g| name_matches(g, process)))
    }

    pub fn has_predicates(&self) -> bool {
        self.uids.is_some() || !self.names.is_empty()
    }
}

/// The names a process goes by: its comm, and the base name of its argv[0] (comm is cut to
/// 15 bytes; `ansible-playbook` is `ansible-playboo` there).
fn name_matches(glob: &Glob, process: &Process) -> bool {
    if glob.matches(&process.stat.comm) {
        return true;
    }
    process.args.first().is_some_and(|arg0| {
        let base = arg0.rsplit(|&b| b == b'/').next().unwrap_or(arg0);
        glob.matches(base)
    })
}

/// What a filter selected.
#[derive(Debug)]
pub struct Selection {
    /// Printed: matches and their context.
    pub shown: Vec<bool>,
    /// Matched the predicates (`--user`, `--name`) themselves.
    pub matched: Vec<bool>,
}

/// Applies `filter`; `pids` that name no process are returned for a warning.
pub fn select(forest: &Forest, processes: &[Process], filter: &Filter) -> (Selection, Vec<u32>) {
    let n = processes.len();
    let mut missing = Vec::new();
    let mut scope = vec![filter.pids.is_empty() && filter.alone.is_empty(); n];
    let mut roots = Vec::new();
    let subtrees = filter.pids.iter().map(|&pid| (pid, true));
    for (pid, subtree) in subtrees.chain(filter.alone.iter().map(|&pid| (pid, false))) {
        match processes.binary_search_by_key(&pid, |p| p.stat.pid) {
            Ok(i) if subtree => {
                forest.mark_subtree(i, &mut scope);
                roots.push(i);
            }
            Ok(i) => {
                scope[i] = true;
                roots.push(i);
            }
            Err(_) => missing.push(pid),
        }
    }
    let visible = |i: usize| scope[i] && !(filter.hide_kthreads && processes[i].stat.is_kthread());
    let matched: Vec<bool> = (0..n)
        .map(|i| visible(i) && filter.matches(&processes[i]))
        .collect();
    let mut shown = matched.clone();
    if filter.has_predicates() {
        let mut context = vec![false; n];
        for i in (0..n).filter(|&i| matched[i]) {
            forest.mark_subtree(i, &mut context);
            forest.mark_ancestors(i, &mut context);
        }
        for i in 0..n {
            // Ancestors stay inside the --pid subtree, whose root has no ancestors marked.
            shown[i] |= context[i] && visible(i);
        }
    }
    if filter.ancestors {
        for &root in &roots {
            if shown[root] {
                forest.mark_ancestors(root, &mut shown);
            }
        }
    }
    (Selection { shown, matched }, missing)
}

/// A shell-style pattern over bytes: `*` any run, `?` any one byte, anything else itself.
/// It must match the whole name.
#[derive(Debug, Clone)]
pub struct Glob(Vec<u8>);

impl Glob {
    pub fn new(pattern: &str) -> Self {
        Self(pattern.as_bytes().to_vec())
    }

    pub fn matches(&self, name: &[u8]) -> bool {
        let pattern = &self.0;
        let (mut p, mut n) = (0, 0);
        // Where the last `*` was, and the name position it now stands for.
        let mut star: Option<(usize, usize)> = None;
        while n < name.len() {
            match pattern.get(p) {
                Some(b'*') => {
                    star = Some((p, n));
                    p += 1;
                }
                Some(&c) if c == b'?' || c == name[n] => {
                    p += 1;
                    n += 1;
                }
                _ => match star {
                    Some((sp, sn)) => {
                        p = sp + 1;
                        n = sn + 1;
                        star = Some((sp, sn + 1));
                    }
                    None => return false,
                },
            }
        }
        pattern[p..].iter().all(|&c| c == b'*')
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::Exe;
    use crate::stat::Stat;

    fn process(pid: u32, ppid: u32, comm: &str, uid: u32) -> Process {
        Process {
            stat: Stat {
                pid,
                ppid,
                comm: comm.as_bytes().to_vec(),
                ..Stat::default()
            },
            uid: Some(uid),
            gid: None,
            locked: false,
            rss_kib: None,
            args: vec![format!("/usr/bin/{comm}").into_bytes()],
            exe: Exe::NotRead,
            tasks: Vec::new(),
        }
    }

    /// 1 init ─┬─ 10 sshd ── 11 sshd ── 12 bash ── 13 vim
    ///         └─ 20 cron ── 21 sh
    /// 30 orphan (parent 99 is not there); 40 and 41 name each other as parent.
    fn sample() -> Vec<Process> {
        vec![
            process(1, 0, "init", 0),
            process(10, 1, "sshd", 0),
            process(11, 10, "sshd", 0),
            process(12, 11, "bash", 1000),
            process(13, 12, "vim", 1000),
            process(20, 1, "cron", 0),
            process(21, 20, "sh", 1000),
            process(30, 99, "orphan", 0),
            process(40, 41, "loop-a", 0),
            process(41, 40, "loop-b", 0),
        ]
    }

    /// The walk as `depth:pid` with the drawing flags.
    fn lines(processes: &[Process], filter: &Filter) -> Vec<String> {
        let forest = Forest::new(processes);
        let (selection, _) = select(&forest, processes, filter);
        let mut out = Vec::new();
        forest.walk(&selection.shown, |v| {
            let flags: String = v.lasts.iter().map(|&l| if l { 'L' } else { '|' }).collect();
            let mark = if selection.matched[v.index] { "" } else { "~" };
            out.push(format!("{flags}{}{mark}", processes[v.index].stat.pid));
        });
        out
    }

    #[test]
    fn the_whole_tree_with_orphans_and_cycles_as_roots() {
        let got = lines(&sample(), &Filter::default());
        assert_eq!(
            got,
            [
                "1", "|10", "|L11", "|LL12", "|LLL13", "L20", "LL21", "30", "40", "L41"
            ]
        );
    }

    #[test]
    fn a_subtree_and_its_ancestors() {
        let filter = Filter {
            pids: vec![11, 77],
            ..Filter::default()
        };
        assert_eq!(lines(&sample(), &filter), ["11", "L12", "LL13"]);
        let filter = Filter {
            pids: vec![11],
            ancestors: true,
            ..Filter::default()
        };
        assert_eq!(
            lines(&sample(), &filter),
            ["1~", "L10~", "LL11", "LLL12", "LLLL13"]
        );
        let forest = Forest::new(&sample());
        assert_eq!(select(&forest, &sample(), &filter).1, Vec::<u32>::new());
        let filter = Filter {
            pids: vec![77],
            ..Filter::default()
        };
        assert_eq!(select(&forest, &sample(), &filter).1, [77]);
    }

    #[test]
    fn processes_alone_beside_a_subtree() {
        let filter = Filter {
            alone: vec![12, 21, 77],
            ..Filter::default()
        };
        assert_eq!(lines(&sample(), &filter), ["12", "21"]);
        let forest = Forest::new(&sample());
        assert_eq!(select(&forest, &sample(), &filter).1, [77]);
        let filter = Filter {
            pids: vec![20],
            alone: vec![12],
            ..Filter::default()
        };
        assert_eq!(lines(&sample(), &filter), ["12", "20", "L21"]);
        let filter = Filter {
            alone: vec![12],
            ancestors: true,
            ..Filter::default()
        };
        assert_eq!(lines(&sample(), &filter), ["1~", "L10~", "LL11~", "LLL12"]);
    }

    #[test]
    fn a_name_keeps_ancestors_and_descendants() {
        let filter = Filter {
            names: vec![Glob::new("bash")],
            ..Filter::default()
        };
        assert_eq!(
            lines(&sample(), &filter),
            ["1~", "L10~", "LL11~", "LLL12", "LLLL13~"]
        );
    }

    #[test]
    fn a_user_inside_a_subtree() {
        let filter = Filter {
            pids: vec![20],
            uids: Some(vec![1000]),
            ..Filter::default()
        };
        assert_eq!(lines(&sample(), &filter), ["20~", "L21"]);
    }

    #[test]
    fn unknown_users_alone_match_nothing() {
        let filter = Filter {
            uids: Some(Vec::new()),
            ..Filter::default()
        };
        assert!(lines(&sample(), &filter).is_empty());
    }

    #[test]
    fn globs() {
        let cases: &[(&str, &[u8], bool)] = &[
            ("sshd", b"sshd", true),
            ("sshd", b"sshd-session", false),
            ("ssh*", b"sshd-session", true),
            ("*d", b"sshd", true),
            ("s?d", b"sed", true),
            ("s?d", b"sd", false),
            ("*a*b*", b"xxaxxbxx", true),
            ("*a*b", b"abab", true),
            ("*", b"", true),
            ("x) (y", b"x) (y", true),
            ("", b"a", false),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(
                Glob::new(pattern).matches(name),
                *expected,
                "{pattern} {name:?}"
            );
        }
    }
}
