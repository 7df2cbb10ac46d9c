//! The Vault client against a three-node OpenBao Raft cluster whose leader is killed,
//! paused and (on docker) cut from the network while sixteen tasks read and write.
//!
//! Needs the cluster of `cargo xtask itest --cluster` (`services up --vault-nodes 3`); the
//! plain `cargo xtask itest` skips this module, since its single dev server is no cluster.
//!
//! Load: each task loops over (a) a write of a fresh key with check-and-set "absent",
//! (b) a check-and-set increment of one of four shared counters (read, then write `n+1`
//! at the version read; a conflict reads again), (c) a read of one of its own acknowledged
//! keys, which must give the exact value. Each written value is unique, so a write whose
//! outcome is unknown (`Unavailable`: it may have been applied) is resolved by reading back:
//! the check-and-set makes "was it mine?" answerable, which a blind write is not.
//!
//! After each fault: every acknowledged write is present with its exact value (0 lost),
//! every counter equals the increments acknowledged (or resolved as applied), no request
//! took longer than the request timeout plus the retry budget, every failure was
//! `Unavailable`, and the time from the fault to the first write that succeeded after it
//! is printed (docs/reliability.md quotes these lines).

// The figures go to stderr on purpose: `itest --cluster` runs with `--nocapture`.
#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use strongroom_core::{Error, ErrorKind, PutOptions, SecretName, SecretStore, SecretValue};
use strongroom_itests::ClusterEnv;
use strongroom_vault::{MetadataUpdate, NodeState, VaultClient, VaultStore, default_cluster_retry};

const TASKS: usize = 16;
const COUNTERS: usize = 4;
/// The client's time for one attempt (its default).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

fn key(path: &str) -> SecretName {
    SecretName::new(path).expect("valid key")
}

fn client(env: &ClusterEnv) -> VaultClient {
    VaultClient::builder()
        .address(env.nodes.join(","))
        .token(env.token.clone())
        .request_timeout(REQUEST_TIMEOUT)
        .build()
        .expect("cluster client")
}

fn store(env: &ClusterEnv) -> VaultStore {
    VaultStore::new(&client(env), &env.kv_mount).expect("store")
}

/// Everything one run of the load saw.
#[derive(Default)]
struct Record {
    requests: u64,
    /// Acknowledged fresh-key writes: key -> value.
    acked: BTreeMap<String, String>,
    /// Writes that ended `Unavailable` (outcome unknown): key -> value.
    unknown: BTreeMap<String, String>,
    /// Per counter: increments acknowledged.
    increments: [u64; COUNTERS],
    /// Increments that ended `Unavailable` and were resolved by reading back.
    resolved_applied: u64,
    resolved_not_applied: u64,
    conflicts: u64,
    /// Failures by kind; only `unavailable` is allowed.
    failures: BTreeMap<&'static str, u64>,
    examples: BTreeMap<&'static str, String>,
    max_latency: Duration,
    /// Reads of an acknowledged key that returned another value (must stay 0).
    stale_reads: u64,
}

impl Record {
    fn fail(&mut self, error: &Error) {
        let kind = error.kind().as_str();
        *self.failures.entry(kind).or_default() += 1;
        self.examples
            .entry(kind)
            .or_insert_with(|| error.to_string());
    }

    fn merge(&mut self, other: Record) {
        self.requests += other.requests;
        self.acked.extend(other.acked);
        self.unknown.extend(other.unknown);
        for (a, b) in self.increments.iter_mut().zip(other.increments) {
            *a += b;
        }
        self.resolved_applied += other.resolved_applied;
        self.resolved_not_applied += other.resolved_not_applied;
        self.conflicts += other.conflicts;
        for (kind, n) in other.failures {
            *self.failures.entry(kind).or_default() += n;
        }
        for (kind, e) in other.examples {
            self.examples.entry(kind).or_insert(e);
        }
        self.max_latency = self.max_latency.max(other.max_latency);
        self.stale_reads += other.stale_reads;
    }
}

/// Shared between the load and the fault driver: when the last fault happened and when the
/// first write that started after it succeeded (nanoseconds since `base`).
struct Clock {
    base: Instant,
    fault_at: AtomicU64,
    first_write_after: AtomicU64,
}

impl Clock {
    fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn fault(&self) {
        self.first_write_after.store(u64::MAX, Ordering::SeqCst);
        self.fault_at.store(self.now(), Ordering::SeqCst);
    }

    fn write_succeeded(&self, started: u64) {
        if started >= self.fault_at.load(Ordering::SeqCst) {
            self.first_write_after
                .fetch_min(self.now(), Ordering::SeqCst);
        }
    }

    /// Time from the last fault to the first write after it, once there is one.
    fn recovered(&self) -> Option<Duration> {
        let done = self.first_write_after.load(Ordering::SeqCst);
        (done != u64::MAX).then(|| {
            Duration::from_nanos(done.saturating_sub(self.fault_at.load(Ordering::SeqCst)))
        })
    }

    /// Waits (up to `limit`) for the first write after the last fault.
    async fn wait_recovered(&self, limit: Duration) -> Duration {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(took) = self.recovered() {
                return took;
            }
            assert!(
                Instant::now() < deadline,
                "no write succeeded within {limit:?} of the fault"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Times one call, keeping the slowest.
async fn timed<T>(
    record: &mut Record,
    call: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let start = Instant::now();
    let outcome = call.await;
    record.requests += 1;
    record.max_latency = record.max_latency.max(start.elapsed());
    outcome
}

/// Reads `name` until the cluster answers (or 60 s pass): for resolving unknown outcomes.
async fn read_back(
    store: &VaultStore,
    name: &SecretName,
) -> Result<strongroom_core::Secret, Error> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match store.get(name).await {
            Err(e) if e.kind() == ErrorKind::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => return other,
        }
    }
}

fn text(secret: &strongroom_core::Secret) -> String {
    secret.value.expose_str().expect("utf-8").to_owned()
}

/// One load task until `stop`.
async fn load_task(
    task: usize,
    prefix: String,
    store: VaultStore,
    stop: Arc<AtomicBool>,
    clock: Arc<Clock>,
) -> Record {
    let mut record = Record::default();
    let mut seq: u64 = 0;
    let mut own: Vec<(String, String)> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        seq += 1;
        // (a) a fresh key, check-and-set "absent".
        let path = format!("{prefix}/t{task}/k{seq}");
        let value = format!("v-{task}-{seq}-{}", clock.now());
        let started = clock.now();
        let outcome = timed(
            &mut record,
            store.put_with(
                &key(&path),
                SecretValue::from(value.as_str()),
                &PutOptions::default().if_absent(),
            ),
        )
        .await;
        match outcome {
            Ok(_) => {
                clock.write_succeeded(started);
                record.acked.insert(path.clone(), value.clone());
                own.push((path, value));
            }
            Err(e) => {
                record.fail(&e);
                if e.kind() == ErrorKind::Unavailable {
                    record.unknown.insert(path, value);
                }
            }
        }

        // (b) a check-and-set increment of a shared counter.
        let counter = (task + usize::try_from(seq).unwrap_or(0)) % COUNTERS;
        let name = key(&format!("{prefix}/counter{counter}"));
        loop {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let current = match timed(&mut record, store.get(&name)).await {
                Ok(secret) => Some(secret),
                Err(e) if e.kind() == ErrorKind::NotFound => None,
                Err(e) => {
                    record.fail(&e);
                    break;
                }
            };
            let n: u64 = current.as_ref().map_or(0, |s| {
                text(s)
                    .split(':')
                    .next()
                    .unwrap_or("0")
                    .parse()
                    .expect("counter")
            });
            let mine = format!("{}:{task}:{seq}", n + 1);
            let options = match &current {
                Some(s) => PutOptions::default().if_version(s.version.clone()),
                None => PutOptions::default().if_absent(),
            };
            let started = clock.now();
            let outcome = timed(
                &mut record,
                store.put_with(&name, SecretValue::from(mine.as_str()), &options),
            )
            .await;
            match outcome {
                Ok(_) => {
                    clock.write_succeeded(started);
                    record.increments[counter] += 1;
                    break;
                }
                Err(e) if e.kind() == ErrorKind::Conflict => {
                    record.conflicts += 1;
                }
                Err(e) => {
                    record.fail(&e);
                    if e.kind() == ErrorKind::Unavailable {
                        // Applied or not? Only one write can make the version after the one
                        // read, and only this task ever writes `mine`.
                        let next = current
                            .as_ref()
                            .map_or(Some(0), |s| s.version.as_u64())
                            .expect("numeric versions")
                            + 1;
                        if version_holds(&store, &name, next, &mine).await {
                            record.increments[counter] += 1;
                            record.resolved_applied += 1;
                        } else {
                            record.resolved_not_applied += 1;
                        }
                    }
                    break;
                }
            }
        }

        // (c) one of its own acknowledged keys, exactly.
        if let Some((path, value)) = own.get(usize::try_from(seq).unwrap_or(0) % own.len().max(1)) {
            match timed(&mut record, store.get(&key(path))).await {
                Ok(secret) if text(&secret) == *value => {}
                Ok(_) => record.stale_reads += 1,
                Err(e) => record.fail(&e),
            }
        }
    }
    record
}

/// Whether version `version` of `name` exists and holds `value` (asked until the cluster
/// answers).
async fn version_holds(store: &VaultStore, name: &SecretName, version: u64, value: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match store.get_version(name, &version.into()).await {
            Ok(secret) => return text(&secret) == value,
            Err(e) if e.kind() == ErrorKind::NotFound => return false,
            Err(e) if e.kind() == ErrorKind::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("reading version {version} back: {e}"),
        }
    }
}

/// The load, running until [`Load::finish`].
struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Record>>,
    clock: Arc<Clock>,
    prefix: String,
}

impl Load {
    async fn start(env: &ClusterEnv, name: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let clock = Arc::new(Clock {
            base: Instant::now(),
            fault_at: AtomicU64::new(u64::MAX),
            first_write_after: AtomicU64::new(u64::MAX),
        });
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let prefix = format!("cluster/{name}-{stamp}");
        // KV v2 keeps 10 versions by default: a counter moves on by more than that while an
        // unknown outcome waits for the election, and the version that would tell "was my
        // write applied" would be gone (a read-back said "not applied" for one that was).
        let kv = client(env).kv2(&env.kv_mount).unwrap();
        for c in 0..COUNTERS {
            let mut update = MetadataUpdate::default();
            update.max_versions = Some(1_000_000);
            kv.write_metadata(&format!("{prefix}/counter{c}"), &update)
                .await
                .expect("counter metadata");
        }
        // One client per task (each with its own pool and current node), as separate
        // application instances would be.
        let tasks = (0..TASKS)
            .map(|task| {
                tokio::spawn(load_task(
                    task,
                    prefix.clone(),
                    store(env),
                    Arc::clone(&stop),
                    Arc::clone(&clock),
                ))
            })
            .collect();
        Self {
            stop,
            tasks,
            clock,
            prefix,
        }
    }

    async fn finish(self) -> (Record, String) {
        self.stop.store(true, Ordering::SeqCst);
        let mut all = Record::default();
        for task in self.tasks {
            all.merge(task.await.expect("load task panicked"));
        }
        (all, self.prefix)
    }
}

/// The checks every fault must pass; prints the figures. Returns the lost count (0).
async fn verify(
    env: &ClusterEnv,
    fault: &str,
    record: &Record,
    prefix: &str,
    recover: &[Duration],
) {
    let store = store(env);
    let mut lost = Vec::new();
    for (path, value) in &record.acked {
        match read_back(&store, &key(path)).await {
            Ok(secret) if text(&secret) == *value => {}
            Ok(_) => lost.push(format!("{path}: another value")),
            Err(e) => lost.push(format!("{path}: {e}")),
        }
    }
    let mut unknown_applied = 0;
    for (path, value) in &record.unknown {
        if let Ok(secret) = read_back(&store, &key(path)).await {
            assert_eq!(text(&secret), *value, "{path}: a value nobody wrote");
            unknown_applied += 1;
        }
    }
    let mut counters = Vec::new();
    for (c, expected) in record.increments.iter().enumerate() {
        let name = key(&format!("{prefix}/counter{c}"));
        let n: u64 = match read_back(&store, &name).await {
            Ok(secret) => text(&secret).split(':').next().unwrap().parse().unwrap(),
            Err(e) if e.kind() == ErrorKind::NotFound => 0,
            Err(e) => panic!("counter {c}: {e}"),
        };
        counters.push((n, *expected));
    }
    let failures: u64 = record.failures.values().sum();
    let (min, max) = (
        recover.iter().min().copied().unwrap_or_default(),
        recover.iter().max().copied().unwrap_or_default(),
    );
    eprintln!(
        "cluster fault {fault}: requests {} | acknowledged writes {} | lost {} | unknown outcome {} \
         ({} applied) | counter increments {} (resolved applied {}, not applied {}) | conflicts {} \
         | failures {failures} {:?} | max latency {:.2}s | time to recover {}",
        record.requests,
        record.acked.len() as u64 + record.increments.iter().sum::<u64>(),
        lost.len(),
        record.unknown.len(),
        unknown_applied,
        record.increments.iter().sum::<u64>(),
        record.resolved_applied,
        record.resolved_not_applied,
        record.conflicts,
        record.failures,
        record.max_latency.as_secs_f64(),
        if recover.len() == 1 {
            format!("{:.2}s", min.as_secs_f64())
        } else {
            format!(
                "{:.2}s..{:.2}s over {} faults",
                min.as_secs_f64(),
                max.as_secs_f64(),
                recover.len()
            )
        }
    );
    assert!(
        lost.is_empty(),
        "{fault}: acknowledged writes lost: {lost:?}"
    );
    for (c, (n, expected)) in counters.iter().enumerate() {
        assert_eq!(
            n, expected,
            "{fault}: counter {c} is {n}, acknowledged increments {expected}"
        );
    }
    assert_eq!(
        record.stale_reads, 0,
        "{fault}: a read of an acknowledged key gave another value"
    );
    for kind in record.failures.keys() {
        assert_eq!(
            *kind, "unavailable",
            "{fault}: a failure that is not Unavailable: {:?}",
            record.examples
        );
    }
    let budget = REQUEST_TIMEOUT + default_cluster_retry().max_total;
    assert!(
        record.max_latency <= budget,
        "{fault}: a request took {:?}, over the timeout plus the retry budget {budget:?}",
        record.max_latency
    );
    assert!(!record.acked.is_empty(), "{fault}: the load wrote nothing");
}

/// Waits until every node serves (active or standby) and a write through the cluster
/// succeeds. Not "exactly one active": a leader that was paused and resumed is stepped down
/// by Raft at once, but OpenBao 2.7.2's `sys/health` on it says active (200) for minutes
/// after (see docs/reliability.md); what matters is that it acknowledges nothing.
async fn wait_settled(env: &ClusterEnv) {
    let client = client(env);
    let store = VaultStore::new(&client, &env.kv_mount).unwrap();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(120);
    loop {
        let health = client.node_health().await;
        let serving = health.iter().all(|n| n.state.serving());
        if serving
            && store
                .put(&key("cluster/settled"), SecretValue::from("yes"))
                .await
                .is_ok()
        {
            if health
                .iter()
                .filter(|n| n.state == NodeState::Active)
                .count()
                > 1
            {
                eprintln!("cluster: more than one node says active: {health:?}");
            }
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the cluster did not settle: {health:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Check-and-set writes of fresh keys sent to each node alone (no failover), the stale
/// leader included: whatever one of them acknowledges must be in the cluster afterwards.
async fn write_to_each_node(env: &ClusterEnv, prefix: &str, record: &mut Record) {
    for (i, node) in env.nodes.iter().enumerate() {
        let single = VaultClient::builder()
            .address(node.clone())
            .token(env.token.clone())
            .build()
            .unwrap();
        let store = VaultStore::new(&single, &env.kv_mount).unwrap();
        for n in 0..5 {
            let path = format!("{prefix}/direct/n{i}-{n}");
            let value = format!("direct-{i}-{n}");
            let outcome = timed(
                record,
                store.put_with(
                    &key(&path),
                    SecretValue::from(value.as_str()),
                    &PutOptions::default().if_absent(),
                ),
            )
            .await;
            match outcome {
                Ok(_) => {
                    record.acked.insert(path, value);
                }
                Err(e) => {
                    record.fail(&e);
                    record.unknown.insert(path, value);
                }
            }
        }
    }
}

/// Restarts a leader that was paused or cut off and came back. OpenBao 2.7.2 keeps such a
/// node in active operation after Raft stepped it down (its `sys/health` says 200, and it
/// logs "leadership lost" only at shutdown); when it later wins an election again it never
/// re-runs its active setup and the cluster takes no write (seen: over a minute, until the
/// node was stopped). Restarting it is the operator's cure; docs/reliability.md has the
/// details. Acknowledged writes are checked after this, so a zombie that acknowledged
/// anything would still show as lost.
async fn heal(env: &ClusterEnv, node: &str) {
    env.fault("kill", node);
    env.fault("restart", node);
    wait_settled(env).await;
}

/// Kill the leader, wait for a write through the others, restart it.
async fn kill_leader(env: &ClusterEnv, clock: &Clock) -> Duration {
    clock.fault();
    let node = env.fault("kill", "leader");
    clock.fault();
    let took = clock.wait_recovered(Duration::from_secs(60)).await;
    env.fault("restart", &node);
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_under_load_lose_nothing() {
    let env = ClusterEnv::load();
    eprintln!(
        "cluster: {} nodes, {} runtime, {} leader kills",
        env.nodes.len(),
        env.runtime,
        env.loops
    );

    // 1. SIGKILL the leader, restart it.
    wait_settled(&env).await;
    let load = Load::start(&env, "kill").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let took = kill_leader(&env, &load.clock).await;
    wait_settled(&env).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (record, prefix) = load.finish().await;
    verify(
        &env,
        "kill leader (SIGKILL) + restart",
        &record,
        &prefix,
        &[took],
    )
    .await;

    // 2. Leader kills in a row under one continuous load.
    wait_settled(&env).await;
    let load = Load::start(&env, "kills").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut recoveries = Vec::new();
    for round in 0..env.loops {
        let took = kill_leader(&env, &load.clock).await;
        eprintln!(
            "cluster: leader kill {} of {}: recovered in {:.2}s",
            round + 1,
            env.loops,
            took.as_secs_f64()
        );
        recoveries.push(took);
        wait_settled(&env).await;
    }
    let (record, prefix) = load.finish().await;
    verify(
        &env,
        &format!("{} leader kills in a row", env.loops),
        &record,
        &prefix,
        &recoveries,
    )
    .await;
    // 3. Pause the leader past the election timeout, then resume it: once resumed it is a
    //    stale leader and must not acknowledge anything.
    wait_settled(&env).await;
    let load = Load::start(&env, "pause").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    load.clock.fault();
    let node = env.fault("pause", "leader");
    load.clock.fault();
    let took = load.clock.wait_recovered(Duration::from_secs(60)).await;
    // Past the election timeout for sure, whatever the first write's luck.
    tokio::time::sleep(Duration::from_secs(2)).await;
    env.fault("resume", &node);
    let mut direct = Record::default();
    write_to_each_node(&env, &load.prefix, &mut direct).await;
    wait_settled(&env).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (mut record, prefix) = load.finish().await;
    record.merge(direct);
    heal(&env, &node).await;
    verify(
        &env,
        "pause leader (SIGSTOP) + resume",
        &record,
        &prefix,
        &[took],
    )
    .await;

    // 4. Docker only: a real partition of the leader.
    if env.runtime == "docker" {
        wait_settled(&env).await;
        let load = Load::start(&env, "partition").await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        load.clock.fault();
        let node = env.fault("disconnect", "leader");
        load.clock.fault();
        let took = load.clock.wait_recovered(Duration::from_secs(60)).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        env.fault("connect", &node);
        let mut direct = Record::default();
        write_to_each_node(&env, &load.prefix, &mut direct).await;
        wait_settled(&env).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (mut record, prefix) = load.finish().await;
        record.merge(direct);
        heal(&env, &node).await;
        verify(
            &env,
            "partition leader (network disconnect) + reconnect",
            &record,
            &prefix,
            &[took],
        )
        .await;
    }
}

// Named to sort first: `itest --cluster` runs one test at a time, in name order, and this
// one wants the fresh cluster, before any fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_address_serves_and_every_node_is_reported() {
    let env = ClusterEnv::load();
    wait_settled(&env).await;
    let health = client(&env).node_health().await;
    assert_eq!(health.len(), env.nodes.len());
    assert_eq!(
        health
            .iter()
            .filter(|n| n.state == NodeState::Active)
            .count(),
        1,
        "{health:?}"
    );
    assert!(health.iter().all(|n| n.state.serving()), "{health:?}");
    assert_eq!(health.iter().filter(|n| n.current).count(), 1, "{health:?}");
    // Each node alone takes a write (standbys forward it to the active node); the cluster
    // then has it.
    let cluster = store(&env);
    for node in &env.nodes {
        let single = VaultClient::builder()
            .address(node.clone())
            .token(env.token.clone())
            .build()
            .unwrap();
        let store = VaultStore::new(&single, &env.kv_mount).unwrap();
        let name = key(&format!(
            "cluster/each/{}",
            node.rsplit(':').next().unwrap()
        ));
        store
            .put(&name, SecretValue::from(node.as_str()))
            .await
            .unwrap();
        assert_eq!(text(&cluster.get(&name).await.unwrap()), *node);
    }

    // The facade's health (and so the agent's /health) reports every node through the
    // store, the cache and the scope.
    let secrets = strongroom_facade::Secrets::builder()
        .store(strongroom_core::Scoped::with_scope(
            store(&env),
            strongroom_core::Scope::new("cluster/health").unwrap(),
        ))
        .build()
        .unwrap();
    let report = secrets.health().await;
    assert!(report.is_healthy(), "{report:?}");
    assert_eq!(report.nodes.len(), env.nodes.len(), "{report:?}");
    assert_eq!(
        report.nodes.iter().filter(|n| n.state == "active").count(),
        1,
        "{report:?}"
    );
    assert!(report.nodes.iter().all(|n| n.serving), "{report:?}");
    assert!(
        report.nodes.iter().all(|n| env.nodes.contains(&n.address)),
        "{report:?}"
    );
}
