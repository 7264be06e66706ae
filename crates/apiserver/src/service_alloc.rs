//! Service ClusterIP and NodePort allocation, where upstream does it: in the API server's
//! service registry, on create, update and delete, with the allocator state kept in the store
//! (`/registry/ranges/serviceips`, `/registry/ranges/servicenodeports`, each a `RangeAllocation`
//! whose `data` is a bitmap). Every change to a bitmap is a compare-and-swap on the key's
//! revision, so API servers sharing a store never hand out the same address or port.
//!
//! As upstream's allocators: dynamic allocation picks at random from the upper part of the
//! range first, keeping a lower band (up to 256 addresses, 128 ports) for addresses and ports
//! that users ask for by value (`kube-dns` at `10.96.0.10`); the network and broadcast
//! addresses are never handed out; a failed create gives back what it took.

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use ferrokube_api::{ApiError, FieldError};
use ferrokube_store::{Backend, Revision};
use parking_lot::Mutex;
use rand::Rng;
use serde_json::{Value, json};

pub const SERVICE_IPS_KEY: &str = "/registry/ranges/serviceips";
pub const NODE_PORTS_KEY: &str = "/registry/ranges/servicenodeports";

/// The service network settings of an API server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceNetwork {
    /// `--service-cluster-ip-range`.
    pub cluster_ip_range: String,
    /// `--service-node-port-range`, inclusive.
    pub node_port_range: (u16, u16),
}

impl Default for ServiceNetwork {
    fn default() -> Self {
        ServiceNetwork {
            cluster_ip_range: "10.96.0.0/12".into(),
            node_port_range: (30000, 32767),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid service cluster IP range {0:?}: {1}")]
    InvalidRange(String, String),
}

/// Why an allocation failed; the texts are upstream's allocator errors.
#[derive(Debug)]
pub enum AllocError {
    Allocated,
    NotInRange,
    Full,
    Store(ferrokube_store::Error),
}

/// An IPv4 or IPv6 CIDR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub base: u128,
    pub prefix: u8,
    pub v6: bool,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, Error> {
        let bad = |why: &str| Error::InvalidRange(s.to_string(), why.to_string());
        let (ip, prefix) = s.split_once('/').ok_or_else(|| bad("not a CIDR"))?;
        let ip: IpAddr = ip.parse().map_err(|_| bad("not an IP address"))?;
        let prefix: u8 = prefix.parse().map_err(|_| bad("not a prefix length"))?;
        let (v, bits, v6) = match ip {
            IpAddr::V4(a) => (u128::from(u32::from(a)), 32u8, false),
            IpAddr::V6(a) => (u128::from(a), 128u8, true),
        };
        if prefix > bits {
            return Err(bad("prefix too long"));
        }
        let host_bits = u32::from(bits - prefix);
        let mask = if host_bits >= 128 {
            0
        } else {
            !((1u128 << host_bits) - 1)
        };
        Ok(Cidr {
            base: v & mask,
            prefix,
            v6,
        })
    }

    fn bits(&self) -> u8 {
        if self.v6 { 128 } else { 32 }
    }

    /// The number of addresses in the CIDR, capped at 2^64.
    pub fn size(&self) -> u128 {
        let host = u32::from(self.bits() - self.prefix);
        if host >= 64 {
            1u128 << 64
        } else {
            1u128 << host
        }
    }

    pub fn addr(&self, v: u128) -> IpAddr {
        if self.v6 {
            IpAddr::V6(v.into())
        } else {
            IpAddr::V4((v as u32).into())
        }
    }

    pub fn value_of(ip: &IpAddr) -> u128 {
        match ip {
            IpAddr::V4(a) => u128::from(u32::from(*a)),
            IpAddr::V6(a) => u128::from(*a),
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr(self.base), self.prefix)
    }
}

/// A fixed-size bit set, serialized as upstream's `big.Int.Bytes()` (big-endian, no leading
/// zero bytes; bit i is item i).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bitmap {
    words: Vec<u64>,
    size: u64,
}

impl Bitmap {
    pub fn new(size: u64) -> Self {
        Bitmap {
            words: vec![0; size.div_ceil(64) as usize],
            size,
        }
    }

    pub fn get(&self, i: u64) -> bool {
        i < self.size && self.words[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    pub fn set(&mut self, i: u64, on: bool) {
        if i >= self.size {
            return;
        }
        let w = &mut self.words[(i / 64) as usize];
        if on {
            *w |= 1 << (i % 64);
        } else {
            *w &= !(1 << (i % 64));
        }
    }

    pub fn count(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.words.len() * 8);
        for w in self.words.iter().rev() {
            out.extend_from_slice(&w.to_be_bytes());
        }
        let first = out.iter().position(|b| *b != 0).unwrap_or(out.len());
        out.drain(..first);
        out
    }

    pub fn from_bytes(bytes: &[u8], size: u64) -> Self {
        let mut b = Bitmap::new(size);
        for (i, byte) in bytes.iter().rev().enumerate() {
            for bit in 0..8 {
                if byte & (1 << bit) != 0 {
                    b.set(i as u64 * 8 + bit, true);
                }
            }
        }
        b
    }
}

/// Upstream's `calculateRangeOffset`: `min(max(min, size/step), max)`, or 0 for tiny ranges.
fn range_offset(size: u128, min: u128, max: u128, step: u128) -> u64 {
    if size <= min {
        return 0;
    }
    (size / step).clamp(min, max) as u64
}

/// One range whose allocations live in one store key.
pub struct RangeAllocator {
    key: &'static str,
    /// `10.96.0.0/12`, `30000-32767`: what the stored `range` field records.
    spec: String,
    size: u64,
    /// Items below this offset are handed out dynamically only when the rest is full.
    offset: u64,
    store: Arc<dyn Backend>,
    cached: Mutex<Option<(Revision, Bitmap)>>,
}

impl RangeAllocator {
    fn new(
        key: &'static str,
        spec: String,
        size: u64,
        offset: u64,
        store: Arc<dyn Backend>,
    ) -> Self {
        RangeAllocator {
            key,
            spec,
            size,
            offset,
            store,
            cached: Mutex::new(None),
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    fn decode(&self, raw: &[u8]) -> Bitmap {
        let v: Value = serde_json::from_slice(raw).unwrap_or(Value::Null);
        if v.get("range").and_then(Value::as_str) != Some(self.spec.as_str()) {
            // A range that changed since the bitmap was written: start over, the repair loop
            // marks what services hold.
            tracing::warn!(
                key = self.key,
                "stored allocation range differs from the configured one; starting a new bitmap"
            );
            return Bitmap::new(self.size);
        }
        let data = v
            .get("data")
            .and_then(Value::as_str)
            .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
            .unwrap_or_default();
        Bitmap::from_bytes(&data, self.size)
    }

    fn encode(&self, b: &Bitmap) -> Bytes {
        let v = json!({
            "kind": "RangeAllocation",
            "apiVersion": "v1",
            "metadata": {"creationTimestamp": null},
            "range": self.spec,
            "data": base64::engine::general_purpose::STANDARD.encode(b.to_bytes()),
        });
        Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
    }

    async fn load(&self) -> Result<(Revision, Bitmap), AllocError> {
        if let Some(c) = self.cached.lock().clone() {
            return Ok(c);
        }
        let (_, kv) = self
            .store
            .get(self.key, 0)
            .await
            .map_err(AllocError::Store)?;
        let out = match kv {
            Some(kv) => (kv.mod_revision, self.decode(&kv.value)),
            None => (0, Bitmap::new(self.size)),
        };
        *self.cached.lock() = Some(out.clone());
        Ok(out)
    }

    /// Runs `f` on the current bitmap and writes the result with compare-and-swap, retrying
    /// against the newer bitmap when another writer got there first. `f` returns whether it
    /// changed anything.
    async fn modify<T>(
        &self,
        mut f: impl FnMut(&mut Bitmap) -> Result<(T, bool), AllocError>,
    ) -> Result<T, AllocError> {
        for _ in 0..64 {
            let (rev, mut bm) = self.load().await?;
            let (out, changed) = f(&mut bm)?;
            if !changed {
                return Ok(out);
            }
            let value = self.encode(&bm);
            let written = if rev == 0 {
                self.store.create(self.key, value, None).await
            } else {
                self.store.update(self.key, value, rev, None).await
            };
            match written {
                Ok(new_rev) => {
                    *self.cached.lock() = Some((new_rev, bm));
                    return Ok(out);
                }
                Err(ferrokube_store::Error::Conflict { current, .. }) => {
                    *self.cached.lock() =
                        current.map(|kv| (kv.mod_revision, self.decode(&kv.value)));
                }
                Err(ferrokube_store::Error::KeyExists { .. }) => {
                    *self.cached.lock() = None;
                }
                Err(e) => {
                    *self.cached.lock() = None;
                    return Err(AllocError::Store(e));
                }
            }
        }
        Err(AllocError::Store(ferrokube_store::Error::Backend {
            backend: "allocator",
            message: format!("too many concurrent changes to {}", self.key),
            retryable: true,
        }))
    }

    /// Takes item `i`; `dry_run` only checks.
    pub async fn allocate(&self, i: u64, dry_run: bool) -> Result<(), AllocError> {
        if i >= self.size {
            return Err(AllocError::NotInRange);
        }
        self.modify(|bm| {
            if bm.get(i) {
                return Err(AllocError::Allocated);
            }
            if !dry_run {
                bm.set(i, true);
            }
            Ok(((), !dry_run))
        })
        .await
    }

    /// Takes a free item, preferring the upper band, as upstream's random scan with offset.
    pub async fn allocate_next(&self, dry_run: bool) -> Result<u64, AllocError> {
        let (size, offset) = (self.size, self.offset.min(self.size));
        self.modify(|bm| {
            if bm.count() >= size {
                return Err(AllocError::Full);
            }
            let mut rng = rand::rng();
            let pick = |from: u64, len: u64, rng: &mut rand::rngs::ThreadRng| -> Option<u64> {
                if len == 0 {
                    return None;
                }
                let start = rng.random_range(0..len);
                (0..len)
                    .map(|i| from + (start + i) % len)
                    .find(|at| !bm.get(*at))
            };
            let at = pick(offset, size - offset, &mut rng)
                .or_else(|| pick(0, offset, &mut rng))
                .ok_or(AllocError::Full)?;
            if !dry_run {
                bm.set(at, true);
            }
            Ok((at, !dry_run))
        })
        .await
    }

    /// Gives item `i` back. Releasing a free item is not an error.
    pub async fn release(&self, i: u64) -> Result<(), AllocError> {
        if i >= self.size {
            return Ok(());
        }
        self.modify(|bm| {
            let was = bm.get(i);
            bm.set(i, false);
            Ok(((), was))
        })
        .await
    }

    pub async fn has(&self, i: u64) -> Result<bool, AllocError> {
        Ok(self.load().await?.1.get(i))
    }

    /// Forgets the cached bitmap (tests, and after the repair loop rewrote it).
    pub fn invalidate(&self) {
        *self.cached.lock() = None;
    }

    /// Replaces the whole bitmap: the repair loop's fix-up. `f` gets the current bitmap.
    pub async fn rewrite(&self, mut f: impl FnMut(&mut Bitmap) -> bool) -> Result<(), AllocError> {
        self.invalidate();
        self.modify(|bm| Ok(((), f(bm)))).await
    }
}

/// The ClusterIP and NodePort allocators of one API server.
pub struct ServiceAllocators {
    pub cidr: Cidr,
    pub ips: RangeAllocator,
    pub node_port_range: (u16, u16),
    pub ports: RangeAllocator,
}

/// What an allocation did, to be finished once the write is known to have succeeded or
/// failed: on failure newly taken items are given back, on success items the old object held
/// and the new one does not are released.
#[derive(Debug, Default)]
pub struct Txn {
    taken_ips: Vec<IpAddr>,
    taken_ports: Vec<u16>,
    release_ips: Vec<IpAddr>,
    release_ports: Vec<u16>,
    dry_run: bool,
}

fn str_at<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

fn cluster_ips(svc: &Value) -> Vec<String> {
    match svc.pointer("/spec/clusterIPs").and_then(Value::as_array) {
        Some(a) if !a.is_empty() => a
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => {
            let ip = str_at(svc, "/spec/clusterIP");
            if ip.is_empty() {
                Vec::new()
            } else {
                vec![ip.to_string()]
            }
        }
    }
}

fn service_type(svc: &Value) -> &str {
    match str_at(svc, "/spec/type") {
        "" => "ClusterIP",
        t => t,
    }
}

fn wants_node_ports(svc: &Value) -> bool {
    matches!(service_type(svc), "NodePort" | "LoadBalancer")
}

/// upstream `shouldAllocateNodePorts`.
fn should_allocate_node_ports(svc: &Value) -> bool {
    match service_type(svc) {
        "NodePort" => true,
        "LoadBalancer" => svc
            .pointer("/spec/allocateLoadBalancerNodePorts")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        _ => false,
    }
}

/// upstream `NeedsHealthCheck`: LoadBalancer with externalTrafficPolicy Local.
fn needs_health_check(svc: &Value) -> bool {
    service_type(svc) == "LoadBalancer" && str_at(svc, "/spec/externalTrafficPolicy") == "Local"
}

fn node_ports(svc: &Value) -> Vec<u16> {
    let mut out: Vec<u16> = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
        .filter(|n| *n != 0)
        .map(|n| n as u16)
        .collect();
    if let Some(h) = svc
        .pointer("/spec/healthCheckNodePort")
        .and_then(Value::as_u64)
        .filter(|n| *n != 0)
    {
        out.push(h as u16);
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn go_string_slice(ips: &[String]) -> String {
    let quoted: Vec<String> = ips
        .iter()
        .map(|s| ferrokube_api::error::go_quote(s))
        .collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

fn invalid(name: &str, errs: Vec<FieldError>) -> ApiError {
    ApiError::invalid("", "Service", name, &errs)
}

impl ServiceAllocators {
    pub fn new(net: &ServiceNetwork, store: Arc<dyn Backend>) -> Result<Self, Error> {
        let cidr = Cidr::parse(&net.cluster_ip_range)?;
        if !cidr.v6 && cidr.prefix < 12 {
            return Err(Error::InvalidRange(
                net.cluster_ip_range.clone(),
                "for 32-bit addresses, the mask must be >= 12".into(),
            ));
        }
        let total = cidr.size();
        // Neither the network address nor (for IPv4) the broadcast address is handed out;
        // IPv6 ranges are capped to keep the bitmap small, as upstream caps them.
        let usable = if cidr.v6 {
            total.min(65536).saturating_sub(1)
        } else {
            total.saturating_sub(2)
        };
        let ips = RangeAllocator::new(
            SERVICE_IPS_KEY,
            cidr.to_string(),
            usable as u64,
            range_offset(total, 16, 256, 16),
            store.clone(),
        );
        let (lo, hi) = net.node_port_range;
        if hi < lo {
            return Err(Error::InvalidRange(
                format!("{lo}-{hi}"),
                "the node port range is empty".into(),
            ));
        }
        let port_count = u128::from(hi - lo) + 1;
        let ports = RangeAllocator::new(
            NODE_PORTS_KEY,
            format!("{lo}-{hi}"),
            port_count as u64,
            range_offset(port_count, 16, 128, 32),
            store,
        );
        Ok(ServiceAllocators {
            cidr,
            ips,
            node_port_range: (lo, hi),
            ports,
        })
    }

    /// The address at the start of the range (`10.96.0.1`): the `kubernetes` Service's.
    pub fn first_ip(&self) -> IpAddr {
        self.cidr.addr(self.cidr.base + 1)
    }

    fn ip_index(&self, ip: &IpAddr) -> Option<u64> {
        let v = Cidr::value_of(ip);
        if matches!(ip, IpAddr::V6(_)) != self.cidr.v6 {
            return None;
        }
        let first = self.cidr.base + 1;
        if v < first {
            return None;
        }
        let i = v - first;
        (i < u128::from(self.ips.size())).then_some(i as u64)
    }

    fn port_index(&self, port: u16) -> Option<u64> {
        let (lo, hi) = self.node_port_range;
        (lo..=hi).contains(&port).then(|| u64::from(port - lo))
    }

    fn ip_error(&self, ip: &str, e: AllocError) -> String {
        match e {
            AllocError::Allocated => "provided IP is already allocated".into(),
            AllocError::NotInRange => format!(
                "the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}",
                self.cidr
            ),
            AllocError::Full => "range is full".into(),
            AllocError::Store(e) => {
                format!("cannot allocate resources of type serviceipallocations at this time: {e}")
            }
        }
    }

    fn port_error(&self, e: AllocError) -> String {
        let (lo, hi) = self.node_port_range;
        match e {
            AllocError::Allocated => "provided port is already allocated".into(),
            AllocError::NotInRange => format!(
                "provided port is not in the valid range. The range of valid ports is {lo}-{hi}"
            ),
            AllocError::Full => "range is full".into(),
            AllocError::Store(e) => format!(
                "cannot allocate resources of type servicenodeportallocations at this time: {e}"
            ),
        }
    }

    async fn take_ip(&self, svc: &Value, ip: &str, dry_run: bool) -> Result<IpAddr, ApiError> {
        let name = str_at(svc, "/metadata/name");
        let fail = |msg: String| {
            invalid(
                name,
                vec![FieldError {
                    kind: ferrokube_api::error::FieldErrorType::Invalid,
                    field: "spec.clusterIPs".into(),
                    bad_value: None,
                    detail: format!(
                        "{}: failed to allocate IP {ip}: {msg}",
                        go_string_slice(&cluster_ips(svc))
                    ),
                }],
            )
        };
        let parsed: IpAddr = ip
            .parse()
            .map_err(|_| fail(format!("{ip:?} is not a valid IP address")))?;
        let Some(i) = self.ip_index(&parsed) else {
            return Err(fail(self.ip_error(ip, AllocError::NotInRange)));
        };
        self.ips
            .allocate(i, dry_run)
            .await
            .map_err(|e| fail(self.ip_error(ip, e)))?;
        Ok(parsed)
    }

    async fn next_ip(&self, dry_run: bool) -> Result<IpAddr, ApiError> {
        let i = self.ips.allocate_next(dry_run).await.map_err(|e| {
            ApiError::internal(format!(
                "failed to allocate a serviceIP: {}",
                self.ip_error("", e)
            ))
        })?;
        Ok(self.cidr.addr(self.cidr.base + 1 + u128::from(i)))
    }

    async fn take_port(
        &self,
        name: &str,
        field: String,
        port: u16,
        dry_run: bool,
    ) -> Result<(), ApiError> {
        let Some(i) = self.port_index(port) else {
            return Err(invalid(
                name,
                vec![FieldError::invalid(
                    field,
                    port,
                    self.port_error(AllocError::NotInRange),
                )],
            ));
        };
        self.ports.allocate(i, dry_run).await.map_err(|e| {
            invalid(
                name,
                vec![FieldError::invalid(field, port, self.port_error(e))],
            )
        })
    }

    async fn next_port(&self, dry_run: bool) -> Result<u16, ApiError> {
        let i = self.ports.allocate_next(dry_run).await.map_err(|e| {
            ApiError::internal(format!(
                "failed to allocate a nodePort: {}",
                self.port_error(e)
            ))
        })?;
        Ok(self.node_port_range.0 + i as u16)
    }

    /// upstream `initIPFamilyFields` for a single-stack cluster.
    fn init_ip_families(&self, svc: &mut Value, old: Option<&Value>) -> Result<(), ApiError> {
        if service_type(svc) == "ExternalName" {
            return Ok(());
        }
        let family = if self.cidr.v6 { "IPv6" } else { "IPv4" };
        let other = if self.cidr.v6 { "IPv4" } else { "IPv6" };
        let spec = &mut svc["spec"];
        if spec.get("ipFamilyPolicy").and_then(Value::as_str).is_none() {
            let old_policy = old
                .and_then(|o| o.pointer("/spec/ipFamilyPolicy"))
                .and_then(Value::as_str);
            let headless_selectorless = spec.get("clusterIP").and_then(Value::as_str)
                == Some("None")
                && spec
                    .get("selector")
                    .and_then(Value::as_object)
                    .is_none_or(|m| m.is_empty());
            let p = match old_policy {
                Some(p) => p,
                None if headless_selectorless => "RequireDualStack",
                None => "SingleStack",
            };
            spec["ipFamilyPolicy"] = json!(p);
        }
        let policy = spec["ipFamilyPolicy"]
            .as_str()
            .unwrap_or("SingleStack")
            .to_string();
        let mut fams: Vec<String> = spec
            .get("ipFamilies")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let ips = cluster_ips(&json!({"spec": spec.clone()}));
        let mut errs = Vec::new();
        for (i, ip) in ips.iter().enumerate() {
            if ip == "None" {
                break;
            }
            let fam = match ip.parse::<IpAddr>() {
                Ok(IpAddr::V4(_)) => "IPv4",
                Ok(IpAddr::V6(_)) => "IPv6",
                Err(_) => continue,
            };
            if i >= fams.len() {
                if fam == family {
                    fams.push(fam.to_string());
                } else {
                    errs.push(FieldError {
                        kind: ferrokube_api::error::FieldErrorType::Invalid,
                        field: format!("spec.clusterIPs[{i}]"),
                        bad_value: None,
                        detail: format!(
                            "{}: {fam} is not configured on this cluster",
                            go_string_slice(&ips)
                        ),
                    });
                }
            }
        }
        if policy == "SingleStack" {
            if ips.len() == 2 {
                errs.push(FieldError::invalid("spec.ipFamilyPolicy", policy.clone(), "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified"));
            }
            if fams.len() == 2 {
                errs.push(FieldError::invalid("spec.ipFamilyPolicy", policy.clone(), "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified"));
            }
        }
        if !errs.is_empty() {
            return Err(invalid(str_at(svc, "/metadata/name"), errs));
        }
        let spec = &mut svc["spec"];
        let headless_selectorless = spec.get("clusterIP").and_then(Value::as_str) == Some("None")
            && spec
                .get("selector")
                .and_then(Value::as_object)
                .is_none_or(|m| m.is_empty());
        if headless_selectorless {
            if fams.is_empty() {
                fams.push(family.to_string());
            }
            if fams.len() < 2 && policy != "SingleStack" {
                fams.push(other.to_string());
            }
            spec["ipFamilies"] = json!(fams);
            return Ok(());
        }
        if policy == "RequireDualStack" {
            errs.push(FieldError::invalid(
                "spec.ipFamilyPolicy",
                policy.clone(),
                "this cluster is not configured for dual-stack services",
            ));
        }
        for (i, f) in fams.iter().enumerate() {
            if f != family {
                errs.push(FieldError::invalid(
                    format!("spec.ipFamilies[{i}]"),
                    f.as_str(),
                    "not configured on this cluster",
                ));
            }
        }
        if !errs.is_empty() {
            return Err(invalid(str_at(svc, "/metadata/name"), errs));
        }
        if fams.is_empty() {
            fams.push(family.to_string());
        }
        spec["ipFamilies"] = json!(fams);
        Ok(())
    }

    /// Allocates what a new Service needs: its ClusterIP (requested or next free), and node
    /// ports for NodePort and LoadBalancer Services. Sets `clusterIP`, `clusterIPs`,
    /// `ipFamilies`, `ipFamilyPolicy` and `nodePort`s on `svc`.
    pub async fn allocate_create(&self, svc: &mut Value, dry_run: bool) -> Result<Txn, ApiError> {
        let mut txn = Txn {
            dry_run,
            ..Default::default()
        };
        self.init_ip_families(svc, None)?;
        if let Err(e) = self.alloc_cluster_ip(svc, &mut txn).await {
            self.revert(txn).await;
            return Err(e);
        }
        if let Err(e) = self.alloc_node_ports(svc, None, &mut txn).await {
            self.revert(txn).await;
            return Err(e);
        }
        Ok(txn)
    }

    async fn alloc_cluster_ip(&self, svc: &mut Value, txn: &mut Txn) -> Result<(), ApiError> {
        if service_type(svc) == "ExternalName" {
            return Ok(());
        }
        let ips = cluster_ips(svc);
        if ips.first().map(String::as_str) == Some("None") {
            svc["spec"]["clusterIPs"] = json!(["None"]);
            return Ok(());
        }
        let ip = match ips.first() {
            Some(ip) if !ip.is_empty() => self.take_ip(svc, ip, txn.dry_run).await?,
            _ => self.next_ip(txn.dry_run).await?,
        };
        if !txn.dry_run {
            txn.taken_ips.push(ip);
        }
        svc["spec"]["clusterIP"] = json!(ip.to_string());
        svc["spec"]["clusterIPs"] = json!([ip.to_string()]);
        Ok(())
    }

    /// upstream `initNodePorts` / `updateNodePorts`: requested ports are taken, missing ones
    /// allocated (the same service port number shares one node port across protocols).
    async fn alloc_node_ports(
        &self,
        svc: &mut Value,
        old: Option<&Value>,
        txn: &mut Txn,
    ) -> Result<(), ApiError> {
        let name = str_at(svc, "/metadata/name").to_string();
        let old_ports = old.map(node_ports).unwrap_or_default();
        if wants_node_ports(svc) {
            let allocate = should_allocate_node_ports(svc);
            let ports = svc
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut by_port: std::collections::HashMap<i64, u16> = Default::default();
            let mut updated = ports.clone();
            for (i, p) in ports.iter().enumerate() {
                let requested = p.get("nodePort").and_then(Value::as_u64).unwrap_or(0) as u16;
                if requested == 0 && !allocate {
                    continue;
                }
                let svc_port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
                let np = if requested != 0 {
                    if !old_ports.contains(&requested) && !txn.taken_ports.contains(&requested) {
                        self.take_port(
                            &name,
                            format!("spec.ports[{i}].nodePort"),
                            requested,
                            txn.dry_run,
                        )
                        .await?;
                        if !txn.dry_run {
                            txn.taken_ports.push(requested);
                        }
                    }
                    requested
                } else if let Some(np) = by_port.get(&svc_port) {
                    *np
                } else {
                    // A port with a requested node port later in the list shares it.
                    let later = ports.iter().skip(i + 1).find_map(|q| {
                        (q.get("port").and_then(Value::as_i64) == Some(svc_port))
                            .then(|| q.get("nodePort").and_then(Value::as_u64).unwrap_or(0) as u16)
                            .filter(|n| *n != 0)
                    });
                    match later {
                        Some(np) => np,
                        None => {
                            let np = self.next_port(txn.dry_run).await?;
                            if !txn.dry_run {
                                txn.taken_ports.push(np);
                            }
                            np
                        }
                    }
                };
                by_port.insert(svc_port, np);
                updated[i]["nodePort"] = json!(np);
            }
            svc["spec"]["ports"] = Value::Array(updated);
        }
        if needs_health_check(svc) {
            let hc = svc
                .pointer("/spec/healthCheckNodePort")
                .and_then(Value::as_u64)
                .unwrap_or(0) as u16;
            if hc == 0 {
                let np = self.next_port(txn.dry_run).await?;
                if !txn.dry_run {
                    txn.taken_ports.push(np);
                }
                svc["spec"]["healthCheckNodePort"] = json!(np);
            } else if !old_ports.contains(&hc) && !txn.taken_ports.contains(&hc) {
                let r = self
                    .take_port(&name, "spec.healthCheckNodePort".into(), hc, txn.dry_run)
                    .await;
                if let Err(e) = r {
                    return Err(ApiError::internal(format!(
                        "failed to allocate requested HealthCheck NodePort {hc}: {}",
                        e.causes.first().map(|c| c.message.as_str()).unwrap_or("")
                    )));
                }
                if !txn.dry_run {
                    txn.taken_ports.push(hc);
                }
            }
        } else if let Some(o) = svc["spec"].as_object_mut() {
            o.remove("healthCheckNodePort");
        }
        let now = node_ports(svc);
        txn.release_ports
            .extend(old_ports.iter().filter(|p| !now.contains(p)).copied());
        Ok(())
    }

    /// upstream `patchAllocatedValues`: an update that leaves out what was allocated keeps it.
    pub fn keep_allocated(new: &mut Value, old: &Value) {
        let new_type = service_type(new).to_string();
        let old_type = service_type(old).to_string();
        if new_type != "ExternalName" && old_type != "ExternalName" {
            if str_at(new, "/spec/clusterIP").is_empty()
                && let Some(ip) = old.pointer("/spec/clusterIP").cloned()
            {
                new["spec"]["clusterIP"] = ip;
            }
            let new_ips_empty = new
                .pointer("/spec/clusterIPs")
                .and_then(Value::as_array)
                .is_none_or(|a| a.is_empty());
            if new_ips_empty
                && new.pointer("/spec/clusterIP") == old.pointer("/spec/clusterIP")
                && let Some(ips) = old.pointer("/spec/clusterIPs").cloned()
            {
                new["spec"]["clusterIPs"] = ips;
            }
        }
        if wants_node_ports(new) && wants_node_ports(old) {
            let old_ports = old
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
                for p in ports.iter_mut() {
                    if p.get("nodePort").and_then(Value::as_u64).unwrap_or(0) != 0 {
                        continue;
                    }
                    let same = old_ports.iter().find(|o| {
                        o.get("port") == p.get("port")
                            && o.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                                == p.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                    });
                    if let Some(np) = same
                        .and_then(|o| o.get("nodePort"))
                        .filter(|n| n.as_u64().unwrap_or(0) != 0)
                    {
                        p["nodePort"] = np.clone();
                    }
                }
            }
        }
        if needs_health_check(new)
            && needs_health_check(old)
            && new
                .pointer("/spec/healthCheckNodePort")
                .and_then(Value::as_u64)
                .unwrap_or(0)
                == 0
            && let Some(h) = old.pointer("/spec/healthCheckNodePort").cloned()
        {
            new["spec"]["healthCheckNodePort"] = h;
        }
    }

    /// Allocation for an update: type changes to and from ExternalName take or give back the
    /// ClusterIP; node ports follow the type and the ports list.
    pub async fn allocate_update(
        &self,
        new: &mut Value,
        old: &Value,
        dry_run: bool,
    ) -> Result<Txn, ApiError> {
        let mut txn = Txn {
            dry_run,
            ..Default::default()
        };
        Self::keep_allocated(new, old);
        self.init_ip_families(new, Some(old))?;
        let old_type = service_type(old).to_string();
        let new_type = service_type(new).to_string();
        if old_type == "ExternalName" && new_type != "ExternalName" {
            if let Err(e) = self.alloc_cluster_ip(new, &mut txn).await {
                self.revert(txn).await;
                return Err(e);
            }
        } else if old_type != "ExternalName" && new_type == "ExternalName" {
            for ip in cluster_ips(old) {
                if let Ok(ip) = ip.parse() {
                    txn.release_ips.push(ip);
                }
            }
            if let Some(s) = new["spec"].as_object_mut() {
                s.remove("clusterIP");
                s.remove("clusterIPs");
                s.remove("ipFamilies");
                s.remove("ipFamilyPolicy");
            }
        }
        if !wants_node_ports(new)
            && let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut)
            && wants_node_ports(old)
        {
            // NodePort/LoadBalancer to ClusterIP/ExternalName drops the node ports.
            for p in ports.iter_mut() {
                if let Some(o) = p.as_object_mut() {
                    o.remove("nodePort");
                }
            }
        }
        if let Err(e) = self.alloc_node_ports(new, Some(old), &mut txn).await {
            self.revert(txn).await;
            return Err(e);
        }
        Ok(txn)
    }

    /// The write succeeded: give back what the old object held and the new one does not.
    pub async fn commit(&self, txn: Txn) {
        if txn.dry_run {
            return;
        }
        for ip in txn.release_ips {
            self.release_ip(&ip).await;
        }
        for p in txn.release_ports {
            self.release_port(p).await;
        }
    }

    /// The write failed: give back what was taken.
    pub async fn revert(&self, txn: Txn) {
        if txn.dry_run {
            return;
        }
        for ip in txn.taken_ips {
            self.release_ip(&ip).await;
        }
        for p in txn.taken_ports {
            self.release_port(p).await;
        }
    }

    async fn release_ip(&self, ip: &IpAddr) {
        if let Some(i) = self.ip_index(ip)
            && let Err(e) = self.ips.release(i).await
        {
            tracing::warn!(%ip, error = ?e, "could not release a service IP; the repair loop will");
        }
    }

    async fn release_port(&self, p: u16) {
        if let Some(i) = self.port_index(p)
            && let Err(e) = self.ports.release(i).await
        {
            tracing::warn!(port = p, error = ?e, "could not release a node port; the repair loop will");
        }
    }

    /// A Service was deleted: its addresses and ports go back to the ranges.
    pub async fn release_service(&self, svc: &Value) {
        if service_type(svc) != "ExternalName" {
            for ip in cluster_ips(svc) {
                if let Ok(ip) = ip.parse() {
                    self.release_ip(&ip).await;
                }
            }
        }
        for p in node_ports(svc) {
            self.release_port(p).await;
        }
    }

    /// upstream's repair controllers: marks every address and port a stored Service holds, and
    /// frees items no Service has held in two consecutive passes (`leaked` carries the
    /// candidates from the previous pass, so an allocation whose Service is still being
    /// written is not freed under it).
    pub async fn repair(
        &self,
        services: &[Value],
        leaked: &mut (Vec<u64>, Vec<u64>),
    ) -> Result<(), AllocError> {
        let mut held_ips = std::collections::HashSet::new();
        let mut held_ports = std::collections::HashSet::new();
        for svc in services {
            if service_type(svc) != "ExternalName" {
                for ip in cluster_ips(svc) {
                    if let Ok(ip) = ip.parse::<IpAddr>()
                        && let Some(i) = self.ip_index(&ip)
                    {
                        held_ips.insert(i);
                    }
                }
            }
            for p in node_ports(svc) {
                if let Some(i) = self.port_index(p) {
                    held_ports.insert(i);
                }
            }
        }
        let (prev_ips, prev_ports) = std::mem::take(leaked);
        let mut next_ips = Vec::new();
        self.ips
            .rewrite(|bm| {
                next_ips.clear();
                let mut changed = false;
                for i in &held_ips {
                    if !bm.get(*i) {
                        bm.set(*i, true);
                        changed = true;
                    }
                }
                for i in 0..bm.size {
                    if bm.get(i) && !held_ips.contains(&i) {
                        if prev_ips.contains(&i) {
                            bm.set(i, false);
                            changed = true;
                        } else {
                            next_ips.push(i);
                        }
                    }
                }
                changed
            })
            .await?;
        let mut next_ports = Vec::new();
        self.ports
            .rewrite(|bm| {
                next_ports.clear();
                let mut changed = false;
                for i in &held_ports {
                    if !bm.get(*i) {
                        bm.set(*i, true);
                        changed = true;
                    }
                }
                for i in 0..bm.size {
                    if bm.get(i) && !held_ports.contains(&i) {
                        if prev_ports.contains(&i) {
                            bm.set(i, false);
                            changed = true;
                        } else {
                            next_ports.push(i);
                        }
                    }
                }
                changed
            })
            .await?;
        *leaked = (next_ips, next_ports);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokube_store::memory::MemoryBackend;

    fn allocators() -> ServiceAllocators {
        ServiceAllocators::new(&ServiceNetwork::default(), Arc::new(MemoryBackend::new())).unwrap()
    }

    fn svc(name: &str, spec: Value) -> Value {
        json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec})
    }

    #[test]
    fn bitmaps_round_trip_as_big_endian_integers() {
        let mut b = Bitmap::new(1000);
        b.set(0, true);
        b.set(9, true);
        b.set(999, true);
        let bytes = b.to_bytes();
        assert_eq!(bytes.len(), 125);
        assert_eq!(*bytes.last().unwrap(), 0b0000_0001);
        assert_eq!(Bitmap::from_bytes(&bytes, 1000), b);
        assert!(Bitmap::new(10).to_bytes().is_empty());
    }

    #[test]
    fn ranges_have_upstreams_sizes_and_reserved_bands() {
        let a = allocators();
        assert_eq!(a.ips.size, (1 << 20) - 2);
        assert_eq!(a.ips.offset, 256);
        assert_eq!(a.ports.size, 2768);
        assert_eq!(a.ports.offset, 86);
        assert_eq!(a.first_ip().to_string(), "10.96.0.1");
        assert!(
            ServiceAllocators::new(
                &ServiceNetwork {
                    cluster_ip_range: "10.0.0.0/8".into(),
                    ..Default::default()
                },
                Arc::new(MemoryBackend::new())
            )
            .is_err()
        );
    }

    #[tokio::test]
    async fn requested_ips_are_taken_once_and_conflicts_are_refused() {
        let a = allocators();
        let mut s1 = svc(
            "dns",
            json!({"type": "ClusterIP", "clusterIP": "10.96.0.10", "ports": [{"port": 53}]}),
        );
        a.allocate_create(&mut s1, false).await.unwrap();
        assert_eq!(s1["spec"]["clusterIPs"], json!(["10.96.0.10"]));
        assert_eq!(s1["spec"]["ipFamilies"], json!(["IPv4"]));
        assert_eq!(s1["spec"]["ipFamilyPolicy"], "SingleStack");
        let mut s2 = svc(
            "other",
            json!({"type": "ClusterIP", "clusterIP": "10.96.0.10", "ports": [{"port": 53}]}),
        );
        let e = a.allocate_create(&mut s2, false).await.unwrap_err();
        assert_eq!(e.code, 422);
        assert_eq!(
            e.message,
            r#"Service "other" is invalid: spec.clusterIPs: Invalid value: []string{"10.96.0.10"}: failed to allocate IP 10.96.0.10: provided IP is already allocated"#
        );
        let mut s3 = svc(
            "out",
            json!({"type": "ClusterIP", "clusterIP": "10.0.0.1", "ports": [{"port": 53}]}),
        );
        let e = a.allocate_create(&mut s3, false).await.unwrap_err();
        assert!(e.message.ends_with("the provided IP (10.0.0.1) is not in the valid range. The range of valid IPs is 10.96.0.0/12"), "{}", e.message);
        a.release_service(&s1).await;
        a.allocate_create(&mut s2, false).await.unwrap();
    }

    #[tokio::test]
    async fn dynamic_ips_come_from_above_the_reserved_band() {
        let a = allocators();
        for i in 0..20 {
            let mut s = svc(
                &format!("s{i}"),
                json!({"type": "ClusterIP", "ports": [{"port": 80}]}),
            );
            a.allocate_create(&mut s, false).await.unwrap();
            let ip: std::net::Ipv4Addr = s["spec"]["clusterIP"].as_str().unwrap().parse().unwrap();
            let off = u32::from(ip) - u32::from(std::net::Ipv4Addr::new(10, 96, 0, 1));
            assert!(off >= 256, "{ip} is in the static band");
        }
    }

    #[tokio::test]
    async fn headless_services_get_no_address() {
        let a = allocators();
        let mut s = svc(
            "h",
            json!({"type": "ClusterIP", "clusterIP": "None", "selector": {"a": "b"}}),
        );
        a.allocate_create(&mut s, false).await.unwrap();
        assert_eq!(s["spec"]["clusterIPs"], json!(["None"]));
        assert_eq!(s["spec"]["ipFamilyPolicy"], "SingleStack");
        let mut s = svc("h2", json!({"type": "ClusterIP", "clusterIP": "None"}));
        a.allocate_create(&mut s, false).await.unwrap();
        assert_eq!(s["spec"]["ipFamilyPolicy"], "RequireDualStack");
        assert_eq!(s["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));
    }

    #[tokio::test]
    async fn node_ports_are_allocated_requested_and_refused_when_taken() {
        let a = allocators();
        let mut s = svc(
            "np",
            json!({"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP"}, {"port": 80, "protocol": "UDP"}, {"port": 443, "nodePort": 30443}]}),
        );
        a.allocate_create(&mut s, false).await.unwrap();
        let p0 = s["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
        assert!((30086..=32767).contains(&p0));
        assert_eq!(
            s["spec"]["ports"][1]["nodePort"].as_u64().unwrap(),
            p0,
            "same port number shares a node port"
        );
        assert_eq!(s["spec"]["ports"][2]["nodePort"], 30443);
        let mut t = svc(
            "np2",
            json!({"type": "NodePort", "ports": [{"port": 1, "nodePort": 30443}]}),
        );
        let e = a.allocate_create(&mut t, false).await.unwrap_err();
        assert_eq!(
            e.message,
            r#"Service "np2" is invalid: spec.ports[0].nodePort: Invalid value: 30443: provided port is already allocated"#
        );
        let mut u = svc(
            "np3",
            json!({"type": "NodePort", "ports": [{"port": 1, "nodePort": 8080}]}),
        );
        let e = a.allocate_create(&mut u, false).await.unwrap_err();
        assert!(e.message.ends_with(
            "provided port is not in the valid range. The range of valid ports is 30000-32767"
        ));
        // The failed create gave back its ClusterIP.
        assert_eq!(a.ips.load().await.unwrap().1.count(), 1);
    }

    #[tokio::test]
    async fn updates_keep_what_was_allocated_and_release_what_is_dropped() {
        let a = allocators();
        let mut old = svc(
            "x",
            json!({"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP"}]}),
        );
        a.allocate_create(&mut old, false).await.unwrap();
        let np = old["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
        let mut new = svc(
            "x",
            json!({"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP"}]}),
        );
        let txn = a.allocate_update(&mut new, &old, false).await.unwrap();
        a.commit(txn).await;
        assert_eq!(new["spec"]["clusterIP"], old["spec"]["clusterIP"]);
        assert_eq!(new["spec"]["ports"][0]["nodePort"].as_u64(), Some(np));
        let mut cip = svc(
            "x",
            json!({"type": "ClusterIP", "ports": [{"port": 80, "protocol": "TCP", "nodePort": np}]}),
        );
        let txn = a.allocate_update(&mut cip, &new, false).await.unwrap();
        a.commit(txn).await;
        assert!(cip["spec"]["ports"][0].get("nodePort").is_none());
        assert_eq!(a.ports.load().await.unwrap().1.count(), 0);
    }

    #[tokio::test]
    async fn two_allocators_on_one_store_never_share_an_address() {
        let store: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let net = ServiceNetwork {
            cluster_ip_range: "10.0.0.0/28".into(),
            ..Default::default()
        };
        let a = Arc::new(ServiceAllocators::new(&net, store.clone()).unwrap());
        let b = Arc::new(ServiceAllocators::new(&net, store).unwrap());
        let mut tasks = Vec::new();
        for i in 0..14 {
            let x = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                let mut s = svc(
                    &format!("s{i}"),
                    json!({"type": "ClusterIP", "ports": [{"port": 80}]}),
                );
                x.allocate_create(&mut s, false)
                    .await
                    .map(|_| s["spec"]["clusterIP"].as_str().unwrap().to_string())
            }));
        }
        let mut got = std::collections::HashSet::new();
        for t in tasks {
            assert!(got.insert(t.await.unwrap().unwrap()));
        }
        assert_eq!(got.len(), 14);
        let mut s = svc(
            "full",
            json!({"type": "ClusterIP", "ports": [{"port": 80}]}),
        );
        let e = a.allocate_create(&mut s, false).await.unwrap_err();
        assert_eq!(e.code, 500);
        assert!(
            e.message
                .contains("failed to allocate a serviceIP: range is full")
        );
    }

    #[tokio::test]
    async fn repair_marks_held_items_and_frees_leaks_on_the_second_pass() {
        let a = allocators();
        a.ips.allocate(500, false).await.unwrap();
        let held = svc(
            "held",
            json!({"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"]}),
        );
        let mut leaked = Default::default();
        a.repair(std::slice::from_ref(&held), &mut leaked)
            .await
            .unwrap();
        assert!(a.ips.has(9).await.unwrap());
        assert!(a.ips.has(500).await.unwrap(), "a first-pass leak is kept");
        a.repair(&[held], &mut leaked).await.unwrap();
        assert!(!a.ips.has(500).await.unwrap());
        assert!(a.ips.has(9).await.unwrap());
    }
}
