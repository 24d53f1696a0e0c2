//! A cluster across hosts: three `nats-server` nodes in a JetStream cluster (stream
//! replicas 3), each in its own network namespace joined to a bridge by a veth pair; two
//! producers and the store writer in namespaces of their own. One node's link goes down in
//! the middle of the run and comes back: the store holds exactly the events sent.
//!
//! Needs root (network namespaces) and `ip` (iproute2); skipped with a note where
//! namespaces cannot be created (a failure with `AGENTBUS_REQUIRE_SERVICES=1`, as in CI).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agentbus_nats::{Bridge, NatsOptions, Node, StreamSettings};
use agentbus_store::{EventQuery, EventStore};

/// Runs `ip ARGS`, panicking with its stderr on failure.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("running ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A bridge in this namespace and one namespace per host, each joined to the bridge by a
/// veth pair; everything is removed when dropped.
struct Net {
    bridge: String,
    hosts: Vec<Host>,
    children: Vec<Child>,
}

struct Host {
    ns: String,
    /// The bridge-side end of the host's veth pair (down = the host's link is cut).
    outside: String,
    addr: String,
}

impl Net {
    /// `None` when namespaces cannot be created here (not root, no `ip`).
    fn create(count: usize) -> Option<Self> {
        let tag = format!("{:04x}", std::process::id() & 0xffff);
        let probe = format!("ab{tag}p");
        let created = Command::new("ip")
            .args(["netns", "add", &probe])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !created {
            return None;
        }
        ip(&["netns", "del", &probe]);
        let subnet = std::process::id() % 200 + 20;
        let mut net = Net {
            bridge: format!("ab{tag}br"),
            hosts: Vec::new(),
            children: Vec::new(),
        };
        ip(&["link", "add", &net.bridge, "type", "bridge"]);
        ip(&[
            "addr",
            "add",
            &format!("10.77.{subnet}.254/24"),
            "dev",
            &net.bridge,
        ]);
        ip(&["link", "set", &net.bridge, "up"]);
        for i in 0..count {
            let host = Host {
                ns: format!("ab{tag}h{i}"),
                outside: format!("ab{tag}v{i}"),
                addr: format!("10.77.{subnet}.{}", i + 1),
            };
            let inside = format!("ab{tag}i{i}");
            ip(&["netns", "add", &host.ns]);
            ip(&[
                "link",
                "add",
                &host.outside,
                "type",
                "veth",
                "peer",
                "name",
                &inside,
            ]);
            ip(&["link", "set", &inside, "netns", &host.ns]);
            ip(&["link", "set", &host.outside, "master", &net.bridge]);
            ip(&["link", "set", &host.outside, "up"]);
            ip(&[
                "-n",
                &host.ns,
                "addr",
                "add",
                &format!("{}/24", host.addr),
                "dev",
                &inside,
            ]);
            ip(&["-n", &host.ns, "link", "set", &inside, "up"]);
            ip(&["-n", &host.ns, "link", "set", "lo", "up"]);
            net.hosts.push(host);
        }
        Some(net)
    }

    /// Starts `program args` inside host `i`'s namespace.
    fn spawn(&mut self, i: usize, program: &Path, args: &[String], stderr: Stdio) -> usize {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.hosts[i].ns])
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("starting a process in a namespace");
        self.children.push(child);
        self.children.len() - 1
    }

    fn link(&self, i: usize, up: bool) {
        ip(&[
            "link",
            "set",
            &self.hosts[i].outside,
            if up { "up" } else { "down" },
        ]);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for host in &self.hosts {
            let _ = Command::new("ip").args(["netns", "del", &host.ns]).status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
    }
}

fn nats_server() -> PathBuf {
    agentbus_nats::server::server_binary()
        .expect("this test needs nats-server (Debian: apt-get install nats-server)")
}

#[test]
fn a_three_node_cluster_survives_a_link_going_down_mid_run() {
    const SERVERS: usize = 3;
    const N: usize = 10_000;
    let net = Net::create(SERVERS + 3);
    let probe = match &net {
        Some(_) => Ok(()),
        None => Err("`ip netns add` failed".to_owned()),
    };
    if !agentbus_test_support::services::available(
        "network namespaces",
        probe,
        "run as root with iproute2 installed",
    ) {
        return;
    }
    let Some(mut net) = net else { return };
    let dir = tempfile::tempdir().unwrap();
    let routes: Vec<String> = net.hosts[..SERVERS]
        .iter()
        .map(|h| format!("nats://{}:6222", h.addr))
        .collect();
    for i in 0..SERVERS {
        let addr = net.hosts[i].addr.clone();
        let args: Vec<String> = [
            "-js",
            "-a",
            &addr,
            "-p",
            "4222",
            "-n",
            &format!("node-{i}"),
            "-sd",
            &dir.path().join(format!("node-{i}")).display().to_string(),
            "--cluster_name",
            "agentbus",
            "--cluster",
            &format!("nats://{addr}:6222"),
            "--routes",
            &routes.join(","),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        net.spawn(i, &nats_server(), &args, Stdio::null());
    }
    let urls: String = net.hosts[..SERVERS]
        .iter()
        .map(|h| format!("nats://{}:4222", h.addr))
        .collect::<Vec<_>>()
        .join(",");

    // The stream with three replicas, once the cluster has elected its JetStream leader.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let settings = StreamSettings::default().replicas(3);
    let start = Instant::now();
    loop {
        let connected = runtime.block_on(Bridge::connect_with(
            &NatsOptions::new(&urls),
            &settings,
            Node::new(),
        ));
        match connected {
            Ok(_) => break,
            Err(error) if start.elapsed() < Duration::from_secs(30) => {
                eprintln!("waiting for the cluster: {error}");
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(error) => panic!("the cluster did not come up: {error}"),
        }
    }

    let exe = PathBuf::from(env!("CARGO_BIN_EXE_agentbus"));
    let store = format!("sqlite://{}", dir.path().join("store.db").display());
    let writer_args: Vec<String> = [
        "store-writer",
        "--nats",
        &urls,
        "--store",
        &store,
        "--ack-wait",
        "3",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    net.spawn(SERVERS, &exe, &writer_args, Stdio::inherit());
    let mut producers = Vec::new();
    for p in 0..2 {
        let ids = dir.path().join(format!("p{p}.ids"));
        let args: Vec<String> = [
            "bench",
            "nats-producer",
            "--nats",
            &urls,
            "--session",
            &format!("cluster-{p}"),
            "--count",
            &N.to_string(),
            "--rate",
            "4000",
            "--ids",
            &ids.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        producers.push((
            net.spawn(SERVERS + 1 + p, &exe, &args, Stdio::inherit()),
            ids,
        ));
    }

    // Mid-run: node 0's link goes down for 3 s, then comes back.
    std::thread::sleep(Duration::from_millis(1200));
    net.link(0, false);
    std::thread::sleep(Duration::from_secs(3));
    net.link(0, true);

    for (index, _) in &producers {
        let status = net.children[*index].wait().unwrap();
        assert!(status.success(), "a producer failed: {status}");
    }
    let mut sent = Vec::new();
    for (p, (_, ids)) in producers.iter().enumerate() {
        let ids: Vec<String> = std::fs::read_to_string(ids)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(ids.len(), N);
        sent.push((format!("cluster-{p}"), ids));
    }
    let start = Instant::now();
    let opened = loop {
        if let Ok(s) = EventStore::open(&store)
            && s.count().unwrap_or(0) >= 2 * N as u64
        {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the store did not fill"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    std::thread::sleep(Duration::from_secs(4)); // room for a wrong redelivery to land
    assert_eq!(opened.count().unwrap(), 2 * N as u64, "nothing twice");
    let mut all = HashSet::new();
    for (session, ids) in &sent {
        let stored: Vec<String> = opened
            .events(&EventQuery::session(session.clone()))
            .unwrap()
            .into_iter()
            .map(|e| e.row.event_id)
            .collect();
        assert_eq!(&stored, ids, "{session}: every event once, in order");
        all.extend(stored);
    }
    assert_eq!(all.len(), 2 * N);
}
